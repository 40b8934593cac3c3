//! The admin socket: how `HOST reload` reaches a running host. It is a Unix socket with mode
//! 0600 (by default inside a directory only the host's user can enter), so neither the
//! network nor another user can reach it, which is why it is on by default. There is no TCP
//! admin endpoint at all.
//!
//! The default socket is named after the config file the host runs (a hash of its full
//! path), so `HOST reload --config FILE` finds the host started with `--config FILE`
//! without any setting, and hosts running different configs do not collide.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::{self, ConfigError, Value};

/// The config's `[admin]` section.
#[derive(Debug, Default, Deserialize)]
struct AdminConfig {
    /// No admin socket: the host is reloaded with SIGHUP only.
    #[serde(default)]
    disabled: bool,
    /// Where the socket is, instead of the default.
    socket: Option<PathBuf>,
}

/// A socket path as `sockaddr_un` holds it: 108 bytes with the terminating NUL, less room
/// for the temporary name the socket is bound under before it is made private.
const MAX_SOCKET_PATH: usize = 90;

/// Requests are a config and a few fields; anything larger is not one.
const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// A client that connects and sends nothing must not hold the admin socket.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a host's admin socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Socket {
    pub path: PathBuf,
    /// The directory the host creates owner-only for a default socket; `None` for a socket
    /// the config places, whose directory must exist.
    private_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid config for `admin` at `socket`: `{0}` is not an absolute path")]
    NotAbsolute(String),
    #[error(
        "invalid config for `admin` at `socket`: `{0}` is longer than {MAX_SOCKET_PATH} bytes, more than a Unix socket address holds"
    )]
    TooLong(String),
    #[error("cannot find config file `{path}` to name its admin socket: {source}")]
    ConfigPath {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the admin socket directory `{dir}`: {source}")]
    CreateDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the admin socket directory `{dir}` {problem}, so other users could reach the admin socket"
    )]
    NotPrivate { dir: String, problem: String },
    #[error("another running host answers on admin socket `{0}`")]
    InUse(String),
    #[error("`{0}` exists and is not a socket; the admin socket cannot be created there")]
    NotASocket(String),
    #[error("cannot create admin socket `{path}`: {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no running host answers on admin socket `{path}`: {source}")]
    NoHost {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "config `{0}` disables the admin socket, so there is no running host to reach through it"
    )]
    Disabled(String),
    #[error("the admin socket `{path}` gave no answer: {detail}")]
    Protocol { path: String, detail: String },
}

impl AdminError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Vec<String> {
        match self {
            AdminError::NotAbsolute(..) => vec!["give the full path of a Unix socket, e.g. `/run/myhost/admin.sock` (the admin endpoint is never TCP)".into()],
            AdminError::TooLong(..) => vec!["choose a shorter path".into()],
            AdminError::CreateDir { .. } => vec!["set `socket` in the config's `[admin]` section to a directory you can write to, or `disabled = true`".into()],
            AdminError::NotPrivate { .. } => vec!["remove the directory (the host creates it owner-only), or set `socket` in the config's `[admin]` section".into()],
            AdminError::InUse(..) => vec!["stop it, or give this host its own socket with `socket = \"PATH\"` in the config's `[admin]` section (or `disabled = true`)".into()],
            AdminError::NotASocket(..) => vec!["remove it, or set another `socket` in the config's `[admin]` section".into()],
            AdminError::Bind { .. } => vec!["check that its directory exists and is writable, or set `disabled = true` in the config's `[admin]` section".into()],
            AdminError::NoHost { .. } => vec!["start the host with `run --config` and this config file, or pass the socket a running host logged at start with `--address`".into()],
            AdminError::Disabled(..) => vec!["send the host SIGHUP to reload its config file, or pass a socket with `--address`".into()],
            _ => Vec::new(),
        }
    }
}

/// The admin socket `config` (loaded from `config_path`) asks for, or `None` if it disables
/// it. Only reads: nothing is created.
pub(crate) fn endpoint(config: &Value, config_path: &Path) -> Result<Option<Socket>, AdminError> {
    let section = config.get("admin").cloned().unwrap_or(Value::Null);
    let admin: AdminConfig = config::decode_strict("admin", section)?;
    if admin.disabled {
        return Ok(None);
    }
    let socket = match admin.socket {
        Some(path) => {
            let shown = path.display().to_string();
            if !path.is_absolute() {
                return Err(AdminError::NotAbsolute(shown));
            }
            Socket {
                path,
                private_dir: None,
            }
        }
        None => default_socket(config_path)?,
    };
    if socket.path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(AdminError::TooLong(socket.path.display().to_string()));
    }
    Ok(Some(socket))
}

/// `<runtime dir>/<host>-<hash of the config file's full path>.sock`.
fn default_socket(config_path: &Path) -> Result<Socket, AdminError> {
    let full = std::fs::canonicalize(config_path).map_err(|source| AdminError::ConfigPath {
        path: config_path.display().to_string(),
        source,
    })?;
    let digest = sha2::Sha256::digest(full.as_os_str().as_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let host: String = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(32)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    let dir = runtime_dir();
    Ok(Socket {
        path: dir.join(format!("{host}-{hash}.sock")),
        private_dir: Some(dir),
    })
}

/// `$XDG_RUNTIME_DIR/xbuild` (a per-user directory the system already keeps private), else
/// `xbuild-UID` in the temporary directory.
fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("xbuild"),
        _ => std::env::temp_dir().join(format!("xbuild-{}", rustix::process::getuid().as_raw())),
    }
}

/// Creates `dir` owner-only, or checks that the existing one is: owned by this user, a real
/// directory (not a link someone planted), and closed to everyone else.
fn ensure_private_dir(dir: &Path) -> Result<(), AdminError> {
    let shown = || dir.display().to_string();
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(AdminError::CreateDir {
                dir: shown(),
                source,
            });
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| AdminError::CreateDir {
        dir: shown(),
        source,
    })?;
    let uid = rustix::process::getuid().as_raw();
    let problem = if !meta.is_dir() {
        Some("is not a directory".to_owned())
    } else if meta.uid() != uid {
        Some(format!(
            "belongs to user {} and not to this one ({uid})",
            meta.uid()
        ))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!(
            "has mode {:o}, open to others",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(AdminError::NotPrivate {
            dir: shown(),
            problem,
        }),
        None => Ok(()),
    }
}

/// What `HOST reload` asks of the running host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Run `config`, read from `config_file` (which SIGHUP re-reads from then on).
    Reload {
        config_file: PathBuf,
        config: Value,
        force: bool,
    },
}

/// The running host's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Response {
    Reloaded,
    Unchanged,
    Error { error: String },
}

/// Hands a request to whoever owns the running config and gives it where to answer.
pub(crate) type Forward = Box<dyn Fn(Request, mpsc::Sender<Response>) + Send>;

/// A listening admin socket. Dropping it stops answering and removes the socket file.
pub(crate) struct Server {
    socket: Socket,
    /// The socket file's device and inode: it is removed only while it is still ours.
    identity: (u64, u64),
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Binds the socket (mode 0600) and answers requests on a thread of its own, handing
    /// each to `forward`. A socket file no host answers on (left by a host that was killed)
    /// is replaced; one a host answers on is an error.
    pub fn open(socket: &Socket, forward: Forward) -> Result<Server, AdminError> {
        if let Some(dir) = &socket.private_dir {
            ensure_private_dir(dir)?;
        }
        let path = &socket.path;
        let shown = || path.display().to_string();
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(AdminError::NotASocket(shown()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(AdminError::InUse(shown()));
            }
            let _ = std::fs::remove_file(path);
        }
        // Bound under a temporary name and renamed once private, so the socket is never
        // reachable with the umask's mode.
        let bind_error = |source| AdminError::Bind {
            path: shown(),
            source,
        };
        let temporary = path.with_file_name(format!(".xbuild-admin-{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary).map_err(bind_error)?;
        let made_private =
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
                .and_then(|()| std::fs::rename(&temporary, path))
                .and_then(|()| std::fs::metadata(path));
        let meta = match made_private {
            Ok(meta) => meta,
            Err(source) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(bind_error(source));
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let serving = stop.clone();
        std::thread::Builder::new()
            .name("xbuild-admin".into())
            .spawn(move || serve(listener, &serving, &forward))
            .map_err(bind_error)?;
        Ok(Server {
            socket: socket.clone(),
            identity: (meta.dev(), meta.ino()),
            stop,
        })
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag (after the request it may be answering).
        let _ = UnixStream::connect(&self.socket.path);
        if let Ok(meta) = std::fs::metadata(&self.socket.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.socket.path);
        }
    }
}

fn serve(listener: UnixListener, stop: &AtomicBool, forward: &Forward) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream
            && let Err(err) = answer(&stream, forward)
        {
            tracing::debug!(error = %err, "admin request not answered");
        }
    }
}

fn answer(stream: &UnixStream, forward: &Forward) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_READ_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST_BYTES)).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (reply, answered) = mpsc::channel();
            forward(request, reply);
            answered.recv().unwrap_or(Response::Error {
                error: "the host is stopping".into(),
            })
        }
        Err(err) => Response::Error {
            error: format!("unreadable admin request: {err}"),
        },
    };
    let mut stream = stream;
    serde_json::to_writer(&mut stream, &response)?;
    stream.write_all(b"\n")
}

/// Sends `request` to the host answering on `socket` and waits for its answer (a reload
/// answers once the previous config's apps have stopped).
pub(crate) fn send(socket: &Path, request: &Request) -> Result<Response, AdminError> {
    let shown = || socket.display().to_string();
    let mut stream = UnixStream::connect(socket).map_err(|source| AdminError::NoHost {
        path: shown(),
        source,
    })?;
    let protocol = |detail: String| AdminError::Protocol {
        path: shown(),
        detail,
    };
    let mut body = serde_json::to_vec(request).map_err(|e| protocol(e.to_string()))?;
    body.push(b'\n');
    stream
        .write_all(&body)
        .map_err(|e| protocol(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| protocol(e.to_string()))?;
    if line.is_empty() {
        return Err(protocol("it closed the connection".into()));
    }
    serde_json::from_str(&line).map_err(|e| protocol(format!("unreadable answer: {e}")))
}

impl crate::error::Diagnostic for AdminError {
    fn help(&self) -> Vec<String> {
        AdminError::help(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_socket_is_named_by_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let config = serde_json::json!({});
        let socket_a = endpoint(&config, &a).unwrap().unwrap();
        assert_eq!(endpoint(&config, &a).unwrap().unwrap(), socket_a);
        assert_ne!(endpoint(&config, &b).unwrap().unwrap(), socket_a);
        assert!(socket_a.private_dir.is_some());
    }

    #[test]
    fn admin_settings_are_checked() {
        let file = Path::new("/nonexistent/config.toml");
        let off = serde_json::json!({"admin": {"disabled": true}});
        assert!(endpoint(&off, file).unwrap().is_none());
        let placed = serde_json::json!({"admin": {"socket": "/run/h/admin.sock"}});
        assert_eq!(
            endpoint(&placed, file).unwrap().unwrap().path,
            Path::new("/run/h/admin.sock")
        );
        let tcp = serde_json::json!({"admin": {"socket": "127.0.0.1:2019"}});
        let err = endpoint(&tcp, file).unwrap_err().to_string();
        assert!(
            err.contains("`127.0.0.1:2019` is not an absolute path"),
            "{err}"
        );
        let long = serde_json::json!({"admin": {"socket": format!("/{}", "a".repeat(100))}});
        assert!(
            endpoint(&long, file)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
        let unknown = serde_json::json!({"admin": {"listen": ":2019"}});
        let err = endpoint(&unknown, file).unwrap_err().to_string();
        assert!(err.contains("unknown field `listen`"), "{err}");
    }

    #[test]
    fn a_socket_is_private_answers_and_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let socket = Socket {
            path: dir.path().join("admin.sock"),
            private_dir: Some(dir.path().join("private")),
        };
        let socket = Socket {
            path: socket.private_dir.clone().unwrap().join("admin.sock"),
            ..socket
        };
        let forward: Forward = Box::new(|request, reply| {
            let Request::Reload { force, .. } = request;
            let _ = reply.send(if force {
                Response::Reloaded
            } else {
                Response::Unchanged
            });
        });
        let server = Server::open(&socket, forward).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&socket.path), 0o600);
        assert_eq!(mode(socket.private_dir.as_ref().unwrap()), 0o700);
        let reload = |force| Request::Reload {
            config_file: "/c.toml".into(),
            config: Value::Null,
            force,
        };
        assert!(matches!(
            send(&socket.path, &reload(true)),
            Ok(Response::Reloaded)
        ));
        assert!(matches!(
            send(&socket.path, &reload(false)),
            Ok(Response::Unchanged)
        ));
        // A second host on the same socket is refused while the first answers.
        let err = Server::open(&socket, Box::new(|_, _| {})).err().unwrap();
        assert!(matches!(err, AdminError::InUse(_)), "{err}");
        drop(server);
        assert!(!socket.path.exists());
        assert!(matches!(
            send(&socket.path, &reload(true)),
            Err(AdminError::NoHost { .. })
        ));
    }

    #[test]
    fn a_directory_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&open).unwrap_err().to_string();
        assert!(err.contains("has mode 755"), "{err}");
    }
}

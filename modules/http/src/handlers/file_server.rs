//! `http.handlers.file_server`: serves files under a root folder. The HTTP parts (content
//! types, ETag and Last-Modified with conditional requests, ranges, `..` refusal, the
//! trailing-slash redirect) are tower-http's `ServeDir`. What this module adds is
//! containment: every path ServeDir touches goes through a backend that resolves symlinks
//! and refuses anything that lands outside the root, and a configurable list of index
//! files.

use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::uri::{PathAndQuery, Uri};
use http::{StatusCode, header};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tower_http::services::ServeDir;
use tower_http::services::fs::{Backend, DefaultServeDirFallback, File};
use tower_service::Service;
use xbuild_core::{BoxError, Context, Module, Provisioned};

use crate::{Handler, HandlerFuture, HttpBody, Next, Request, boxed, text_response};

fn default_index_names() -> Vec<String> {
    vec!["index.html".to_owned()]
}

#[derive(Deserialize)]
pub struct FileServer {
    /// The folder to serve; relative paths are resolved against the host's working directory.
    root: PathBuf,
    /// Files tried, in order, when a request names a folder (`/docs/`).
    #[serde(default = "default_index_names")]
    index_names: Vec<String>,

    #[serde(skip)]
    prepared: Provisioned<Prepared>,
}

struct Prepared {
    backend: ContainedFs,
    serve_dir: ServeDir<DefaultServeDirFallback, ContainedFs>,
}

impl Module for FileServer {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        let root = std::fs::canonicalize(&self.root).map_err(|e| {
            xbuild_core::Hinted::new(format!(
                "file_server root `{}` cannot be used: {e}",
                crate::access_log::visible(&self.root.display().to_string())
            ))
            .help("relative roots are resolved against the directory the host runs in")
        })?;
        if !root.is_dir() {
            return Err(format!(
                "file_server root `{}` is not a folder",
                crate::access_log::visible(&self.root.display().to_string())
            )
            .into());
        }
        for name in &self.index_names {
            let simple = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && name != "."
                && name != "..";
            if !simple {
                return Err(format!(
                    "invalid index name `{name}`: give a plain file name such as `index.html`"
                )
                .into());
            }
        }
        let backend = ContainedFs {
            root: Arc::new(root.clone()),
        };
        let serve_dir = ServeDir::with_backend(&root, backend.clone());
        self.prepared.set(Prepared { backend, serve_dir });
        Ok(())
    }
}

impl Handler for FileServer {
    fn serve<'a>(&'a self, request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let prepared = &*self.prepared;
            let request = if request.uri().path().ends_with('/') {
                match self.with_index(prepared, request).await {
                    Some(request) => request,
                    None => {
                        return Ok(text_response(StatusCode::NOT_FOUND, "not found\n"));
                    }
                }
            } else {
                request
            };
            let request = honour_range_only_when_valid(prepared, request).await;
            let mut serve_dir = prepared.serve_dir.clone();
            let response = match serve_dir.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(boxed))
        })
    }
}

/// Whether a `Range` header is one byte range this server answers with 206: `bytes=` and a
/// single `first-last`, `first-` or `-suffix`. Anything else is ignored, as RFC 9110
/// allows (the whole file, 200), rather than refused with 416: a garbled or multi-range
/// header is no reason to fail a download.
fn is_single_byte_range(value: &http::HeaderValue) -> bool {
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return false;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (first.is_empty(), last.is_empty()) {
        (false, true) => digits(first),
        (true, false) => digits(last),
        (false, false) => digits(first) && digits(last),
        (true, true) => false,
    }
}

/// Drops `Range` where it must not apply: not a single byte range, or an `If-Range` whose
/// validator no longer matches the file (a client resuming a download of a changed file
/// gets the whole new file, not a piece of it glued to the old one). The validator is
/// checked by asking ServeDir itself whether it would answer 304 to it.
async fn honour_range_only_when_valid(prepared: &Prepared, mut request: Request) -> Request {
    let Some(range) = request.headers().get(header::RANGE) else {
        return request;
    };
    let mut keep = is_single_byte_range(range);
    if keep && let Some(validator) = request.headers_mut().remove(header::IF_RANGE) {
        let text = validator.to_str().unwrap_or_default();
        let condition = if text.starts_with('"') {
            Some(header::IF_NONE_MATCH)
        } else if text.starts_with("W/") {
            // A weak validator never matches for If-Range (RFC 9110, 13.1.5).
            None
        } else {
            Some(header::IF_MODIFIED_SINCE)
        };
        keep = match condition {
            None => false,
            Some(condition) => {
                let mut probe = http::Request::new(HttpBody::default());
                *probe.method_mut() = http::Method::HEAD;
                *probe.uri_mut() = request.uri().clone();
                probe.headers_mut().insert(condition, validator.clone());
                let mut serve_dir = prepared.serve_dir.clone();
                match serve_dir.call(probe).await {
                    Ok(answer) => answer.status() == StatusCode::NOT_MODIFIED,
                    Err(never) => match never {},
                }
            }
        };
    }
    if !keep {
        request.headers_mut().remove(header::RANGE);
    }
    request
}

impl FileServer {
    /// For a folder URL, points the request at the first index file that exists there.
    /// `None` when the folder has none (or the path is not acceptable at all).
    async fn with_index(&self, prepared: &Prepared, mut request: Request) -> Option<Request> {
        let folder = relative_path(request.uri().path())?;
        let folder = prepared.backend.root.join(folder);
        for name in &self.index_names {
            let candidate = folder.join(name);
            if let Ok(meta) = prepared.backend.metadata(candidate).await
                && meta.is_file()
            {
                let path = format!("{}{name}", request.uri().path());
                let path_and_query = match request.uri().query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                let mut parts = request.uri().clone().into_parts();
                parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
                *request.uri_mut() = Uri::from_parts(parts).ok()?;
                return Some(request);
            }
        }
        None
    }
}

/// The request path as a relative file path: percent-decoded, and refused (`None`) if any
/// component could leave the folder (`..`, a root, a drive prefix). The same rule ServeDir
/// applies to the paths it serves.
fn relative_path(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(uri_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let mut out = PathBuf::new();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// ServeDir's file system, confined to a root: each path is resolved (following symlinks)
/// and used only if the result is still inside the root; otherwise `PermissionDenied`,
/// which ServeDir answers with 404. The resolved path is what gets opened, so a symlink
/// cannot be swapped between the check and the open.
#[derive(Clone)]
pub(crate) struct ContainedFs {
    root: Arc<PathBuf>,
}

type IoFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl ContainedFs {
    async fn resolve(root: &Path, path: PathBuf) -> io::Result<PathBuf> {
        let real = tokio::fs::canonicalize(&path).await?;
        if real.starts_with(root) {
            Ok(real)
        } else {
            tracing::warn!(
                requested = %path.display(),
                resolves_to = %real.display(),
                "file_server refused a path that leaves its root"
            );
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "path resolves outside the file_server root",
            ))
        }
    }
}

impl Backend for ContainedFs {
    type File = ContainedFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = IoFuture<ContainedFile>;
    type MetadataFuture = IoFuture<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move {
            let real = Self::resolve(&root, path).await?;
            // Only regular files: opening a FIFO or a device would block a thread per
            // request (or read something that is not a file at all).
            if !tokio::fs::metadata(&real).await?.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "not a regular file",
                ));
            }
            Ok(ContainedFile(tokio::fs::File::open(real).await?))
        })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move {
            let real = Self::resolve(&root, path).await?;
            tokio::fs::metadata(real).await
        })
    }
}

/// An opened file for ServeDir (tower-http's own wrapper cannot be built outside it).
pub(crate) struct ContainedFile(tokio::fs::File);

impl AsyncRead for ContainedFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncSeek for ContainedFile {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.0).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.0).poll_complete(cx)
    }
}

impl File for ContainedFile {
    type Metadata = std::fs::Metadata;
    type MetadataFuture<'a> =
        Pin<Box<dyn Future<Output = io::Result<std::fs::Metadata>> + Send + 'a>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        Box::pin(self.0.metadata())
    }
}

// selftest audits it serving the current directory.
xbuild_core::register_module!(
    "http.handlers.file_server",
    FileServer as dyn Handler,
    selftest = config(r#"{"root": "."}"#)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(relative_path("/a/b/"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/"), Some(PathBuf::new()));
        assert_eq!(relative_path("/a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/%61/"), Some(PathBuf::from("a")));
        assert_eq!(relative_path("/../"), None);
        assert_eq!(relative_path("/a/%2e%2e/%2e%2e/"), None);
        assert_eq!(relative_path("/a/..%2f..%2f"), None);
        assert_eq!(relative_path("//etc/"), Some(PathBuf::from("etc")));
    }
}

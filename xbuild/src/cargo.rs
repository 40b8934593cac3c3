//! The one place that runs cargo. Cargo runs in its own process group so an interrupt
//! reaches xbuild first: xbuild stops the whole group, waits for it, and only then removes
//! the workspace (a terminal's Ctrl-C would otherwise race cargo against our cleanup).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::plan::BuildPlan;
use crate::workspace::Workspace;

/// Set by SIGINT or SIGTERM; checked while cargo runs and between steps.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn install() -> std::io::Result<Self> {
        // A file size limit (`ulimit -f`) would otherwise kill xbuild mid-write with no word
        // and leave its staged files behind; ignored, the write fails with EFBIG, which is
        // reported and cleaned up like any other write error (and the cargo it runs, which
        // inherits the setting, reports it too).
        // SAFETY: setting a signal's disposition to "ignore" touches no Rust state.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, flag.clone())?;
        }
        Ok(Self(flag))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn check(&self) -> Result<(), CargoError> {
        if self.is_set() {
            Err(CargoError::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error(
        "interrupted: cargo was stopped, the generated workspace removed and the output left as it was"
    )]
    Interrupted,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`cargo {what}` failed ({status}):\n{stderr}")]
    Failed {
        what: &'static str,
        status: ExitStatus,
        stderr: String,
    },
}

impl crate::error::Diagnostic for CargoError {
    fn help(&self) -> Vec<String> {
        match self {
            CargoError::Spawn { .. } => {
                vec!["install Rust with rustup, or point the CARGO variable at cargo".into()]
            }
            CargoError::Interrupted | CargoError::Failed { .. } => Vec::new(),
        }
    }
}

/// Output lines of a cargo process, as they arrive.
pub enum Line {
    Out(String),
    Err(String),
}

pub struct Cargo {
    program: OsString,
    /// Cargo's `build-dir`, shared by every build (FACTS.md: a shared build directory reuses
    /// compiled dependencies, a per-build target dir keeps outputs apart).
    build_dir: PathBuf,
    /// Whether rustc's diagnostics may carry colour codes.
    color: bool,
}

impl Cargo {
    pub fn new(build_dir: PathBuf, color: bool) -> Self {
        Self {
            program: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            build_dir,
            color,
        }
    }

    fn command(&self, ws: &Workspace, plan: &BuildPlan, subcommand: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(subcommand)
            .arg("--manifest-path")
            .arg(ws.manifest_path())
            // Cargo finds its config from the working directory: staying in the user's
            // keeps their project's `.cargo/config.toml` (registries, mirrors) in effect.
            // The generated settings (target, static flags) are added on top.
            .arg("--config")
            .arg(ws.config_path())
            .env("CARGO_TARGET_DIR", ws.root().join("target"))
            .env("CARGO_BUILD_BUILD_DIR", &self.build_dir)
            .env(
                "CARGO_TERM_COLOR",
                if self.color { "always" } else { "never" },
            )
            // Folded into the generated .cargo/config.toml instead (they would replace it).
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if plan.locked.is_some() {
            command.arg("--locked");
        }
        if plan.offline {
            command.arg("--offline");
        }
        command
    }

    /// `cargo metadata` for the generated workspace; returns its JSON.
    pub fn metadata(
        &self,
        ws: &Workspace,
        plan: &BuildPlan,
        interrupt: &Interrupt,
    ) -> Result<cargo_metadata::Metadata, CargoError> {
        let mut command = self.command(ws, plan, "metadata");
        command
            .args(["--format-version", "1", "--filter-platform"])
            .arg(&plan.target);
        let mut stdout = String::new();
        let mut stderr = String::new();
        let status = self.run(command, interrupt, |line| match line {
            Line::Out(l) => {
                stdout.push_str(&l);
                stdout.push('\n');
            }
            Line::Err(l) => {
                stderr.push_str(&l);
                stderr.push('\n');
            }
        })?;
        if !status.success() {
            return Err(CargoError::Failed {
                what: "metadata",
                status,
                stderr,
            });
        }
        cargo_metadata::MetadataCommand::parse(stdout).map_err(|e| CargoError::Failed {
            what: "metadata",
            status,
            stderr: format!("unreadable output: {e}"),
        })
    }

    /// `cargo update` in the generated workspace: `crates` (and what they need), or every
    /// crate when empty. Cargo rewrites the workspace's Cargo.lock.
    pub fn update(
        &self,
        ws: &Workspace,
        plan: &BuildPlan,
        crates: &[String],
        interrupt: &Interrupt,
    ) -> Result<(), CargoError> {
        let mut command = self.command(ws, plan, "update");
        for name in crates {
            command.arg("--package").arg(name);
        }
        let mut stderr = String::new();
        let status = self.run(command, interrupt, |line| {
            if let Line::Err(l) = line {
                stderr.push_str(&l);
                stderr.push('\n');
            }
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(CargoError::Failed {
                what: "update",
                status,
                stderr,
            })
        }
    }

    /// Builds the host with JSON messages; `on_line` sees every line.
    pub fn build(
        &self,
        ws: &Workspace,
        plan: &BuildPlan,
        interrupt: &Interrupt,
        on_line: impl FnMut(Line),
    ) -> Result<ExitStatus, CargoError> {
        let mut command = self.command(ws, plan, "build");
        command
            .arg("--message-format")
            .arg(if self.color {
                "json-diagnostic-rendered-ansi"
            } else {
                "json"
            })
            .arg("--profile")
            .arg(plan.profile.cargo_name())
            .arg("--target")
            .arg(&plan.target)
            .env("CARGO_TERM_PROGRESS_WHEN", "never");
        self.run(command, interrupt, on_line)
    }

    fn run(
        &self,
        mut command: Command,
        interrupt: &Interrupt,
        mut on_line: impl FnMut(Line),
    ) -> Result<ExitStatus, CargoError> {
        interrupt.check()?;
        let mut child = command.spawn().map_err(|source| CargoError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        })?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let tx_err = tx.clone();
        std::thread::spawn(move || forward(out, tx, Line::Out));
        std::thread::spawn(move || forward(err, tx_err, Line::Err));
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => on_line(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if interrupt.is_set() {
                stop_group(&mut child);
                return Err(CargoError::Interrupted);
            }
        }
        child.wait().map_err(|source| CargoError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        })
    }
}

fn forward(stream: impl std::io::Read, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if tx.send(wrap(line)).is_err() {
            break;
        }
    }
}

/// Stops cargo and every compiler it started (they share its process group), then reaps it.
fn stop_group(child: &mut Child) {
    let group = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals the process group we created for cargo.
    unsafe {
        libc::kill(-group, libc::SIGTERM);
    }
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; cargo ignored SIGTERM for five seconds.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = child.wait();
}

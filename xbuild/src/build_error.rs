//! Why a build failed: one error type for every step, with its help, notes and exit code
//! as data (rendered by [`crate::error`]). Apart from the steps, so each can name it without
//! depending on the others.

use std::path::PathBuf;

use crate::cargo::CargoError;
use crate::error::Diagnostic;
use crate::error::UsageError;
use crate::resolve::ResolveError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Resolve(Box<ResolveError>),
    #[error(transparent)]
    Cargo(#[from] CargoError),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{culprit} failed to compile (cargo's diagnostics are above)")]
    Compile { culprit: String },
    #[error("the host at `{}` is not static: it needs {}", .path.display(), .found.join(", "))]
    NotStatic { path: PathBuf, found: Vec<String> },
    #[error("the new host cannot start, so `{}` was left as it was; it said:\n{}", .output.display(), quoted(.report))]
    CannotStart { output: PathBuf, report: String },
    #[error("the new host failed its selftest, so `{}` was left as it was; it said:\n{}", .output.display(), quoted(.report))]
    Selftest { output: PathBuf, report: String },
    /// Not enough free space where the build would write.
    #[error(
        "not enough free space for {what}: `{}` has {} free, and {what} needs about {}",
        .dir.display(),
        crate::cache::human_size(*.free),
        crate::cache::human_size(*.needed)
    )]
    NoSpace {
        dir: PathBuf,
        free: u64,
        needed: u64,
        what: &'static str,
    },
    /// `source` stopped a set of builds after some outputs were installed; `state` says
    /// what was done about them.
    #[error("{source}")]
    Undone {
        source: Box<BuildError>,
        state: String,
    },
    /// The host is larger than `--max-size` / `max_size` allows.
    #[error(
        "the new host is {} ({size} bytes), over the limit of {} ({max} bytes), so `{}` was left as it was; the largest contributors: {}",
        crate::cache::human_size(*.size),
        crate::cache::human_size(*.max),
        .output.display(),
        .largest.iter().map(|(name, bytes)| format!("{name} {}", crate::cache::human_size(*bytes))).collect::<Vec<_>>().join(", ")
    )]
    TooLarge {
        output: PathBuf,
        size: u64,
        max: u64,
        largest: Vec<(String, u64)>,
    },
    /// Moving the new files into place failed; `state` says what the output holds now.
    #[error("cannot install `{}`: {failed}", .output.display())]
    Install {
        output: PathBuf,
        failed: String,
        state: String,
    },
}

impl From<Box<ResolveError>> for BuildError {
    fn from(err: Box<ResolveError>) -> Self {
        BuildError::Resolve(err)
    }
}

impl From<ResolveError> for BuildError {
    fn from(err: ResolveError) -> Self {
        BuildError::Resolve(Box::new(err))
    }
}

impl Diagnostic for BuildError {
    fn help(&self) -> Vec<String> {
        match self {
            BuildError::Usage(e) => e.help(),
            BuildError::Resolve(e) => e.help(),
            BuildError::Cargo(e) => e.help(),
            BuildError::Io { source, .. } => match source.raw_os_error() {
                Some(libc::EFBIG) => vec![
                    "a file size limit stopped the write (`ulimit -f`): raise it for this shell, then build again".into(),
                ],
                Some(libc::ENOSPC) => vec![
                    "the disk is full: free space, e.g. with `xbuild clean` or a lower XBUILD_CACHE_MAX".into(),
                ],
                _ => Vec::new(),
            },
            BuildError::Compile { .. } => vec![
                "fix what cargo reported above, then build again: what already compiled is kept in the xbuild cache".into(),
            ],
            BuildError::NotStatic { .. } => vec![
                "a -sys crate may force dynamic linking; build with --no-static to accept that"
                    .into(),
            ],
            // Every command of such a host fails the same way: no flag may install it.
            BuildError::CannotStart { .. } => vec![
                "fix or leave out the module crates named above: module IDs must be unique and valid"
                    .into(),
            ],
            BuildError::Selftest { .. } => vec![
                "fix the modules named above, or pass --skip-selftest to install it anyway".into(),
            ],
            BuildError::Install { .. } => vec![
                "make the output's files and folder writable (and free space), then build again: the build is cached".into(),
            ],
            BuildError::Undone { source, .. } => source.help(),
            BuildError::TooLarge { .. } => vec![
                "leave out or replace the largest crates (`xbuild build -v` lists what each adds), or raise --max-size (`max-size` in a spec)".into(),
            ],
            BuildError::NoSpace { .. } => vec![
                "make room: `xbuild clean` removes the hosts the cache keeps (compiled dependencies stay), `xbuild clean --all` everything; a lower XBUILD_CACHE_MAX keeps it smaller, XBUILD_CACHE_DIR moves it to a larger disk".into(),
            ],
        }
    }

    fn notes(&self) -> Vec<String> {
        match self {
            BuildError::Usage(e) => e.notes(),
            BuildError::Install { state, .. } => vec![state.clone()],
            BuildError::Undone { source, state } => {
                let mut notes = source.notes();
                notes.push(state.clone());
                notes
            }
            _ => Vec::new(),
        }
    }

    /// 2 for bad input (flags, specs, crates that do not exist or are not modules), 130
    /// when interrupted, 1 otherwise.
    fn exit_code(&self) -> i32 {
        match self {
            BuildError::Undone { source, .. } => source.exit_code(),
            BuildError::Usage(_) | BuildError::Resolve(_) => 2,
            BuildError::Cargo(CargoError::Interrupted) => 130,
            _ => 1,
        }
    }
}

pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// What the new host printed, indented under xbuild's own message so its `error:` and
/// `help:` lines read as the host's.
fn quoted(report: &str) -> String {
    report
        .lines()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

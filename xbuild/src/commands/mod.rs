//! One file per command: its arguments (clap) and a thin body that turns them into a plain
//! request for an operation ([`crate::project`], [`crate::verify`], [`crate::scaffold`],
//! ...), runs it, and says how it went. What the commands share is here.

pub mod build;
pub mod clean;
pub mod init;
pub mod known;
pub mod lint;
pub mod matrix;
pub mod new;
pub mod run;
pub mod update;
pub mod verify;

use crate::builder::{BuildError, Options};
use crate::cli::{ColorChoice, MessageFormat};
use crate::error::{Diagnostic, Report, UsageError};
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};

/// Runs `f` with SIGINT and SIGTERM turned into a clean stop of the cargo it runs.
fn with_interrupt<T>(
    f: impl FnOnce(&crate::cargo::Interrupt) -> Result<T, BuildError>,
) -> Result<T, BuildError> {
    let interrupt = crate::cargo::Interrupt::install().map_err(|e| BuildError::Io {
        what: "install signal handlers".into(),
        source: e,
    })?;
    f(&interrupt)
}

fn reporter_for(
    format: MessageFormat,
    quiet: bool,
    verbose: bool,
    color: bool,
) -> Box<dyn Reporter> {
    match format {
        MessageFormat::Json => Box::new(JsonReporter),
        MessageFormat::Human => Box::new(HumanReporter::new(quiet, verbose, color)),
    }
}

/// Shows `err` on stderr (and as an event, when there is a reporter); returns the exit code
/// it carries.
fn fail(
    err: &dyn Diagnostic,
    reporter: Option<&mut dyn Reporter>,
    color: Option<ColorChoice>,
) -> i32 {
    let color = crate::events::use_color(color, std::io::stderr());
    let report = Report::new(err);
    let code = report.exit_code;
    eprint!("{}", report.render(color));
    if let Some(reporter) = reporter {
        reporter.report(Event::Error { report });
    }
    code
}

/// Build settings from the environment; `reuse_hosts` as [`Options`] says.
fn options(reuse_hosts: bool) -> Result<Options, UsageError> {
    Ok(Options {
        cache_max: cache_max()?,
        reuse_hosts,
    })
}

/// `XBUILD_CACHE_MAX`, or the default cap.
fn cache_max() -> Result<u64, UsageError> {
    match std::env::var("XBUILD_CACHE_MAX") {
        Err(_) => Ok(crate::cache::DEFAULT_MAX_BYTES),
        Ok(text) => crate::cache::parse_size(&text).map_err(|why| {
            UsageError::new(format!("invalid XBUILD_CACHE_MAX: {why}"))
                .help("give a size such as `2GiB`, `500MB` or a number of bytes")
        }),
    }
}

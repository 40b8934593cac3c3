//! # xbuild
//!
//! Composes one host binary from xbuild module crates at build time. Layers, each small:
//! [`cli`] (argument definitions) → [`plan`] (validated inputs as plain data, via [`spec`])
//! → [`builder`] (the steps: [`workspace`] generation, [`resolve`] checks, [`cargo`] runs,
//! [`elf`] static check, [`install`] with its [`manifest`]) reporting [`events`] to a
//! reporter. [`cache`] keeps compiled dependencies and built hosts, [`embedded`] carries
//! xbuild's own crates, and every failure is an [`error`] with help as data.

pub mod builder;
pub mod cache;
pub mod cargo;
pub mod cli;
pub mod elf;
pub mod embedded;
pub mod error;
pub mod events;
pub mod install;
pub mod known;
pub mod manifest;
pub mod plan;
pub mod resolve;
pub mod spec;
pub mod workspace;

use clap::Parser;

use crate::cli::{Cli, Command, MessageFormat};
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};

/// This xbuild's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the xbuild CLI on the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            if let Some(usage) = cargo_habit(&err) {
                let color = events::use_color(None, std::io::stderr());
                eprint!("{}", error::Report::new(&usage, 2).render(color));
                return 2;
            }
            let _ = err.print();
            return err.exit_code();
        }
    };
    let args = match cli.command {
        Some(Command::Build(args)) => *args,
        Some(Command::ListKnown { json }) => {
            print!("{}", known::render(json));
            return 0;
        }
        Some(Command::Clean { all }) => return clean(all),
        None => cli.build,
    };
    let color = events::use_color(args.color, std::io::stderr());
    let mut reporter: Box<dyn Reporter> = match args.message_format {
        MessageFormat::Json => Box::new(JsonReporter),
        MessageFormat::Human => Box::new(HumanReporter::new(args.quiet, args.verbose, color)),
    };
    let result = cargo::Interrupt::install()
        .map_err(|e| builder::BuildError::Io {
            what: "install signal handlers".into(),
            source: e,
        })
        .and_then(|interrupt| {
            let options = builder::Options {
                cache_max: cache_max()?,
            };
            let plan = plan::BuildPlan::from_args(&args)?;
            builder::build(
                &plan,
                &cache::Cache::from_env(),
                &options,
                reporter.as_mut(),
                &interrupt,
            )
        });
    match result {
        Ok(_) => 0,
        Err(err) => {
            let report = error::Report::new(&err, err.exit_code());
            eprint!("{}", report.render(color));
            let code = report.exit_code;
            reporter.report(Event::Error { report });
            code
        }
    }
}

/// Flags cargo has and xbuild does not, answered with what to use instead (clap's own
/// suggestion is by spelling: `--release` would get `--replace`).
fn cargo_habit(err: &clap::Error) -> Option<error::UsageError> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let flag = match err.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(flag)) => flag.split('=').next()?.to_owned(),
        _ => return None,
    };
    let help = match flag.as_str() {
        "--release" | "-r" => {
            "release is the default profile; use `--profile dev` for a dev (debug) build"
        }
        "--debug" => "use `--profile dev` for a dev (debug) build; release is the default",
        "--bin" | "--package" | "-p" => {
            "xbuild builds one host; name module crates with `--with CRATE`"
        }
        "--path" => "give a local module crate as `--with CRATE=PATH`",
        _ => return None,
    };
    Some(error::UsageError::new(format!("unexpected argument `{flag}`")).help(help))
}

/// `XBUILD_CACHE_MAX`, or the default cap.
fn cache_max() -> Result<u64, plan::UsageError> {
    match std::env::var("XBUILD_CACHE_MAX") {
        Err(_) => Ok(cache::DEFAULT_MAX_BYTES),
        Ok(text) => cache::parse_size(&text).map_err(|why| {
            plan::UsageError::new(format!("invalid XBUILD_CACHE_MAX: {why}"))
                .help("give a size such as `2GiB`, `500MB` or a number of bytes")
        }),
    }
}

/// `xbuild clean [--all]`.
fn clean(all: bool) -> i32 {
    let cache = cache::Cache::from_env();
    let _lock = match cache.lock(|| {
        eprintln!(
            "{:>12} for the lock on the xbuild cache `{}`",
            "Blocking",
            cache.root().display()
        )
    }) {
        Ok(lock) => lock,
        Err(err) => {
            let failure = builder::BuildError::Io {
                what: format!("lock the xbuild cache `{}`", cache.root().display()),
                source: err,
            };
            let color = events::use_color(None, std::io::stderr());
            eprint!("{}", error::Report::new(&failure, 1).render(color));
            return 1;
        }
    };
    let removed = cache.clean(all);
    eprintln!(
        "{:>12} {} files, {} total",
        "Removed",
        removed.files,
        cache::human_size(removed.bytes)
    );
    0
}

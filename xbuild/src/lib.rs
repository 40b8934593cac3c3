//! # xbuild
//!
//! Composes one host binary from xbuild module crates at build time. Layers, each small:
//! [`cli`] (the command line) and [`commands`] (one file per command: its arguments and a
//! thin body that makes a plain request for an operation) → [`specfile`] (the spec value: a spec file's
//! distributions, or the flags as one) → [`plan`] (one build as plain data, checked; names
//! via [`spec`]) → [`builder`] (the steps: [`workspace`] generation, [`resolve`] checks,
//! [`cargo`] runs, the [`sbom`], [`elf`] static check, [`install`] with its [`manifest`])
//! reporting [`events`] to a reporter. [`project`] runs the builds a command asks for and
//! keeps the [`lockfile`]; [`verify`] checks a host against its manifest using what the
//! host carries ([`hostinfo`]). [`cache`] keeps compiled dependencies and built hosts,
//! [`embedded`] carries xbuild's own crates, and every failure is an [`error`] with help as
//! data.

pub mod build_error;
pub mod builder;
pub mod cache;
pub mod cargo;
pub mod cli;
pub mod commands;
pub mod elf;
pub mod embedded;
pub mod error;
pub mod events;
pub mod hostinfo;
pub mod install;
pub mod known;
pub mod lint;
pub mod lockfile;
pub mod manifest;
pub mod plan;
pub mod project;
pub mod resolve;
pub mod sbom;
pub mod scaffold;
pub mod sizes;
pub mod space;
pub mod spec;
pub mod specfile;
pub mod verify;
pub mod workspace;

use clap::Parser;

use crate::cli::{Cli, Command};

/// This xbuild's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the xbuild CLI on the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            if let Some(usage) = cargo_habit(&err, subcommand_given().as_deref()) {
                let color = events::use_color(None, std::io::stderr());
                eprint!("{}", error::Report::new(&usage).render(color));
                return 2;
            }
            let _ = err.print();
            return err.exit_code();
        }
    };
    match cli.command {
        None => commands::build::exec(&cli.build),
        Some(Command::Build(args)) => commands::build::exec(&args),
        Some(Command::ListKnown(args)) => commands::known::list(&args),
        Some(Command::Search(args)) => commands::known::search(&args),
        Some(Command::Init(args)) => commands::init::exec(&args),
        Some(Command::New(args)) => commands::new::exec(&args),
        Some(Command::Run(args)) => commands::run::exec(&args),
        Some(Command::Lint(args)) => commands::lint::exec(&args),
        Some(Command::Update(args)) => commands::update::exec(&args),
        Some(Command::Verify(args)) => commands::verify::exec(&args),
        Some(Command::Matrix(args)) => commands::matrix::exec(&args),
        Some(Command::Clean(args)) => commands::clean::exec(&args),
    }
}

/// The subcommand named on the command line, if any, as clap reads it past the error.
fn subcommand_given() -> Option<String> {
    <Cli as clap::CommandFactory>::command()
        .ignore_errors(true)
        .try_get_matches()
        .ok()?
        .subcommand_name()
        .map(str::to_owned)
}

/// Flags cargo has and xbuild does not, answered with what to use instead (clap's own
/// suggestion is by spelling: `--release` would get `--replace`). `subcommand` is the one
/// given: the answers are for building, and `lint` takes its crate's path as an argument.
fn cargo_habit(err: &clap::Error, subcommand: Option<&str>) -> Option<error::UsageError> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let flag = match err.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(flag)) => flag.split('=').next()?.to_owned(),
        _ => return None,
    };
    let help = match (subcommand, flag.as_str()) {
        (Some("lint"), "--path" | "--manifest-path") => {
            "give the crate's directory as an argument: `xbuild lint DIR`"
        }
        (None | Some("build"), flag) => build_habit(flag)?,
        _ => return None,
    };
    Some(error::UsageError::new(format!("unexpected argument `{flag}`")).help(help))
}

/// [`cargo_habit`]'s answers for a build.
fn build_habit(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "--release" | "-r" => {
            "release is the default profile; use `--profile dev` for a dev (debug) build"
        }
        "--debug" => "use `--profile dev` for a dev (debug) build; release is the default",
        "--bin" | "--package" | "-p" => {
            "xbuild builds one host; name module crates with `--with CRATE`"
        }
        "--path" => "give a local module crate as `--with CRATE=PATH`",
        _ => return None,
    })
}

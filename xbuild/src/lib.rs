//! # xbuild
//!
//! Composes one host binary from xbuild module crates at build time. Layers, each small:
//! [`cli`] (argument definitions) → [`plan`] (validated inputs as plain data, via [`spec`])
//! → [`builder`] (the steps: [`workspace`] generation, [`resolve`] checks, [`cargo`] runs,
//! [`elf`] static check, [`manifest`]) reporting [`events`] to a reporter.

pub mod builder;
pub mod cargo;
pub mod cli;
pub mod elf;
pub mod events;
pub mod known;
pub mod manifest;
pub mod plan;
pub mod resolve;
pub mod spec;
pub mod workspace;

use clap::Parser;

use crate::cli::{Cli, Command, MessageFormat};
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};

/// Runs the xbuild CLI on the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
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
        None => cli.build,
    };
    let mut reporter: Box<dyn Reporter> = match args.message_format {
        MessageFormat::Json => Box::new(JsonReporter),
        MessageFormat::Human => Box::new(HumanReporter::new(args.quiet, args.verbose)),
    };
    let result = cargo::Interrupt::install()
        .map_err(|e| builder::BuildError::Io {
            what: "install signal handlers".into(),
            source: e,
        })
        .and_then(|interrupt| {
            let plan = plan::BuildPlan::from_args(&args)?;
            builder::build(&plan, reporter.as_mut(), &interrupt)
        });
    match result {
        Ok(_) => 0,
        Err(err) => {
            let message = xbuild_core::host::error_chain(&err);
            let code = err.exit_code();
            reporter.report(Event::Error {
                message: message.clone(),
                exit_code: code,
            });
            eprintln!("error: {message}");
            code
        }
    }
}

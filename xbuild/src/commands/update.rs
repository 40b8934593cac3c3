//! `xbuild update [CRATE...]`: resolves a spec's distributions again and rewrites the lock.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{ColorChoice, MessageFormat};
use crate::project::UpdateRequest;

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Crates to update (with what they need); all when none is named.
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// The spec file (default: ./xbuild.toml).
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Only these distributions. Repeatable.
    #[arg(long = "dist", value_name = "NAME")]
    pub dist: Vec<String>,
    /// The lock file (default: xbuild.lock beside the spec).
    #[arg(long, value_name = "PATH")]
    pub lockfile: Option<PathBuf>,
    /// Do not touch the network (passed to cargo).
    #[arg(long)]
    pub offline: bool,
    /// `json`: one JSON event per line on stdout, for CI.
    #[arg(long, value_enum, default_value = "human")]
    pub message_format: MessageFormat,
    /// Colour (default: auto).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

pub fn exec(args: &UpdateArgs) -> i32 {
    let color = crate::events::use_color(args.color, std::io::stderr());
    let mut reporter = super::reporter_for(args.message_format, false, false, color);
    let request = UpdateRequest {
        file: args.file.clone(),
        dists: args.dist.clone(),
        lockfile: args.lockfile.clone(),
        crates: args.crates.clone(),
        offline: args.offline,
    };
    let result = super::with_interrupt(|interrupt| {
        crate::project::update(
            &request,
            &crate::cache::Cache::from_env()?,
            reporter.as_mut(),
            interrupt,
        )
    });
    match result {
        Ok(()) => 0,
        Err(err) => super::fail(&err, Some(reporter.as_mut()), args.color),
    }
}

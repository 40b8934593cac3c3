//! Argument definitions of the host CLI, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    about = "A host built with xbuild: its modules were linked in at build time",
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision and start the apps of a config, and run until SIGINT or SIGTERM (SIGHUP
    /// reloads the config file).
    Run(RunArgs),
    /// Hand a new config to the host running on this machine, through its admin socket; the
    /// running config stays if the new one fails.
    Reload(ReloadArgs),
    /// Provision and validate a config without starting anything.
    Validate(ConfigArg),
    /// List every registered module ID.
    ListModules(ListArgs),
    /// Show how this host was built.
    BuildInfo(JsonArg),
    /// Check that every expected module crate registered modules, and instantiate every
    /// module that works with an empty config.
    Selftest(JsonArg),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Config file, TOML or JSON by extension.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// How long apps get to stop after a signal before the host gives up on them: seconds,
    /// or a duration such as `30s` or `2m`.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = positive_seconds)]
    pub stop_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Reload even if the running host already runs this config (to re-read files it names).
    #[arg(long)]
    pub force: bool,
    /// The running host's admin socket, if not the one the config file names (the host logs
    /// it at start).
    #[arg(long, value_name = "SOCKET")]
    pub address: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show the crate and version that registered each module.
    #[arg(long)]
    pub versions: bool,
    /// One JSON document, for tools.
    #[arg(long)]
    pub json: bool,
    /// Leave out the standard modules shipped with xbuild.
    #[arg(long)]
    pub skip_standard: bool,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// One JSON document, for tools.
    #[arg(long)]
    pub json: bool,
}

/// Seconds (`10`, `0.5`) or a duration with units (`30s`, `2m`), as in configs; above 0.
fn positive_seconds(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_seconds(text)
        .ok()
        .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!("`{text}` is not a positive duration: give seconds (10, 0.5) or a duration such as `30s` or `2m`")
        })
}

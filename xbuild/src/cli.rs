//! The xbuild command line: the top-level parser and the list of commands; each command's
//! own arguments and body are in [`crate::commands`].

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands;
pub use crate::commands::build::BuildArgs;
pub use crate::commands::run::RunArgs;
pub use crate::commands::update::UpdateArgs;
pub use crate::commands::verify::VerifyArgs;

#[derive(Debug, Parser)]
#[command(
    name = "xbuild",
    version,
    long_version = LONG_VERSION,
    about = "Compose one static host binary from xbuild module crates, at build time",
    long_about = "Compose one static host binary from xbuild module crates, at build time.\n\n\
        `xbuild --with CRATE@1.2 --with other=../path` generates a temporary cargo workspace \
        whose main.rs names every module crate, compiles it and writes the host binary and \
        a manifest beside it. `build` is the default subcommand.",
    args_conflicts_with_subcommands = true,
    after_help = "Environment:\n  XBUILD_CACHE_DIR  the cache: compiled dependencies, xbuild's own crates, built hosts (default: $XDG_CACHE_HOME/xbuild or ~/.cache/xbuild)\n  XBUILD_CACHE_MAX  cap on the cache's size, least recently used hosts pruned first (default: 2GiB)\n  XBUILD_CORE_PATH  same as --core-path\n  CARGO             the cargo to run (default: cargo)\n  NO_COLOR, CARGO_TERM_COLOR  colour, when --color is not given"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a host (the default).
    Build(Box<BuildArgs>),
    /// List the curated index of known module crates.
    ListKnown(commands::known::ListKnownArgs),
    /// Search the curated index of module crates by name, module ID or description.
    Search(commands::known::SearchArgs),
    /// Write a commented spec file (xbuild.toml) to start from.
    Init(commands::init::InitArgs),
    /// Create a module crate ready to test and publish: one module and one host command
    /// (or, with `--template handler`, an HTTP handler), tests, README and CI workflow.
    New(commands::new::NewArgs),
    /// Inside a module crate: build a host with it (and `--with` extras) in the xbuild cache
    /// and run it with the arguments after `--`. Rebuilds are incremental.
    Run(RunArgs),
    /// Check a module crate as a curated index would before listing it: IDs in its
    /// namespace, registers something, a compatible xbuild-core, unwinding, docs.
    Lint(commands::lint::LintArgs),
    /// Resolve the spec's distributions again and rewrite the lock, as `cargo update`: all
    /// crates, or only the ones named (and what they need).
    Update(UpdateArgs),
    /// Check a host against its manifest: sha256, build ID, modules, static linking.
    Verify(VerifyArgs),
    /// Print the spec's distribution × target pairs as a CI job matrix (one JSON line).
    ///
    /// `{"include":[{"dist","target","output"}]}`, for GitHub Actions' `fromJSON`: each
    /// distribution with each of its `targets` and the path its host is written to. A
    /// distribution without `targets` is built for this machine's target.
    Matrix(commands::matrix::MatrixArgs),
    /// Remove the hosts kept in the xbuild cache (XBUILD_CACHE_DIR); compiled dependencies
    /// stay, so the next build is still quick.
    Clean(commands::clean::CleanArgs),
}

/// `xbuild --version`: the version, and where xbuild's own crates come from.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\n",
    env!("XBUILD_CRATES_SOURCE")
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    Human,
    Json,
}

/// Whether `args` (program name first) is a command line xbuild accepts: for tools and
/// tests that check scripts calling xbuild (e.g. the CI example) without running it.
pub fn check_args(args: &[&str]) -> Result<(), String> {
    Cli::try_parse_from(args)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

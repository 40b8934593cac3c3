//! Argument definitions of the xbuild CLI, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    ListKnown {
        /// One JSON document, for tools.
        #[arg(long)]
        json: bool,
    },
    /// Remove the hosts kept in the xbuild cache (XBUILD_CACHE_DIR); compiled dependencies
    /// stay, so the next build is still quick.
    Clean {
        /// Remove everything in the cache: compiled dependencies and unpacked crates too.
        #[arg(long)]
        all: bool,
    },
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

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// A module crate: `crate[@version-req][=replacement]`; the replacement is a path or
    /// `other-crate@version`. Repeatable.
    #[arg(long = "with", value_name = "SPEC")]
    pub with: Vec<String>,

    /// Patch a dependency without adding it as a module: `crate=path` or
    /// `crate=other-crate@version`. Repeatable.
    #[arg(long = "replace", value_name = "SPEC")]
    pub replace: Vec<String>,

    /// Enable a feature of a module crate: `crate/feature`. Repeatable.
    #[arg(long = "features", value_name = "CRATE/FEATURE", value_delimiter = ',')]
    pub features: Vec<String>,

    /// Where to write the host binary; the manifest goes beside it as `PATH.manifest.json`.
    #[arg(long, short, value_name = "PATH", default_value = "./host")]
    pub output: PathBuf,

    /// Cargo alternative registry (from cargo's config) to take the `--with` crates from.
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,

    /// Target triple (default: this machine's).
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Cargo profile: `release` or `dev`.
    #[arg(long, value_name = "NAME", default_value = "release")]
    pub profile: String,

    /// Build with exactly the dependency versions of the previous build: reuse the lock
    /// file written beside the output (`PATH.lock`) and let cargo change nothing.
    #[arg(long)]
    pub locked: bool,

    /// Do not touch the network (passed to cargo).
    #[arg(long)]
    pub offline: bool,

    /// Leave the generated workspace in place and print where it is.
    #[arg(long)]
    pub keep_workdir: bool,

    /// Do not run `OUTPUT selftest` after building (e.g. when cross-compiling).
    #[arg(long)]
    pub skip_selftest: bool,

    /// Leave out the standard modules (the HTTP app and its handlers).
    #[arg(long)]
    pub no_standard: bool,

    /// Link dynamically; by default Linux hosts are static (`+crt-static`).
    #[arg(long)]
    pub no_static: bool,

    /// Directory of the xbuild-core crate to build against (default: the source tree this
    /// xbuild was built from).
    #[arg(long, value_name = "DIR", env = "XBUILD_CORE_PATH")]
    pub core_path: Option<PathBuf>,

    /// Print only errors.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also print cargo's own output.
    #[arg(long, short)]
    pub verbose: bool,

    /// `json`: one JSON event per line on stdout, for CI.
    #[arg(long, value_enum, default_value = "human")]
    pub message_format: MessageFormat,

    /// Colour in xbuild's and rustc's messages (default: auto, which is never for pipes and
    /// files, or what NO_COLOR and CARGO_TERM_COLOR say).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

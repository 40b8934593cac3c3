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
    /// Search the curated index of module crates by name, module ID or description.
    Search {
        /// Words that must all appear (case-insensitive).
        #[arg(required = true, value_name = "WORD")]
        words: Vec<String>,
        /// One JSON array, for tools.
        #[arg(long)]
        json: bool,
    },
    /// Write a commented spec file (xbuild.toml) to start from.
    Init {
        /// Where to write it.
        #[arg(default_value = "xbuild.toml", value_name = "PATH")]
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Create a module crate ready to test and publish: one module and one host command
    /// (or, with `--template handler`, an HTTP handler), tests, README and CI workflow.
    New {
        /// The crate's name.
        name: String,
        /// The namespace of its module IDs (default: the name, with `_` for `-`).
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// What the crate holds: `module` (one module and one host command) or `handler`
        /// (an HTTP handler for xbuild-http's server).
        #[arg(long, value_enum, default_value_t)]
        template: crate::scaffold::Template,
        /// The directory to create it in (default: the current one).
        #[arg(long, value_name = "DIR", default_value = ".")]
        path: PathBuf,
    },
    /// Inside a module crate: build a host with it (and `--with` extras) in the xbuild cache
    /// and run it with the arguments after `--`. Rebuilds are incremental.
    Run(RunArgs),
    /// Check a module crate as a curated index would before listing it: IDs in its
    /// namespace, registers something, a compatible xbuild-core, unwinding, docs.
    Lint {
        /// The module crate (default: the one around the current directory).
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
    /// Resolve the spec's distributions again and rewrite the lock, as `cargo update`: all
    /// crates, or only the ones named (and what they need).
    Update(UpdateArgs),
    /// Check a host against its manifest: sha256, build ID, modules, static linking.
    Verify(VerifyArgs),
    /// Print the spec's distribution × target pairs and each one's output path as one
    /// JSON line, `{"include":[{"dist","target","output"}]}`: a CI job matrix (GitHub
    /// Actions' `fromJSON`). A distribution without `targets` is built for this machine's.
    Matrix {
        /// The spec file (default: ./xbuild.toml).
        #[arg(long = "file", short = 'f', value_name = "PATH")]
        file: Option<PathBuf>,
        /// Only these distributions. Repeatable.
        #[arg(long = "dist", value_name = "NAME")]
        dist: Vec<String>,
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

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Another module crate to build in (`[registry:]crate[@req][=replacement]`). Repeatable.
    #[arg(long = "with", value_name = "SPEC")]
    pub with: Vec<String>,
    /// Leave out the standard modules.
    #[arg(long)]
    pub no_standard: bool,
    /// Build with the release profile (default: dev, for quick rebuilds).
    #[arg(long)]
    pub release: bool,
    /// Cargo alternative registry for the `--with` crates.
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// The module crate (default: the one around the current directory).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Also print cargo's own output.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print no progress while building (the host's own output is unchanged).
    #[arg(long, short)]
    pub quiet: bool,
    /// Arguments for the host (after `--`), e.g. `-- run --config site.toml`.
    #[arg(last = true, value_name = "HOST-ARGS")]
    pub host_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The host binary; its manifest is `HOST.manifest.json` beside it.
    #[arg(value_name = "HOST")]
    pub host: PathBuf,
    /// Also rebuild it from the build information and lock it carries, in a temporary
    /// directory, and compare the bytes.
    #[arg(long)]
    pub rebuild: bool,
    /// The manifest to check against (default: beside the host).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// One JSON document, for tools.
    #[arg(long)]
    pub json: bool,
    /// Do not touch the network when rebuilding (passed to cargo).
    #[arg(long)]
    pub offline: bool,
}

/// The flags that describe what one host contains; a spec file (`-f`) says all of that
/// itself, so they cannot be combined with it. (`--target` picks among a spec's targets,
/// `--sbom` and `--skip-selftest` apply to every distribution.)
const DIST_FLAGS: [&str; 9] = [
    "with",
    "replace",
    "features",
    "output",
    "registry",
    "profile",
    "no_standard",
    "no_static",
    "core_path",
];

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Build the distributions of a spec file (e.g. xbuild.toml) instead of one host
    /// described by flags; the lock goes beside it as xbuild.lock.
    #[arg(long = "file", short = 'f', value_name = "PATH", conflicts_with_all = DIST_FLAGS, conflicts_with = "from")]
    pub file: Option<PathBuf>,

    /// With -f: build only this distribution. Repeatable.
    #[arg(long = "dist", value_name = "NAME", requires = "file")]
    pub dist: Vec<String>,

    /// Start from an existing host: its module set, versions and settings, read from the
    /// binary; `--with` adds or changes modules, `--without` drops them.
    #[arg(long, value_name = "HOST")]
    pub from: Option<PathBuf>,

    /// With --from: leave this module crate out. Repeatable.
    #[arg(long, value_name = "CRATE", requires = "from")]
    pub without: Vec<String>,

    /// With --from: resolve every crate afresh instead of keeping the host's versions.
    #[arg(long, requires = "from")]
    pub upgrade: bool,

    /// A module crate: `[registry:]crate[@version-req][=replacement]`; the replacement is a
    /// path or `other-crate@version`; `registry:` takes this crate from that registry
    /// (`crates-io:` for crates.io) whatever `--registry` says. Repeatable.
    #[arg(long = "with", value_name = "SPEC")]
    pub with: Vec<String>,

    /// Patch a dependency without adding it as a module: `crate=path` or
    /// `crate=other-crate@version`. Repeatable.
    #[arg(long = "replace", value_name = "SPEC")]
    pub replace: Vec<String>,

    /// Enable a feature of a module crate: `crate/feature`. Repeatable.
    #[arg(long = "features", value_name = "CRATE/FEATURE", value_delimiter = ',')]
    pub features: Vec<String>,

    /// Where to write the host binary (default: ./host); the manifest goes beside it as
    /// `PATH.manifest.json`.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Cargo alternative registry (from cargo's config) to take the `--with` crates from,
    /// unless one names its own (`--with corp:crate@1`).
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,

    /// Target triple (default: this machine's). With -f: build only this one of each
    /// distribution's targets.
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Cargo profile: `release` (the default) or `dev`.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Build with exactly the resolution in the lock file and let nothing change: fails
    /// (exit 2) if the spec or the resolution would, naming what.
    #[arg(long)]
    pub locked: bool,

    /// The lock file (default: xbuild.lock beside the spec file; `OUTPUT.lock` for a build
    /// from flags).
    #[arg(long, value_name = "PATH")]
    pub lockfile: Option<PathBuf>,

    /// Also write a CycloneDX SBOM beside the output (`OUTPUT.cdx.json`). Every host
    /// carries its crate list in its `.dep-v0` section either way.
    #[arg(long)]
    pub sbom: bool,

    /// Fail the build (exit 1, the output left as it was) if the host is larger than SIZE
    /// (`12MiB`, `500KB`, bytes), naming the crates that add the most.
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub max_size: Option<String>,

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

    /// Directory of an xbuild-core crate to build against, with the standard modules from
    /// DIR/../modules (default: the copies carried in this xbuild, or the registry's at
    /// this xbuild's version; `xbuild --version` says which).
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

/// A size flag, checked as it is parsed (kept as text: the spec file holds it so).
fn size_arg(text: &str) -> Result<String, String> {
    crate::cache::parse_size(text).map(|_| text.to_owned())
}

/// Whether `args` (program name first) is a command line xbuild accepts: for tools and
/// tests that check scripts calling xbuild (e.g. the CI example) without running it.
pub fn check_args(args: &[&str]) -> Result<(), String> {
    Cli::try_parse_from(args)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

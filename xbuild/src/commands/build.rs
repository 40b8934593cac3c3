//! `xbuild build` (the default command): one host from flags, the distributions of a spec
//! file (`-f`), or an existing host changed (`--from`).

use std::path::PathBuf;

use clap::Args;

use crate::cli::{ColorChoice, MessageFormat};
use crate::project::{BuildRequest, BuildSource};
use crate::specfile::DistFlags;

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
    #[arg(
        long,
        value_name = "DIR",
        env = "XBUILD_CORE_PATH",
        hide_env_values = true
    )]
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

/// A size flag, checked as it is parsed (kept as text: the spec file holds it so). Clap's
/// error has no `help:` line, so the message says what a size looks like.
fn size_arg(text: &str) -> Result<String, String> {
    crate::cache::parse_size(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("{e}; give a size such as `12MiB`, `500KB` or a number of bytes"))
}

impl BuildArgs {
    /// The flags that describe the host, as plain values.
    pub fn dist_flags(&self) -> DistFlags {
        DistFlags {
            with: self.with.clone(),
            without: self.without.clone(),
            replace: self.replace.clone(),
            features: self.features.clone(),
            output: self.output.clone(),
            registry: self.registry.clone(),
            target: self.target.clone(),
            profile: self.profile.clone(),
            sbom: self.sbom,
            max_size: self.max_size.clone(),
            skip_selftest: self.skip_selftest,
            no_standard: self.no_standard,
            no_static: self.no_static,
            core_path: self.core_path.clone(),
        }
    }

    /// What these flags ask [`crate::project::build`] for.
    pub fn request(&self) -> BuildRequest {
        let source = match (&self.file, &self.from) {
            (Some(file), _) => BuildSource::Spec {
                file: file.clone(),
                dists: self.dist.clone(),
                target: self.target.clone(),
                sbom: self.sbom,
                skip_selftest: self.skip_selftest,
                max_size: self.max_size.clone(),
            },
            (None, Some(host)) => BuildSource::FromHost {
                host: host.clone(),
                flags: self.dist_flags(),
                upgrade: self.upgrade,
            },
            (None, None) => BuildSource::Flags(self.dist_flags()),
        };
        BuildRequest {
            source,
            lockfile: self.lockfile.clone(),
            locked: self.locked,
            offline: self.offline,
            keep_workdir: self.keep_workdir,
        }
    }
}

pub fn exec(args: &BuildArgs) -> i32 {
    let color = crate::events::use_color(args.color, std::io::stderr());
    let mut reporter = super::reporter_for(args.message_format, args.quiet, args.verbose, color);
    let result = super::with_interrupt(|interrupt| {
        let options = super::options(true)?;
        crate::project::build(
            &args.request(),
            &crate::cache::Cache::from_env()?,
            &options,
            reporter.as_mut(),
            interrupt,
        )
    });
    match result {
        Ok(_) => 0,
        Err(err) => super::fail(&err, Some(reporter.as_mut()), args.color),
    }
}

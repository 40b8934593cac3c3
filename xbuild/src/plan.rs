//! The build as plain data. Command-line strings become a [`BuildPlan`] here, and every input
//! is checked before anything runs: names and requirements (by [`spec`](crate::spec)),
//! paths exist and hold the crate they claim, nothing is named twice. The plan is what the
//! workspace generator renders; it serialises so CI can log exactly what was built.

use std::path::{Path, PathBuf};

use semver::VersionReq;
use serde::Serialize;

use crate::spec::{ModuleSpec, Replacement};
use crate::specfile::{Distribution, check_token};

pub use crate::error::UsageError;

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// Where a dependency comes from, as it goes into the generated Cargo.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// From a registry (crates.io, or `registry` when set), at a requirement (`*` if none).
    Registry {
        req: VersionReq,
        registry: Option<String>,
    },
    /// A local crate directory (absolute); `req`, when given, must match its version.
    Path {
        path: PathBuf,
        req: Option<VersionReq>,
    },
    /// Another package, under this crate's name.
    Renamed {
        package: String,
        req: VersionReq,
        registry: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCrate {
    pub name: String,
    pub source: Source,
    pub features: Vec<String>,
}

/// Dev or release: the only profiles a generated workspace defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Dev,
    Release,
}

impl Profile {
    pub fn cargo_name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }

    /// The folder cargo puts this profile's output in.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }
}

/// Where one of xbuild's own crates (xbuild-core, the standard modules) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// The copy carried in this xbuild binary, unpacked into the cache when the build runs.
    Embedded,
    /// A crate directory (`--core-path` and the tree around it), patched in.
    Path { path: PathBuf },
    /// The embedded copy, unpacked at `path` in the cache; the generated workspace reaches
    /// it through a link inside itself (see [`crate::workspace::OWN_CRATES_DIR`]).
    Unpacked { path: PathBuf },
    /// The registry, at exactly this version (an xbuild that carries no copy).
    Registry,
}

/// One of xbuild's own crates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalCrate {
    pub name: String,
    pub version: String,
    pub origin: Origin,
}

impl LocalCrate {
    /// The crate's directory, once it is on disk.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::Path { path } | Origin::Unpacked { path } => Some(path),
            Origin::Embedded | Origin::Registry => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    /// The distribution this plan builds (for flags, the one they describe): what the host
    /// embeds so it can be rebuilt, and what the lock records.
    pub dist: Distribution,
    pub modules: Vec<PlannedCrate>,
    /// `--replace`: patched, not added.
    pub replacements: Vec<PlannedCrate>,
    pub registry: Option<String>,
    pub core: LocalCrate,
    /// xbuild's standard module crates (empty with `--no-standard`).
    pub local_crates: Vec<LocalCrate>,
    /// Whether `xbuild-standard` is a dependency of the host.
    pub standard: bool,
    pub target: String,
    pub host_triple: String,
    /// `rustc -vV`, which the build ID covers.
    pub rustc_verbose: String,
    pub profile: Profile,
    pub static_link: bool,
    /// With `--locked`: the resolution (a Cargo.lock) of the previous build, reused as is.
    #[serde(skip)]
    pub locked: Option<String>,
    /// The previous resolution, when there is one: resolution starts from it, as cargo's
    /// does from `Cargo.lock`, so a rebuild keeps the versions it had (and needs no
    /// registry lookup) unless the module set asks for others.
    #[serde(skip)]
    pub previous_lock: Option<String>,
    /// The xbuild lock file `locked` or `previous_lock` came from, to name it in errors.
    #[serde(skip)]
    pub lock_file: Option<PathBuf>,
    pub offline: bool,
    pub output: PathBuf,
    pub keep_workdir: bool,
    pub skip_selftest: bool,
    /// Also write a CycloneDX SBOM beside the output.
    pub sbom: bool,
    /// The largest host this build may install, in bytes (`--max-size`, `max_size`).
    pub max_size: Option<u64>,
}

/// How a build runs, as opposed to what it builds.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    /// Build exactly this resolution (a Cargo.lock), and let cargo change nothing.
    pub locked: Option<String>,
    /// Start resolving from this one.
    pub previous_lock: Option<String>,
    pub offline: bool,
    pub keep_workdir: bool,
}

/// What the toolchain said of itself: probed once per xbuild run, apart from planning.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The triple rustc compiles for by default.
    pub host_triple: String,
    /// `rustc -vV`, which the build ID covers.
    pub rustc_verbose: String,
}

impl Toolchain {
    /// Runs `rustc -vV`.
    pub fn probe() -> Result<Self, UsageError> {
        let (host_triple, rustc_verbose) = rustc_info()?;
        Ok(Self {
            host_triple,
            rustc_verbose,
        })
    }
}

pub use crate::spec::STANDARD_CRATE;

/// Reads `[package] name` and `version` of the crate in `dir`.
pub fn read_crate(dir: &Path) -> Result<(String, String), String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read `{}`: {e}", manifest.display()))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("`{}` is not valid TOML: {e}", manifest.display()))?;
    let package = doc.get("package").ok_or_else(|| {
        format!(
            "`{}` has no [package] section (is it a workspace root?)",
            manifest.display()
        )
    })?;
    let name = package
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("`{}` has no package name", manifest.display()))?;
    let version = package
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("0.0.0");
    Ok((name.to_owned(), version.to_owned()))
}

/// Checks that `path` (as the user gave it; `absolute` is it made absolute) is a crate
/// directory holding crate `expected`; returns its canonical path.
fn crate_dir(
    spec: &str,
    expected: &str,
    path: &Path,
    absolute: &Path,
) -> Result<PathBuf, UsageError> {
    let canonical = absolute.canonicalize().map_err(|e| {
        usage(format!(
            "`{spec}`: path `{}` does not exist or cannot be read ({e})",
            path.display()
        ))
        .help("give the directory holding the crate's Cargo.toml")
    })?;
    if !canonical.is_dir() {
        return Err(
            usage(format!("`{spec}`: `{}` is not a directory", path.display()))
                .help("give the directory holding the crate's Cargo.toml"),
        );
    }
    let (name, _) = read_crate(&canonical).map_err(|e| {
        usage(format!("`{spec}`: {e}")).help(
            "give the directory holding the crate's Cargo.toml (a crate, not a workspace root)",
        )
    })?;
    if name != expected {
        return Err(usage(format!(
            "`{spec}`: the crate at `{}` is named `{name}`, not `{expected}`",
            path.display()
        ))
        .help(format!("write `{name}={}`", path.display())));
    }
    Ok(canonical)
}

fn planned(
    spec: ModuleSpec,
    features: Vec<String>,
    registry: &Option<String>,
    base: &Path,
) -> PlannedCrate {
    let source = match spec.replacement {
        None => Source::Registry {
            req: spec.req.unwrap_or(VersionReq::STAR),
            registry: registry.clone(),
        },
        // Made absolute here; checked (and canonicalised) by `BuildPlan::check`.
        Some(Replacement::Path(path)) => Source::Path {
            path: base.join(path),
            req: spec.req,
        },
        Some(Replacement::Crate { name, req }) => Source::Renamed {
            package: name,
            req,
            registry: registry.clone(),
        },
    };
    PlannedCrate {
        name: spec.name,
        source,
        features,
    }
}

impl BuildPlan {
    /// Every alternative registry a module or replacement comes from, each once, in order.
    pub fn alt_registries(&self) -> Vec<&str> {
        let mut registries: Vec<&str> = Vec::new();
        for planned in self.modules.iter().chain(&self.replacements) {
            let registry = match &planned.source {
                Source::Registry { registry, .. } | Source::Renamed { registry, .. } => {
                    registry.as_deref()
                }
                Source::Path { .. } => None,
            };
            if let Some(registry) = registry
                && !registries.contains(&registry)
            {
                registries.push(registry);
            }
        }
        if let Some(default) = self.registry.as_deref()
            && !registries.contains(&default)
        {
            registries.push(default);
        }
        registries
    }

    /// The registry module `name` comes from, as planned (`None`: crates.io, or not a
    /// module of the plan).
    pub fn registry_of(&self, name: &str) -> Option<&str> {
        self.modules
            .iter()
            .find(|m| {
                m.name == name
                    || matches!(&m.source, Source::Renamed { package, .. } if package == name)
            })
            .and_then(|m| match &m.source {
                Source::Registry { registry, .. } | Source::Renamed { registry, .. } => {
                    registry.as_deref()
                }
                Source::Path { .. } => None,
            })
    }
}

/// The crate that hosts the module system.
pub const CORE_CRATE: &str = "xbuild-core";

/// xbuild's own crates: the core, and the standard module crates when `standard`: the
/// copies this binary carries, else the registry at xbuild's own version. (`core-path`
/// replaces them in `BuildPlan::check`, the standard modules then from `<tree>/modules/*`.)
fn own_crates(standard: bool) -> (LocalCrate, Vec<LocalCrate>) {
    let carried = crate::embedded::EMBEDDED;
    let origin = if carried.is_empty() {
        Origin::Registry
    } else {
        Origin::Embedded
    };
    let own = |name: &str| -> LocalCrate {
        let version = carried
            .iter()
            .find(|c| c.name == name)
            .map_or(env!("CARGO_PKG_VERSION"), |c| c.version);
        LocalCrate {
            name: name.to_owned(),
            version: version.to_owned(),
            origin: origin.clone(),
        }
    };
    let modules = if standard {
        ["xbuild-http", STANDARD_CRATE].map(own).to_vec()
    } else {
        Vec::new()
    };
    (own(CORE_CRATE), modules)
}

/// The crates in `dir` (`modules/*` of an xbuild source tree).
fn tree_modules(dir: &Path) -> Result<Vec<LocalCrate>, UsageError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        usage(format!("cannot read the standard modules at `{}` beside --core-path: {e}", dir.display())).help("pass --no-standard, or point --core-path at the `core` folder of a complete xbuild source tree")
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() {
            let (name, version) = read_crate(&path).map_err(usage)?;
            found.push(LocalCrate {
                name,
                version,
                origin: Origin::Path { path },
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    if !found.iter().any(|c| c.name == STANDARD_CRATE) {
        return Err(usage(format!(
            "`{STANDARD_CRATE}` is missing from `{}`",
            dir.display()
        ))
        .help("pass --no-standard"));
    }
    Ok(found)
}

fn core_crate(given: &Path, dir: &Path) -> Result<LocalCrate, UsageError> {
    let shown = given.display().to_string();
    let path = dir.canonicalize().map_err(|e| {
        usage(format!("xbuild-core not found at `{shown}` ({e})"))
            .help("pass --core-path with the directory of the xbuild-core crate")
    })?;
    let (name, version) = read_crate(&path).map_err(|e| usage(format!("--core-path: {e}")))?;
    if name != CORE_CRATE {
        return Err(usage(format!(
            "--core-path `{shown}` holds crate `{name}`, not `xbuild-core`"
        )));
    }
    Ok(LocalCrate {
        name,
        version,
        origin: Origin::Path { path },
    })
}

/// `rustc -vV`: the toolchain's version and the triple it compiles for by default.
pub fn rustc_info() -> Result<(String, String), UsageError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| {
            usage(format!("cannot run `{rustc} -vV`: {e}")).help("install Rust with rustup")
        })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| usage(format!("`{rustc} -vV` did not say the host triple")))?;
    Ok((host, text))
}

/// A cross target must be one rustc knows, with its standard library installed; otherwise
/// cargo would fail deep into the build with a message about a missing `core` crate.
fn check_target_installed(target: &str) -> Result<(), UsageError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let print = |what: &str| -> Result<String, UsageError> {
        let output = std::process::Command::new(&rustc)
            .args(["--print", what])
            .output()
            .map_err(|e| usage(format!("cannot run `{rustc} --print {what}`: {e}")))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    if !print("target-list")?.lines().any(|t| t == target) {
        return Err(usage(format!("unknown target triple `{target}`"))
            .help("`rustc --print target-list` lists the ones rustc knows"));
    }
    let sysroot = PathBuf::from(print("sysroot")?.trim());
    if !sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        return Err(usage(format!(
            "the standard library for target `{target}` is not installed"
        ))
        .help(format!("`rustup target add {target}`")));
    }
    Ok(())
}

fn output_path(path: &Path) -> Result<PathBuf, UsageError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| usage(format!("invalid --output `{}`: {e}", path.display())))?;
    if absolute.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(
            usage(format!("--output `{}` names a directory", path.display()))
                .help("give a file path, e.g. `./host`"),
        );
    }
    if absolute.is_dir() {
        return Err(usage(format!(
            "--output `{}` is an existing directory",
            path.display()
        ))
        .help(format!("give a file path, e.g. `{}/host`", path.display())));
    }
    // A directory that does not exist yet is created by the install step, as cargo
    // creates its output directories; the nearest existing one must allow that.
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let existing = parent
        .ancestors()
        .find(|dir| dir.exists())
        .unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(usage(format!(
            "the directory of --output `{}` cannot be created: `{}` is a file",
            path.display(),
            existing.display()
        ))
        .help("choose an --output whose directories are directories"));
    }
    // Found out now rather than after minutes of compiling; staged the way the install
    // step will stage the binary.
    tempfile::Builder::new()
        .prefix(".xbuild-check-")
        .tempfile_in(existing)
        .map_err(|e| {
            let what = if existing == parent {
                "the directory of --output".to_owned()
            } else {
                format!(
                    "where --output's directory `{}` is to be created",
                    parent.display()
                )
            };
            usage(format!(
                "cannot write into `{}`, {what}: {e}",
                existing.display()
            ))
            .help("choose an --output in a directory you can write to")
        })?;
    Ok(absolute)
}

impl BuildPlan {
    /// The plan for `dist` on `target` (this machine's when `None`), written to `output`,
    /// with relative paths taken from `base`. Pure: it reads no file and runs nothing;
    /// [`check`](Self::check) does that.
    pub fn from_dist(
        dist: &Distribution,
        target: Option<&str>,
        output: &Path,
        base: &Path,
        toolchain: &Toolchain,
        mode: Mode,
    ) -> Result<BuildPlan, UsageError> {
        let profile = match dist.profile.as_str() {
            "release" => Profile::Release,
            "dev" => Profile::Dev,
            other => {
                return Err(
                    usage(format!("unknown profile `{}`", other.escape_default()))
                        .help("use `release` (the default) or `dev`"),
                );
            }
        };
        let max_size = match &dist.max_size {
            None => None,
            Some(text) => Some(crate::cache::parse_size(text).map_err(|e| {
                usage(format!("max-size `{}`: {e}", text.escape_default()))
                    .help("give a size such as `12MiB`, `500KB` or a number of bytes")
            })?),
        };
        let modules = dist
            .module_specs()?
            .into_iter()
            .map(|m| planned(m.spec, m.features, &m.registry, base))
            .collect();
        let replacements = dist
            .replace_specs()?
            .into_iter()
            .map(|spec| {
                let registry = match dist.registry.as_deref() {
                    None | Some(crate::specfile::CRATES_IO) => None,
                    Some(r) => Some(r.to_owned()),
                };
                planned(spec, Vec::new(), &registry, base)
            })
            .collect();
        let target = match target {
            Some(target) => {
                check_token("target triple", target, "-_.")?;
                target.to_owned()
            }
            None => toolchain.host_triple.clone(),
        };
        let (core, local_crates) = own_crates(dist.standard);
        let core = match &dist.core_path {
            // Filled in by `check`, which reads the crate.
            Some(path) => LocalCrate {
                name: CORE_CRATE.into(),
                version: String::new(),
                origin: Origin::Path {
                    path: base.join(path),
                },
            },
            None => core,
        };
        Ok(BuildPlan {
            dist: dist.clone(),
            modules,
            replacements,
            registry: dist
                .registry
                .clone()
                .filter(|r| r != crate::specfile::CRATES_IO),
            core,
            local_crates,
            standard: dist.standard,
            static_link: dist.static_link && target.contains("-linux-"),
            host_triple: toolchain.host_triple.clone(),
            rustc_verbose: toolchain.rustc_verbose.clone(),
            profile,
            locked: mode.locked,
            previous_lock: mode.previous_lock,
            lock_file: None,
            offline: mode.offline,
            output: output.to_path_buf(),
            keep_workdir: mode.keep_workdir,
            // A host for another target cannot run here.
            skip_selftest: !dist.selftest || target != toolchain.host_triple,
            target,
            sbom: dist.sbom,
            max_size,
        })
    }

    /// The checks that look at the machine: module directories exist and hold the crates
    /// they claim (made canonical), `core-path` holds xbuild-core (and the standard modules
    /// beside it), a cross target is installed, the output's directory is writable.
    pub fn check(mut self) -> Result<BuildPlan, UsageError> {
        for (entry, module) in self.dist.modules.iter().zip(self.modules.iter_mut()) {
            if let (Some(given), Source::Path { path, .. }) = (&entry.path, &mut module.source) {
                *path = crate_dir(&entry.shown(), &entry.name, given, path)?;
            }
        }
        for (entry, module) in self.dist.replace.iter().zip(self.replacements.iter_mut()) {
            if let (Some(given), Source::Path { path, .. }) = (&entry.path, &mut module.source) {
                *path = crate_dir(&entry.shown(), &entry.name, given, path)?;
            }
        }
        if let (Some(given), Origin::Path { path }) = (&self.dist.core_path, &self.core.origin) {
            let core = core_crate(given, path)?;
            self.local_crates = if self.standard {
                let tree = core
                    .path()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new("/"))
                    .join("modules");
                tree_modules(&tree)?
            } else {
                Vec::new()
            };
            self.core = core;
        }
        if self.target != self.host_triple {
            check_target_installed(&self.target)?;
        }
        self.output = output_path(&self.output)?;
        Ok(self)
    }

    /// The distribution as the host carries it, to be rebuilt from: without the output
    /// path or the target list (the host is one target's), so where it was written does
    /// not change its bytes.
    pub fn embedded_dist(&self) -> Distribution {
        // A size limit is a rule of this build, not part of the host: changing it must
        // not change the host's bytes.
        Distribution {
            output: None,
            targets: Vec::new(),
            max_size: None,
            ..self.dist.clone()
        }
    }

    /// The distribution as the host carries it to be rebuilt from anywhere: like
    /// [`embedded_dist`](Self::embedded_dist), with its path crates at their canonical,
    /// absolute paths (which the host's bytes depend on anyway).
    pub fn rebuild_dist(&self) -> Distribution {
        let mut dist = self.embedded_dist();
        let absolute = |entries: &mut Vec<crate::specfile::ModuleEntry>,
                        planned: &[PlannedCrate]| {
            for (entry, planned) in entries.iter_mut().zip(planned) {
                if let Source::Path { path, .. } = &planned.source {
                    entry.path = Some(path.clone());
                }
            }
        };
        absolute(&mut dist.modules, &self.modules);
        absolute(&mut dist.replace, &self.replacements);
        if dist.core_path.is_some() {
            dist.core_path = self.core.path().map(Path::to_path_buf);
        }
        dist
    }

    /// The `rustc --version` line.
    pub fn rustc_version(&self) -> &str {
        self.rustc_verbose
            .lines()
            .next()
            .unwrap_or("rustc (unknown)")
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// A plan with registry modules named `names`, for unit tests of later stages.
    pub fn plan_with(names: &[&str]) -> BuildPlan {
        BuildPlan {
            dist: Distribution::named("host"),
            modules: names
                .iter()
                .map(|name| PlannedCrate {
                    name: (*name).into(),
                    source: Source::Registry {
                        req: VersionReq::STAR,
                        registry: None,
                    },
                    features: Vec::new(),
                })
                .collect(),
            replacements: Vec::new(),
            registry: None,
            core: LocalCrate {
                name: "xbuild-core".into(),
                version: "0.1.0".into(),
                origin: Origin::Path {
                    path: "/src/core".into(),
                },
            },
            local_crates: Vec::new(),
            standard: false,
            target: "x86_64-unknown-linux-gnu".into(),
            host_triple: "x86_64-unknown-linux-gnu".into(),
            rustc_verbose: "rustc 1.95.0 (59807616e 2026-04-14)\nhost: x86_64-unknown-linux-gnu\n"
                .into(),
            profile: Profile::Release,
            static_link: true,
            locked: None,
            previous_lock: None,
            lock_file: None,
            offline: false,
            output: "/tmp/host".into(),
            keep_workdir: false,
            skip_selftest: false,
            sbom: false,
            max_size: None,
        }
    }
}

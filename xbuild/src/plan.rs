//! The build as plain data. Command-line strings become a [`BuildPlan`] here, and every input
//! is checked before anything runs: names and requirements (by [`spec`](crate::spec)),
//! paths exist and hold the crate they claim, nothing is named twice. The plan is what the
//! workspace generator renders; it serialises so CI can log exactly what was built.

use std::path::{Path, PathBuf};

use semver::VersionReq;
use serde::Serialize;

use crate::cli::BuildArgs;
use crate::spec::{ModuleSpec, Replacement};

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
    /// With `--locked`: the lock file of the previous build, reused as is.
    pub locked: Option<PathBuf>,
    /// The lock file beside the output, when there is one: resolution starts from it, as
    /// cargo's does from `Cargo.lock`, so a rebuild keeps the versions it had (and needs no
    /// registry lookup) unless the module set asks for others.
    pub previous_lock: Option<PathBuf>,
    pub offline: bool,
    pub output: PathBuf,
    pub keep_workdir: bool,
    pub skip_selftest: bool,
}

/// The crate that names every standard module.
pub const STANDARD_CRATE: &str = "xbuild-standard";

fn check_token(what: &str, value: &str, extra: &str) -> Result<(), UsageError> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(())
    } else {
        Err(
            usage(format!("invalid {what} `{}`", value.escape_default()))
                .help(format!("use ASCII letters, digits and `{extra}`")),
        )
    }
}

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

fn crate_dir(spec: &str, expected: Option<&str>, path: &Path) -> Result<PathBuf, UsageError> {
    let absolute = path.canonicalize().map_err(|e| {
        usage(format!(
            "`{spec}`: path `{}` does not exist or cannot be read ({e})",
            path.display()
        ))
        .help("give the directory holding the crate's Cargo.toml")
    })?;
    if !absolute.is_dir() {
        return Err(
            usage(format!("`{spec}`: `{}` is not a directory", path.display()))
                .help("give the directory holding the crate's Cargo.toml"),
        );
    }
    let (name, _) = read_crate(&absolute).map_err(|e| usage(format!("`{spec}`: {e}")))?;
    if let Some(expected) = expected
        && name != expected
    {
        return Err(usage(format!(
            "`{spec}`: the crate at `{}` is named `{name}`, not `{expected}`",
            path.display()
        ))
        .help(format!("write `{name}={}`", path.display())));
    }
    Ok(absolute)
}

fn planned(
    spec_text: &str,
    spec: ModuleSpec,
    registry: &Option<String>,
) -> Result<PlannedCrate, UsageError> {
    let source = match spec.replacement {
        None => Source::Registry {
            req: spec.req.unwrap_or(VersionReq::STAR),
            registry: registry.clone(),
        },
        Some(Replacement::Path(path)) => Source::Path {
            path: crate_dir(spec_text, Some(&spec.name), &path)?,
            req: spec.req,
        },
        Some(Replacement::Crate { name, req }) => Source::Renamed {
            package: name,
            req,
            registry: registry.clone(),
        },
    };
    Ok(PlannedCrate {
        name: spec.name,
        source,
        features: Vec::new(),
    })
}

/// The crate that hosts the module system.
pub const CORE_CRATE: &str = "xbuild-core";

/// xbuild's own crates: the core, and the standard module crates when `standard`. From
/// `--core-path` (the standard modules then come from `<tree>/modules/*` beside it), else
/// from the copies this binary carries, else from the registry at xbuild's own version.
fn own_crates(
    core_path: Option<&Path>,
    standard: bool,
) -> Result<(LocalCrate, Vec<LocalCrate>), UsageError> {
    if let Some(dir) = core_path {
        let core = core_crate(dir)?;
        let modules = if standard {
            let tree = core
                .path()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"))
                .join("modules");
            tree_modules(&tree)?
        } else {
            Vec::new()
        };
        return Ok((core, modules));
    }
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
    Ok((own(CORE_CRATE), modules))
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

fn core_crate(dir: &Path) -> Result<LocalCrate, UsageError> {
    let shown = dir.display().to_string();
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
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(usage(format!(
            "the directory of --output `{}` does not exist",
            path.display()
        ))
        .help(format!("create `{}` first", parent.display())));
    }
    // Found out now rather than after minutes of compiling; staged the way the install
    // step will stage the binary.
    tempfile::Builder::new()
        .prefix(".xbuild-check-")
        .tempfile_in(parent)
        .map_err(|e| {
            usage(format!(
                "cannot write into `{}`, the directory of --output: {e}",
                parent.display()
            ))
            .help("choose an --output in a directory you can write to")
        })?;
    Ok(absolute)
}

/// The lock file kept beside an output: `host` → `host.lock`.
pub fn lock_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    output.with_file_name(name)
}

fn locked_from(locked: bool, output: &Path) -> Result<Option<PathBuf>, UsageError> {
    if !locked {
        return Ok(None);
    }
    let lock = lock_path(output);
    if !lock.is_file() {
        return Err(usage(format!(
            "--locked needs the lock file of a previous build at `{}`, and there is none",
            lock.display()
        ))
        .help("build once without --locked; xbuild writes it beside the output"));
    }
    Ok(Some(lock))
}

impl BuildPlan {
    /// Checks every input and resolves it to a plan; the only processes run are `rustc -vV`
    /// (to learn the host triple) — never cargo.
    pub fn from_args(args: &BuildArgs) -> Result<BuildPlan, UsageError> {
        if let Some(registry) = &args.registry {
            check_token("registry name", registry, "-_")?;
        }
        let profile = match args.profile.as_str() {
            "release" => Profile::Release,
            "dev" => Profile::Dev,
            other => {
                return Err(
                    usage(format!("unknown profile `{}`", other.escape_default()))
                        .help("use `release` (the default) or `dev`"),
                );
            }
        };
        let standard = !args.no_standard;
        let mut modules: Vec<PlannedCrate> = Vec::new();
        for text in &args.with {
            let spec = ModuleSpec::parse(text).map_err(|e| UsageError::wrap("--with", &e))?;
            if standard && spec.name == STANDARD_CRATE {
                return Err(usage(format!(
                    "--with `{text}`: the standard modules are already included"
                ))
                .help("drop it, or pass --no-standard to choose them yourself"));
            }
            if let Some(first) = modules.iter().find(|m| m.name == spec.name) {
                return Err(usage(format!(
                    "crate `{}` is given twice (`--with {text}` and an earlier `--with {}`)",
                    spec.name, first.name
                ))
                .help("keep one"));
            }
            modules.push(planned(text, spec, &args.registry)?);
        }
        let mut replacements: Vec<PlannedCrate> = Vec::new();
        for text in &args.replace {
            let spec =
                ModuleSpec::parse_replace(text).map_err(|e| UsageError::wrap("--replace", &e))?;
            if modules.iter().any(|m| m.name == spec.name) {
                return Err(usage(format!(
                    "--replace `{text}`: `{}` is also a module (`--with`)",
                    spec.name
                ))
                .help(format!("write `--with {text}` instead")));
            }
            if replacements.iter().any(|m| m.name == spec.name) {
                return Err(usage(format!("crate `{}` is replaced twice", spec.name))
                    .help("keep one --replace"));
            }
            replacements.push(planned(text, spec, &args.registry)?);
        }
        for feature in &args.features {
            let Some((krate, name)) = feature.split_once('/') else {
                return Err(usage(format!(
                    "--features `{}` does not name a crate",
                    feature.escape_default()
                ))
                .help("write `CRATE/FEATURE`"));
            };
            check_token("feature name", name, "-_+.")?;
            match modules.iter_mut().find(|m| m.name == krate) {
                Some(module) => {
                    if !module.features.iter().any(|f| f == name) {
                        module.features.push(name.to_owned());
                    }
                }
                None => {
                    return Err(usage(format!(
                        "--features `{feature}`: `{krate}` is not one of the `--with` crates"
                    ))
                    .help(format!("add `--with {krate}`, or fix the crate name")));
                }
            }
        }
        let (host_triple, rustc_verbose) = rustc_info()?;
        let target = match &args.target {
            Some(target) => {
                check_token("target triple", target, "-_.")?;
                if *target != host_triple {
                    check_target_installed(target)?;
                }
                target.clone()
            }
            None => host_triple.clone(),
        };
        let (core, local_crates) = own_crates(args.core_path.as_deref(), standard)?;
        let output = output_path(&args.output)?;
        Ok(BuildPlan {
            modules,
            replacements,
            registry: args.registry.clone(),
            core,
            local_crates,
            standard,
            static_link: !args.no_static && target.contains("-linux-"),
            target,
            host_triple,
            rustc_verbose,
            profile,
            locked: locked_from(args.locked, &output)?,
            previous_lock: Some(lock_path(&output)).filter(|lock| lock.is_file()),
            offline: args.offline,
            output,
            keep_workdir: args.keep_workdir,
            skip_selftest: args.skip_selftest,
        })
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
            offline: false,
            output: "/tmp/host".into(),
            keep_workdir: false,
            skip_selftest: false,
        }
    }
}

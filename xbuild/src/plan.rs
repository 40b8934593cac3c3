//! The build as plain data. Command-line strings become a [`BuildPlan`] here, and every input
//! is checked before anything runs: names and requirements (by [`spec`](crate::spec)),
//! paths exist and hold the crate they claim, nothing is named twice. The plan is what the
//! workspace generator renders; it serialises so CI can log exactly what was built.

use std::path::{Path, PathBuf};

use semver::VersionReq;
use serde::Serialize;

use crate::cli::BuildArgs;
use crate::spec::{ModuleSpec, Replacement};

/// A bad input; exits with code 2 and nothing written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
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

/// A crate of xbuild's own source tree, patched in until it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalCrate {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    pub modules: Vec<PlannedCrate>,
    /// `--replace`: patched, not added.
    pub replacements: Vec<PlannedCrate>,
    pub registry: Option<String>,
    pub core: LocalCrate,
    /// xbuild's own crates (standard modules), patched from its source tree.
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
    pub offline: bool,
    pub output: PathBuf,
    pub keep_workdir: bool,
    pub skip_selftest: bool,
}

/// The crate that names every standard module.
pub const STANDARD_CRATE: &str = "xbuild-standard";

/// The source tree this xbuild was built from.
pub fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xbuild lives in a workspace")
        .to_path_buf()
}

fn check_token(what: &str, value: &str, extra: &str) -> Result<(), UsageError> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid {what} `{}`\n  hint: use ASCII letters, digits and `{extra}`",
            value.escape_default()
        )))
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
            "`{spec}`: path `{}` does not exist or cannot be read ({e})\n  hint: give the directory holding the crate's Cargo.toml",
            path.display()
        ))
    })?;
    if !absolute.is_dir() {
        return Err(usage(format!(
            "`{spec}`: `{}` is not a directory\n  hint: give the directory holding the crate's Cargo.toml",
            path.display()
        )));
    }
    let (name, _) = read_crate(&absolute).map_err(|e| usage(format!("`{spec}`: {e}")))?;
    if let Some(expected) = expected
        && name != expected
    {
        return Err(usage(format!(
            "`{spec}`: the crate at `{}` is named `{name}`, not `{expected}`\n  hint: write `{name}={}`",
            path.display(),
            path.display()
        )));
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

/// The crates in `root/modules/*`, xbuild's standard modules.
fn local_modules(root: &Path) -> Result<Vec<LocalCrate>, UsageError> {
    let dir = root.join("modules");
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        usage(format!(
            "cannot read xbuild's standard modules at `{}`: {e}\n  hint: pass --no-standard, or rebuild xbuild from a complete source tree",
            dir.display()
        ))
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() {
            let (name, version) = read_crate(&path).map_err(usage)?;
            found.push(LocalCrate {
                name,
                version,
                path,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn core_crate(args: &BuildArgs, root: &Path) -> Result<LocalCrate, UsageError> {
    let dir = args.core_path.clone().unwrap_or_else(|| root.join("core"));
    let shown = dir.display().to_string();
    let path = dir.canonicalize().map_err(|e| {
        usage(format!(
            "xbuild-core not found at `{shown}` ({e})\n  hint: pass --core-path with the directory of the xbuild-core crate"
        ))
    })?;
    let (name, version) = read_crate(&path).map_err(|e| usage(format!("--core-path: {e}")))?;
    if name != "xbuild-core" {
        return Err(usage(format!(
            "--core-path `{shown}` holds crate `{name}`, not `xbuild-core`"
        )));
    }
    Ok(LocalCrate {
        name,
        version,
        path,
    })
}

/// `rustc -vV`: the toolchain's version and the triple it compiles for by default.
pub fn rustc_info() -> Result<(String, String), UsageError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| {
            usage(format!(
                "cannot run `{rustc} -vV`: {e}\n  hint: install Rust with rustup"
            ))
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
        return Err(usage(format!(
            "unknown target triple `{target}`\n  hint: `rustc --print target-list` lists the ones rustc knows"
        )));
    }
    let sysroot = PathBuf::from(print("sysroot")?.trim());
    if !sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        return Err(usage(format!(
            "the standard library for target `{target}` is not installed\n  hint: `rustup target add {target}`"
        )));
    }
    Ok(())
}

fn output_path(path: &Path) -> Result<PathBuf, UsageError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| usage(format!("invalid --output `{}`: {e}", path.display())))?;
    if absolute.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(usage(format!(
            "--output `{}` names a directory\n  hint: give a file path, e.g. `./host`",
            path.display()
        )));
    }
    if absolute.is_dir() {
        return Err(usage(format!(
            "--output `{}` is an existing directory\n  hint: give a file path, e.g. `{}/host`",
            path.display(),
            path.display()
        )));
    }
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(usage(format!(
            "the directory of --output `{}` does not exist\n  hint: create `{}` first",
            path.display(),
            parent.display()
        )));
    }
    // Found out now rather than after minutes of compiling; staged the way the install
    // step will stage the binary.
    tempfile::Builder::new()
        .prefix(".xbuild-check-")
        .tempfile_in(parent)
        .map_err(|e| {
            usage(format!(
                "cannot write into `{}`, the directory of --output: {e}\n  hint: choose an --output in a directory you can write to",
                parent.display()
            ))
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
            "--locked needs the lock file of a previous build at `{}`, and there is none\n  hint: build once without --locked; xbuild writes it beside the output",
            lock.display()
        )));
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
                return Err(usage(format!(
                    "unknown profile `{}`\n  hint: use `release` (the default) or `dev`",
                    other.escape_default()
                )));
            }
        };
        let root = source_root();
        let standard = !args.no_standard;
        let mut modules: Vec<PlannedCrate> = Vec::new();
        for text in &args.with {
            let spec = ModuleSpec::parse(text).map_err(|e| usage(format!("--with: {e}")))?;
            if standard && spec.name == STANDARD_CRATE {
                return Err(usage(format!(
                    "--with `{text}`: the standard modules are already included\n  hint: drop it, or pass --no-standard to choose them yourself"
                )));
            }
            if let Some(first) = modules.iter().find(|m| m.name == spec.name) {
                return Err(usage(format!(
                    "crate `{}` is given twice (`--with {text}` and an earlier `--with {}`)\n  hint: keep one",
                    spec.name, first.name
                )));
            }
            modules.push(planned(text, spec, &args.registry)?);
        }
        let mut replacements: Vec<PlannedCrate> = Vec::new();
        for text in &args.replace {
            let spec =
                ModuleSpec::parse_replace(text).map_err(|e| usage(format!("--replace: {e}")))?;
            if modules.iter().any(|m| m.name == spec.name) {
                return Err(usage(format!(
                    "--replace `{text}`: `{}` is also a module (`--with`)\n  hint: write `--with {text}` instead",
                    spec.name
                )));
            }
            if replacements.iter().any(|m| m.name == spec.name) {
                return Err(usage(format!(
                    "crate `{}` is replaced twice\n  hint: keep one --replace",
                    spec.name
                )));
            }
            replacements.push(planned(text, spec, &args.registry)?);
        }
        for feature in &args.features {
            let Some((krate, name)) = feature.split_once('/') else {
                return Err(usage(format!(
                    "--features `{}` does not name a crate\n  hint: write `CRATE/FEATURE`",
                    feature.escape_default()
                )));
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
                        "--features `{feature}`: `{krate}` is not one of the `--with` crates\n  hint: add `--with {krate}`, or fix the crate name"
                    )));
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
        let core = core_crate(args, &root)?;
        let local_crates = if standard {
            local_modules(&root)?
        } else {
            Vec::new()
        };
        if standard && !local_crates.iter().any(|c| c.name == STANDARD_CRATE) {
            return Err(usage(format!(
                "`{STANDARD_CRATE}` is missing from `{}`\n  hint: pass --no-standard",
                root.join("modules").display()
            )));
        }
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
                path: "/src/core".into(),
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
            offline: false,
            output: "/tmp/host".into(),
            keep_workdir: false,
            skip_selftest: false,
        }
    }
}

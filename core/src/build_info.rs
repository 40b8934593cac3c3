//! What a host knows about how it was built: the build ID xbuild derived from the resolved
//! inputs, the module crates it was asked to link, and facts of the compilation. The seed's
//! "embed a build ID ... a manifest next to the host" starts here; `build-info --json` and
//! xbuild's manifest carry the same values.

use serde::{Deserialize, Serialize};

/// A module crate the host was built to contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExpectedCrate {
    /// Package name, as in `Cargo.toml` (`xbuild-http`).
    #[serde(rename = "crate")]
    pub name: String,
    /// Exact package version the build resolved.
    pub version: String,
    /// Where it came from (`registry+...`, `path+file://...`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The distribution a host was built as (xbuild's spec file, or its flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Distribution {
    /// Shown in place of "xbuild host" by `version` and `build-info`.
    pub name: String,
    /// The distribution's own version, independent of the module crates' versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// One line about the distribution, printed under the `version` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The software bill of materials a host carries in its `.dep-v0` section
/// (cargo-auditable's format), summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SbomSummary {
    /// Crates in the host, the host's own package included.
    pub crates: usize,
    /// sha256 of the section's bytes (zlib-compressed JSON).
    pub sha256: String,
}

/// Build information passed to [`host::main`](crate::host::main) by the generated `main.rs`.
/// Unknown fields are ignored, so a host whose core is older than the xbuild that built it
/// still starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BuildInfo {
    /// Identifies the build; xbuild derives it from the resolved inputs, so equal inputs give
    /// equal IDs.
    pub build_id: String,
    /// Cargo profile name; the core records `debug`/`release` itself when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The module crates the build asked for; `selftest` checks that each one registered
    /// modules, at the expected version.
    #[serde(default)]
    pub modules: Vec<ExpectedCrate>,
    /// The distribution the host was built as, if it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// The host's SBOM, when the build embedded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomSummary>,
    /// What xbuild needs to build this host again (its spec and resolution); the host
    /// itself only carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<serde_json::Value>,
}

impl ExpectedCrate {
    /// Crate `name` at exactly `version`, from `source` when known.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        source: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            source,
        }
    }
}

impl Distribution {
    /// A distribution called `name`, without version or description.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
            description: None,
        }
    }
}

impl SbomSummary {
    /// An SBOM of `crates` crates whose section hashes to `sha256` (hex).
    pub fn new(crates: usize, sha256: impl Into<String>) -> Self {
        Self {
            crates,
            sha256: sha256.into(),
        }
    }
}

impl BuildInfo {
    /// Build information with only a build ID; add module crates with
    /// [`module`](BuildInfo::module).
    pub fn new(build_id: impl Into<String>) -> Self {
        Self {
            build_id: build_id.into(),
            profile: None,
            modules: Vec::new(),
            distribution: None,
            sbom: None,
            rebuild: None,
        }
    }

    /// Declares a module crate the host must contain (checked by `selftest`).
    pub fn module(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.modules.push(ExpectedCrate::new(name, version, None));
        self
    }

    /// The full report, as `build-info --json` prints it.
    pub(crate) fn report(&self) -> BuildReport {
        BuildReport {
            build_id: self.build_id.clone(),
            core_version: crate::VERSION.to_owned(),
            rustc: env!("XBUILD_CORE_RUSTC").to_owned(),
            target: env!("XBUILD_CORE_TARGET").to_owned(),
            profile: self
                .profile
                .clone()
                .unwrap_or_else(|| env!("XBUILD_CORE_PROFILE").to_owned()),
            modules: self.modules.clone(),
            distribution: self.distribution.clone(),
            dependencies: self.sbom.as_ref().map(|s| s.crates),
            sbom_sha256: self.sbom.as_ref().map(|s| s.sha256.clone()),
        }
    }
}

/// `build-info --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildReport {
    /// See [`BuildInfo::build_id`].
    pub build_id: String,
    /// The xbuild-core version linked into the host ([`VERSION`](crate::VERSION)).
    pub core_version: String,
    /// `rustc --version` of the compiler that built the core.
    pub rustc: String,
    /// Target triple the host was compiled for.
    pub target: String,
    /// Cargo profile: the one the build declared, else `debug` or `release`.
    pub profile: String,
    /// Module crates in the host: those the build declared, then (in `build-info`) any other
    /// crate that registered modules.
    pub modules: Vec<ExpectedCrate>,
    /// See [`BuildInfo::distribution`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Crates in the host (its SBOM's entries), when it carries an SBOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<usize>,
    /// sha256 of the host's `.dep-v0` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_sha256: Option<String>,
}

/// The sha256 of a file in lowercase hex: how a manifest (written by xbuild) and `selftest`
/// (checking it) identify a host binary, computed in one place so they always agree.
pub(crate) fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

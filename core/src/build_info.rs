//! What a host knows about how it was built: the build ID xbuild derived from the resolved
//! inputs, the module crates it was asked to link, and facts of the compilation. The seed's
//! "embed a build ID ... a manifest next to the host" starts here; `build-info --json` and
//! xbuild's manifest carry the same values.

use serde::{Deserialize, Serialize};

/// A module crate the host was built to contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedCrate {
    #[serde(rename = "crate")]
    pub name: String,
    pub version: String,
    /// Where it came from (`registry+...`, `path+file://...`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The distribution a host was built as (xbuild's spec file, or its flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The software bill of materials a host carries in its `.dep-v0` section
/// (cargo-auditable's format), summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct BuildInfo {
    pub build_id: String,
    /// Cargo profile name; the core records `debug`/`release` itself when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default)]
    pub modules: Vec<ExpectedCrate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomSummary>,
    /// What xbuild needs to build this host again (its spec and resolution); the host
    /// itself only carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<serde_json::Value>,
}

impl BuildInfo {
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
        self.modules.push(ExpectedCrate {
            name: name.into(),
            version: version.into(),
            source: None,
        });
        self
    }

    /// The full report, as `build-info --json` prints it.
    pub fn report(&self) -> BuildReport {
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
pub struct BuildReport {
    pub build_id: String,
    pub core_version: String,
    pub rustc: String,
    pub target: String,
    pub profile: String,
    pub modules: Vec<ExpectedCrate>,
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
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

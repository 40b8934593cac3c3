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

/// Build information passed to [`host::main`](crate::host::main) by the generated `main.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    pub build_id: String,
    /// Cargo profile name; the core records `debug`/`release` itself when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default)]
    pub modules: Vec<ExpectedCrate>,
}

impl BuildInfo {
    pub fn new(build_id: impl Into<String>) -> Self {
        Self {
            build_id: build_id.into(),
            profile: None,
            modules: Vec::new(),
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

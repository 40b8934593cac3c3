//! `HOST.manifest.json`, the file xbuild writes beside every host it builds (the seed's
//! "manifest.json next to the host"). Defined once, here: xbuild writes and verifies it, and
//! the host's own `selftest` reads it to refuse a manifest that describes another binary.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::build_info::Sizes;

/// A module crate in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestModule {
    /// Package name.
    #[serde(rename = "crate")]
    pub name: String,
    /// Exact version the build resolved.
    pub version: String,
    /// Where it came from: cargo's source string, or a path crate's shown path.
    pub source: String,
    /// Module IDs the crate registered (empty when the host could not be run where it was
    /// built).
    pub ids: Vec<String>,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The build ID the host carries.
    pub build_id: String,
    /// sha256 of the host's file, lowercase hex.
    pub sha256: String,
    /// The xbuild-core version linked in.
    pub core_version: String,
    /// `rustc --version` of the compiler that built it.
    pub rustc: String,
    /// Target triple.
    pub target: String,
    /// Cargo profile.
    pub profile: String,
    /// Linked statically (nothing loaded at run time).
    #[serde(rename = "static", default)]
    pub static_link: bool,
    /// The module crates the build asked for.
    pub modules: Vec<ManifestModule>,
    /// What each crate adds to the host; absent for a host without a symbol table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Sizes>,
}

/// Where the manifest of the host at `host` is: `HOST.manifest.json` beside it.
pub fn manifest_path(host: &Path) -> PathBuf {
    let mut name = host.file_name().unwrap_or_default().to_os_string();
    name.push(".manifest.json");
    host.with_file_name(name)
}

//! What a host carries about its own build, read from its file without running it (so a
//! host for another target, or one that cannot start, can still be checked and rebuilt).
//! The generated `main.rs` puts the build information in the `.xbuild-info` section and
//! the SBOM in `.dep-v0`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::specfile::Distribution;

/// The section holding the host's build information (JSON).
pub const SECTION: &str = ".xbuild-info";

/// What xbuild needs to build a host again, carried in its build information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuild {
    /// The xbuild that built it.
    pub xbuild: String,
    pub target: String,
    /// The distribution, as the spec file (or the flags) gave it.
    pub spec: Distribution,
    /// The resolution it was built with.
    pub cargo_lock: String,
}

/// A host's embedded build information.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub info: xbuild_core::BuildInfo,
    pub rebuild: Option<Rebuild>,
    /// The `.dep-v0` section's bytes, when it has one.
    pub sbom_section: Option<Vec<u8>>,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// Reads the build information embedded in the host at `path`.
pub fn read(path: &Path) -> Result<HostInfo, UsageError> {
    let bytes = std::fs::read(path).map_err(|e| {
        usage(format!("cannot read the host `{}`: {e}", path.display()))
            .help("give the path of a host binary xbuild built")
    })?;
    // The messages of `from_bytes` say what the host is or has: the path is their subject.
    from_bytes(&bytes).map_err(|mut e| {
        e.message = format!("`{}` {}", path.display(), e.message);
        e
    })
}

/// [`read`] on a host's bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<HostInfo, UsageError> {
    let not_elf = |e: String| {
        usage(format!("is not a host binary xbuild can read ({e})"))
            .help("xbuild reads Linux (ELF) hosts it built")
    };
    let section = crate::elf::section(bytes, SECTION).map_err(not_elf)?;
    let Some(section) = section else {
        return Err(
            usage("carries no xbuild build information (`.xbuild-info` section)").help(
                "it was built by an older xbuild, or not by xbuild: rebuild it with this one",
            ),
        );
    };
    let info: xbuild_core::BuildInfo = serde_json::from_slice(section).map_err(|e| {
        usage(format!("has unreadable build information: {e}")).help("rebuild it with this xbuild")
    })?;
    let rebuild = info
        .rebuild
        .clone()
        .and_then(|value| serde_json::from_value(value).ok());
    let sbom_section = crate::elf::section(bytes, crate::sbom::SECTION)
        .map_err(not_elf)?
        .map(<[u8]>::to_vec);
    Ok(HostInfo {
        info,
        rebuild,
        sbom_section,
    })
}

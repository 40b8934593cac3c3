//! Free disk space, checked before a build writes much: a disk that fills while cargo or
//! the linker writes fails minutes into the build with their message, not ours (the seed's
//! "disk full during Open").

use std::path::Path;

use crate::builder::BuildError;

/// What a build that compiles may write to the cache's file system: a cold default host
/// writes about 300 MB of release artifacts, and cargo's downloads and the unpacked crates
/// come on top; the rest is margin.
pub const COMPILE_NEEDS: u64 = 1 << 30;

/// What installing a host needs beside its output (the staged binary, its manifest and SBOM)
/// when its size is not known yet.
pub const INSTALL_NEEDS: u64 = 64 << 20;

/// Overrides the free space xbuild sees, in bytes: for testing the check without filling a
/// disk.
const OVERRIDE: &str = "XBUILD_DISK_FREE";

/// The bytes free to this user on the file system holding `dir` (or its nearest existing
/// ancestor, for a directory xbuild is yet to create).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    if let Some(bytes) = std::env::var(OVERRIDE).ok().and_then(|v| v.parse().ok()) {
        return Ok(bytes);
    }
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let stats = rustix::fs::statvfs(existing)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Refuses a build that would need `needed` bytes in `dir`, for `what`, when fewer are free.
/// A file system whose free space cannot be read is not refused.
pub fn ensure(dir: &Path, needed: u64, what: &'static str) -> Result<(), BuildError> {
    match free_bytes(dir) {
        Ok(free) if free < needed => Err(BuildError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            needed,
            what,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_file_system_reports_some_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(&dir.path().join("not/yet")).unwrap() > 0);
    }
}

//! xbuild's own crates (xbuild-core and the standard modules), carried inside the binary as
//! the `.crate` files `cargo package` made of them (see `build.rs`). A build unpacks them
//! into the cache, one folder per content hash, and patches them into the generated
//! workspace: nothing of the tree xbuild was built from is read at run time, and it works
//! before those crates are published and offline.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One packaged crate.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedCrate {
    pub name: &'static str,
    pub version: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Where this xbuild takes its own crates from, for `xbuild --version`.
pub fn describe_source() -> &'static str {
    env!("XBUILD_CRATES_SOURCE")
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The folder an embedded crate unpacks to under `src_dir`: named by its content, so a
/// changed crate never reuses an old folder and the same crate always gets the same path
/// (paths reach the binary; the same path keeps hosts reproducible and the cache warm).
pub fn unpacked_dir(src_dir: &Path, krate: &EmbeddedCrate) -> PathBuf {
    src_dir.join(format!(
        "{}-{}-{}",
        krate.name,
        krate.version,
        short_hash(krate.bytes)
    ))
}

/// Unpacks `krate` under `src_dir` unless it already is; returns its folder. A half
/// unpacked crate never appears under its final name: it is unpacked beside it and renamed.
pub fn unpack(src_dir: &Path, krate: &EmbeddedCrate) -> io::Result<PathBuf> {
    let dir = unpacked_dir(src_dir, krate);
    if dir.join("Cargo.toml").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(src_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(src_dir)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(krate.bytes));
    // Unpack time, not the packaging's: cargo judges path crates fresh by mtime, and a
    // newer crate must never look older than what the cache compiled before.
    archive.set_preserve_mtime(false);
    archive.unpack(staging.path())?;
    // A `.crate` holds one folder, `NAME-VERSION/`.
    let inner = staging
        .path()
        .join(format!("{}-{}", krate.name, krate.version));
    match std::fs::rename(&inner, &dir) {
        Ok(()) => Ok(dir),
        // Another xbuild unpacked it first: the same bytes, so theirs will do.
        Err(_) if dir.join("Cargo.toml").is_file() => Ok(dir),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_build_carries_the_core_and_the_standard_modules() {
        // The unit tests are built from the source tree, so the crates are embedded.
        let names: Vec<&str> = EMBEDDED.iter().map(|c| c.name).collect();
        assert_eq!(names, ["xbuild-core", "xbuild-http", "xbuild-standard"]);
        assert!(describe_source().contains("carried in this binary"));
    }

    #[test]
    fn unpacks_once_to_a_folder_named_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let core = &EMBEDDED[0];
        let first = unpack(dir.path(), core).unwrap();
        assert!(first.join("src/lib.rs").is_file());
        let manifest = std::fs::read_to_string(first.join("Cargo.toml")).unwrap();
        assert!(
            !manifest.contains("workspace = true"),
            "packaged manifests are normalised:\n{manifest}"
        );
        std::fs::write(first.join("marker"), "").unwrap();
        assert_eq!(unpack(dir.path(), core).unwrap(), first);
        assert!(first.join("marker").exists(), "not unpacked twice");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".unpacking-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

//! The build ID and the manifest written beside the host (the seed's "manifest.json next to
//! the host" and "embed a build ID"). The build ID is a hash of the resolved inputs, so
//! the same inputs give the same ID.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::BuildPlan;

/// A module crate in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestModule {
    #[serde(rename = "crate")]
    pub name: String,
    pub version: String,
    pub source: String,
    /// Module IDs the crate registered (empty when the host could not be run here).
    pub ids: Vec<String>,
}

/// `<output>.manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub build_id: String,
    pub sha256: String,
    pub core_version: String,
    pub rustc: String,
    pub target: String,
    pub profile: String,
    pub modules: Vec<ManifestModule>,
}

/// The lock file without the generated package (its name is unique per generation, so it
/// must not count), re-serialised so formatting does not count either.
fn normalized_lock(lock: &str, host_package: &str) -> String {
    let Ok(mut doc) = lock.parse::<toml_edit::DocumentMut>() else {
        return lock.to_owned();
    };
    if let Some(packages) = doc
        .get_mut("package")
        .and_then(|p| p.as_array_of_tables_mut())
    {
        packages.retain(|p| p.get("name").and_then(|n| n.as_str()) != Some(host_package));
    }
    doc.to_string()
}

/// Hashes the files of a local (path) crate: the lock file pins registry crates by
/// checksum, but not path crates.
fn hash_dir(hasher: &mut Sha256, dir: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let hidden = name.to_string_lossy().starts_with('.');
            match entry.file_type() {
                Ok(t) if t.is_dir() && !hidden && name != "target" => stack.push(path),
                Ok(t) if t.is_file() && !hidden => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    for file in files {
        if let (Ok(relative), Ok(bytes)) = (file.strip_prefix(dir), std::fs::read(&file)) {
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
}

/// The build ID: resolved lock file, contents of path crates, toolchain, target, profile
/// and flags.
pub fn build_id(
    plan: &BuildPlan,
    lock: &str,
    host_package: &str,
    rustc_version: &str,
    path_crates: &[&Path],
    rustflags: &[String],
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("xbuild", env!("CARGO_PKG_VERSION").as_bytes());
    field("lock", normalized_lock(lock, host_package).as_bytes());
    field("rustc", rustc_version.as_bytes());
    field("target", plan.target.as_bytes());
    field("profile", plan.profile.cargo_name().as_bytes());
    field("static", &[u8::from(plan.static_link)]);
    field("rustflags", rustflags.join("\x1f").as_bytes());
    for module in &plan.modules {
        field(
            "features",
            format!("{}:{}", module.name, module.features.join(",")).as_bytes(),
        );
    }
    let mut sorted: Vec<&Path> = path_crates.to_vec();
    sorted.sort();
    for dir in sorted {
        hasher.update(dir.to_string_lossy().as_bytes());
        hash_dir(&mut hasher, dir);
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `<output>.manifest.json` for an output path.
pub fn manifest_path(output: &Path) -> std::path::PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".manifest.json");
    output.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "version = 4\n\n[[package]]\nname = \"xbuild-host-aaa\"\nversion = \"0.0.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n";

    fn id(lock: &str, host: &str) -> String {
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        build_id(&plan, lock, host, "rustc 1.95.0", &[], &[])
    }

    #[test]
    fn same_inputs_same_id_whatever_the_generated_name() {
        let other = LOCK.replace("xbuild-host-aaa", "xbuild-host-bbb");
        assert_eq!(id(LOCK, "xbuild-host-aaa"), id(&other, "xbuild-host-bbb"));
        assert_eq!(id(LOCK, "xbuild-host-aaa").len(), 32);
    }

    #[test]
    fn different_inputs_different_id() {
        let base = id(LOCK, "xbuild-host-aaa");
        assert_ne!(base, id(&LOCK.replace("1.0.0", "1.0.1"), "xbuild-host-aaa"));
        let mut plan = crate::plan::tests_support::plan_with(&["m"]);
        plan.profile = crate::plan::Profile::Dev;
        assert_ne!(
            base,
            build_id(&plan, LOCK, "xbuild-host-aaa", "rustc 1.95.0", &[], &[])
        );
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        assert_ne!(
            base,
            build_id(&plan, LOCK, "xbuild-host-aaa", "rustc 1.96.0", &[], &[])
        );
        assert_ne!(
            base,
            build_id(
                &plan,
                LOCK,
                "xbuild-host-aaa",
                "rustc 1.95.0",
                &[],
                &["-Copt-level=1".into()]
            )
        );
    }

    #[test]
    fn path_crate_contents_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.rs"), "a").unwrap();
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        let first = build_id(&plan, LOCK, "h", "r", &[dir.path()], &[]);
        std::fs::write(dir.path().join("lib.rs"), "b").unwrap();
        assert_ne!(first, build_id(&plan, LOCK, "h", "r", &[dir.path()], &[]));
    }

    #[test]
    fn manifest_sits_beside_the_output() {
        assert_eq!(
            manifest_path(Path::new("/x/host")),
            Path::new("/x/host.manifest.json")
        );
    }
}

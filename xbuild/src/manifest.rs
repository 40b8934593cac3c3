//! The build ID and the manifest written beside the host (the seed's "manifest.json next to
//! the host" and "embed a build ID"). The build ID is a hash of the resolved inputs, so
//! the same inputs give the same ID.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::BuildPlan;

/// The manifest's format, shared with the host (which reads it in `selftest`).
pub use xbuild_core::manifest::{Manifest, ManifestModule, manifest_path};

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

/// A path crate as the build ID sees it: its directory, and the path it reaches the binary
/// as (after remapping; the location counts, since panic messages carry it).
pub struct PathCrate<'a> {
    pub dir: &'a Path,
    pub shown_as: String,
}

/// The build ID: everything that decides the host's bytes. The resolved lock file, the
/// contents and remapped locations of path crates, the toolchain, target, profile, flags and
/// the modules in `main.rs` order. Nothing machine-specific (temp dirs, the cache's path),
/// so one ID means one binary.
pub fn build_id(
    plan: &BuildPlan,
    lock: &str,
    rustc_version: &str,
    path_crates: &[PathCrate<'_>],
    rustflags: &[String],
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("xbuild", env!("CARGO_PKG_VERSION").as_bytes());
    // Cargo writes the lock in one canonical form, and the host package in it has the same
    // name in every build, so the text itself is the resolution.
    field("lock", lock.as_bytes());
    field("rustc", rustc_version.as_bytes());
    field("target", plan.target.as_bytes());
    field("profile", plan.profile.cargo_name().as_bytes());
    field("static", &[u8::from(plan.static_link)]);
    field("rustflags", rustflags.join("\x1f").as_bytes());
    // What the host embeds besides the resolution: its distribution, and the generated
    // main.rs (so a new template is a new build).
    field(
        "dist",
        &serde_json::to_vec(&plan.rebuild_dist()).expect("a distribution serialises"),
    );
    field("main.rs", crate::workspace::main_rs(plan).as_bytes());
    for module in &plan.modules {
        field(
            "features",
            format!("{}:{}", module.name, module.features.join(",")).as_bytes(),
        );
    }
    let mut sorted: Vec<&PathCrate<'_>> = path_crates.iter().collect();
    sorted.sort_by(|a, b| a.shown_as.cmp(&b.shown_as));
    for krate in sorted {
        hasher.update(krate.shown_as.as_bytes());
        hash_dir(&mut hasher, krate.dir);
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "version = 4\n\n[[package]]\nname = \"xbuild-host\"\nversion = \"0.0.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n";

    fn id(lock: &str) -> String {
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        build_id(&plan, lock, "rustc 1.95.0", &[], &[])
    }

    #[test]
    fn same_inputs_same_id() {
        assert_eq!(id(LOCK), id(LOCK));
        assert_eq!(id(LOCK).len(), 32);
    }

    #[test]
    fn different_inputs_different_id() {
        let base = id(LOCK);
        assert_ne!(base, id(&LOCK.replace("1.0.0", "1.0.1")));
        let mut plan = crate::plan::tests_support::plan_with(&["m"]);
        plan.profile = crate::plan::Profile::Dev;
        assert_ne!(base, build_id(&plan, LOCK, "rustc 1.95.0", &[], &[]));
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        assert_ne!(base, build_id(&plan, LOCK, "rustc 1.96.0", &[], &[]));
        assert_ne!(
            base,
            build_id(&plan, LOCK, "rustc 1.95.0", &[], &["-Copt-level=1".into()])
        );
        let reordered = crate::plan::tests_support::plan_with(&["n", "m"]);
        assert_ne!(
            build_id(
                &crate::plan::tests_support::plan_with(&["m", "n"]),
                LOCK,
                "r",
                &[],
                &[]
            ),
            build_id(&reordered, LOCK, "r", &[], &[])
        );
    }

    #[test]
    fn path_crate_contents_and_shown_location_count_but_not_the_real_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [&a, &b] {
            std::fs::write(dir.path().join("lib.rs"), "a").unwrap();
        }
        let plan = crate::plan::tests_support::plan_with(&["m"]);
        let with = |dir: &Path, shown: &str| {
            build_id(
                &plan,
                LOCK,
                "r",
                &[PathCrate {
                    dir,
                    shown_as: shown.into(),
                }],
                &[],
            )
        };
        let first = with(a.path(), "/xbuild/cache/src/m");
        assert_eq!(first, with(b.path(), "/xbuild/cache/src/m"));
        assert_ne!(first, with(a.path(), "/elsewhere/m"));
        std::fs::write(a.path().join("lib.rs"), "b").unwrap();
        assert_ne!(first, with(a.path(), "/xbuild/cache/src/m"));
    }

    #[test]
    fn manifest_sits_beside_the_output() {
        assert_eq!(
            manifest_path(Path::new("/x/host")),
            Path::new("/x/host.manifest.json")
        );
    }
}

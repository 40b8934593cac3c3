//! The xbuild cache (`XBUILD_CACHE_DIR`): cargo's shared build directory, xbuild's own
//! crates unpacked, and a result cache of built hosts keyed by build ID, so a build whose
//! inputs were seen before installs the cached binary without compiling. It is bounded
//! (`XBUILD_CACHE_MAX`, least recently used hosts pruned first) and one xbuild at a time
//! writes to it, under a file lock as cargo's target directory is.
//!
//! Layout: `build/` (cargo's build-dir), `src/` (unpacked crates, named by content),
//! `hosts/<build-id>/` (`host`, `entry.json`), `.lock`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The default cap on the cache's size.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What the result cache keeps of a build besides the binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Whether the binary passed its selftest when it was built.
    pub selftested: bool,
    /// `list-modules --json` of the binary, as (crate, id) pairs.
    pub ids: Vec<(String, String)>,
}

/// A cached host found for a build ID.
#[derive(Debug, Clone)]
pub struct CachedHost {
    pub binary: PathBuf,
    pub entry: Entry,
}

/// Held while a build uses the cache; dropping it lets the next xbuild in.
pub struct CacheLock {
    _file: File,
}

/// How much a clean or prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub files: u64,
    pub bytes: u64,
}

impl Removed {
    fn add(&mut self, other: Removed) {
        self.files += other.files;
        self.bytes += other.bytes;
    }
}

impl Cache {
    /// The cache at `XBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/xbuild`, else
    /// `~/.cache/xbuild`.
    /// A file where the cache's directory should be is refused here, naming the variable
    /// it came from.
    pub fn from_env() -> Result<Self, crate::error::UsageError> {
        let (root, from) =
            if let Some(dir) = std::env::var_os("XBUILD_CACHE_DIR").filter(|d| !d.is_empty()) {
                (PathBuf::from(dir), "XBUILD_CACHE_DIR")
            } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
                (PathBuf::from(dir).join("xbuild"), "XDG_CACHE_HOME")
            } else if let Some(home) = std::env::var_os("HOME") {
                (PathBuf::from(home).join(".cache/xbuild"), "HOME")
            } else {
                (std::env::temp_dir().join("xbuild-cache"), "TMPDIR")
            };
        let cache = Self::at(root);
        if cache.root.exists() && !cache.root.is_dir() {
            return Err(crate::error::UsageError::new(format!(
                "the xbuild cache `{}` (from {from}) is a file, not a directory",
                cache.root.display()
            ))
            .help("point XBUILD_CACHE_DIR at a directory, or remove the file"));
        }
        Ok(cache)
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        // Absolute, so the path-prefix remapping and cargo see the same path.
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Cargo's `build-dir`: compiled dependencies shared by every build.
    pub fn build_dir(&self) -> PathBuf {
        self.root.join("build")
    }

    /// Unpacked crates.
    pub fn src_dir(&self) -> PathBuf {
        self.root.join("src")
    }

    fn hosts_dir(&self) -> PathBuf {
        self.root.join("hosts")
    }

    /// Takes the cache's lock, calling `waiting` first if another xbuild holds it.
    pub fn lock(&self, waiting: impl FnOnce()) -> io::Result<CacheLock> {
        std::fs::create_dir_all(&self.root)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock()?;
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(err),
        }
        Ok(CacheLock { _file: file })
    }

    /// The host built earlier for `build_id`, marked as used now.
    pub fn cached_host(&self, build_id: &str) -> Option<CachedHost> {
        let dir = self.hosts_dir().join(build_id);
        let binary = dir.join("host");
        let entry: Entry =
            serde_json::from_slice(&std::fs::read(dir.join("entry.json")).ok()?).ok()?;
        if !binary.is_file() {
            return None;
        }
        touch(&dir.join("entry.json"));
        Some(CachedHost { binary, entry })
    }

    /// Keeps `binary` as the result of `build_id`. Written under a temporary name and
    /// renamed, so a reader never sees half an entry.
    pub fn store_host(&self, build_id: &str, binary: &Path, entry: &Entry) -> io::Result<()> {
        let hosts = self.hosts_dir();
        std::fs::create_dir_all(&hosts)?;
        let staging = tempfile::Builder::new()
            .prefix(".storing-")
            .tempdir_in(&hosts)?;
        std::fs::copy(binary, staging.path().join("host"))?;
        std::fs::write(
            staging.path().join("entry.json"),
            serde_json::to_vec_pretty(entry).expect("entry serializes"),
        )?;
        let dir = hosts.join(build_id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(staging.keep(), &dir)
    }

    /// Removes what cargo keeps of hosts compiled before `since` from its build directory.
    /// Every module set gives the host other dependencies, so another artifact (8 MB
    /// release, ~85 MB dev); it would only serve the same module set again, which the result
    /// cache answers first.
    pub fn forget_old_host_artifacts(&self, since: SystemTime) -> Removed {
        let mut removed = Removed::default();
        // `build/<profile>/...` and `build/<triple>/<profile>/...`
        let mut profile_dirs = Vec::new();
        for entry in std::fs::read_dir(self.build_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            profile_dirs.push(entry.path());
            profile_dirs.extend(
                std::fs::read_dir(entry.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        for profile in profile_dirs {
            for kind in ["deps", "incremental", ".fingerprint"] {
                for entry in std::fs::read_dir(profile.join(kind))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    let is_host =
                        name.starts_with("xbuild_host-") || name.starts_with("xbuild-host-");
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|modified| modified < since);
                    if is_host && old {
                        removed.add(remove_tree(&entry.path()));
                    }
                }
            }
        }
        removed
    }

    /// Total size of the cache in bytes.
    pub fn size(&self) -> u64 {
        dir_usage(&self.root).bytes
    }

    /// Brings the cache under `max` bytes: least recently used hosts first, then unpacked
    /// crates other than `keep`, then cargo's compiled artifacts as a last resort.
    pub fn prune(&self, max: u64, keep: &[PathBuf]) -> Removed {
        let mut removed = Removed::default();
        let mut size = self.size();
        if size <= max {
            return removed;
        }
        let mut hosts: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(self.hosts_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let used = std::fs::metadata(e.path().join("entry.json"))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (used, e.path())
            })
            .collect();
        hosts.sort();
        let mut candidates: Vec<PathBuf> = hosts.into_iter().map(|(_, p)| p).collect();
        candidates.extend(
            std::fs::read_dir(self.src_dir())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| !keep.contains(p)),
        );
        candidates.push(self.build_dir());
        for path in candidates {
            if size <= max {
                break;
            }
            let gone = remove_tree(&path);
            size = size.saturating_sub(gone.bytes);
            removed.add(gone);
        }
        removed
    }

    /// `xbuild clean`: the cached hosts; with `all`, everything (compiled dependencies and
    /// unpacked crates too).
    /// Removes the hosts the cache keeps (with `all`, everything but its lock file), or with
    /// `dry_run` only counts them. A path that cannot be removed is an error naming it,
    /// with what was removed before it.
    pub fn clean(&self, all: bool, dry_run: bool) -> Result<Removed, CleanError> {
        let targets: Vec<PathBuf> = if all {
            std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.file_name() != ".lock")
                .map(|entry| entry.path())
                .collect()
        } else {
            vec![self.hosts_dir()]
        };
        let mut removed = Removed::default();
        for path in targets {
            let usage = dir_usage(&path);
            if !dry_run && let Err(source) = remove_path(&path) {
                return Err(CleanError {
                    path,
                    source,
                    removed,
                });
            }
            removed.add(usage);
        }
        Ok(removed)
    }
}

/// Marks a file as used now (its modification time orders pruning).
fn touch(path: &Path) {
    if let Ok(file) = File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn dir_usage(path: &Path) -> Removed {
    let mut usage = Removed::default();
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return usage;
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            usage.add(dir_usage(&entry.path()));
        }
    } else {
        usage.files += 1;
        usage.bytes += meta.len();
    }
    usage
}

fn remove_tree(path: &Path) -> Removed {
    let usage = dir_usage(path);
    match remove_path(path) {
        Ok(()) => usage,
        Err(_) => Removed::default(),
    }
}

/// Removes a file or a directory tree; one that is not there is removed already.
fn remove_path(path: &Path) -> std::io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) => Err(err),
    };
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `xbuild clean` could not remove a path of the cache.
#[derive(Debug, thiserror::Error)]
#[error("cannot remove `{}` from the xbuild cache: {source}", path.display())]
pub struct CleanError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
    /// What was removed before it.
    pub removed: Removed,
}

impl xbuild_core::error::Diagnostic for CleanError {
    fn help(&self) -> Vec<String> {
        vec![format!(
            "check that this user may write to it and its directory; {} removed before it",
            if self.removed.files == 0 {
                "nothing was".to_owned()
            } else {
                format!(
                    "{} ({}) were",
                    xbuild_core::error::counted(self.removed.files as usize, "file", "files"),
                    human_size(self.removed.bytes)
                )
            }
        )]
    }
}

/// Reads a size such as `2GiB`, `500MB`, `750M` or `1048576` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: the units are B, K or KiB, M or MiB, G or \
                 GiB, T or TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000)"
            ));
        }
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes as u64)
}

/// A byte count for people: `1.5 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("750M").unwrap(), 750 << 20);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("1.5 kib").unwrap(), 1536);
        assert!(parse_size("lots").unwrap_err().contains("number"));
        assert!(parse_size("5 parsecs").unwrap_err().contains("unit"));
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(12), "12 B");
    }

    fn cache_with_hosts(ids: &[&str]) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let binary = dir.path().join("bin");
        std::fs::write(&binary, vec![7u8; 1000]).unwrap();
        for (i, id) in ids.iter().enumerate() {
            cache.store_host(id, &binary, &Entry::default()).unwrap();
            let used = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            File::options()
                .append(true)
                .open(cache.hosts_dir().join(id).join("entry.json"))
                .unwrap()
                .set_modified(used)
                .unwrap();
        }
        (dir, cache)
    }

    #[test]
    fn stores_and_finds_hosts_by_build_id() {
        let (_dir, cache) = cache_with_hosts(&["aaa"]);
        let found = cache.cached_host("aaa").unwrap();
        assert_eq!(std::fs::read(found.binary).unwrap().len(), 1000);
        assert!(cache.cached_host("bbb").is_none());
    }

    #[test]
    fn prunes_least_recently_used_hosts_first() {
        let (_dir, cache) = cache_with_hosts(&["old", "mid", "new"]);
        std::fs::create_dir_all(cache.build_dir()).unwrap();
        std::fs::write(cache.build_dir().join("artifact"), vec![0u8; 100]).unwrap();
        // Using `old` now makes `mid` the least recently used.
        cache.cached_host("old").unwrap();
        let before = cache.size();
        let removed = cache.prune(before - 500, &[]);
        assert!(removed.bytes >= 1000, "{removed:?}");
        assert!(cache.cached_host("mid").is_none());
        assert!(cache.cached_host("old").is_some());
        assert!(cache.cached_host("new").is_some());
        assert!(cache.build_dir().join("artifact").exists());
        // Under the cap: nothing to do.
        assert_eq!(cache.prune(u64::MAX, &[]), Removed::default());
        // A tiny cap takes everything, compiled artifacts last.
        cache.prune(0, &[]);
        assert!(!cache.build_dir().exists());
    }

    #[test]
    fn old_host_artifacts_go_and_everything_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let deps = cache
            .build_dir()
            .join("x86_64-unknown-linux-gnu/release/deps");
        std::fs::create_dir_all(&deps).unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        for name in ["xbuild_host-aaa", "xbuild_host-aaa.d", "libserde-123.rlib"] {
            let file = File::create(deps.join(name)).unwrap();
            file.set_modified(old).unwrap();
        }
        std::fs::write(deps.join("xbuild_host-new"), "just built").unwrap();
        let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2000);
        assert_eq!(cache.forget_old_host_artifacts(since).files, 2);
        let left: Vec<String> = std::fs::read_dir(&deps)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(left, ["libserde-123.rlib", "xbuild_host-new"]);
    }

    #[test]
    fn clean_keeps_compiled_dependencies_unless_all() {
        let (_dir, cache) = cache_with_hosts(&["a"]);
        std::fs::create_dir_all(cache.build_dir()).unwrap();
        std::fs::write(cache.build_dir().join("artifact"), "x").unwrap();
        let counted = cache.clean(false, true).unwrap();
        assert_eq!(counted.files, 2);
        assert!(
            cache.cached_host("a").is_some(),
            "a dry run removes nothing"
        );
        let removed = cache.clean(false, false).unwrap();
        assert_eq!(removed.files, 2);
        assert!(cache.cached_host("a").is_none());
        assert!(cache.build_dir().join("artifact").exists());
        assert_eq!(
            cache.clean(false, false).unwrap().files,
            0,
            "nothing left to remove"
        );
        cache.clean(true, false).unwrap();
        assert!(!cache.build_dir().exists());
    }

    #[test]
    fn a_second_locker_waits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let held = cache.lock(|| panic!("nobody holds it yet")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = cache.clone();
        let waiter = std::thread::spawn(move || {
            let _lock = other.lock(|| tx.send("waiting").unwrap()).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), "waiting");
        drop(held);
        waiter.join().unwrap();
    }
}

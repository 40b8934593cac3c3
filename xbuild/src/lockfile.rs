//! The lock file: the full resolution of every distribution xbuild built, so CI can commit
//! it and `--locked` can build the same hosts again. `xbuild.lock` sits beside the spec
//! file; a build from flags keeps `OUTPUT.lock` (or `--lockfile PATH`) in the same format.
//!
//! Each entry holds the distribution as built (the spec value, to tell what changed) and the
//! generated workspace's Cargo.lock (cargo's canonical text, so an unchanged resolution
//! gives an unchanged file). It is written only when its text changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::specfile::Distribution;

/// The lock format's version; a newer one is refused with a hint rather than misread.
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str = "# Written by xbuild: the resolution of every distribution it built. Commit it\n\
# beside the spec; `xbuild build --locked` then builds exactly these versions, and\n\
# `xbuild update` changes them. Not meant to be edited by hand.\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    #[serde(default)]
    pub dist: Vec<LockedDist>,
}

/// One distribution on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedDist {
    pub name: String,
    pub target: String,
    /// The generated workspace's Cargo.lock.
    pub cargo_lock: String,
    /// The distribution as it was when resolved.
    pub spec: Distribution,
}

impl Default for LockFile {
    fn default() -> Self {
        Self {
            version: LOCK_VERSION,
            dist: Vec::new(),
        }
    }
}

/// The lock kept beside a host built from flags: `host` → `host.lock`.
pub fn beside(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    output.with_file_name(name)
}

impl LockFile {
    /// Reads the lock at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, UsageError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(UsageError::new(format!(
                    "cannot read the lock file `{}`: {e}",
                    path.display()
                ))
                .help("check the file's permissions"));
            }
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|e| e.context(&format!("lock file `{}`", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, UsageError> {
        let lock: LockFile = toml::from_str(text).map_err(|e| {
            UsageError::new(e.to_string().trim_end().to_owned())
                .help("delete it to resolve afresh (a build writes a new one)")
        })?;
        if lock.version != LOCK_VERSION {
            return Err(UsageError::new(format!(
                "lock format version {} is not one this xbuild reads ({LOCK_VERSION})",
                lock.version
            ))
            .help("use the xbuild that wrote it, or delete the lock to resolve afresh"));
        }
        Ok(lock)
    }

    pub fn find(&self, name: &str, target: &str) -> Option<&LockedDist> {
        self.dist
            .iter()
            .find(|d| d.name == name && d.target == target)
    }

    /// Puts `entry` in place of the one for its distribution and target, or adds it.
    pub fn set(&mut self, entry: LockedDist) {
        match self
            .dist
            .iter_mut()
            .find(|d| d.name == entry.name && d.target == entry.target)
        {
            Some(existing) => *existing = entry,
            None => self.dist.push(entry),
        }
    }

    /// Keeps only the entries `keep` says yes to (distributions gone from the spec go).
    pub fn retain(&mut self, keep: impl Fn(&LockedDist) -> bool) {
        self.dist.retain(keep);
    }

    /// The file's text: a header, then the entries sorted by name and target, so the same
    /// resolution always gives the same bytes.
    pub fn render(&self) -> String {
        let mut sorted = self.clone();
        sorted
            .dist
            .sort_by(|a, b| (&a.name, &a.target).cmp(&(&b.name, &b.target)));
        let body = toml::to_string(&sorted).expect("the lock serialises");
        format!("{HEADER}{body}")
    }

    /// Writes the lock to `path` if its text changed (atomically, beside it); says whether
    /// it wrote.
    pub fn write(&self, path: &Path) -> std::io::Result<bool> {
        let text = self.render();
        if std::fs::read_to_string(path).is_ok_and(|existing| existing == text) {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let staged = tempfile::Builder::new()
            .prefix(".xbuild-lock-")
            .tempfile_in(dir)?;
        std::fs::write(staged.path(), &text)?;
        staged.persist(path).map_err(|e| e.error)?;
        Ok(true)
    }
}

/// What changed between the distribution a lock entry was resolved for and the one asked
/// for now, one line per difference (empty when nothing did).
pub fn spec_changes(locked: &Distribution, now: &Distribution) -> Vec<String> {
    let mut changes = Vec::new();
    let shown = |d: &Distribution| -> BTreeMap<String, String> {
        d.modules
            .iter()
            .map(|m| {
                let features = if m.features.is_empty() {
                    String::new()
                } else {
                    format!(" (features {})", m.features.join(", "))
                };
                (m.name.clone(), format!("{}{features}", m.shown()))
            })
            .collect()
    };
    let (before, after) = (shown(locked), shown(now));
    for (name, was) in &before {
        match after.get(name) {
            None => changes.push(format!("module `{was}` was removed")),
            Some(is) if is != was => changes.push(format!("module `{was}` is now `{is}`")),
            _ => {}
        }
    }
    for (name, is) in &after {
        if !before.contains_key(name) {
            changes.push(format!("module `{is}` was added"));
        }
    }
    // Every other field, by its name in the spec file.
    let fields = |d: &Distribution| -> BTreeMap<String, toml::Value> {
        let mut value = toml::Value::try_from(d).expect("a distribution serialises");
        let table = value.as_table_mut().expect("a table");
        table.remove("modules");
        table.remove("name");
        table.clone().into_iter().collect()
    };
    let (before, after) = (fields(locked), fields(now));
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        if before.get(key) != after.get(key) {
            let show = |v: Option<&toml::Value>| v.map_or("(default)".into(), |v| v.to_string());
            changes.push(format!(
                "`{key}` changed from {} to {}",
                show(before.get(key)),
                show(after.get(key))
            ));
        }
    }
    changes
}

/// The packages of a Cargo.lock: name → versions (a crate may be in twice).
pub fn cargo_lock_packages(text: &str) -> BTreeMap<String, Vec<semver::Version>> {
    #[derive(Deserialize)]
    struct CargoLock {
        #[serde(default)]
        package: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: semver::Version,
    }
    let mut packages: BTreeMap<String, Vec<semver::Version>> = BTreeMap::new();
    if let Ok(lock) = toml::from_str::<CargoLock>(text) {
        for package in lock.package {
            packages
                .entry(package.name)
                .or_default()
                .push(package.version);
        }
    }
    for versions in packages.values_mut() {
        versions.sort();
    }
    packages
}

/// Cargo's words for what a new resolution changed: `Updating foo v1.2.0 -> v1.3.1`,
/// `Adding bar v1.0.0`, `Removing baz v0.1.0`.
pub fn resolution_changes(before: &str, after: &str) -> Vec<(&'static str, String)> {
    let (before, after) = (cargo_lock_packages(before), cargo_lock_packages(after));
    let mut changes = Vec::new();
    for (name, old) in &before {
        match after.get(name) {
            None => {
                for v in old {
                    changes.push(("Removing", format!("{name} v{v}")));
                }
            }
            Some(new) if new != old => {
                if old.len() == 1 && new.len() == 1 {
                    changes.push(("Updating", format!("{name} v{} -> v{}", old[0], new[0])));
                } else {
                    for v in old.iter().filter(|v| !new.contains(v)) {
                        changes.push(("Removing", format!("{name} v{v}")));
                    }
                    for v in new.iter().filter(|v| !old.contains(v)) {
                        changes.push(("Adding", format!("{name} v{v}")));
                    }
                }
            }
            _ => {}
        }
    }
    for (name, new) in &after {
        if !before.contains_key(name) {
            for v in new {
                changes.push(("Adding", format!("{name} v{v}")));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO_LOCK: &str = "# This file is automatically @generated by Cargo.\nversion = 4\n\n[[package]]\nname = \"foo\"\nversion = \"1.2.0\"\n\n[[package]]\nname = \"gone\"\nversion = \"0.1.0\"\n";

    fn entry(name: &str, target: &str) -> LockedDist {
        LockedDist {
            name: name.into(),
            target: target.into(),
            cargo_lock: CARGO_LOCK.into(),
            spec: Distribution::named(name),
        }
    }

    #[test]
    fn renders_stably_and_reads_back() {
        let mut lock = LockFile::default();
        lock.set(entry("web", "b"));
        lock.set(entry("min", "a"));
        let mut other_order = LockFile::default();
        other_order.set(entry("min", "a"));
        other_order.set(entry("web", "b"));
        assert_eq!(lock.render(), other_order.render());
        let text = lock.render();
        assert!(text.starts_with("# Written by xbuild"));
        let read = LockFile::parse(&text).unwrap();
        assert_eq!(read.find("web", "b").unwrap().cargo_lock, CARGO_LOCK);
        assert_eq!(read.render(), text, "reading and writing changes nothing");
        // Cargo's lock is kept as lines, so it diffs line by line.
        assert!(text.contains("\nname = \"foo\"\n"), "{text}");
    }

    #[test]
    fn writes_only_when_the_text_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xbuild.lock");
        let mut lock = LockFile::default();
        lock.set(entry("web", "t"));
        assert!(lock.write(&path).unwrap());
        assert!(!lock.write(&path).unwrap());
        lock.set(entry("min", "t"));
        assert!(lock.write(&path).unwrap());
    }

    #[test]
    fn refuses_another_version_and_unknown_keys() {
        let text = LockFile::default()
            .render()
            .replace("version = 1", "version = 9");
        assert!(
            LockFile::parse(&text)
                .unwrap_err()
                .message
                .contains("version 9")
        );
        let extra = format!("{}extra = 1\n", LockFile::default().render());
        assert!(
            LockFile::parse(&extra)
                .unwrap_err()
                .message
                .contains("extra")
        );
    }

    #[test]
    fn spec_changes_name_modules_and_fields() {
        let mut before = Distribution::named("web");
        before.modules.push(crate::specfile::ModuleEntry {
            name: "foo".into(),
            version: Some("1".into()),
            features: vec![],
            path: None,
            package: None,
        });
        let mut after = before.clone();
        assert!(spec_changes(&before, &after).is_empty());
        after.modules[0].version = Some("2".into());
        after.standard = false;
        let changes = spec_changes(&before, &after);
        assert_eq!(
            changes,
            [
                "module `foo@1` is now `foo@2`",
                "`standard` changed from (default) to false"
            ]
        );
        after.modules.clear();
        assert!(spec_changes(&before, &after)[0].contains("`foo@1` was removed"));
    }

    #[test]
    fn resolution_changes_read_like_cargo() {
        let after = CARGO_LOCK.replace("1.2.0", "1.3.1").replace(
            "name = \"gone\"\nversion = \"0.1.0\"",
            "name = \"new\"\nversion = \"2.0.0\"",
        );
        let changes = resolution_changes(CARGO_LOCK, &after);
        assert_eq!(
            changes,
            [
                ("Updating", "foo v1.2.0 -> v1.3.1".to_owned()),
                ("Removing", "gone v0.1.0".to_owned()),
                ("Adding", "new v2.0.0".to_owned()),
            ]
        );
    }
}

//! The host's software bill of materials: every crate in it, from the resolved dependency
//! graph. It goes into the host as cargo-auditable's `.dep-v0` section (zlib-compressed
//! JSON of `auditable_serde::VersionInfo`), which `cargo audit bin`, syft and trivy read,
//! and, with `--sbom`, beside it as CycloneDX 1.5 JSON. That one is written with serde:
//! the `cyclonedx-bom` crate would bring sixteen dependencies (XML, SPDX, regex, time,
//! UUIDs…) into xbuild for one small JSON document whose fields the tests check.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write;

use auditable_serde::{DependencyKind, Package, Source, VersionInfo};
use cargo_metadata::{DependencyKind as EdgeKind, Metadata, PackageId, TargetKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The linker section cargo-auditable defined; its readers look for this name.
pub const SECTION: &str = ".dep-v0";

/// One crate of the host, with what the SBOM says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: semver::Version,
    /// cargo's source string; `None` for path crates.
    pub source: Option<String>,
    /// The registry's sha256 of the `.crate`, from Cargo.lock.
    pub checksum: Option<String>,
    /// Only needed to build (build scripts, proc-macros), not linked into the host.
    pub build_only: bool,
    /// The SPDX license expression its manifest declares.
    pub license: Option<String>,
    /// Indices into [`Sbom::crates`].
    pub dependencies: Vec<usize>,
    pub root: bool,
}

/// The host's crates, sorted by name, version and source, so the same resolution always
/// gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub crates: Vec<Crate>,
}

impl Sbom {
    /// The crates reachable from `root` in `metadata`'s resolve graph (dev-dependencies
    /// left out), with checksums from `cargo_lock`. A crate reached only through build
    /// dependencies or proc-macros is build-only.
    pub fn from_metadata(metadata: &Metadata, root: &PackageId, cargo_lock: &str) -> Self {
        let packages: HashMap<&PackageId, &cargo_metadata::Package> =
            metadata.packages.iter().map(|p| (&p.id, p)).collect();
        let nodes: HashMap<&PackageId, &cargo_metadata::Node> = metadata
            .resolve
            .iter()
            .flat_map(|r| &r.nodes)
            .map(|n| (&n.id, n))
            .collect();
        let is_proc_macro = |id: &PackageId| {
            packages.get(id).is_some_and(|p| {
                p.targets
                    .iter()
                    .any(|t| t.kind.contains(&TargetKind::ProcMacro))
            })
        };
        // Edges used for building the host at all, and the subset that is linked in.
        let edges = |id: &PackageId, runtime_only: bool| -> Vec<&PackageId> {
            nodes
                .get(id)
                .map(|node| {
                    node.deps
                        .iter()
                        .filter(|dep| {
                            dep.dep_kinds.iter().any(|k| match k.kind {
                                EdgeKind::Normal => !runtime_only || !is_proc_macro(&dep.pkg),
                                EdgeKind::Build => !runtime_only,
                                _ => false,
                            })
                        })
                        .map(|dep| &dep.pkg)
                        .collect()
                })
                .unwrap_or_default()
        };
        let reach = |runtime_only: bool| -> BTreeSet<&PackageId> {
            let mut seen = BTreeSet::from([root]);
            let mut queue = VecDeque::from([root]);
            while let Some(id) = queue.pop_front() {
                for next in edges(id, runtime_only) {
                    if seen.insert(next) {
                        queue.push_back(next);
                    }
                }
            }
            seen
        };
        let all = reach(false);
        let runtime = reach(true);
        let checksums = checksums(cargo_lock);

        let mut ids: Vec<&PackageId> = all
            .iter()
            .copied()
            .filter(|id| packages.contains_key(id))
            .collect();
        let key = |id: &&PackageId| {
            let p = packages[*id];
            (
                p.name.to_string(),
                p.version.clone(),
                p.source.as_ref().map(|s| s.repr.clone()),
            )
        };
        ids.sort_by_key(key);
        let index: HashMap<&PackageId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let crates = ids
            .iter()
            .map(|id| {
                let p = packages[*id];
                let source = p.source.as_ref().map(|s| s.repr.clone());
                let mut dependencies: Vec<usize> = edges(id, false)
                    .into_iter()
                    .filter_map(|dep| index.get(dep).copied())
                    .collect();
                dependencies.sort_unstable();
                dependencies.dedup();
                Crate {
                    name: p.name.to_string(),
                    checksum: checksums
                        .get(&(p.name.to_string(), p.version.to_string()))
                        .cloned(),
                    version: p.version.clone(),
                    source,
                    build_only: !runtime.contains(id),
                    license: p.license.clone(),
                    dependencies,
                    root: *id == root,
                }
            })
            .collect();
        Self { crates }
    }

    /// Names the host (the root, cargo's generated `xbuild-host 0.0.0`) as its distribution,
    /// so the embedded section and the CycloneDX file describe the same thing.
    pub fn name_root(&mut self, name: &str, version: &str) {
        let version = semver::Version::parse(version).unwrap_or(semver::Version::new(0, 0, 0));
        for root in self.crates.iter_mut().filter(|c| c.root) {
            root.name = name.to_owned();
            root.version = version.clone();
        }
    }

    /// cargo-auditable's data model of these crates.
    pub fn version_info(&self) -> VersionInfo {
        VersionInfo {
            packages: self
                .crates
                .iter()
                .map(|c| Package {
                    name: c.name.clone(),
                    version: c.version.clone(),
                    source: auditable_source(c.source.as_deref()),
                    kind: if c.build_only {
                        DependencyKind::Build
                    } else {
                        DependencyKind::Runtime
                    },
                    dependencies: c.dependencies.clone(),
                    root: c.root,
                })
                .collect(),
            // Format 1: proc-macros and their dependencies are recorded as build-time.
            format: 1,
        }
    }

    /// The `.dep-v0` section's bytes: the JSON, zlib-compressed as cargo-auditable does.
    pub fn section_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.version_info()).expect("the SBOM serialises");
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(7));
        encoder.write_all(&json).expect("writing to memory");
        encoder.finish().expect("writing to memory")
    }

    /// CycloneDX 1.5 JSON. `serial` (the build ID) makes the document's serial number, so
    /// the same build gives the same file; `name` and `version` describe the host.
    pub fn cyclonedx(&self, name: &str, version: &str, serial: &str) -> serde_json::Value {
        let reference = |c: &Crate| match auditable_source(c.source.as_deref()) {
            Source::CratesIo => format!("pkg:cargo/{}@{}", c.name, c.version),
            other => format!("{}:{}@{}", String::from(other), c.name, c.version),
        };
        let components: Vec<serde_json::Value> = self
            .crates
            .iter()
            .filter(|c| !c.root)
            .map(|c| {
                let mut component = serde_json::json!({
                    "type": "library",
                    "bom-ref": reference(c),
                    "name": c.name,
                    "version": c.version.to_string(),
                    "scope": if c.build_only { "excluded" } else { "required" },
                });
                if let Some(purl) = purl(c) {
                    component["purl"] = purl.into();
                }
                if let Some(license) = &c.license {
                    component["licenses"] = serde_json::json!([{ "expression": license }]);
                }
                if let Some(checksum) = &c.checksum {
                    component["hashes"] =
                        serde_json::json!([{ "alg": "SHA-256", "content": checksum }]);
                }
                component
            })
            .collect();
        let root_ref = "host";
        let dependencies: Vec<serde_json::Value> = self
            .crates
            .iter()
            .map(|c| {
                let depends: Vec<String> = c
                    .dependencies
                    .iter()
                    .map(|&i| reference(&self.crates[i]))
                    .collect();
                serde_json::json!({
                    "ref": if c.root { root_ref.to_owned() } else { reference(c) },
                    "dependsOn": depends,
                })
            })
            .collect();
        serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": uuid_from(serial),
            "version": 1,
            "metadata": {
                "tools": { "components": [{ "type": "application", "name": "xbuild", "version": crate::VERSION }] },
                "component": { "type": "application", "bom-ref": root_ref, "name": name, "version": version },
            },
            "components": components,
            "dependencies": dependencies,
        })
    }
}

/// sha256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 of a file's contents (read in pieces: hosts are tens of megabytes), in lowercase
/// hex, as manifests and `verify` show it.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A UUID-shaped serial (version 4 and variant bits set) derived from `seed`.
fn uuid_from(seed: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(seed.as_bytes())[..16]
        .try_into()
        .expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn auditable_source(source: Option<&str>) -> Source {
    match source {
        None => Source::Local,
        Some(s)
            if s == "registry+https://github.com/rust-lang/crates.io-index"
                || s == "sparse+https://index.crates.io/" =>
        {
            Source::CratesIo
        }
        Some(s) if s.starts_with("git+") => Source::Git,
        Some(_) => Source::Registry,
    }
}

/// The package URL of a crate (purl-spec's `cargo` type): crates.io's plain, another
/// registry's with its index as `repository_url`, a git crate's with `vcs_url`; a path
/// crate has none (it is nowhere but on the machine that built the host).
fn purl(c: &Crate) -> Option<String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let base = format!("pkg:cargo/{}@{}", c.name, c.version);
    let source = c.source.as_deref()?;
    let qualifier = |key: &str, url: &str| {
        format!(
            "{base}?{key}={}",
            utf8_percent_encode(url, NON_ALPHANUMERIC)
        )
    };
    Some(match auditable_source(Some(source)) {
        Source::CratesIo => base,
        Source::Git => {
            // `git+https://host/repo?rev=x#commit`: the repository, then the commit.
            let url = source.split(['?', '#']).next().unwrap_or(source);
            match source.rsplit_once('#') {
                Some((_, commit)) => qualifier("vcs_url", &format!("{url}@{commit}")),
                None => qualifier("vcs_url", url),
            }
        }
        _ => {
            let index = source
                .strip_prefix("registry+")
                .or_else(|| source.strip_prefix("sparse+").map(|_| source))
                .unwrap_or(source);
            qualifier("repository_url", index)
        }
    })
}

/// `(name, version)` → checksum, from a Cargo.lock.
fn checksums(cargo_lock: &str) -> BTreeMap<(String, String), String> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        version: String,
        checksum: Option<String>,
    }
    toml::from_str::<Lock>(cargo_lock)
        .map(|lock| {
            lock.package
                .into_iter()
                .filter_map(|p| Some(((p.name, p.version), p.checksum?)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sbom {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        Sbom {
            crates: vec![
                Crate {
                    name: "serde".into(),
                    version: v("1.0.0"),
                    source: Some("registry+https://github.com/rust-lang/crates.io-index".into()),
                    checksum: Some("ab".into()),
                    build_only: false,
                    license: Some("MIT OR Apache-2.0".into()),
                    dependencies: vec![],
                    root: false,
                },
                Crate {
                    name: "xbuild-core".into(),
                    version: v("0.1.0"),
                    source: None,
                    checksum: None,
                    build_only: false,
                    license: None,
                    dependencies: vec![0],
                    root: false,
                },
                Crate {
                    name: "xbuild-host".into(),
                    version: v("0.0.0"),
                    source: None,
                    checksum: None,
                    build_only: false,
                    license: None,
                    dependencies: vec![1],
                    root: true,
                },
            ],
        }
    }

    #[test]
    fn the_section_decodes_to_cargo_auditable_json() {
        let bytes = sample().section_bytes();
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(&bytes[..]), &mut json)
            .unwrap();
        let info: VersionInfo = json.parse().unwrap();
        assert_eq!(info, sample().version_info());
        assert!(
            json.contains(
                r#"{"name":"xbuild-core","version":"0.1.0","source":"local","dependencies":[0]}"#
            ),
            "{json}"
        );
        assert_eq!(
            sample().section_bytes(),
            bytes,
            "the same SBOM gives the same bytes"
        );
    }

    #[test]
    fn cyclonedx_lists_components_with_purls_hashes_and_edges() {
        let doc = sample().cyclonedx("web", "1.0.0", "build-id");
        assert_eq!(doc["bomFormat"], "CycloneDX");
        assert_eq!(doc["metadata"]["component"]["name"], "web");
        let components = doc["components"].as_array().unwrap();
        assert_eq!(components.len(), 2);
        assert_eq!(components[0]["purl"], "pkg:cargo/serde@1.0.0");
        assert_eq!(components[0]["hashes"][0]["content"], "ab");
        assert_eq!(components[1]["bom-ref"], "local:xbuild-core@0.1.0");
        assert_eq!(
            doc["dependencies"][2]["dependsOn"][0],
            "local:xbuild-core@0.1.0"
        );
        assert_eq!(doc, sample().cyclonedx("web", "1.0.0", "build-id"));
        let serial = doc["serialNumber"].as_str().unwrap();
        assert_eq!(serial.len(), "urn:uuid:".len() + 36, "{serial}");
        assert_eq!(
            components[0]["licenses"][0]["expression"],
            "MIT OR Apache-2.0"
        );
        assert!(components[1].get("purl").is_none(), "a path crate has none");
    }

    #[test]
    fn crates_of_other_registries_and_git_get_purls_naming_where_they_are() {
        let at = |source: &str| Crate {
            source: Some(source.into()),
            ..sample().crates[0].clone()
        };
        assert_eq!(
            purl(&at("sparse+https://crates.example.com/index/")).unwrap(),
            "pkg:cargo/serde@1.0.0?repository_url=sparse%2Bhttps%3A%2F%2Fcrates%2Eexample%2Ecom%2Findex%2F"
        );
        assert_eq!(
            purl(&at("registry+file:///srv/index")).unwrap(),
            "pkg:cargo/serde@1.0.0?repository_url=file%3A%2F%2F%2Fsrv%2Findex"
        );
        assert_eq!(
            purl(&at("git+https://github.com/a/b?rev=x#0123abc")).unwrap(),
            "pkg:cargo/serde@1.0.0?vcs_url=git%2Bhttps%3A%2F%2Fgithub%2Ecom%2Fa%2Fb%400123abc"
        );
    }

    #[test]
    fn the_root_is_named_as_the_distribution() {
        let mut sbom = sample();
        sbom.name_root("web", "1.2.0");
        let root = sbom.crates.iter().find(|c| c.root).unwrap();
        assert_eq!(
            (root.name.as_str(), root.version.to_string().as_str()),
            ("web", "1.2.0")
        );
    }
}

//! A throwaway crate registry, modelled on cargo's test-support: a per-test root holding a
//! `local-registry` and a `.cargo/config.toml` that serves it as alternative registry
//! `xtest`, while crates.io stays as configured. `Package::new(name, version).publish()`
//! writes the `.crate` and the index line. Builds find the config because they run with the
//! root as working directory, as a user's project config is found from theirs; `TMPDIR`
//! points into the root too, so leftover generated workspaces can be looked for.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const CRATES_IO_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

/// A per-test root: its own registry, temp dir for xbuild, and output dir.
pub struct TestRoot {
    dir: tempfile::TempDir,
    index_url: String,
    /// Names of the crates this root made, to recognise its builds' workspaces.
    crates: std::cell::RefCell<Vec<String>>,
}

impl TestRoot {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xbuild-test-")
            .tempdir()
            .unwrap();
        // A unique URL per test keeps cargo's download cache from serving a crate of the
        // same name and version that another test published with other contents.
        let unique: String = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let index_url = format!("sparse+https://{unique}.invalid/index/");
        let root = Self {
            dir,
            index_url,
            crates: Default::default(),
        };
        std::fs::create_dir_all(root.tmp()).unwrap();
        std::fs::create_dir_all(root.path().join(".cargo")).unwrap();
        root.add_registry("xtest");
        root
    }

    /// Serves another alternative registry, `name`, from its own local registry
    /// (`registry-NAME/`), beside `xtest`.
    pub fn add_registry(&self, name: &str) {
        let dir = self.registry_dir_of(name);
        std::fs::create_dir_all(dir.join("index")).unwrap();
        let url = self.index_url_of(name);
        let mut config = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join(".cargo/config.toml"))
            .unwrap();
        write!(
            config,
            "[registries.{name}]\nindex = \"{url}\"\n\n\
             [source.{name}-remote]\nregistry = \"{url}\"\nreplace-with = \"{name}-local\"\n\n\
             [source.{name}-local]\nlocal-registry = \"{}\"\n\n",
            dir.display(),
        )
        .unwrap();
    }

    fn registry_dir_of(&self, name: &str) -> PathBuf {
        if name == "xtest" {
            self.registry_dir()
        } else {
            self.path().join(format!("registry-{name}"))
        }
    }

    /// The index URL cargo knows registry `name` by (what a lock records as its source).
    pub fn index_url_of(&self, name: &str) -> String {
        if name == "xtest" {
            self.index_url.clone()
        } else {
            self.index_url
                .replace("/index/", &format!("/{name}/index/"))
        }
    }

    /// Publishes a `.crate` file that `cargo package` wrote into registry `registry`, with
    /// the index line cargo's registry would make of its (normalised) manifest.
    pub fn publish_crate_file(&self, registry: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let manifest = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find_map(|mut entry| {
                let path = entry.path().unwrap().into_owned();
                (path.components().count() == 2 && path.ends_with("Cargo.toml")).then(|| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                    text
                })
            })
            .expect("a packaged crate has Cargo.toml");
        let manifest: toml::Table = toml::from_str(&manifest).unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let version = manifest["package"]["version"].as_str().unwrap().to_owned();
        self.crates.borrow_mut().push(name.clone());
        let mut deps = Vec::new();
        let mut add_deps = |table: Option<&toml::Value>, kind: &str, target: Option<&str>| {
            for (key, spec) in table.and_then(|t| t.as_table()).into_iter().flatten() {
                let field = |f: &str| spec.get(f);
                let req = spec
                    .as_str()
                    .or_else(|| field("version").and_then(|v| v.as_str()))
                    .unwrap_or("*");
                let registry = field("registry-index")
                    .and_then(|v| v.as_str())
                    .unwrap_or(CRATES_IO_INDEX);
                let package = field("package").and_then(|v| v.as_str());
                let mut dep = serde_json::json!({
                    "name": package.unwrap_or(key), "req": req,
                    "features": field("features").cloned().unwrap_or(toml::Value::Array(vec![])),
                    "optional": field("optional").and_then(|v| v.as_bool()).unwrap_or(false),
                    "default_features": field("default-features").and_then(|v| v.as_bool()).unwrap_or(true),
                    "target": target, "kind": kind, "registry": registry,
                });
                if package.is_some() {
                    dep["package"] = serde_json::json!(package);
                    dep["name"] = serde_json::json!(key);
                }
                deps.push(dep);
            }
        };
        add_deps(manifest.get("dependencies"), "normal", None);
        add_deps(manifest.get("build-dependencies"), "build", None);
        for (target, tables) in manifest
            .get("target")
            .and_then(|t| t.as_table())
            .into_iter()
            .flatten()
        {
            add_deps(tables.get("dependencies"), "normal", Some(target));
            add_deps(tables.get("build-dependencies"), "build", Some(target));
        }
        let features = manifest
            .get("features")
            .map(|f| serde_json::to_value(f).unwrap())
            .unwrap_or_else(|| serde_json::json!({}));
        let line = serde_json::json!({
            "name": name, "vers": version, "deps": deps, "cksum": sha256_hex(&bytes),
            "features": features, "yanked": false, "links": manifest["package"].get("links"),
        });
        let dir = self.registry_dir_of(registry);
        std::fs::write(dir.join(format!("{name}-{version}.crate")), &bytes).unwrap();
        append_index_line(&dir, &name, &line);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn registry_dir(&self) -> PathBuf {
        self.path().join("registry")
    }

    /// What xbuild gets as `TMPDIR`: `--keep-workdir` moves workspaces here.
    pub fn tmp(&self) -> PathBuf {
        self.path().join("tmp")
    }

    /// Generated workspaces of this root's builds still on disk: kept ones in its temp
    /// directory, and the cache's workspace if it names a crate of this root (other tests
    /// share the cache and may be building in it right now).
    pub fn leftover_workspaces(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.tmp())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("xbuild-")
            })
            .collect();
        let cache_ws = super::xbuild::cache_dir().join("work/host");
        if let Ok(manifest) = std::fs::read_to_string(cache_ws.join("Cargo.toml")) {
            // xbuild's own crates are in every generated workspace; a root that publishes
            // one (to test core skew) cannot tell its workspaces apart by it.
            let own = ["xbuild-core", "xbuild-http", "xbuild-standard"];
            let ours = self
                .crates
                .borrow()
                .iter()
                .filter(|name| !own.contains(&name.as_str()))
                .any(|name| manifest.contains(&format!("\n{name} = ")));
            if ours {
                found.push(cache_ws);
            }
        }
        found
    }

    pub fn package(&self, name: &str, version: &str) -> Package<'_> {
        self.crates.borrow_mut().push(name.to_owned());
        Package {
            root: self,
            registry: "xtest".into(),
            name: name.into(),
            version: version.into(),
            deps: Vec::new(),
            lib: String::new(),
            yanked: false,
            features: Vec::new(),
        }
    }

    /// A crate directory outside any workspace, for `name=path` modules.
    pub fn path_crate(&self, name: &str, manifest_extra: &str, files: &[(&str, &str)]) -> PathBuf {
        self.crates.borrow_mut().push(name.to_owned());
        let dir = self.path().join("crates").join(name);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nxbuild-core = \"0.1\"\nserde = {{ version = \"1\", features = [\"derive\"] }}\n{manifest_extra}"
            ),
        )
        .unwrap();
        for (path, text) in files {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        dir
    }
}

struct Dep {
    name: String,
    req: String,
    /// `None`: the same registry; otherwise the index URL of another one.
    registry: Option<String>,
    features: Vec<String>,
}

pub struct Package<'a> {
    root: &'a TestRoot,
    /// The registry it is published in (`xtest` unless [`Package::in_registry`]).
    registry: String,
    name: String,
    version: String,
    deps: Vec<Dep>,
    lib: String,
    yanked: bool,
    features: Vec<String>,
}

/// The source of a module registering one module with ID `id`.
pub fn module_source(id: &str) -> String {
    format!(
        "#[derive(serde::Deserialize)]\nstruct M {{}}\nimpl xbuild_core::Module for M {{}}\nxbuild_core::register_module!(\"{id}\", M);\n"
    )
}

impl Package<'_> {
    /// Depends on crates.io's xbuild-core (patched by xbuild to its source tree) and serde.
    pub fn xbuild_module(mut self, id: &str) -> Self {
        self = self.crates_io_dep("xbuild-core", "0.1", &[]);
        self = self.crates_io_dep("serde", "1", &["derive"]);
        self.lib = module_source(id);
        self
    }

    pub fn crates_io_dep(mut self, name: &str, req: &str, features: &[&str]) -> Self {
        self.deps.push(Dep {
            name: name.into(),
            req: req.into(),
            registry: Some(CRATES_IO_INDEX.into()),
            features: features.iter().map(|f| f.to_string()).collect(),
        });
        self
    }

    /// A dependency on another crate of this registry.
    pub fn dep(mut self, name: &str, req: &str) -> Self {
        self.deps.push(Dep {
            name: name.into(),
            req: req.into(),
            registry: None,
            features: Vec::new(),
        });
        self
    }

    /// Publishes it in registry `name` (see [`TestRoot::add_registry`]) instead of `xtest`.
    pub fn in_registry(mut self, name: &str) -> Self {
        self.registry = name.into();
        self
    }

    pub fn lib(mut self, source: &str) -> Self {
        self.lib = source.into();
        self
    }

    pub fn yanked(mut self) -> Self {
        self.yanked = true;
        self
    }

    /// Declares an (empty) feature.
    pub fn feature(mut self, name: &str) -> Self {
        self.features.push(name.into());
        self
    }

    fn manifest(&self) -> String {
        let mut text = format!(
            "[package]\nname = \"{}\"\nversion = \"{}\"\nedition = \"2021\"\n\n[dependencies]\n",
            self.name, self.version
        );
        for dep in &self.deps {
            let index = dep
                .registry
                .clone()
                .unwrap_or_else(|| self.root.index_url_of(&self.registry));
            let features: Vec<String> = dep.features.iter().map(|f| format!("\"{f}\"")).collect();
            text.push_str(&format!(
                "{} = {{ version = \"{}\", registry-index = \"{index}\", features = [{}] }}\n",
                dep.name,
                dep.req,
                features.join(", ")
            ));
        }
        if !self.features.is_empty() {
            text.push_str("\n[features]\n");
            for feature in &self.features {
                text.push_str(&format!("{feature} = []\n"));
            }
        }
        text
    }

    fn crate_file(&self) -> Vec<u8> {
        let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let prefix = format!("{}-{}", self.name, self.version);
        for (path, contents) in [
            ("Cargo.toml", self.manifest()),
            ("src/lib.rs", self.lib.clone()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1);
            header.set_cksum();
            archive
                .append_data(&mut header, format!("{prefix}/{path}"), contents.as_bytes())
                .unwrap();
        }
        archive.into_inner().unwrap().finish().unwrap()
    }

    pub fn publish(self) {
        let bytes = self.crate_file();
        let registry = self.root.registry_dir_of(&self.registry);
        std::fs::write(
            registry.join(format!("{}-{}.crate", self.name, self.version)),
            &bytes,
        )
        .unwrap();
        let cksum = sha256_hex(&bytes);
        let deps: Vec<serde_json::Value> = self
            .deps
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name, "req": d.req, "features": d.features, "optional": false,
                    "default_features": true, "target": null, "kind": "normal",
                    "registry": d.registry,
                })
            })
            .collect();
        let features: serde_json::Map<String, serde_json::Value> = self
            .features
            .iter()
            .map(|f| (f.clone(), serde_json::json!([])))
            .collect();
        let line = serde_json::json!({
            "name": self.name, "vers": self.version, "deps": deps, "cksum": cksum,
            "features": features, "yanked": self.yanked, "links": null,
        });
        append_index_line(&registry, &self.name, &line);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn append_index_line(registry: &Path, name: &str, line: &serde_json::Value) {
    let index = registry.join("index").join(index_path(name));
    std::fs::create_dir_all(index.parent().unwrap()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(index)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// Cargo's index layout for a crate name.
fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

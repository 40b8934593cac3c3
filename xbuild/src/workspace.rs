//! The generated workspace: files only, no processes. `Cargo.toml` is built as structured
//! TOML (toml_edit escapes every value), `main.rs` is rendered from `templates/` with
//! identifiers derived from validated crate names only, and the build information is a JSON
//! file the host embeds, so nothing from the command line becomes Rust source.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, value};

use crate::plan::{BuildPlan, PlannedCrate, STANDARD_CRATE, Source};
use crate::spec::{check_crate_name, crate_ident};

const MAIN_TEMPLATE: &str = include_str!("../../templates/main.rs.tmpl");

/// A generated workspace in a temporary directory, removed on drop unless kept.
pub struct Workspace {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    /// The host package's name, unique per generation (FACTS.md: two generated workspaces
    /// with one name can hand back each other's stale binary from a shared cache).
    pub package: String,
}

impl Workspace {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    /// The generated cargo settings; passed with `--config` so they apply wherever cargo
    /// runs from.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(".cargo/config.toml")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join("Cargo.lock")
    }

    /// Leaves the directory on disk and returns its path.
    pub fn keep(mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }

    /// Writes the build information the host embeds (after resolution, when the build ID
    /// is known).
    pub fn write_build_info(&self, info: &xbuild_core::BuildInfo) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(info).expect("build info serializes");
        std::fs::write(self.root.join("src/build_info.json"), json)
    }
}

/// Creates the workspace for `plan` under `parent` (the system temp dir when `None`).
pub fn generate(plan: &BuildPlan, parent: Option<&Path>) -> std::io::Result<Workspace> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("xbuild-");
    let dir = match parent {
        Some(parent) => builder.tempdir_in(parent)?,
        None => builder.tempdir()?,
    };
    let root = dir.path().to_path_buf();
    let package = unique_package_name(&root);
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join(".cargo"))?;
    std::fs::write(
        root.join("Cargo.toml"),
        manifest(plan, &package).to_string(),
    )?;
    std::fs::write(root.join("src/main.rs"), main_rs(plan))?;
    std::fs::write(
        root.join("src/build_info.json"),
        serde_json::to_string(&xbuild_core::BuildInfo::new("unresolved")).expect("serializes"),
    )?;
    std::fs::write(
        root.join(".cargo/config.toml"),
        cargo_config(plan).to_string(),
    )?;
    if let Some(lock) = &plan.locked {
        let text = std::fs::read_to_string(lock)?;
        std::fs::write(
            root.join("Cargo.lock"),
            rename_host_in_lock(&text, &package),
        )?;
    }
    Ok(Workspace {
        dir: Some(dir),
        root,
        package,
    })
}

/// A lock file of an earlier generation names that generation's host package; give it
/// this generation's name so cargo sees nothing to change.
fn rename_host_in_lock(lock: &str, package: &str) -> String {
    let Ok(mut doc) = lock.parse::<DocumentMut>() else {
        return lock.to_owned();
    };
    if let Some(packages) = doc
        .get_mut("package")
        .and_then(|p| p.as_array_of_tables_mut())
    {
        for entry in packages.iter_mut() {
            let is_host = entry
                .get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.starts_with("xbuild-host-"))
                && entry.get("source").is_none();
            if is_host {
                entry.insert("name", value(package));
            }
        }
    }
    doc.to_string()
}

fn unique_package_name(dir: &Path) -> String {
    // The temp dir's random suffix is unique among live dirs; mix in time so names are not
    // reused after a dir is deleted either.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let suffix: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("xbuild-host-{suffix}{:x}", nanos & 0xffff_ffff)
}

/// A module as a dependency of the host. Naming the package explicitly, even as itself,
/// makes the dependency's key the name `main.rs` uses (`use foo_bar as _;`) whatever the
/// crate calls its library target.
fn module_dependency(module: &PlannedCrate) -> InlineTable {
    let mut table = dependency(&module.source, &module.features);
    if !table.contains_key("package") {
        table.insert("package", module.name.as_str().into());
    }
    table
}

fn dependency(source: &Source, features: &[String]) -> InlineTable {
    let mut table = InlineTable::new();
    match source {
        Source::Registry { req, registry } => {
            table.insert("version", req.to_string().into());
            if let Some(registry) = registry {
                table.insert("registry", registry.as_str().into());
            }
        }
        Source::Path { path, req } => {
            table.insert("path", path.to_string_lossy().as_ref().into());
            if let Some(req) = req {
                table.insert("version", req.to_string().into());
            }
        }
        Source::Renamed {
            package,
            req,
            registry,
        } => {
            table.insert("package", package.as_str().into());
            table.insert("version", req.to_string().into());
            if let Some(registry) = registry {
                table.insert("registry", registry.as_str().into());
            }
        }
    }
    if !features.is_empty() {
        table.insert("features", features.iter().collect::<Array>().into());
    }
    table
}

fn path_table(path: &Path) -> InlineTable {
    let mut table = InlineTable::new();
    table.insert("path", path.to_string_lossy().as_ref().into());
    table
}

/// The generated `Cargo.toml`.
pub fn manifest(plan: &BuildPlan, package: &str) -> DocumentMut {
    let mut doc = DocumentMut::new();
    let mut pkg = Table::new();
    pkg.insert("name", value(package));
    pkg.insert("version", value("0.0.0"));
    pkg.insert("edition", value("2024"));
    pkg.insert("publish", value(false));
    doc.insert("package", Item::Table(pkg));

    let mut bin = Table::new();
    bin.insert("name", value(package));
    bin.insert("path", value("src/main.rs"));
    let mut bins = toml_edit::ArrayOfTables::new();
    bins.push(bin);
    doc.insert("bin", Item::ArrayOfTables(bins));

    let mut deps = Table::new();
    deps.insert("xbuild-core", value(plan.core.version.as_str()));
    if plan.standard
        && let Some(standard) = plan.local_crates.iter().find(|c| c.name == STANDARD_CRATE)
    {
        deps.insert(STANDARD_CRATE, value(standard.version.as_str()));
    }
    for module in &plan.modules {
        debug_assert!(check_crate_name(&module.name).is_ok());
        deps.insert(&module.name, value(module_dependency(module)));
    }
    doc.insert("dependencies", Item::Table(deps));

    // Until xbuild's crates are published, they come from its source tree.
    let mut crates_io = Table::new();
    crates_io.insert("xbuild-core", value(path_table(&plan.core.path)));
    for local in &plan.local_crates {
        crates_io.insert(&local.name, value(path_table(&local.path)));
    }
    insert_replacements(&mut crates_io, &plan.replacements);
    let mut patch = Table::new();
    patch.set_implicit(true);
    patch.insert("crates-io", Item::Table(crates_io));
    if let Some(registry) = &plan.registry
        && !plan.replacements.is_empty()
    {
        let mut alt = Table::new();
        insert_replacements(&mut alt, &plan.replacements);
        patch.insert(registry, Item::Table(alt));
    }
    doc.insert("patch", Item::Table(patch));

    let mut profile = Table::new();
    profile.set_implicit(true);
    let mut release = Table::new();
    // Module panics are caught at the call site; that needs unwinding.
    release.insert("panic", value("unwind"));
    profile.insert("release", Item::Table(release));
    doc.insert("profile", Item::Table(profile));

    // An empty [workspace] makes the generated package its own root, never a member of a
    // workspace that happens to enclose the temp dir.
    let mut workspace = Table::new();
    workspace.insert("resolver", value("3"));
    doc.insert("workspace", Item::Table(workspace));
    doc
}

fn insert_replacements(table: &mut Table, replacements: &[PlannedCrate]) {
    for replacement in replacements {
        table.insert(
            &replacement.name,
            value(dependency(&replacement.source, &replacement.features)),
        );
    }
}

/// The generated `main.rs`.
pub fn main_rs(plan: &BuildPlan) -> String {
    let mut names: Vec<&str> = plan.modules.iter().map(|m| m.name.as_str()).collect();
    if plan.standard {
        names.push(STANDARD_CRATE);
    }
    let uses: String = names
        .iter()
        .map(|name| {
            assert!(check_crate_name(name).is_ok(), "unvalidated crate name");
            format!("use {} as _;\n", crate_ident(name))
        })
        .collect();
    MAIN_TEMPLATE
        .replace("{{xbuild_version}}", env!("CARGO_PKG_VERSION"))
        .replace("{{module_uses}}", &uses)
}

/// `.cargo/config.toml`: the target, and static linking flags. Cargo gets it with
/// `--config`, and a kept workspace rebuilds the same with plain `cargo build` run inside it.
pub fn cargo_config(plan: &BuildPlan) -> DocumentMut {
    let mut doc = DocumentMut::new();
    let mut build = Table::new();
    build.insert("target", value(plan.target.as_str()));
    doc.insert("build", Item::Table(build));
    let mut flags: Vec<String> = inherited_rustflags();
    if plan.static_link {
        flags.extend(["-C".into(), "target-feature=+crt-static".into()]);
    }
    if !flags.is_empty() {
        let mut target = Table::new();
        target.set_implicit(true);
        let mut triple = Table::new();
        triple.insert("rustflags", value(flags.iter().collect::<Array>()));
        target.insert(&plan.target, Item::Table(triple));
        doc.insert("target", Item::Table(target));
    }
    doc
}

/// Flags the user set in `RUSTFLAGS`/`CARGO_ENCODED_RUSTFLAGS`; the cargo runner removes
/// those variables (they would replace, not extend, the config's flags) and they are kept here.
pub fn inherited_rustflags() -> Vec<String> {
    if let Ok(encoded) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        return encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
    }
    std::env::var("RUSTFLAGS")
        .map(|flags| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use semver::VersionReq;

    fn plan(modules: Vec<PlannedCrate>) -> BuildPlan {
        let mut plan = crate::plan::tests_support::plan_with(&[]);
        plan.modules = modules;
        plan
    }

    fn module(name: &str, source: Source) -> PlannedCrate {
        PlannedCrate {
            name: name.into(),
            source,
            features: Vec::new(),
        }
    }

    #[test]
    fn manifest_names_every_module_with_its_source() {
        let mut with_features = module(
            "my-mod",
            Source::Registry {
                req: VersionReq::parse("1.2").unwrap(),
                registry: Some("corp".into()),
            },
        );
        with_features.features.push("extra".into());
        let plan = plan(vec![
            with_features,
            module(
                "local",
                Source::Path {
                    path: "/w/a \"quoted\"\ndir".into(),
                    req: None,
                },
            ),
        ]);
        let text = manifest(&plan, "xbuild-host-x").to_string();
        let parsed: toml_edit::DocumentMut = text.parse().expect("valid TOML");
        let dep = &parsed["dependencies"]["my-mod"];
        assert_eq!(dep["version"].as_str(), Some("^1.2"));
        assert_eq!(dep["package"].as_str(), Some("my-mod"));
        assert_eq!(dep["registry"].as_str(), Some("corp"));
        assert_eq!(dep["features"][0].as_str(), Some("extra"));
        // A hostile path stays one string value.
        assert_eq!(
            parsed["dependencies"]["local"]["path"].as_str(),
            Some("/w/a \"quoted\"\ndir")
        );
        assert_eq!(
            parsed["patch"]["crates-io"]["xbuild-core"]["path"].as_str(),
            Some("/src/core")
        );
        assert_eq!(parsed["workspace"]["resolver"].as_str(), Some("3"));
        assert_eq!(parsed["package"]["name"].as_str(), Some("xbuild-host-x"));
    }

    #[test]
    fn main_rs_names_each_crate_by_identifier() {
        let plan = plan(vec![module(
            "my-mod",
            Source::Registry {
                req: VersionReq::STAR,
                registry: None,
            },
        )]);
        let text = main_rs(&plan);
        assert!(text.contains("use my_mod as _;\n"), "{text}");
        assert!(text.contains("xbuild_core::host::main_json(include_str!(\"build_info.json\"))"));
    }

    #[test]
    fn static_builds_set_crt_static_for_the_target_only() {
        let text = cargo_config(&plan(vec![])).to_string();
        let parsed: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(
            parsed["build"]["target"].as_str(),
            Some("x86_64-unknown-linux-gnu")
        );
        let flags = parsed["target"]["x86_64-unknown-linux-gnu"]["rustflags"]
            .as_array()
            .unwrap();
        assert!(
            flags
                .iter()
                .any(|f| f.as_str() == Some("target-feature=+crt-static"))
        );
    }

    #[test]
    fn an_earlier_lock_gets_the_new_host_name() {
        let lock = "version = 4\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n\n[[package]]\nname = \"xbuild-host-old\"\nversion = \"0.0.0\"\ndependencies = [\"serde\"]\n";
        let renamed = rename_host_in_lock(lock, "xbuild-host-new");
        assert!(renamed.contains("name = \"xbuild-host-new\""), "{renamed}");
        assert!(!renamed.contains("xbuild-host-old"));
        assert!(renamed.contains("name = \"serde\""));
    }

    #[test]
    fn package_names_are_unique_and_valid() {
        let a = unique_package_name(Path::new("/tmp/xbuild-AbC123"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = unique_package_name(Path::new("/tmp/xbuild-AbC123"));
        assert_ne!(a, b);
        assert!(check_crate_name(&a).is_ok(), "{a}");
    }
}

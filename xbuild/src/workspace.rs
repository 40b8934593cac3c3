//! The generated workspace: files only, no processes. `Cargo.toml` is built as structured
//! TOML (toml_edit escapes every value), `main.rs` is rendered from `templates/` with
//! identifiers derived from validated crate names only, and the build information is a JSON
//! file the host embeds, so nothing from the command line becomes Rust source.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, value};

use crate::plan::{BuildPlan, CORE_CRATE, Origin, PlannedCrate, STANDARD_CRATE, Source};
use crate::spec::{check_crate_name, crate_ident};

const MAIN_TEMPLATE: &str = include_str!("../templates/main.rs.tmpl");

/// The host package's name, the same in every generated workspace: rustc puts it in symbol
/// names, so a name that varied would make every build's binary different. Generated
/// workspaces share cargo's build directory; the host's fingerprint there covers its
/// dependencies and flags, and its sources are written fresh for every build, so a host of
/// another module set is never mistaken for this one.
pub const HOST_PACKAGE: &str = "xbuild-host";

/// Where machine-specific paths are remapped to in the binary (`--remap-path-prefix`): the
/// xbuild cache (build directory, unpacked crates, the generated workspace) and cargo's home
/// (registry sources). Constants, so the compiled dependencies stay fresh in the cache.
pub const REMAPPED_CACHE: &str = "/xbuild/cache";
pub const REMAPPED_CARGO_HOME: &str = "/xbuild/cargo-home";

/// Folder of the generated workspace holding links to xbuild's own unpacked crates. Inside
/// the workspace, cargo names them by their path relative to it, both in the hash that
/// tells crates apart (`-C metadata`, which orders code in the binary) and in the paths it
/// gives rustc; outside, both would carry the cache's absolute path, and a host built with
/// another cache would differ. Excluded from the workspace's members, so their
/// dev-dependencies are not resolved.
pub const OWN_CRATES_DIR: &str = "xbuild-crates";

/// Folder of the generated workspace holding the stand-ins for `--replace CRATE=OTHER@REQ`:
/// cargo patches a crate only with a package of the same name from another source, so the
/// replacement `OTHER` reaches the graph through a package named `CRATE` that re-exports it.
pub const REPLACEMENTS_DIR: &str = "xbuild-replacements";

/// The host's dependency through which a `--replace CRATE=OTHER@REQ` enters the graph: for
/// `OTHER` = `CRATE`, a pin every semver-compatible user of `CRATE` unifies with; otherwise
/// the replacement, so resolution finds its version and features for the stand-in.
pub fn replacement_key(name: &str) -> String {
    format!("xbuild-replacement-{name}")
}

/// What a stand-in re-exports: the replacement as resolved.
pub struct StandIn<'a> {
    /// The crate replaced, and the version the graph wants of it.
    pub name: &'a str,
    pub version: String,
    /// The replacement, where it comes from, and its features.
    pub source: &'a Source,
    pub replacement_version: String,
    pub features: Vec<String>,
    /// The `[patch]` table for the replaced crate's source (`crates-io` or a registry).
    pub patch_table: String,
}

/// Writes the stand-in package for `stand_in` and patches it into the workspace.
pub fn add_stand_in(ws: &Workspace, stand_in: &StandIn<'_>) -> std::io::Result<()> {
    let dir = ws.root.join(REPLACEMENTS_DIR).join(stand_in.name);
    std::fs::create_dir_all(&dir)?;
    let mut doc = DocumentMut::new();
    let mut pkg = Table::new();
    pkg.insert("name", value(stand_in.name));
    pkg.insert("version", value(&stand_in.version));
    pkg.insert("edition", value("2021"));
    pkg.insert("publish", value(false));
    doc.insert("package", Item::Table(pkg));
    let mut lib = Table::new();
    lib.insert("path", value("lib.rs"));
    doc.insert("lib", Item::Table(lib));
    let Source::Renamed {
        package, registry, ..
    } = stand_in.source
    else {
        unreachable!("stand-ins replace a crate by another crate");
    };
    let mut dependency = InlineTable::new();
    dependency.insert("package", package.as_str().into());
    dependency.insert(
        "version",
        format!("={}", stand_in.replacement_version).into(),
    );
    if let Some(registry) = registry {
        dependency.insert("registry", registry.as_str().into());
    }
    dependency.insert("default-features", false.into());
    let mut deps = Table::new();
    deps.insert("replacement", value(dependency));
    doc.insert("dependencies", Item::Table(deps));
    let mut features = Table::new();
    for feature in &stand_in.features {
        let forwarded = Array::from_iter([format!("replacement/{feature}")]);
        features.insert(feature, value(forwarded));
    }
    doc.insert("features", Item::Table(features));
    std::fs::write(dir.join("Cargo.toml"), doc.to_string())?;
    // Naming the replacement links it, registrations and all (FACTS.md).
    std::fs::write(
        dir.join("lib.rs"),
        "// Generated by xbuild: this crate stands in for the crate replaced with --replace.\npub use replacement::*;\n",
    )?;

    let text = std::fs::read_to_string(ws.manifest_path())?;
    let mut manifest: DocumentMut = text
        .parse()
        .map_err(|e| std::io::Error::other(format!("the generated Cargo.toml: {e}")))?;
    let patch = manifest["patch"]
        .as_table_mut()
        .expect("the generated Cargo.toml has a [patch] table");
    if !patch.contains_key(&stand_in.patch_table) {
        patch.insert(&stand_in.patch_table, Item::Table(Table::new()));
    }
    let link = Path::new(REPLACEMENTS_DIR).join(stand_in.name);
    patch[stand_in.patch_table.as_str()][stand_in.name] = value(path_table(&link));
    std::fs::write(ws.manifest_path(), manifest.to_string())
}

/// The generated workspace, at [`workspace_dir`] in the cache; removed on drop unless kept.
pub struct Workspace {
    root: PathBuf,
    kept: bool,
    /// The host package's name ([`HOST_PACKAGE`]).
    pub package: String,
    cache_root: PathBuf,
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

    /// How `path` reaches the binary (see [`remapped`]).
    pub fn shown_path(&self, path: &Path) -> String {
        remapped(path, &self.root, &self.cache_root)
    }

    /// Leaves the workspace on disk, moved out of the cache's way (the next build reuses
    /// that place) into the temp directory, and returns where it is. The moved workspace
    /// still builds with plain `cargo build`: its paths inside are relative, and the links
    /// to xbuild's own crates point into the cache.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        // Moves the workspace to a fresh name made by `place`.
        let move_to = |place: std::io::Result<tempfile::TempDir>| {
            let dir = place?.keep();
            std::fs::remove_dir(&dir)?;
            std::fs::rename(&self.root, &dir)?;
            Ok::<_, std::io::Error>(dir)
        };
        let in_temp = tempfile::Builder::new().prefix("xbuild-").tempdir();
        // Another file system: keep it beside, in the cache.
        move_to(in_temp)
            .or_else(|_| {
                let parent = self.root.parent().unwrap_or(Path::new("/"));
                move_to(tempfile::Builder::new().prefix("kept-").tempdir_in(parent))
            })
            .unwrap_or_else(|_| self.root.clone())
    }

    /// Writes the build information the host embeds (after resolution, when the build ID
    /// is known).
    /// Writes the SBOM section's bytes that `main.rs` embeds.
    pub fn write_sbom_section(&self, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::write(self.root.join("src/dep-v0.bin"), bytes)
    }

    pub fn write_build_info(&self, info: &xbuild_core::BuildInfo) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(info).expect("build info serializes");
        std::fs::write(self.root.join("src/build_info.json"), json)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Where the generated workspace lives: one place in the cache, the same for every build
/// (they take turns under the cache's lock). Its path reaches the binary (debug info names
/// the directory rustc ran in); in the cache it is remapped like the rest, so no build's
/// temp directory makes its host differ.
pub fn workspace_dir(cache_root: &Path) -> PathBuf {
    cache_root.join("work").join("host")
}

/// Creates the workspace for `plan` at [`workspace_dir`] of the cache at `cache_root`,
/// replacing what an interrupted build may have left there. The caller holds the cache's
/// lock.
pub fn generate(plan: &BuildPlan, cache_root: &Path) -> std::io::Result<Workspace> {
    let root = workspace_dir(cache_root);
    match std::fs::remove_dir_all(&root) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    std::fs::create_dir_all(root.join("src"))?;
    let ws = Workspace {
        root: root.clone(),
        kept: false,
        package: HOST_PACKAGE.to_owned(),
        cache_root: cache_root.to_path_buf(),
    };
    std::fs::create_dir_all(root.join(".cargo"))?;
    std::fs::write(root.join("Cargo.toml"), manifest(plan).to_string())?;
    std::fs::write(root.join("src/main.rs"), main_rs(plan))?;
    std::fs::write(
        root.join("src/build_info.json"),
        serde_json::to_string(&xbuild_core::BuildInfo::new("unresolved")).expect("serializes"),
    )?;
    std::fs::write(root.join("src/dep-v0.bin"), b"")?;
    std::fs::write(
        root.join(".cargo/config.toml"),
        cargo_config(plan, cache_root).to_string(),
    )?;
    for local in std::iter::once(&plan.core).chain(&plan.local_crates) {
        if let Origin::Unpacked { path } = &local.origin {
            std::fs::create_dir_all(root.join(OWN_CRATES_DIR))?;
            std::os::unix::fs::symlink(path, root.join(OWN_CRATES_DIR).join(&local.name))?;
        }
    }
    if let Some(lock) = plan.locked.as_ref().or(plan.previous_lock.as_ref()) {
        std::fs::write(root.join("Cargo.lock"), lock)?;
    }
    Ok(ws)
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
pub fn manifest(plan: &BuildPlan) -> DocumentMut {
    let mut doc = DocumentMut::new();
    let mut pkg = Table::new();
    pkg.insert("name", value(HOST_PACKAGE));
    pkg.insert("version", value("0.0.0"));
    pkg.insert("edition", value("2024"));
    pkg.insert("publish", value(false));
    doc.insert("package", Item::Table(pkg));

    let mut bin = Table::new();
    bin.insert("name", value(HOST_PACKAGE));
    bin.insert("path", value("src/main.rs"));
    let mut bins = toml_edit::ArrayOfTables::new();
    bins.push(bin);
    doc.insert("bin", Item::ArrayOfTables(bins));

    // xbuild's own crates at exactly its own versions: the host is built against the core
    // this xbuild knows.
    let mut deps = Table::new();
    deps.insert(CORE_CRATE, value(format!("={}", plan.core.version)));
    if plan.standard
        && let Some(standard) = plan.local_crates.iter().find(|c| c.name == STANDARD_CRATE)
    {
        deps.insert(STANDARD_CRATE, value(format!("={}", standard.version)));
    }
    for module in &plan.modules {
        debug_assert!(check_crate_name(&module.name).is_ok());
        deps.insert(&module.name, value(module_dependency(module)));
    }
    for replacement in &plan.replacements {
        if matches!(replacement.source, Source::Renamed { .. }) {
            deps.insert(
                &replacement_key(&replacement.name),
                value(dependency(&replacement.source, &replacement.features)),
            );
        }
    }
    doc.insert("dependencies", Item::Table(deps));

    // xbuild's own crates come from the copy it carries (or a source tree), in place of
    // the registry's; module crates depend on them as if they were on crates.io.
    let mut crates_io = Table::new();
    for local in std::iter::once(&plan.core).chain(&plan.local_crates) {
        match &local.origin {
            Origin::Unpacked { .. } => {
                let link = Path::new(OWN_CRATES_DIR).join(&local.name);
                crates_io.insert(&local.name, value(path_table(&link)));
            }
            Origin::Path { path } => {
                crates_io.insert(&local.name, value(path_table(path)));
            }
            Origin::Registry => {}
            Origin::Embedded => {
                unreachable!("embedded crates are unpacked before the workspace is generated")
            }
        }
    }
    insert_replacements(&mut crates_io, &plan.replacements);
    let mut patch = Table::new();
    patch.set_implicit(true);
    patch.insert("crates-io", Item::Table(crates_io));
    // A path replacement stands in for the crate wherever it comes from: crates.io and
    // every alternative registry of the build.
    if plan
        .replacements
        .iter()
        .any(|r| matches!(r.source, Source::Path { .. }))
    {
        for registry in plan.alt_registries() {
            let mut alt = Table::new();
            insert_replacements(&mut alt, &plan.replacements);
            patch.insert(registry, Item::Table(alt));
        }
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
    workspace.insert(
        "exclude",
        value(Array::from_iter([OWN_CRATES_DIR, REPLACEMENTS_DIR])),
    );
    doc.insert("workspace", Item::Table(workspace));
    doc
}

/// `--replace CRATE=PATH` patches; replacements by another crate go through the host's
/// dependencies and stand-ins instead ([`replacement_key`]).
fn insert_replacements(table: &mut Table, replacements: &[PlannedCrate]) {
    for replacement in replacements {
        if !matches!(replacement.source, Source::Path { .. }) {
            continue;
        }
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
pub fn cargo_config(plan: &BuildPlan, cache_root: &Path) -> DocumentMut {
    let mut doc = DocumentMut::new();
    let mut build = Table::new();
    build.insert("target", value(plan.target.as_str()));
    doc.insert("build", Item::Table(build));
    let mut flags: Vec<String> = inherited_rustflags();
    if plan.static_link {
        flags.extend(["-C".into(), "target-feature=+crt-static".into()]);
    }
    flags.extend(remap_flags(cache_root));
    {
        let mut target = Table::new();
        target.set_implicit(true);
        let mut triple = Table::new();
        triple.insert("rustflags", value(flags.iter().collect::<Array>()));
        target.insert(&plan.target, Item::Table(triple));
        doc.insert("target", Item::Table(target));
    }
    doc
}

/// Cargo's home, where registry sources are unpacked.
fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .and_then(|h| std::path::absolute(h).ok())
}

/// `--remap-path-prefix` for the paths every crate may embed (panic locations, `file!()`,
/// debug info): cargo's home (registry sources) and the cache (build directory, unpacked
/// crates, and the generated workspace itself).
pub fn remap_flags(cache_root: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(home) = cargo_home() {
        flags.push(format!(
            "--remap-path-prefix={}={REMAPPED_CARGO_HOME}",
            home.display()
        ));
    }
    flags.push(format!(
        "--remap-path-prefix={}={REMAPPED_CACHE}",
        cache_root.display()
    ));
    flags
}

/// The path a directory reaches the binary as: relative inside the generated workspace
/// `ws_root` (cargo gives rustc relative paths there), else after [`remap_flags`]. What the
/// build ID must cover of a path crate's location, and what build information may embed.
pub fn remapped(path: &Path, ws_root: &Path, cache_root: &Path) -> String {
    if let Ok(inside) = path.strip_prefix(ws_root) {
        return inside.display().to_string();
    }
    let mut pairs: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(home) = cargo_home() {
        pairs.push((home, REMAPPED_CARGO_HOME));
    }
    pairs.push((cache_root.to_path_buf(), REMAPPED_CACHE));
    // rustc applies the last matching prefix; check in that order.
    for (from, to) in pairs.iter().rev() {
        if let Ok(rest) = path.strip_prefix(from) {
            return Path::new(to).join(rest).display().to_string();
        }
    }
    path.display().to_string()
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
        let text = manifest(&plan).to_string();
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
        assert_eq!(parsed["package"]["name"].as_str(), Some("xbuild-host"));
        assert_eq!(
            parsed["dependencies"]["xbuild-core"].as_str(),
            Some("=0.1.0")
        );
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
        assert!(text.contains("xbuild_core::host::main_json(std::str::from_utf8(&BUILD_INFO)"));
    }

    #[test]
    fn static_builds_set_crt_static_for_the_target_only() {
        let text = cargo_config(&plan(vec![]), Path::new("/cache")).to_string();
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
    fn machine_paths_are_remapped_to_constants() {
        let flags = cargo_config(&plan(vec![]), Path::new("/home/u/.cache/xbuild")).to_string();
        assert!(
            flags.contains("--remap-path-prefix=/home/u/.cache/xbuild=/xbuild/cache"),
            "{flags}"
        );
        assert_eq!(
            remapped(
                Path::new("/home/u/.cache/xbuild/src/xbuild-core-0.1.0-ab"),
                Path::new("/tmp/ws"),
                Path::new("/home/u/.cache/xbuild")
            ),
            "/xbuild/cache/src/xbuild-core-0.1.0-ab"
        );
        assert_eq!(
            remapped(
                Path::new("/work/my-mod"),
                Path::new("/tmp/ws"),
                Path::new("/c")
            ),
            "/work/my-mod"
        );
        assert_eq!(
            remapped(
                Path::new("/tmp/ws/xbuild-crates/xbuild-core"),
                Path::new("/tmp/ws"),
                Path::new("/c")
            ),
            "xbuild-crates/xbuild-core"
        );
    }
}

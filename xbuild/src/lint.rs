//! `xbuild lint [PATH]`: what a curated index checks before listing a module crate. Every
//! check runs and every failure is named: the crate's module IDs are valid and inside the
//! namespaces it may use, it registers something (a host built with it passes its
//! selftest), it depends on an xbuild-core this xbuild builds with, nothing disables
//! unwinding (which would defeat the call guard), and it is documented.
//!
//! The naming rule: a crate registers under its own namespace (`[package.metadata.xbuild]
//! namespace`, else its name with `_` for `-`), and in any namespace a direct dependency
//! opens for extension with `[package.metadata.xbuild] open-namespaces` (xbuild-http opens
//! `http.handlers`: handler crates implement its `Handler` trait there). The crate that
//! owns a namespace declares who may extend it; xbuild hard-codes none. An ID another crate
//! of xbuild's index already registers is a warning: one host cannot link both.

use std::path::Path;

use crate::error::UsageError;
pub use crate::verify::Finding;
use crate::verify::{finding, warning};

/// A failed check (for callers outside lint and verify).
pub fn failure(check: &'static str, detail: impl Into<String>) -> Finding {
    finding(check, false, detail)
}

/// The namespace a crate owns when its manifest does not say: its name, lowercase, with
/// `_` for `-` (what `xbuild new` writes and lint assumes).
pub fn default_namespace(crate_name: &str) -> String {
    crate_name.replace('-', "_").to_ascii_lowercase()
}

/// A namespace a dependency opens for other crates' modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenNamespace {
    pub namespace: String,
    /// The dependency that opens it.
    pub owner: String,
}

/// What lint reads of the crate's Cargo.toml.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// `[package.metadata.xbuild] namespace`, else the name with `_` for `-`.
    pub namespace: String,
    /// The xbuild-core dependency, as cargo reads it.
    pub core: CoreDependency,
    doc: toml_edit::DocumentMut,
}

/// The crate's dependency on xbuild-core as cargo reads the manifest (workspace inheritance
/// resolved, patches not applied: what the published crate will ask for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreDependency {
    Missing,
    Declared {
        /// Cargo's form of the requirement (`^0.1`); `*` when none was written.
        req: String,
        /// A path dependency's directory.
        path: Option<std::path::PathBuf>,
        /// A git dependency (cannot be published).
        git: bool,
    },
    /// Cargo could not read the manifest.
    Unreadable(String),
}

/// The xbuild-core dependency of the crate in `dir`, from `cargo metadata --no-deps` (fast:
/// it resolves nothing).
pub fn core_dependency(dir: &Path) -> CoreDependency {
    let manifest = dir.join("Cargo.toml");
    let metadata = match cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
    {
        Ok(metadata) => metadata,
        Err(e) => return CoreDependency::Unreadable(e.to_string()),
    };
    let Some(package) = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == manifest)
    else {
        return CoreDependency::Unreadable(format!(
            "cargo metadata does not list the package of `{}`",
            manifest.display()
        ));
    };
    package
        .dependencies
        .iter()
        .find(|d| {
            d.name == crate::plan::CORE_CRATE && d.kind == cargo_metadata::DependencyKind::Normal
        })
        .map_or(CoreDependency::Missing, |d| CoreDependency::Declared {
            req: d.req.to_string(),
            path: d.path.as_ref().map(|p| p.clone().into_std_path_buf()),
            git: d
                .source
                .as_ref()
                .is_some_and(|s| s.repr.starts_with("git+")),
        })
}

/// Reads the crate's Cargo.toml in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, UsageError> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UsageError::new(format!("cannot read `{}`: {e}", path.display()))
            .help("run it in a module crate, or give its directory")
    })?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| UsageError::new(format!("`{}` is not valid TOML: {e}", path.display())))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| UsageError::new(format!("`{}` has no package name", path.display())))?
        .to_owned();
    let namespace = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("xbuild"))
        .and_then(|x| x.get("namespace"))
        .and_then(|n| n.as_str())
        .map_or_else(|| default_namespace(&name), str::to_owned);
    Ok(Manifest {
        name,
        namespace,
        core: core_dependency(dir),
        doc,
    })
}

/// The checks that read only the crate's files.
pub fn static_checks(dir: &Path, manifest: &Manifest) -> Vec<Finding> {
    let mut findings = Vec::new();
    let doc = &manifest.doc;
    // A compatible core: the requirement must accept the xbuild-core this xbuild builds.
    findings.push(match &manifest.core {
        CoreDependency::Missing => finding("core", false, "no dependency on xbuild-core: a module crate registers through it"),
        CoreDependency::Unreadable(e) => finding("core", false, format!("cargo cannot read the manifest: {e}")),
        CoreDependency::Declared { git: true, .. } => finding("core", false, "xbuild-core is a git dependency, which cannot be published: give a version requirement"),
        CoreDependency::Declared { req, path: Some(_), .. } if req == "*" => finding("core", false, "xbuild-core is a path dependency without a version, which cannot be published: add `version = \"0.1\"` beside the path"),
        CoreDependency::Declared { req, .. } => match semver::VersionReq::parse(req) {
            Ok(parsed) => {
                let core_version = semver::Version::parse(core_version()).expect("a version");
                if parsed.matches(&core_version) {
                    finding("core", true, format!("xbuild-core `{req}` accepts {core_version}, the one this xbuild builds with"))
                } else {
                    finding("core", false, format!("xbuild-core `{req}` does not accept {core_version}, the one this xbuild builds with: hosts would leave the crate's modules out"))
                }
            }
            Err(e) => finding("core", false, format!("xbuild-core requirement `{req}` is invalid: {e}")),
        },
    });
    // Unwinding: the guard catches a module's panic only if it unwinds.
    let aborting: Vec<String> = doc
        .get("profile")
        .and_then(|p| p.as_table_like())
        .map(|profiles| {
            profiles
                .iter()
                .filter(|(_, p)| p.get("panic").and_then(|v| v.as_str()) == Some("abort"))
                .map(|(name, _)| format!("[profile.{name}]"))
                .collect()
        })
        .unwrap_or_default();
    findings.push(if aborting.is_empty() {
        finding("unwinding", true, "no profile sets panic = \"abort\"")
    } else {
        finding(
            "unwinding",
            false,
            format!(
                "{} set panic = \"abort\", which defeats the host's call guard",
                aborting.join(", ")
            ),
        )
    });
    // Docs: what an index shows and what crates.io requires.
    let package = doc.get("package");
    let mut missing = Vec::new();
    if package.and_then(|p| p.get("description")).is_none() {
        missing.push("`description` in Cargo.toml".to_owned());
    }
    if package
        .and_then(|p| p.get("license").or_else(|| p.get("license-file")))
        .is_none()
    {
        missing.push("`license` in Cargo.toml".to_owned());
    }
    if !dir.join("README.md").is_file() {
        missing.push("README.md".to_owned());
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
    if !lib.trim_start().starts_with("//!") {
        missing.push("crate docs (`//!`) at the top of src/lib.rs".to_owned());
    }
    findings.push(if missing.is_empty() {
        finding(
            "docs",
            true,
            "description, license, README.md and crate docs",
        )
    } else {
        finding("docs", false, format!("missing: {}", missing.join(", ")))
    });
    findings
}

/// The xbuild-core version hosts are built with.
fn core_version() -> &'static str {
    crate::embedded::EMBEDDED
        .iter()
        .find(|c| c.name == crate::plan::CORE_CRATE)
        .map_or(crate::VERSION, |c| c.version)
}

/// The checks of a host built with the crate: what `list-modules --json` says the crate
/// registered, and the host's selftest.
pub fn host_checks(host: &Path, manifest: &Manifest, open: &[OpenNamespace]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let listed = std::process::Command::new(host)
        .args(["list-modules", "--json"])
        .env_remove("XBUILD_LOG")
        .output();
    let ids: Vec<String> = match listed {
        Ok(out) if out.status.success() => {
            serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
                .unwrap_or_default()
                .iter()
                .filter(|m| m["crate"] == manifest.name.as_str())
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect()
        }
        Ok(out) => {
            findings.push(finding(
                "registers",
                false,
                format!(
                    "the host cannot start: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
            return findings;
        }
        Err(e) => {
            findings.push(finding(
                "registers",
                false,
                format!("cannot run the host: {e}"),
            ));
            return findings;
        }
    };
    findings.push(namespace_check(&ids, manifest, open));
    findings.extend(index_conflicts(
        &ids,
        &manifest.name,
        &crate::known::known_modules(),
    ));
    let selftest = std::process::Command::new(host)
        .arg("selftest")
        .env_remove("XBUILD_LOG")
        .output();
    let selftest_ok = selftest.as_ref().is_ok_and(|o| o.status.success());
    findings.push(if ids.is_empty() {
        finding(
            "registers",
            false,
            "the crate registers no module (its IDs are not in the host)",
        )
    } else if !selftest_ok {
        let report = selftest
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|e| e.to_string());
        finding(
            "registers",
            false,
            format!("the host's selftest failed: {report}"),
        )
    } else {
        finding(
            "registers",
            true,
            format!(
                "{}: {}",
                xbuild_core::error::counted(ids.len(), "module", "modules"),
                ids.join(", ")
            ),
        )
    });
    findings
}

/// Whether each ID is in the crate's own namespace or one a dependency opens.
fn namespace_check(ids: &[String], manifest: &Manifest, open: &[OpenNamespace]) -> Finding {
    let own = &manifest.namespace;
    let mut extending: Vec<String> = Vec::new();
    let mut outside: Vec<String> = Vec::new();
    for id in ids {
        if id == own || id.starts_with(&format!("{own}.")) {
            continue;
        }
        let namespace = id.rsplit_once('.').map_or("", |(ns, _)| ns);
        match open.iter().find(|o| o.namespace == namespace) {
            Some(o) => extending.push(format!("`{id}` (opened by {})", o.owner)),
            None => outside.push(format!("`{id}`")),
        }
    }
    if outside.is_empty() {
        let mut detail = format!("every ID is under `{own}`");
        if !extending.is_empty() {
            detail = format!(
                "every ID is under `{own}` or a namespace a dependency opens: {}",
                extending.join(", ")
            );
        }
        return finding("namespace", true, detail);
    }
    let opened = if open.is_empty() {
        "no dependency opens a namespace".to_owned()
    } else {
        format!(
            "dependencies open {}",
            open.iter()
                .map(|o| format!("`{}` ({})", o.namespace, o.owner))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    finding(
        "namespace",
        false,
        format!(
            "outside `{own}`: {}; {opened} (a crate registers under its own namespace, set with [package.metadata.xbuild] namespace, or in one a dependency opens with open-namespaces)",
            outside.join(", ")
        ),
    )
}

/// A warning for each ID another crate of the curated index registers.
fn index_conflicts(
    ids: &[String],
    name: &str,
    index: &[crate::known::KnownModule],
) -> Vec<Finding> {
    let mut taken: Vec<String> = Vec::new();
    for id in ids {
        for other in index.iter().filter(|m| m.name != name) {
            if other.ids.contains(id) {
                taken.push(format!("`{id}` (by {})", other.name));
            }
        }
    }
    if taken.is_empty() {
        return Vec::new();
    }
    vec![warning(
        "unique",
        format!(
            "IDs already registered by crates in xbuild's index: {}; a host with both will not start, so choose another name unless this crate replaces that one",
            taken.join(", ")
        ),
    )]
}

/// The namespaces the crate's direct dependencies open for extension, from their
/// `[package.metadata.xbuild] open-namespaces` (read through `cargo metadata`, which
/// resolves the crate as `cargo build` would, patches included).
pub fn open_namespaces(dir: &Path, name: &str) -> Result<Vec<OpenNamespace>, String> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(dir.join("Cargo.toml"))
        .exec()
        .map_err(|e| e.to_string())?;
    let resolve = metadata
        .resolve
        .as_ref()
        .ok_or("cargo metadata resolved nothing")?;
    let root = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == name && p.manifest_path.parent().is_some_and(|d| d == dir))
        .ok_or_else(|| format!("cargo metadata does not list `{name}`"))?;
    let node = resolve
        .nodes
        .iter()
        .find(|n| n.id == root.id)
        .ok_or_else(|| format!("cargo metadata has no dependencies of `{name}`"))?;
    let mut open = Vec::new();
    for dep in &node.deps {
        let normal = dep
            .dep_kinds
            .iter()
            .any(|k| k.kind == cargo_metadata::DependencyKind::Normal);
        let Some(package) = metadata.packages.iter().find(|p| p.id == dep.pkg) else {
            continue;
        };
        if !normal {
            continue;
        }
        let declared = package.metadata["xbuild"]["open-namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str());
        for namespace in declared {
            open.push(OpenNamespace {
                namespace: namespace.to_owned(),
                owner: package.name.to_string(),
            });
        }
    }
    Ok(open)
}

/// The findings as `xbuild lint` prints them.
pub fn render(name: &str, findings: &[Finding]) -> String {
    let mut out = crate::verify::finding_lines(findings, "FAIL");
    let failed: Vec<&str> = findings.iter().filter(|f| !f.ok).map(|f| f.check).collect();
    if failed.is_empty() {
        out += &format!("{:>12} `{name}` is ready to list\n", "Passed");
    } else {
        out += &format!(
            "error: `{name}` fails {}: {}\n",
            xbuild_core::error::counted(failed.len(), "check", "checks"),
            failed.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_with(manifest: &str, lib: &str, readme: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), lib).unwrap();
        if readme {
            std::fs::write(dir.path().join("README.md"), "# m\n").unwrap();
        }
        dir
    }

    #[test]
    fn a_scaffolded_crate_passes_the_static_checks() {
        let files =
            crate::scaffold::files("acme-hello", None, crate::scaffold::Template::Module).unwrap();
        let text = |name: &str| {
            files
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .unwrap()
                .1
                .clone()
        };
        let dir = crate_with(&text("Cargo.toml"), &text("lib.rs"), true);
        let manifest = read_manifest(dir.path()).unwrap();
        assert_eq!(manifest.namespace, "acme_hello");
        let findings = static_checks(dir.path(), &manifest);
        assert!(findings.iter().all(|f| f.ok), "{findings:?}");
    }

    #[test]
    fn each_failure_is_named() {
        let manifest = "[package]\nname = \"m\"\n\n[dependencies]\nxbuild-core = \"9\"\n\n[profile.release]\npanic = \"abort\"\n";
        let dir = crate_with(manifest, "pub fn f() {}\n", false);
        let findings = static_checks(dir.path(), &read_manifest(dir.path()).unwrap());
        let failed: Vec<&str> = findings.iter().filter(|f| !f.ok).map(|f| f.check).collect();
        assert_eq!(failed, ["core", "unwinding", "docs"]);
        let text = render("m", &findings);
        assert!(text.contains("does not accept"), "{text}");
        assert!(
            text.contains("[profile.release] set panic = \"abort\""),
            "{text}"
        );
        assert!(
            text.contains("`description` in Cargo.toml") && text.contains("README.md"),
            "{text}"
        );
        assert!(
            text.contains("error: `m` fails 3 checks: core, unwinding, docs"),
            "{text}"
        );
    }

    #[test]
    fn ids_may_be_in_the_own_namespace_or_one_a_dependency_opens() {
        let dir = crate_with("[package]\nname = \"acme-limit\"\n", "//! d\n", true);
        let manifest = read_manifest(dir.path()).unwrap();
        assert_eq!(manifest.namespace, "acme_limit");
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let open = [OpenNamespace {
            namespace: "http.handlers".into(),
            owner: "xbuild-http".into(),
        }];
        let own = namespace_check(&ids(&["acme_limit", "acme_limit.x.y"]), &manifest, &[]);
        assert!(own.ok, "{own:?}");
        let extending = namespace_check(&ids(&["http.handlers.rate_limit"]), &manifest, &open);
        assert!(extending.ok, "{extending:?}");
        assert!(
            extending.detail.contains("opened by xbuild-http"),
            "{extending:?}"
        );
        // Only the opened namespace itself, not what is below or beside it.
        for id in ["http.handlers.deep.x", "http.rate_limit", "acme_limited.x"] {
            let refused = namespace_check(&ids(&[id]), &manifest, &open);
            assert!(!refused.ok, "{id}");
            assert!(refused.detail.contains(&format!("`{id}`")), "{refused:?}");
            assert!(
                refused.detail.contains("`http.handlers` (xbuild-http)"),
                "{refused:?}"
            );
        }
        let unopened = namespace_check(&ids(&["http.handlers.rate_limit"]), &manifest, &[]);
        assert!(
            unopened.detail.contains("no dependency opens a namespace"),
            "{unopened:?}"
        );
    }

    #[test]
    fn an_id_another_indexed_crate_registers_is_a_warning() {
        let index = crate::known::known_modules();
        let ids = vec!["http.handlers.file_server".to_owned(), "acme.x".to_owned()];
        let found = index_conflicts(&ids, "acme", &index);
        assert_eq!(found.len(), 1);
        assert!(found[0].ok && found[0].warning);
        assert!(
            found[0]
                .detail
                .contains("`http.handlers.file_server` (by xbuild-http)"),
            "{found:?}"
        );
        assert!(index_conflicts(&ids, "xbuild-http", &index).is_empty());
        let text = render("acme", &found);
        assert!(text.contains("warning unique"), "{text}");
        assert!(text.contains("is ready to list"), "{text}");
    }

    #[test]
    fn the_core_dependency_is_read_as_cargo_reads_it() {
        // Inherited from a workspace, with a path beside the version: publishable.
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"m\"]\n[workspace.dependencies]\nxbuild-core = { path = \"core\", version = \"0.1.0\" }\n",
        )
        .unwrap();
        for (dir, name) in [("core", "xbuild-core"), ("m", "m")] {
            std::fs::create_dir_all(root.path().join(dir).join("src")).unwrap();
            std::fs::write(root.path().join(dir).join("src/lib.rs"), "").unwrap();
            let deps = if name == "m" {
                "xbuild-core = { workspace = true }\n"
            } else {
                ""
            };
            std::fs::write(
                root.path().join(dir).join("Cargo.toml"),
                format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\n{deps}"),
            )
            .unwrap();
        }
        let member = root.path().join("m");
        match core_dependency(&member) {
            CoreDependency::Declared { req, path, git } => {
                assert_eq!(req, "^0.1.0");
                assert_eq!(path.unwrap(), root.path().join("core"));
                assert!(!git);
            }
            other => panic!("{other:?}"),
        }
        let findings = static_checks(&member, &read_manifest(&member).unwrap());
        assert!(findings[0].ok, "{findings:?}");

        // A path without a version cannot be published.
        let bare = crate_with(
            "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\nxbuild-core = { path = \"../core\" }\n",
            "//! d\n",
            true,
        );
        let findings = static_checks(bare.path(), &read_manifest(bare.path()).unwrap());
        assert!(!findings[0].ok, "{findings:?}");
        assert!(
            findings[0]
                .detail
                .contains("path dependency without a version"),
            "{findings:?}"
        );
    }
}

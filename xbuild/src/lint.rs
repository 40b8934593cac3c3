//! `xbuild lint [PATH]`: what a curated index checks before listing a module crate. Every
//! check runs and every failure is named: the crate's module IDs are valid and inside its
//! namespace, it registers something (a host built with it passes its selftest), it
//! depends on an xbuild-core this xbuild builds with, nothing disables unwinding (which
//! would defeat the call guard), and it is documented.

use std::path::Path;

use crate::error::UsageError;
pub use crate::verify::Finding;
use crate::verify::finding;

/// What lint reads of the crate's Cargo.toml.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// `[package.metadata.xbuild] namespace`, else the name with `_` for `-`.
    pub namespace: String,
    doc: toml_edit::DocumentMut,
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
        .map_or_else(|| name.replace('-', "_"), str::to_owned);
    Ok(Manifest {
        name,
        namespace,
        doc,
    })
}

/// The checks that read only the crate's files.
pub fn static_checks(dir: &Path, manifest: &Manifest) -> Vec<Finding> {
    let mut findings = Vec::new();
    let doc = &manifest.doc;
    // A compatible core: the requirement must accept the xbuild-core this xbuild builds.
    let core = doc
        .get("dependencies")
        .and_then(|d| d.get(crate::plan::CORE_CRATE));
    let req = core.and_then(|c| {
        c.as_str()
            .or_else(|| c.get("version").and_then(|v| v.as_str()))
    });
    findings.push(match (core, req) {
        (None, _) => finding("core", false, "no dependency on xbuild-core: a module crate registers through it"),
        (Some(_), None) => finding("core", false, "xbuild-core is not a version requirement (a path or git dependency cannot be published)"),
        (Some(_), Some(req)) => match semver::VersionReq::parse(req) {
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
pub fn host_checks(host: &Path, manifest: &Manifest) -> Vec<Finding> {
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
    let prefix = format!("{}.", manifest.namespace);
    let outside: Vec<&String> = ids.iter().filter(|id| !id.starts_with(&prefix)).collect();
    findings.push(if outside.is_empty() {
        finding("namespace", true, format!("every ID is under `{}`", manifest.namespace))
    } else {
        finding(
            "namespace",
            false,
            format!(
                "outside `{}`: {} (set [package.metadata.xbuild] namespace if the crate owns another)",
                manifest.namespace,
                outside.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
            ),
        )
    });
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
            format!("{} module(s): {}", ids.len(), ids.join(", ")),
        )
    });
    findings
}

/// The findings as `xbuild lint` prints them.
pub fn render(name: &str, findings: &[Finding]) -> String {
    let mut out = crate::verify::finding_lines(findings, "FAIL");
    let failed: Vec<&str> = findings.iter().filter(|f| !f.ok).map(|f| f.check).collect();
    if failed.is_empty() {
        out += &format!("{:>12} `{name}` is ready to list\n", "Passed");
    } else {
        out += &format!(
            "error: `{name}` fails {} check(s): {}\n",
            failed.len(),
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
        let files = crate::scaffold::files("acme-hello", None).unwrap();
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
            text.contains("error: `m` fails 3 check(s): core, unwinding, docs"),
            "{text}"
        );
    }
}

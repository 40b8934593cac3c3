//! `xbuild verify HOST`: checks a host binary against the manifest beside it, after it has
//! left the build machine. Every check runs and every mismatch is named; `--rebuild` adds
//! the reproducibility proof: the host rebuilt from the build information and resolution it
//! carries, in a temporary directory, must have the same bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::builder::{self, BuildError, Options};
use crate::cache::Cache;
use crate::cargo::Interrupt;
use crate::error::UsageError;
use crate::events::Reporter;
use crate::manifest::Manifest;
use crate::plan::{BuildPlan, Mode, Toolchain};

/// One check and how it went (of `verify` and of `lint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    /// Passed, but worth a look (shown as `warning`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub detail: String,
}

pub(crate) fn finding(check: &'static str, ok: bool, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        ok,
        warning: false,
        detail: detail.into(),
    }
}

/// A check that passes with something worth a look.
pub(crate) fn warning(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        warning: true,
        ..finding(check, true, detail)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// The manifest's `sizes` against the host: the file's size, and the figures xbuild wrote
/// into the host's sizes section, which must be the manifest's (fitted to the section).
fn sizes(manifest: &Manifest, bytes: &[u8]) -> Finding {
    use xbuild_core::build_info::SIZES_SECTION;
    let section = crate::elf::section(bytes, SIZES_SECTION).ok().flatten();
    let embedded = section.map(|s| String::from_utf8_lossy(s).trim_end().to_owned());
    let Some(sizes) = &manifest.sizes else {
        return match embedded.filter(|text| !text.is_empty()) {
            None => finding("sizes", true, "not measured (the host has no symbol table)"),
            Some(_) => finding(
                "sizes",
                false,
                "the host carries sizes, the manifest has none",
            ),
        };
    };
    if sizes.file_bytes != bytes.len() as u64 {
        return finding(
            "sizes",
            false,
            format!(
                "the host is {} bytes, the manifest's sizes are of a {}-byte file",
                bytes.len(),
                sizes.file_bytes
            ),
        );
    }
    let expected = section.map(|s| String::from_utf8_lossy(&sizes.fitted(s.len())).into_owned());
    match (embedded, expected) {
        (Some(found), Some(expected)) if found != expected => finding(
            "sizes",
            false,
            "the sizes the host carries (`.xbuild-sizes` section) differ from the manifest's",
        ),
        _ => {
            let largest = crate::sizes::largest(sizes, 1);
            finding(
                "sizes",
                true,
                format!(
                    "{} crates measured; largest {}",
                    sizes.crates.len(),
                    largest
                        .first()
                        .map(|(name, bytes)| format!(
                            "{name} ({})",
                            crate::cache::human_size(*bytes)
                        ))
                        .unwrap_or_default()
                ),
            )
        }
    }
}

/// Checks that `host` names a file before its manifest is looked for, so a mistyped host
/// is named as such rather than as a missing manifest.
pub fn check_host_path(host: &Path) -> Result<(), UsageError> {
    match std::fs::metadata(host) {
        Ok(meta) if meta.is_dir() => Err(usage(format!(
            "`{}` is a directory, not a host",
            host.display()
        ))
        .help("give the path of a host binary xbuild built")),
        Ok(_) => Ok(()),
        Err(e) => Err(
            usage(format!("cannot read the host `{}`: {e}", host.display()))
                .help("give the path of a host binary xbuild built"),
        ),
    }
}

/// Reads the manifest at `path`.
pub fn read_manifest(path: &Path) -> Result<Manifest, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!("cannot read the manifest `{}`: {e}", path.display()))
            .help("xbuild writes it beside the host as HOST.manifest.json; pass --manifest PATH if it is elsewhere")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "`{}` is not an xbuild manifest: {e}",
            path.display()
        ))
        .help("give the HOST.manifest.json xbuild wrote")
    })
}

/// Every check of `host` against `manifest`. `run_host` says whether the host can be run
/// here (its target is this machine's), to ask it which modules it registers.
pub fn check(host: &Path, manifest: &Manifest, run_host: bool) -> Result<Vec<Finding>, UsageError> {
    let bytes = std::fs::read(host).map_err(|e| {
        usage(format!("cannot read the host `{}`: {e}", host.display()))
            .help("give the path of a host binary xbuild built")
    })?;
    let mut findings = Vec::new();
    let sha256 = crate::sbom::sha256_hex(&bytes);
    let trusted = sha256 == manifest.sha256;
    findings.push(if trusted {
        finding("sha256", true, sha256)
    } else {
        finding(
            "sha256",
            false,
            format!(
                "the host's sha256 is {sha256}, the manifest says {}",
                manifest.sha256
            ),
        )
    });
    match crate::hostinfo::from_bytes(&bytes) {
        Err(err) => findings.push(finding(
            "build ID",
            false,
            format!("the host {}", err.message),
        )),
        Ok(embedded) => {
            let id = &embedded.info.build_id;
            findings.push(if *id == manifest.build_id {
                finding("build ID", true, id.clone())
            } else {
                finding(
                    "build ID",
                    false,
                    format!(
                        "the host carries build ID {id}, the manifest says {}",
                        manifest.build_id
                    ),
                )
            });
            findings.push(match (&embedded.info.sbom, &embedded.sbom_section) {
                (Some(summary), Some(section)) => {
                    let actual = crate::sbom::sha256_hex(section);
                    if actual == summary.sha256 {
                        finding("sbom", true, format!("{} crates in .dep-v0", summary.crates))
                    } else {
                        finding(
                            "sbom",
                            false,
                            format!("the .dep-v0 section's sha256 is {actual}, the build information says {}", summary.sha256),
                        )
                    }
                }
                _ => finding("sbom", false, "the host has no .dep-v0 section"),
            });
            findings.extend(manifest_fields(manifest, &embedded));
            findings.push(sizes(manifest, &bytes));
            if !run_host {
                // Not runnable here: the crates it was built with, by its own account.
                let embedded_crates: BTreeSet<(String, String)> = embedded
                    .info
                    .modules
                    .iter()
                    .map(|m| (m.name.clone(), m.version.clone()))
                    .collect();
                let missing: Vec<String> = manifest
                    .modules
                    .iter()
                    .filter(|m| {
                        !m.ids.is_empty() || embedded_crates.iter().any(|(n, _)| *n == m.name)
                    })
                    .filter(|m| !embedded_crates.contains(&(m.name.clone(), m.version.clone())))
                    .map(|m| format!("{} {}", m.name, m.version))
                    .collect();
                findings.push(finding(
                    "modules",
                    missing.is_empty(),
                    if missing.is_empty() {
                        format!(
                            "{} module crates as built (not run: another target)",
                            manifest.modules.len()
                        )
                    } else {
                        format!(
                            "not in the host's build information: {}",
                            missing.join(", ")
                        )
                    },
                ));
            }
        }
    }
    if run_host && trusted {
        // What runs is a private copy of the bytes hashed above, so a file swapped after
        // the hash was checked is never run; written once for both questions.
        match PrivateHost::new(&bytes) {
            Ok(copy) => {
                findings.push(registered_modules(&copy, manifest));
                findings.push(reported_build(&copy, manifest));
            }
            Err(e) => findings.push(finding(
                "modules",
                false,
                format!("cannot run the host: {e}"),
            )),
        }
    } else if run_host {
        findings.push(warning(
            "modules",
            "not asked: xbuild never runs a host whose sha256 does not match its manifest",
        ));
    }
    if !manifest.static_link {
        // A manifest that says "dynamic" of a static host misdescribes it too.
        if let Ok(found) = crate::elf::dynamic_dependencies(host)
            && found.is_empty()
        {
            findings.push(finding(
                "static",
                false,
                "the manifest says not static, but the host has no program interpreter and no shared libraries",
            ));
        }
    } else {
        findings.push(match crate::elf::dynamic_dependencies(host) {
            Ok(found) if found.is_empty() => finding(
                "static",
                true,
                "no program interpreter, no shared libraries",
            ),
            Ok(found) => finding(
                "static",
                false,
                format!(
                    "the manifest says static, but it needs {}",
                    found.join(", ")
                ),
            ),
            Err(e) => finding("static", false, e),
        });
    }
    Ok(findings)
}

/// The manifest's fields against what the host carries without being run: its build
/// information (module crates, profile, target) and its SBOM (every crate linked in, so
/// also the core's version, and a check that the build information was not edited apart
/// from the rest of the binary).
fn manifest_fields(manifest: &Manifest, embedded: &crate::hostinfo::HostInfo) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Read as plain JSON: only each package's name and version are needed.
    let sbom: Option<Vec<(String, String)>> = embedded.sbom_section.as_deref().and_then(|bytes| {
        let info: serde_json::Value =
            serde_json::from_reader(flate2::read::ZlibDecoder::new(bytes)).ok()?;
        info["packages"]
            .as_array()?
            .iter()
            .map(|p| {
                Some((
                    p["name"].as_str()?.to_owned(),
                    p["version"].as_str()?.to_owned(),
                ))
            })
            .collect()
    });
    let in_sbom = |name: &str, version: &str| {
        sbom.as_ref()
            .is_some_and(|crates| crates.iter().any(|(n, v)| n == name && v == version))
    };
    let declared = &embedded.info.modules;

    // The module crates: each one the build declared must be in the manifest as built, and
    // each one the manifest adds (a crate that registered modules without being declared)
    // must be linked in at that version.
    let mut problems = Vec::new();
    for module in &manifest.modules {
        match declared.iter().find(|d| d.name == module.name) {
            Some(built) if built.version != module.version => problems.push(format!(
                "{} is version {} in the manifest, {} in the host",
                module.name, module.version, built.version
            )),
            Some(built) if built.source.as_deref().is_some_and(|s| s != module.source) => problems
                .push(format!(
                    "{}'s source is `{}` in the manifest, `{}` in the host",
                    module.name,
                    module.source,
                    built.source.as_deref().unwrap_or_default()
                )),
            Some(_) => {}
            None if in_sbom(&module.name, &module.version) => {}
            None => problems.push(format!(
                "{} {} is in the manifest but not in the host",
                module.name, module.version
            )),
        }
    }
    for built in declared {
        if !manifest.modules.iter().any(|m| m.name == built.name) {
            problems.push(format!(
                "{} {} is in the host but not in the manifest",
                built.name, built.version
            ));
        }
    }
    findings.push(if problems.is_empty() {
        finding(
            "crates",
            true,
            format!(
                "{} module crate{} as the host was built",
                manifest.modules.len(),
                if manifest.modules.len() == 1 { "" } else { "s" }
            ),
        )
    } else {
        finding("crates", false, problems.join("; "))
    });

    // The build information against the SBOM: both are written by the same build, so a
    // module crate at a version the SBOM does not have means one of them was edited.
    if sbom.is_some() {
        let edited: Vec<String> = declared
            .iter()
            .filter(|d| !in_sbom(&d.name, &d.version))
            .map(|d| format!("{} {}", d.name, d.version))
            .collect();
        findings.push(if edited.is_empty() {
            finding("build info", true, "its module crates are the ones linked in")
        } else {
            finding(
                "build info",
                false,
                format!(
                    "the host's build information names {}, which its SBOM does not have: the build information was edited",
                    edited.join(", ")
                ),
            )
        });
        let cores: Vec<&str> = sbom
            .iter()
            .flatten()
            .filter(|(n, _)| n == "xbuild-core")
            .map(|(_, v)| v.as_str())
            .collect();
        findings.push(match cores.as_slice() {
            [core] if *core == manifest.core_version => {
                finding("core", true, format!("xbuild-core {core}"))
            }
            [core] => finding(
                "core",
                false,
                format!(
                    "the manifest says xbuild-core {}, the host links {core}",
                    manifest.core_version
                ),
            ),
            _ => finding(
                "core",
                false,
                format!("the host's SBOM lists xbuild-core {} times", cores.len()),
            ),
        });
    }
    if let Some(profile) = &embedded.info.profile {
        findings.push(field("profile", &manifest.profile, profile));
    }
    if let Some(rebuild) = &embedded.rebuild {
        findings.push(field("target", &manifest.target, &rebuild.target));
    }
    findings
}

/// A manifest field against the host's value.
fn field(check: &'static str, manifest: &str, host: &str) -> Finding {
    if manifest == host {
        finding(check, true, host.to_owned())
    } else {
        finding(
            check,
            false,
            format!("the manifest says `{manifest}`, the host `{host}`"),
        )
    }
}

/// The compiler the host reports it was built with (`build-info --json`) against the
/// manifest's. (The core, target and profile it reports come from the same build
/// information the checks above read from the binary, so they are not reported twice.)
fn reported_build(host: &PrivateHost, manifest: &Manifest) -> Finding {
    let report: serde_json::Value = match host.json("rustc", &["build-info", "--json"]) {
        Ok(report) => report,
        Err(failed) => return failed,
    };
    let rustc = report["rustc"].as_str().unwrap_or("(none)");
    if rustc == manifest.rustc {
        finding("rustc", true, rustc.to_owned())
    } else {
        finding(
            "rustc",
            false,
            format!("the manifest says `{}`, the host `{rustc}`", manifest.rustc),
        )
    }
}

/// The module IDs the host registers (asked with `list-modules --json`) against those the
/// manifest lists.
fn registered_modules(host: &PrivateHost, manifest: &Manifest) -> Finding {
    let listed: Vec<serde_json::Value> = match host.json("modules", &["list-modules", "--json"]) {
        Ok(listed) => serde_json::from_value(listed).unwrap_or_default(),
        Err(failed) => return failed,
    };
    let registered: BTreeSet<(String, String)> = listed
        .iter()
        .filter_map(|m| {
            Some((
                m["crate"].as_str()?.to_owned(),
                m["id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let in_manifest: BTreeSet<(String, String)> = manifest
        .modules
        .iter()
        .flat_map(|m| m.ids.iter().map(|id| (m.name.clone(), id.clone())))
        .collect();
    // Standard modules are registered but only listed when the manifest names their crate.
    let listed_crates: BTreeSet<&str> = manifest.modules.iter().map(|m| m.name.as_str()).collect();
    let unlisted: Vec<String> = registered
        .iter()
        .filter(|(krate, _)| listed_crates.contains(krate.as_str()))
        .filter(|pair| !in_manifest.contains(pair))
        .map(|(krate, id)| format!("{id} ({krate})"))
        .collect();
    let missing: Vec<String> = in_manifest
        .iter()
        .filter(|pair| !registered.contains(pair))
        .map(|(krate, id)| format!("{id} ({krate})"))
        .collect();
    if unlisted.is_empty() && missing.is_empty() {
        finding(
            "modules",
            true,
            format!(
                "{} registered as listed",
                xbuild_core::error::counted(in_manifest.len(), "module ID", "module IDs")
            ),
        )
    } else {
        let mut detail = Vec::new();
        if !missing.is_empty() {
            detail.push(format!("listed but not registered: {}", missing.join(", ")));
        }
        if !unlisted.is_empty() {
            detail.push(format!(
                "registered but not listed: {}",
                unlisted.join(", ")
            ));
        }
        finding("modules", false, detail.join("; "))
    }
}

/// A host's bytes written as a program into an owner-only temporary directory, to run.
struct PrivateHost {
    dir: tempfile::TempDir,
}

impl PrivateHost {
    fn new(bytes: &[u8]) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("xbuild-verify").tempdir()?;
        let copy = dir.path().join("host");
        std::fs::write(&copy, bytes)?;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self { dir })
    }

    /// The JSON the host prints for `args`; a failure is finding `check`, failed.
    fn json(&self, check: &'static str, args: &[&str]) -> Result<serde_json::Value, Finding> {
        let out = std::process::Command::new(self.dir.path().join("host"))
            .args(args)
            .env_remove("XBUILD_LOG")
            .output()
            .map_err(|e| finding(check, false, format!("cannot run the host: {e}")))?;
        if !out.status.success() {
            return Err(finding(
                check,
                false,
                format!(
                    "`{}` failed: {}",
                    args[0],
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
    }
}

/// Rebuilds `host` from the spec and resolution it carries, in a temporary directory with
/// a cache of its own (so every crate is compiled again, nothing is taken from earlier
/// builds), and compares the bytes.
pub fn rebuild(
    host: &Path,
    offline: bool,
    options: &Options,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Finding, BuildError> {
    let embedded = crate::hostinfo::read(host)?;
    let rebuild = embedded.rebuild.ok_or_else(|| {
        usage(format!(
            "`{}` carries no rebuild information",
            host.display()
        ))
        .help("it was built by an older xbuild: rebuild it once with this one")
    })?;
    let dir = tempfile::Builder::new()
        .prefix("xbuild-verify-")
        .tempdir()
        .map_err(builder::io("create a temporary directory"))?;
    let output: PathBuf = dir.path().join(host.file_name().unwrap_or("host".as_ref()));
    let toolchain = Toolchain::probe()?;
    let mode = Mode {
        locked: Some(rebuild.cargo_lock.clone()),
        previous_lock: None,
        offline,
        keep_workdir: false,
    };
    let base = std::path::absolute(".").map_err(builder::io("find the current directory"))?;
    let plan = BuildPlan::from_dist(
        &rebuild.spec,
        Some(&rebuild.target),
        &output,
        &base,
        &toolchain,
        mode,
    )?
    .check()?;
    let cache = Cache::at(dir.path().join("cache"));
    let outcome = builder::build(&plan, &cache, options, reporter, interrupt)?;
    let original = crate::sbom::sha256_file(host)
        .map_err(builder::io(format!("hash `{}`", host.display())))?;
    Ok(if outcome.sha256 == original {
        finding(
            "rebuild",
            true,
            format!("byte-identical (build {})", outcome.build_id),
        )
    } else {
        finding(
            "rebuild",
            false,
            format!(
                "the rebuilt host's sha256 is {}, the host's is {original} (build {} against the host's {})",
                outcome.sha256, outcome.build_id, embedded.info.build_id
            ),
        )
    })
}

/// One line per finding, `failed` marking the ones that are not ok.
pub(crate) fn finding_lines(findings: &[Finding], failed: &str) -> String {
    findings
        .iter()
        .map(|f| {
            let status = match (f.ok, f.warning) {
                (false, _) => failed,
                (true, true) => "warning",
                (true, false) => "ok",
            };
            format!("{status:>12} {:<10} {}\n", f.check, f.detail)
        })
        .collect()
}

/// The findings as `xbuild verify` prints them.
pub fn render(host: &Path, findings: &[Finding]) -> String {
    let mut out = finding_lines(findings, "MISMATCH");
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        out += &format!(
            "{:>12} `{}` matches its manifest\n",
            "Verified",
            host.display()
        );
    } else {
        out += &format!(
            "error: `{}` does not match its manifest: {}: {}\n",
            host.display(),
            xbuild_core::error::counted(failed, "mismatch", "mismatches"),
            findings
                .iter()
                .filter(|f| !f.ok)
                .map(|f| f.check)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

//! The build operation: plan in, host binary and manifest out, progress as events. Each
//! step is a function; the temporary workspace lives exactly as long as `build` runs
//! (unless kept), and the output appears only by an atomic rename at the very end.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cargo_metadata::diagnostic::DiagnosticLevel;
use cargo_metadata::{Message, Metadata, PackageId, TargetKind};

use crate::cargo::{Cargo, CargoError, Interrupt, Line};
use crate::elf;
use crate::events::{Event, Reporter, Step};
use crate::manifest::{self, Manifest, ManifestModule};
use crate::plan::{BuildPlan, UsageError};
use crate::resolve::{self, ResolveError, Resolved};
use crate::workspace::{self, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Cargo(#[from] CargoError),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{culprit} failed to compile (cargo's diagnostics are above)")]
    Compile { culprit: String },
    #[error("the host at `{}` is not static: it needs {}\n  hint: a -sys crate may force dynamic linking; build with --no-static to accept that", .path.display(), .found.join(", "))]
    NotStatic { path: PathBuf, found: Vec<String> },
    #[error("the new host failed its selftest, so `{}` was left as it was:\n{report}\n  hint: fix the modules named above, or pass --skip-selftest to install it anyway", .output.display())]
    Selftest { output: PathBuf, report: String },
}

impl BuildError {
    /// 2 for bad input (flags, specs, crates that do not exist or are not modules), 130 when
    /// interrupted, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Usage(_) | BuildError::Resolve(_) => 2,
            BuildError::Cargo(CargoError::Interrupted) => 130,
            _ => 1,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// What a successful build produced.
#[derive(Debug)]
pub struct Outcome {
    pub output: PathBuf,
    pub manifest: PathBuf,
    pub build_id: String,
    pub sha256: String,
}

/// Runs the whole build for `plan`.
pub fn build(
    plan: &BuildPlan,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let started = Instant::now();
    reporter.report(Event::Plan {
        plan: Box::new(plan.clone()),
    });
    reporter.report(Event::Step {
        step: Step::Generate,
        message: format!(
            "host workspace ({} module crate(s){})",
            plan.modules.len(),
            if plan.standard {
                " + standard modules"
            } else {
                ""
            }
        ),
    });
    let ws = workspace::generate(plan, None)
        .map_err(io("generate the host workspace in the temp directory"))?;
    let result = build_in(plan, &ws, reporter, interrupt);
    if plan.keep_workdir {
        reporter.report(Event::Workdir { path: ws.keep() });
    }
    let outcome = result?;
    reporter.report(Event::Finished {
        output: outcome.output.clone(),
        manifest: outcome.manifest.clone(),
        build_id: outcome.build_id.clone(),
        sha256: outcome.sha256.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(outcome)
}

fn build_in(
    plan: &BuildPlan,
    ws: &Workspace,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let cargo = Cargo::from_env();

    reporter.report(Event::Step {
        step: Step::Resolve,
        message: "dependencies with cargo metadata".into(),
    });
    let metadata = match cargo.metadata(ws, plan, interrupt) {
        Ok(metadata) => metadata,
        Err(CargoError::Failed { stderr, .. })
            if resolve::explain_cargo_failure(&stderr, plan).is_some() =>
        {
            return Err(resolve::explain_cargo_failure(&stderr, plan)
                .expect("checked")
                .into());
        }
        Err(err) => return Err(err.into()),
    };
    let resolved = resolve::check(&metadata, plan, &ws.package)?;
    reporter.report(Event::Resolved {
        packages: resolved.packages,
        modules: resolved.modules.clone(),
    });

    let lock =
        std::fs::read_to_string(ws.lock_path()).map_err(io("read the generated Cargo.lock"))?;
    let path_crates: Vec<&Path> = metadata
        .packages
        .iter()
        .filter(|p| p.source.is_none() && p.name.as_str() != ws.package)
        .filter_map(|p| p.manifest_path.parent().map(|d| d.as_std_path()))
        .collect();
    let build_id = manifest::build_id(
        plan,
        &lock,
        &ws.package,
        &plan.rustc_verbose,
        &path_crates,
        &workspace::inherited_rustflags(),
    );
    let mut info = xbuild_core::BuildInfo::new(build_id.clone());
    info.profile = Some(plan.profile.cargo_name().to_owned());
    info.modules = resolved
        .modules
        .iter()
        .map(|m| xbuild_core::ExpectedCrate {
            name: m.name.clone(),
            version: m.version.clone(),
            source: Some(m.source.clone()),
        })
        .collect();
    ws.write_build_info(&info)
        .map_err(io("write the build information"))?;

    reporter.report(Event::Step {
        step: Step::Compile,
        message: format!(
            "host for {} ({}{})",
            plan.target,
            plan.profile.cargo_name(),
            if plan.static_link { ", static" } else { "" }
        ),
    });
    let binary = compile(plan, ws, &cargo, &metadata, &resolved, reporter, interrupt)?;

    if plan.static_link {
        reporter.report(Event::Step {
            step: Step::CheckStatic,
            message: "the host has no dynamic dependencies".into(),
        });
        let found = elf::dynamic_dependencies(&binary)
            .map_err(|e| io("inspect the built host")(std::io::Error::other(e)))?;
        if !found.is_empty() {
            return Err(BuildError::NotStatic {
                path: binary,
                found,
            });
        }
    }
    interrupt.check()?;
    install(
        plan, &binary, &lock, &build_id, &resolved, reporter, interrupt,
    )
}

fn package_names(metadata: &Metadata) -> HashMap<&PackageId, String> {
    metadata
        .packages
        .iter()
        .map(|p| (&p.id, format!("`{}` {}", p.name.as_str(), p.version)))
        .collect()
}

/// Runs `cargo build`, reporting progress; returns the host binary's path. On failure,
/// cargo's diagnostics have been reported and the error names the crates at fault.
fn compile(
    plan: &BuildPlan,
    ws: &Workspace,
    cargo: &Cargo,
    metadata: &Metadata,
    resolved: &Resolved,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<PathBuf, BuildError> {
    let names = package_names(metadata);
    let total = resolved.packages;
    let mut done = 0;
    let mut binary = None;
    let mut failing: Vec<PackageId> = Vec::new();
    let mut stderr_tail: VecDeque<String> = VecDeque::new();
    let status = cargo.build(ws, plan, interrupt, |line| match line {
        Line::Out(text) => match serde_json::from_str::<Message>(&text) {
            Ok(Message::CompilerArtifact(artifact)) => {
                // Build scripts are extra units; N of M counts crates.
                if artifact.target.kind.contains(&TargetKind::CustomBuild) {
                    return;
                }
                done = (done + 1).min(total);
                if artifact.package_id == resolved.host_id {
                    binary = artifact.executable.map(|p| p.into_std_path_buf());
                }
                let name = artifact.target.name;
                reporter.report(Event::Compiling { done, total, name });
            }
            Ok(Message::CompilerMessage(message)) => {
                let is_error = matches!(
                    message.message.level,
                    DiagnosticLevel::Error | DiagnosticLevel::Ice
                );
                if is_error && !failing.contains(&message.package_id) {
                    failing.push(message.package_id.clone());
                }
                // Errors always; warnings only of module crates (cargo caps the lints of
                // registry crates anyway).
                let shown = is_error || resolved.module_ids.contains(&message.package_id);
                if shown && let Some(rendered) = message.message.rendered {
                    reporter.report(Event::Diagnostic {
                        name: names.get(&message.package_id).cloned().unwrap_or_default(),
                        level: format!("{:?}", message.message.level).to_lowercase(),
                        rendered,
                    });
                }
            }
            _ => {}
        },
        Line::Err(text) => {
            reporter.report(Event::CargoOutput { line: text.clone() });
            if stderr_tail.len() == 40 {
                stderr_tail.pop_front();
            }
            stderr_tail.push_back(text);
        }
    })?;
    if status.success()
        && let Some(binary) = binary
    {
        return Ok(binary);
    }
    if failing.is_empty() {
        // No compiler diagnostics (a linker or cargo failure): cargo's last words say why.
        for line in stderr_tail {
            reporter.report(Event::Diagnostic {
                name: String::new(),
                level: "error".into(),
                rendered: format!("{line}\n"),
            });
        }
    }
    Err(BuildError::Compile {
        culprit: describe_culprits(resolved, &names, &failing),
    })
}

fn describe_culprits(
    resolved: &Resolved,
    names: &HashMap<&PackageId, String>,
    failing: &[PackageId],
) -> String {
    if failing.is_empty() {
        return "the host".into();
    }
    let described: Vec<String> = failing
        .iter()
        .map(|id| {
            let name = names.get(id).cloned().unwrap_or_else(|| id.repr.clone());
            if *id == resolved.host_id {
                "the generated host (a bug in xbuild; rerun with --keep-workdir and report it)"
                    .into()
            } else if resolved.module_ids.contains(id) {
                format!("module crate {name}")
            } else {
                format!("dependency {name}")
            }
        })
        .collect();
    described.join(" and ")
}

fn run_host(binary: &Path, args: &[&str]) -> Result<std::process::Output, BuildError> {
    Command::new(binary)
        .args(args)
        .env_remove("XBUILD_LOG")
        .output()
        .map_err(io(format!("run the new host `{}`", binary.display())))
}

fn install(
    plan: &BuildPlan,
    binary: &Path,
    lock: &str,
    build_id: &str,
    resolved: &Resolved,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let dir = plan
        .output
        .parent()
        .expect("output paths are absolute files");
    // Staged beside the output so the final rename is atomic (same file system).
    let staged = tempfile::Builder::new()
        .prefix(".xbuild-staged-")
        .tempfile_in(dir)
        .map_err(io(format!("create a file in `{}`", dir.display())))?
        .into_temp_path();
    std::fs::copy(binary, &staged)
        .map_err(io(format!("copy the host into `{}`", dir.display())))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
        .map_err(io("make the host executable"))?;

    let runnable = plan.target == plan.host_triple;
    if !plan.skip_selftest {
        reporter.report(Event::Step {
            step: Step::Selftest,
            message: "every module crate registered and instantiates".into(),
        });
        let output = run_host(&staged, &["selftest"])?;
        if !output.status.success() {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return Err(BuildError::Selftest {
                output: plan.output.clone(),
                report: report.trim_end().to_owned(),
            });
        }
    }
    interrupt.check()?;

    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    if runnable {
        let listed = run_host(&staged, &["list-modules", "--json"])?;
        let modules: Vec<serde_json::Value> =
            serde_json::from_slice(&listed.stdout).unwrap_or_default();
        for module in modules {
            if let (Some(krate), Some(id)) = (module["crate"].as_str(), module["id"].as_str()) {
                ids.entry(krate.to_owned()).or_default().push(id.to_owned());
            }
        }
    }
    let sha256 = xbuild_core::build_info::sha256_file(&staged).map_err(io("hash the host"))?;
    let manifest = Manifest {
        build_id: build_id.to_owned(),
        sha256: sha256.clone(),
        core_version: resolved.core_version.clone(),
        rustc: plan.rustc_version().to_owned(),
        target: plan.target.clone(),
        profile: plan.profile.cargo_name().to_owned(),
        modules: resolved
            .modules
            .iter()
            .map(|m| ManifestModule {
                name: m.name.clone(),
                version: m.version.clone(),
                source: m.source.clone(),
                ids: ids.remove(&m.name).unwrap_or_default(),
            })
            .collect(),
    };
    let manifest_path = manifest::manifest_path(&plan.output);
    let manifest_json =
        serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n";
    let staged_manifest = stage_text(dir, &manifest_json)?;
    let lock_path = crate::plan::lock_path(&plan.output);
    let staged_lock = stage_text(dir, lock)?;

    interrupt.check()?;
    reporter.report(Event::Step {
        step: Step::Install,
        message: plan.output.display().to_string(),
    });
    staged
        .persist(&plan.output)
        .map_err(|e| io(format!("move the host to `{}`", plan.output.display()))(e.error))?;
    for (staged, path) in [(staged_manifest, &manifest_path), (staged_lock, &lock_path)] {
        staged
            .persist(path)
            .map_err(|e| io(format!("write `{}`", path.display()))(e.error))?;
    }
    Ok(Outcome {
        output: plan.output.clone(),
        manifest: manifest_path,
        build_id: build_id.to_owned(),
        sha256,
    })
}

/// A readable file beside the output, renamed into place later.
fn stage_text(dir: &Path, text: &str) -> Result<tempfile::TempPath, BuildError> {
    let staged = tempfile::Builder::new()
        .prefix(".xbuild-staged-")
        .tempfile_in(dir)
        .map_err(io(format!("create a file in `{}`", dir.display())))?;
    std::fs::write(staged.path(), text).map_err(io(format!("write into `{}`", dir.display())))?;
    let staged = staged.into_temp_path();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644))
        .map_err(io("make a file readable"))?;
    Ok(staged)
}

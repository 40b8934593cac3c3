//! The build operation: plan in, host binary and manifest out, progress as events. The
//! build of one host is a [`Session`] with a method per step; the temporary workspace lives
//! exactly as long as `build` runs (unless kept), and the output appears only by an atomic
//! rename at the very end.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cargo_metadata::diagnostic::DiagnosticLevel;
use cargo_metadata::{Message, Metadata, PackageId, TargetKind};

use crate::cache::{self, Cache, Entry};
use crate::cargo::{Cargo, CargoError, Interrupt, Line};
use crate::elf;
use crate::events::{Event, Reporter, Step};
use crate::install::{self, Built, Context};
use crate::manifest::{self, PathCrate};
use crate::plan::{BuildPlan, Origin};
use crate::resolve::{self, Resolved};
use crate::sbom::Sbom;
use crate::sizes;
use crate::workspace::{self, Workspace};

pub use crate::build_error::{BuildError, io};
pub use crate::install::Outcome;

/// Runs the whole build for `plan`, using the xbuild cache `cache`.
pub fn build(
    plan: &BuildPlan,
    cache: &Cache,
    options: &Options,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let started = Instant::now();
    reporter.report(Event::Plan {
        plan: Box::new(crate::events::PlanSummary::of(plan)),
    });
    let _lock = lock_cache(cache, reporter)?;
    let plan = &unpack_own_crates(plan, cache)?;
    reporter.report(Event::Step {
        step: Step::Generate,
        message: format!(
            "host workspace ({}{})",
            xbuild_core::error::counted(plan.modules.len(), "module crate", "module crates"),
            if plan.standard {
                " + standard modules"
            } else {
                ""
            }
        ),
    });
    let ws = workspace::generate(plan, cache.root()).map_err(io(format!(
        "generate the host workspace in the xbuild cache `{}`",
        cache.root().display()
    )))?;
    let result = build_in(plan, cache, &ws, options.reuse_hosts, reporter, interrupt);
    if plan.keep_workdir {
        reporter.report(Event::Workdir { path: ws.keep() });
    }
    let outcome = result?;
    let kept: Vec<PathBuf> = std::iter::once(&plan.core)
        .chain(&plan.local_crates)
        .filter_map(|c| c.path().map(Path::to_path_buf))
        .collect();
    let pruned = cache.prune(options.cache_max, &kept);
    if pruned.files > 0 {
        reporter.report(Event::Step {
            step: Step::Prune,
            message: format!(
                "the xbuild cache: removed {} files, {} (the cap is {}, XBUILD_CACHE_MAX)",
                pruned.files,
                cache::human_size(pruned.bytes),
                cache::human_size(options.cache_max)
            ),
        });
    }
    reporter.report(Event::Finished {
        output: outcome.output.clone(),
        manifest: outcome.manifest.clone(),
        sbom: outcome.sbom.clone(),
        build_id: outcome.build_id.clone(),
        sha256: outcome.sha256.clone(),
        cached: outcome.cached,
        sizes: outcome.sizes.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(outcome)
}

/// Resolves `plan` again without compiling (`xbuild update`): `cargo update` of `crates`
/// (every crate when empty) in the generated workspace, starting from the plan's previous
/// resolution, checked as a build's would be. Returns the new Cargo.lock.
pub fn update(
    plan: &BuildPlan,
    crates: &[String],
    cache: &Cache,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<String, BuildError> {
    let _lock = lock_cache(cache, reporter)?;
    let plan = &unpack_own_crates(plan, cache)?;
    let ws = workspace::generate(plan, cache.root()).map_err(io(format!(
        "generate the host workspace in the xbuild cache `{}`",
        cache.root().display()
    )))?;
    let cargo = Cargo::new(cache.build_dir(), reporter.color());
    reporter.report(Event::Step {
        step: Step::Resolve,
        message: format!("`{}` for {} with cargo update", plan.dist.name, plan.target),
    });
    cargo.update(&ws, plan, crates, interrupt)?;
    let metadata = metadata(&cargo, &ws, plan, interrupt)?;
    resolve::check(&metadata, plan, &ws)?;
    std::fs::read_to_string(ws.lock_path()).map_err(io("read the generated Cargo.lock"))
}

/// One xbuild at a time per cache, as cargo does per target directory; waiting is
/// reported.
fn lock_cache(cache: &Cache, reporter: &mut dyn Reporter) -> Result<cache::CacheLock, BuildError> {
    cache
        .lock(|| {
            reporter.report(Event::Step {
                step: Step::Wait,
                message: format!(
                    "for the lock on the xbuild cache `{}`",
                    cache.root().display()
                ),
            })
        })
        .map_err(io(format!(
            "lock the xbuild cache `{}`",
            cache.root().display()
        )))
}

/// Settings of a build that are not part of what is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cap on the cache's size (`XBUILD_CACHE_MAX`).
    pub cache_max: u64,
    /// Take a host with the same build ID from the cache instead of compiling. Off for
    /// `verify --rebuild`, whose point is to compile again.
    pub reuse_hosts: bool,
}

/// The plan with xbuild's embedded crates unpacked into the cache, as paths.
fn unpack_own_crates(plan: &BuildPlan, cache: &Cache) -> Result<BuildPlan, BuildError> {
    let mut plan = plan.clone();
    for local in std::iter::once(&mut plan.core).chain(plan.local_crates.iter_mut()) {
        if local.origin != Origin::Embedded {
            continue;
        }
        let krate = crate::embedded::EMBEDDED
            .iter()
            .find(|c| c.name == local.name)
            .expect("the plan names only crates this binary carries");
        let path = crate::embedded::unpack(&cache.src_dir(), krate).map_err(io(format!(
            "unpack {} {} into the xbuild cache `{}`",
            krate.name,
            krate.version,
            cache.src_dir().display()
        )))?;
        local.origin = Origin::Unpacked { path };
    }
    Ok(plan)
}

fn build_in(
    plan: &BuildPlan,
    cache: &Cache,
    ws: &Workspace,
    reuse_hosts: bool,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let mut session = Session {
        plan,
        cache,
        ws,
        // rustc's diagnostics are coloured only where the reporter shows colour.
        cargo: Cargo::new(cache.build_dir(), reporter.color()),
        reporter,
        interrupt,
    };
    let resolution = session.resolve()?;
    let (binary, entry, cached) = session.host(&resolution, reuse_hosts)?;
    interrupt.check()?;
    session.install(resolution, binary, entry, cached)
}

/// One host's build in its generated workspace, a method per step: [`resolve`](Self::resolve),
/// then [`host`](Self::host) (the cache's, or [`compile`](Self::compile)d,
/// [`check_static`](Self::check_static)ed and [`check`](Self::check)ed now), then
/// [`install`](Self::install).
struct Session<'a> {
    plan: &'a BuildPlan,
    cache: &'a Cache,
    ws: &'a Workspace,
    cargo: Cargo,
    reporter: &'a mut dyn Reporter,
    interrupt: &'a Interrupt,
}

/// What resolving found, which every later step uses.
struct Resolution {
    metadata: Metadata,
    resolved: Resolved,
    /// The generated workspace's Cargo.lock.
    lock: String,
    build_id: String,
    sbom: Sbom,
    sbom_summary: xbuild_core::build_info::SbomSummary,
}

impl Session<'_> {
    fn step(&mut self, step: Step, message: impl Into<String>) {
        self.reporter.report(Event::Step {
            step,
            message: message.into(),
        });
    }

    /// The dependency graph (with stand-ins for replaced crates), checked; the build ID of
    /// the resolution; the SBOM the host will carry, written into the workspace.
    fn resolve(&mut self) -> Result<Resolution, BuildError> {
        let (plan, ws) = (self.plan, self.ws);
        self.step(Step::Resolve, "dependencies with cargo metadata");
        let mut metadata = metadata(&self.cargo, ws, plan, self.interrupt)?;
        let stand_ins = resolve::stand_ins(&metadata, plan)?;
        if !stand_ins.is_empty() {
            for stand_in in &stand_ins {
                workspace::add_stand_in(ws, stand_in)
                    .map_err(io("write a stand-in for a replaced crate"))?;
            }
            metadata = self::metadata(&self.cargo, ws, plan, self.interrupt)?;
            resolve::check_stand_ins(&metadata, &stand_ins)?;
        }
        let resolved = resolve::check(&metadata, plan, ws)?;
        self.reporter.report(Event::Resolved {
            packages: resolved.packages,
            modules: resolved.modules.clone(),
        });

        let lock =
            std::fs::read_to_string(ws.lock_path()).map_err(io("read the generated Cargo.lock"))?;
        let path_crates: Vec<PathCrate<'_>> = metadata
            .packages
            .iter()
            .filter(|p| p.source.is_none() && p.name.as_str() != ws.package)
            .filter_map(|p| p.manifest_path.parent().map(|d| d.as_std_path()))
            .map(|dir| PathCrate {
                dir,
                shown_as: ws.shown_path(dir),
            })
            .collect();
        let build_id = manifest::build_id(
            plan,
            &lock,
            &plan.rustc_verbose,
            &path_crates,
            &workspace::inherited_rustflags(),
        );

        // The SBOM comes from the resolution, before compiling: `main.rs` embeds it.
        let mut sbom = Sbom::from_metadata(&metadata, &resolved.host_id, &lock);
        sbom.name_root(
            &plan.dist.name,
            plan.dist.version.as_deref().unwrap_or("0.0.0"),
        );
        let section = sbom.section_bytes();
        ws.write_sbom_section(&section)
            .map_err(io("write the SBOM section"))?;
        let sbom_summary = xbuild_core::build_info::SbomSummary::new(
            sbom.crates.len(),
            crate::sbom::sha256_hex(&section),
        );
        Ok(Resolution {
            metadata,
            resolved,
            lock,
            build_id,
            sbom,
            sbom_summary,
        })
    }

    /// The host binary for this resolution: the cache's, or compiled, checked, measured
    /// and selftested now (and kept in the cache). Returns it, what the cache keeps of it,
    /// and whether it came from the cache.
    fn host(
        &mut self,
        r: &Resolution,
        reuse_hosts: bool,
    ) -> Result<(PathBuf, Entry, bool), BuildError> {
        let plan = self.plan;
        let wants_selftest = !plan.skip_selftest;
        let hit = self.cache.cached_host(&r.build_id).filter(|_| reuse_hosts);
        if let Some(hit) = hit
            && (hit.entry.selftested || !wants_selftest)
        {
            self.step(
                Step::Fresh,
                format!("host for build {} from the xbuild cache", r.build_id),
            );
            return Ok((hit.binary, hit.entry, true));
        }
        // Checked before minutes of compiling, not found by the linker after them.
        crate::space::ensure(
            self.cache.root(),
            crate::space::COMPILE_NEEDS,
            "compiling a host",
        )?;
        if let Some(dir) = plan.output.parent() {
            crate::space::ensure(dir, crate::space::INSTALL_NEEDS, "installing the host")?;
        }
        let compiling = std::time::SystemTime::now();
        let info = build_info(
            plan,
            &r.resolved,
            &r.build_id,
            &r.lock,
            r.sbom_summary.clone(),
        );
        self.ws
            .write_build_info(&info)
            .map_err(io("write the build information"))?;
        let (binary, rlibs) = self.compile(r)?;
        self.check_static(&binary)?;
        self.interrupt.check()?;
        let binary = record_sizes(&binary, &rlibs, self.ws, &r.metadata)?;
        let entry = self.check(&binary)?;
        self.cache.forget_old_host_artifacts(compiling);
        self.cache
            .store_host(&r.build_id, &binary, &entry)
            .map_err(io(format!(
                "keep the host in the xbuild cache `{}`",
                self.cache.root().display()
            )))?;
        Ok((binary, entry, false))
    }

    /// A static build must load nothing at run time.
    fn check_static(&mut self, binary: &Path) -> Result<(), BuildError> {
        if !self.plan.static_link {
            return Ok(());
        }
        self.step(Step::CheckStatic, "the host has no dynamic dependencies");
        let found = elf::dynamic_dependencies(binary)
            .map_err(|e| io("inspect the built host")(std::io::Error::other(e)))?;
        if !found.is_empty() {
            return Err(BuildError::NotStatic {
                path: binary.to_path_buf(),
                found,
            });
        }
        Ok(())
    }

    /// The new host run here (when it is for this machine): it must start (read its
    /// registry), and pass its selftest unless the plan skips it. Returns what the cache
    /// keeps of it: the module IDs it registered, whether it was selftested.
    fn check(&mut self, binary: &Path) -> Result<Entry, BuildError> {
        let plan = self.plan;
        let mut entry = Entry::default();
        if plan.target == plan.host_triple {
            // Reading the registry is what every host command does first: a host that
            // fails here cannot start at all, whatever the selftest would say.
            let listed = run_host(binary, &["list-modules", "--json"])?;
            if !listed.status.success() {
                return Err(BuildError::CannotStart {
                    output: plan.output.clone(),
                    report: String::from_utf8_lossy(&listed.stderr)
                        .trim_end()
                        .to_owned(),
                });
            }
            let modules: Vec<serde_json::Value> =
                serde_json::from_slice(&listed.stdout).unwrap_or_default();
            for module in modules {
                if let (Some(krate), Some(id)) = (module["crate"].as_str(), module["id"].as_str()) {
                    entry.ids.push((krate.to_owned(), id.to_owned()));
                }
            }
        }
        if !plan.skip_selftest {
            self.step(
                Step::Selftest,
                "every module crate registered and instantiates",
            );
            let output = run_host(binary, &["selftest"])?;
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
            entry.selftested = true;
        }
        Ok(entry)
    }

    /// The host, its manifest and SBOM moved to the output, all or nothing.
    fn install(
        &mut self,
        r: Resolution,
        binary: PathBuf,
        entry: Entry,
        cached: bool,
    ) -> Result<Outcome, BuildError> {
        let Resolution {
            metadata,
            resolved,
            lock,
            build_id,
            sbom,
            ..
        } = r;
        let built = Built {
            binary,
            entry,
            cached,
            build_id,
            lock,
            sbom,
        };
        let context = Context {
            resolved: &resolved,
            metadata: &metadata,
            ws: self.ws,
        };
        install::install(self.plan, built, &context, self.reporter, self.interrupt)
    }

    /// Runs `cargo build`, reporting progress; returns the host binary's path and every crate's
    /// rlib (package name, path). On failure, cargo's diagnostics have been reported and the
    /// error names the crates at fault.
    fn compile(&mut self, r: &Resolution) -> Result<(PathBuf, Vec<(String, PathBuf)>), BuildError> {
        let plan = self.plan;
        self.step(
            Step::Compile,
            format!(
                "host for {} ({}{})",
                plan.target,
                plan.profile.cargo_name(),
                if plan.static_link { ", static" } else { "" }
            ),
        );
        let (metadata, resolved) = (&r.metadata, &r.resolved);
        let Session {
            ws,
            cargo,
            reporter,
            interrupt,
            ..
        } = self;
        let names = package_names(metadata);
        let mut rlibs = Vec::new();
        let packages: HashMap<&PackageId, &cargo_metadata::Package> =
            metadata.packages.iter().map(|p| (&p.id, p)).collect();
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
                        binary = artifact.executable.clone().map(|p| p.into_std_path_buf());
                    }
                    if let Some(package) = packages.get(&artifact.package_id) {
                        rlibs.extend(
                            artifact
                                .filenames
                                .iter()
                                .filter(|f| f.extension() == Some("rlib"))
                                .map(|f| (package.name.to_string(), f.clone().into_std_path_buf())),
                        );
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
                    if shown {
                        let diagnostic = message.message;
                        let primary = diagnostic.spans.iter().find(|s| s.is_primary);
                        let package = packages.get(&message.package_id);
                        reporter.report(Event::Diagnostic {
                            name: package.map(|p| p.name.to_string()).unwrap_or_default(),
                            version: package.map(|p| p.version.to_string()),
                            level: format!("{:?}", diagnostic.level).to_lowercase(),
                            message: diagnostic.message,
                            file: primary.map(|s| s.file_name.clone()),
                            line: primary.map(|s| s.line_start),
                            column: primary.map(|s| s.column_start),
                            rendered: diagnostic.rendered.unwrap_or_default(),
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
            return Ok((binary, rlibs));
        }
        if failing.is_empty() {
            // No compiler diagnostics (a linker or cargo failure): cargo's last words say why.
            for line in stderr_tail {
                reporter.report(Event::Diagnostic {
                    name: String::new(),
                    version: None,
                    level: "error".into(),
                    message: line.clone(),
                    file: None,
                    line: None,
                    column: None,
                    rendered: format!("{line}\n"),
                });
            }
        }
        Err(BuildError::Compile {
            culprit: describe_culprits(resolved, &names, &failing),
        })
    }
}

/// `cargo metadata` of the workspace; a resolution failure about what the user asked for
/// becomes a [`ResolveError`] that says so.
fn metadata(
    cargo: &Cargo,
    ws: &Workspace,
    plan: &BuildPlan,
    interrupt: &Interrupt,
) -> Result<Metadata, BuildError> {
    cargo.metadata(ws, plan, interrupt).map_err(|err| {
        if let CargoError::Failed { stderr, .. } = &err
            && let Some(explained) = resolve::explain_cargo_failure(stderr, plan)
        {
            return explained.into();
        }
        err.into()
    })
}

/// What the host embeds about its build: the build ID, module crates, distribution, SBOM
/// summary, and what `xbuild build --from` and `verify --rebuild` need to build it again.
fn build_info(
    plan: &BuildPlan,
    resolved: &Resolved,
    build_id: &str,
    lock: &str,
    sbom: xbuild_core::build_info::SbomSummary,
) -> xbuild_core::BuildInfo {
    let mut info = xbuild_core::BuildInfo::new(build_id);
    info.profile = Some(plan.profile.cargo_name().to_owned());
    info.modules = resolved
        .modules
        .iter()
        .map(|m| {
            xbuild_core::build_info::ExpectedCrate::new(&m.name, &m.version, Some(m.source.clone()))
        })
        .collect();
    let dist = plan.rebuild_dist();
    // A build from flags names no distribution of its own.
    let named = dist.name != crate::specfile::FLAGS_DIST
        || dist.version.is_some()
        || dist.description.is_some();
    info.distribution = named.then(|| {
        let mut shown = xbuild_core::build_info::Distribution::new(&dist.name);
        shown.version = dist.version.clone();
        shown.description = dist.description.clone();
        shown
    });
    info.sbom = Some(sbom);
    info.rebuild = Some(
        serde_json::to_value(crate::hostinfo::Rebuild {
            xbuild: crate::VERSION.to_owned(),
            target: plan.target.clone(),
            spec: dist,
            cargo_lock: lock.to_owned(),
        })
        .expect("serialises"),
    );
    info
}

/// A copy of the host `binary` with what each crate adds written into it (the section
/// xbuild-core reserves), so the host's `build-info` can tell. The copy, not cargo's
/// output, is patched: cargo would take a changed file for its own on the next build.
fn record_sizes(
    binary: &Path,
    rlibs: &[(String, PathBuf)],
    ws: &Workspace,
    metadata: &Metadata,
) -> Result<PathBuf, BuildError> {
    let mut bytes = std::fs::read(binary).map_err(io("read the built host"))?;
    let names = sizes::CrateNames::from_metadata(metadata);
    let Ok(sizes) = sizes::measure(&bytes, &names, &sizes::Definers::from_rlibs(rlibs)) else {
        // A stripped host has no symbols to measure; the manifest says so.
        return Ok(binary.to_path_buf());
    };
    match sizes::write_into(&mut bytes, &sizes) {
        Ok(true) => {}
        // A core without the section (older than this xbuild), or an odd ELF file: the
        // host just does not know its sizes.
        Ok(false) | Err(_) => return Ok(binary.to_path_buf()),
    }
    let dir = ws.root().join("measured");
    std::fs::create_dir_all(&dir).map_err(io("create a folder in the host workspace"))?;
    let copy = dir.join(binary.file_name().unwrap_or("host".as_ref()));
    std::fs::write(&copy, &bytes).map_err(io("write the measured host"))?;
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io("make the measured host executable"))?;
    Ok(copy)
}

fn package_names(metadata: &Metadata) -> HashMap<&PackageId, String> {
    metadata
        .packages
        .iter()
        .map(|p| (&p.id, format!("`{}` {}", p.name.as_str(), p.version)))
        .collect()
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

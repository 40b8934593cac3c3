//! Builds as the commands ask for them: the distributions of a spec file (`-f`), one host
//! described by flags, or one host from an existing host (`--from`). Each becomes one or
//! more [`BuildPlan`]s, all planned and checked before the first compiles; they are built
//! in turn, and the lock file is written once, at the end.

use std::path::{Path, PathBuf};

use crate::builder::{self, BuildError, Options, Outcome};
use crate::cache::Cache;
use crate::cargo::Interrupt;
use crate::error::UsageError;
use crate::events::{Event, Reporter, Step};
use crate::lockfile::{self, LockFile, LockedDist};
use crate::plan::{BuildPlan, Mode, Toolchain};
use crate::specfile::{DistFlags, Distribution, SPEC_FILE, SpecFile};

/// What `xbuild build` is asked for, as plain values (the command's flags, interpreted).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub source: BuildSource,
    /// The lock file (default: beside the spec, or beside the output).
    pub lockfile: Option<PathBuf>,
    /// Build exactly the locked resolution.
    pub locked: bool,
    pub offline: bool,
    pub keep_workdir: bool,
}

/// Where a build's distributions come from.
#[derive(Debug, Clone)]
pub enum BuildSource {
    /// The distributions of a spec file (all when `dists` is empty), with the settings the
    /// command line adds to each.
    Spec {
        file: PathBuf,
        dists: Vec<String>,
        /// Only this one of each distribution's targets.
        target: Option<String>,
        sbom: bool,
        skip_selftest: bool,
        max_size: Option<String>,
    },
    /// One host described by flags.
    Flags(DistFlags),
    /// An existing host's distribution, changed by flags; `upgrade` resolves afresh
    /// instead of keeping its versions.
    FromHost {
        host: PathBuf,
        flags: DistFlags,
        upgrade: bool,
    },
}

impl Default for BuildSource {
    fn default() -> Self {
        BuildSource::Flags(DistFlags::default())
    }
}

/// What `xbuild update` is asked for.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// The spec file (default: ./xbuild.toml).
    pub file: Option<PathBuf>,
    /// Only these distributions (all when empty).
    pub dists: Vec<String>,
    pub lockfile: Option<PathBuf>,
    /// Only these crates (and what they need); all when empty.
    pub crates: Vec<String>,
    pub offline: bool,
}

/// A dev host for the module crate in a directory (`xbuild run`, `xbuild lint`).
#[derive(Debug, Clone, Default)]
pub struct DevHost {
    /// Where to look for the crate (it may be a parent of this).
    pub path: Option<PathBuf>,
    /// More module crates (`--with`).
    pub with: Vec<String>,
    pub no_standard: bool,
    /// A release build instead of a dev one.
    pub release: bool,
    pub registry: Option<String>,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// What a command builds: distributions, where their relative paths start, and the lock.
struct Builds {
    dists: Vec<Distribution>,
    base: PathBuf,
    lock_path: PathBuf,
    /// The spec's distribution names: lock entries of others are dropped. `None` for flags,
    /// whose lock keeps what it had.
    spec_names: Option<Vec<String>>,
    /// `--from`: the host's own resolution, to start from.
    from_lock: Option<String>,
    /// `-f` with `--target`: only this one of each distribution's targets (a distribution
    /// listing none is built for it).
    only_target: Option<String>,
}

fn current_dir() -> Result<PathBuf, UsageError> {
    std::path::absolute(".").map_err(|e| usage(format!("cannot find the current directory: {e}")))
}

/// The spec file's directory, absolute.
fn spec_base(file: &Path) -> Result<PathBuf, UsageError> {
    let absolute = std::path::absolute(file)
        .map_err(|e| usage(format!("invalid spec file path `{}`: {e}", file.display())))?;
    Ok(absolute.parent().unwrap_or(Path::new("/")).to_path_buf())
}

fn from_spec(file: &Path, names: &[String], lockfile: Option<&Path>) -> Result<Builds, UsageError> {
    let spec = SpecFile::read(file)?;
    let dists = spec.select(names)?.into_iter().cloned().collect();
    Ok(Builds {
        dists,
        ..spec_builds(&spec, file, lockfile)?
    })
}

/// [`Builds`] of no distribution yet, for the spec file at `file`.
fn spec_builds(
    spec: &SpecFile,
    file: &Path,
    lockfile: Option<&Path>,
) -> Result<Builds, UsageError> {
    let base = spec_base(file)?;
    Ok(Builds {
        dists: Vec::new(),
        lock_path: lockfile.map_or_else(|| base.join("xbuild.lock"), Path::to_path_buf),
        base,
        spec_names: Some(spec.dists.iter().map(|d| d.name.clone()).collect()),
        from_lock: None,
        only_target: None,
    })
}

fn what_to_build(request: &BuildRequest) -> Result<Builds, UsageError> {
    let (flags, from) = match &request.source {
        BuildSource::Spec {
            file,
            dists,
            target,
            sbom,
            skip_selftest,
            max_size,
        } => {
            let mut builds = from_spec(file, dists, request.lockfile.as_deref())?;
            for dist in &mut builds.dists {
                dist.sbom |= sbom;
                dist.selftest &= !skip_selftest;
                if max_size.is_some() {
                    dist.max_size = max_size.clone();
                }
                if let Some(target) = target
                    && !dist.targets.is_empty()
                    && !dist.targets.contains(target)
                {
                    return Err(usage(format!(
                        "--target `{target}`: distribution `{}` does not list it in `targets`",
                        dist.name
                    ))
                    .help(format!(
                        "it lists {}; add the target to the spec, or pick distributions with --dist",
                        dist.targets.join(", ")
                    )));
                }
            }
            builds.only_target = target.clone();
            return Ok(builds);
        }
        BuildSource::Flags(flags) => (flags, None),
        BuildSource::FromHost {
            host,
            flags,
            upgrade,
        } => (flags, Some((host, *upgrade))),
    };
    let base = current_dir()?;
    let (dist, from_lock) = match from {
        Some((host, upgrade)) => {
            let info = crate::hostinfo::read(host)?;
            let Some(rebuild) = info.rebuild else {
                return Err(usage(format!(
                    "`{}` carries no rebuild information",
                    host.display()
                ))
                .help("it was built by an older xbuild: rebuild it once with this one"));
            };
            let dist = dist_from_host(rebuild.spec, rebuild.target, flags, upgrade)?;
            (dist, (!upgrade).then_some(rebuild.cargo_lock))
        }
        None => (Distribution::from_args(flags)?, None),
    };
    let output = base.join(dist.output.as_deref().unwrap_or(Path::new("host")));
    Ok(Builds {
        dists: vec![dist],
        lock_path: request
            .lockfile
            .clone()
            .unwrap_or_else(|| lockfile::beside(&output)),
        base,
        spec_names: None,
        from_lock,
        only_target: None,
    })
}

/// The plans of `builds`, each checked. With `locked`, every one must have an entry in
/// the lock for the same distribution, or the build is refused naming what changed.
fn plans(
    builds: &Builds,
    lock: Option<&LockFile>,
    locked: bool,
    mode: &Mode,
    toolchain: &Toolchain,
) -> Result<Vec<BuildPlan>, UsageError> {
    if locked && lock.is_none() {
        let shown = builds.lock_path.display();
        return Err(usage(format!(
            "--locked needs the lock file of a previous build at `{shown}`, and there is none"
        ))
        .help("build once without --locked; xbuild writes it"));
    }
    let mut plans = Vec::new();
    for dist in &builds.dists {
        let several = dist.targets.len() > 1;
        let targets: Vec<Option<&str>> = match (&builds.only_target, dist.targets.is_empty()) {
            (Some(only), _) => vec![Some(only.as_str())],
            (None, true) => vec![None],
            (None, false) => dist.targets.iter().map(|t| Some(t.as_str())).collect(),
        };
        for target in targets {
            let target_name = target.unwrap_or(&toolchain.host_triple);
            let output = dist.output_for(&builds.base, target_name, several);
            let entry = lock.and_then(|l| l.find(&dist.name, target_name));
            let mut mode = mode.clone();
            mode.previous_lock = builds
                .from_lock
                .clone()
                .or_else(|| entry.map(|e| e.cargo_lock.clone()))
                .or_else(|| lock.and_then(|l| l.legacy.clone()));
            let from_lock_file = builds.from_lock.is_none() && mode.previous_lock.is_some();
            let mut plan =
                BuildPlan::from_dist(dist, target, &output, &builds.base, toolchain, mode)?;
            if from_lock_file {
                plan.lock_file = Some(builds.lock_path.clone());
            }
            // A spec's outputs default to `dist/`, which a fresh checkout does not have.
            if builds.spec_names.is_some()
                && let Some(dir) = output.parent()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    usage(format!(
                        "cannot create `{}` for distribution `{}`: {e}",
                        dir.display(),
                        dist.name
                    ))
                    .help("set `output` in the spec to a path you can write to")
                })?;
            }
            if locked {
                let Some(entry) = entry else {
                    return Err(usage(format!(
                        "--locked: the lock file `{}` has no resolution for distribution `{}` on {target_name}",
                        builds.lock_path.display(),
                        dist.name
                    ))
                    .help("build without --locked to resolve it and write the lock"));
                };
                let changes = lockfile::spec_changes(&entry.spec, &plan.embedded_dist());
                if !changes.is_empty() {
                    return Err(usage(format!(
                        "--locked: distribution `{}` changed since the lock file `{}` was written: {}",
                        dist.name,
                        builds.lock_path.display(),
                        changes.join("; ")
                    ))
                    .help("build without --locked (or run `xbuild update`) to resolve it again"));
                }
                plan.locked = Some(entry.cargo_lock.clone());
            }
            plans.push(plan.check()?);
        }
    }
    Ok(plans)
}

/// The lock after `done` (plans with their new resolutions) on top of `previous`.
fn updated_lock(
    previous: Option<LockFile>,
    done: &[(&BuildPlan, String)],
    spec_names: Option<&[String]>,
) -> LockFile {
    let mut lock = previous.unwrap_or_default();
    for (plan, cargo_lock) in done {
        lock.set(LockedDist {
            name: plan.dist.name.clone(),
            target: plan.target.clone(),
            cargo_lock: cargo_lock.clone(),
            spec: plan.embedded_dist(),
        });
    }
    if let Some(names) = spec_names {
        lock.retain(|entry| names.contains(&entry.name));
    }
    lock
}

fn write_lock(lock: &LockFile, path: &Path) -> Result<bool, BuildError> {
    lock.write(path).map_err(builder::io(format!(
        "write the lock file `{}`",
        path.display()
    )))
}

/// `xbuild matrix`: each distribution of the spec at `file` (or of `names`) on each of its
/// targets (this machine's when it lists none), with the output path relative to the spec's
/// directory, as `{"include": [...]}`.
pub fn matrix(file: &Path, names: &[String]) -> Result<serde_json::Value, UsageError> {
    let builds = from_spec(file, names, None)?;
    let here = Toolchain::probe()?.host_triple;
    let mut include = Vec::new();
    for dist in &builds.dists {
        let several = dist.targets.len() > 1;
        let targets = if dist.targets.is_empty() {
            vec![here.clone()]
        } else {
            dist.targets.clone()
        };
        for target in targets {
            let output = dist.output_for(&builds.base, &target, several);
            let output = output.strip_prefix(&builds.base).unwrap_or(&output);
            include.push(serde_json::json!({
                "dist": dist.name,
                "target": target,
                "output": output,
            }));
        }
    }
    Ok(serde_json::json!({ "include": include }))
}

/// The distribution a `--from` build makes of the one a host was built as (`spec`, for
/// `target`), with the flags applied. Another module set is another host: it keeps no
/// distribution name, version or description (a host that said `edge 1.0.0` would misstate
/// what it is); a plain rebuild keeps them.
fn dist_from_host(
    mut spec: Distribution,
    target: String,
    args: &DistFlags,
    upgrade: bool,
) -> Result<Distribution, UsageError> {
    spec.apply_flags(args, true)?;
    if args.target.is_none() {
        spec.targets = vec![target];
    }
    let modules_changed = !args.with.is_empty()
        || !args.without.is_empty()
        || !args.replace.is_empty()
        || !args.features.is_empty()
        || args.no_standard
        || upgrade;
    if modules_changed {
        spec.name = crate::specfile::FLAGS_DIST.to_owned();
        spec.version = None;
        spec.description = None;
    }
    Ok(spec)
}

/// `xbuild build` in all its forms; returns every build's outcome.
pub fn build(
    request: &BuildRequest,
    cache: &Cache,
    options: &Options,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Outcome>, BuildError> {
    let builds = what_to_build(request)?;
    let lock = LockFile::read(&builds.lock_path)?;
    let toolchain = Toolchain::probe()?;
    let mode = Mode {
        locked: None,
        previous_lock: None,
        offline: request.offline,
        keep_workdir: request.keep_workdir,
    };
    let plans = plans(&builds, lock.as_ref(), request.locked, &mode, &toolchain)?;
    // Every output and the lock change together: an install is undone if a later build
    // or the lock fails.
    let mut outcomes: Vec<Outcome> = Vec::new();
    for plan in &plans {
        match builder::build(plan, cache, options, reporter, interrupt) {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => return Err(undo_installs(outcomes, err, &builds.lock_path)),
        }
    }
    let done: Vec<(&BuildPlan, String)> = plans
        .iter()
        .zip(&outcomes)
        .map(|(plan, outcome)| (plan, outcome.cargo_lock.clone()))
        .collect();
    let new_lock = updated_lock(lock, &done, builds.spec_names.as_deref());
    match write_lock(&new_lock, &builds.lock_path) {
        Ok(true) => reporter.report(Event::Step {
            step: Step::Lock,
            message: builds.lock_path.display().to_string(),
        }),
        Ok(false) => {}
        Err(err) => return Err(undo_installs(outcomes, err, &builds.lock_path)),
    }
    Ok(outcomes)
}

/// Puts back what `outcomes` replaced, after `err` stopped the set from being completed;
/// the error then also says what state the outputs are in.
fn undo_installs(outcomes: Vec<Outcome>, err: BuildError, lock: &Path) -> BuildError {
    // The lock is written last, so a failed install left it as it was.
    let lock_state = if lock.exists() {
        format!("the lock `{}` is unchanged", lock.display())
    } else {
        format!("no lock was written to `{}`", lock.display())
    };
    let err = match err {
        BuildError::Install {
            output,
            failed,
            state,
        } => BuildError::Install {
            output,
            failed,
            state: format!("{state}; {lock_state}"),
        },
        other => other,
    };
    if outcomes.is_empty() {
        return err;
    }
    let outputs: Vec<String> = outcomes
        .iter()
        .map(|o| format!("`{}`", o.output.display()))
        .collect();
    let mut stuck = Vec::new();
    for outcome in outcomes.into_iter().rev() {
        if let Err(e) = outcome.replaced.undo() {
            stuck.push(e);
        }
    }
    let state = if stuck.is_empty() {
        format!(
            "the outputs already installed by this run ({}) were put back as they were",
            outputs.join(", ")
        )
    } else {
        format!("the outputs are mixed: {}", stuck.join("; "))
    };
    BuildError::Undone {
        source: Box::new(err),
        state,
    }
}

/// `xbuild update [CRATE…]`: resolves the spec's distributions again (nothing is
/// compiled), reports what changed as cargo does, and rewrites the lock.
pub fn update(
    args: &UpdateRequest,
    cache: &Cache,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<(), BuildError> {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SPEC_FILE));
    let builds = from_spec(&file, &args.dists, args.lockfile.as_deref())?;
    for name in &args.crates {
        crate::spec::check_crate_name(name).map_err(|why| {
            usage(format!(
                "invalid crate name `{}`: {why}",
                name.escape_default()
            ))
        })?;
    }
    let lock = LockFile::read(&builds.lock_path)?;
    let toolchain = Toolchain::probe()?;
    let mode = Mode {
        offline: args.offline,
        ..Mode::default()
    };
    let plans = plans(&builds, lock.as_ref(), false, &mode, &toolchain)?;
    let mut done = Vec::new();
    for plan in &plans {
        let before = plan.previous_lock.clone();
        let after =
            builder::update(plan, &args.crates, cache, reporter, interrupt).map_err(|err| {
                match &err {
                BuildError::Cargo(crate::cargo::CargoError::Failed { stderr, .. })
                    if stderr.contains("did not match any packages") =>
                {
                    usage(format!(
                        "`xbuild update {}`: distribution `{}` has no such crate in its resolution",
                        args.crates.join(" "),
                        plan.dist.name
                    ))
                    .help("name crates that are in xbuild.lock, or none to update every crate")
                    .into()
                }
                _ => err,
            }
            })?;
        let changes = match &before {
            Some(before) => lockfile::resolution_changes(before, &after),
            // Nothing to compare with: what cargo says of a first resolution.
            None => vec![(
                "Locking",
                format!(
                    "{} packages",
                    lockfile::cargo_lock_packages(&after)
                        .values()
                        .map(Vec::len)
                        .sum::<usize>()
                ),
            )],
        };
        for (verb, what) in changes {
            reporter.report(Event::Updated {
                dist: plan.dist.name.clone(),
                verb,
                message: what,
            });
        }
        done.push((plan, after));
    }
    let new_lock = updated_lock(lock, &done, builds.spec_names.as_deref());
    if write_lock(&new_lock, &builds.lock_path)? {
        reporter.report(Event::Step {
            step: Step::Lock,
            message: builds.lock_path.display().to_string(),
        });
    }
    Ok(())
}

/// `xbuild init [PATH]`: writes the commented spec template, never over a file unless
/// `force`.
pub fn init(path: &Path, force: bool) -> Result<(), UsageError> {
    if path.exists() && !force {
        return Err(usage(format!("`{}` already exists", path.display()))
            .help("pass --force to replace it, or give another path"));
    }
    let dir = spec_base(path)?;
    if !dir.is_dir() {
        return Err(usage(format!(
            "the directory of `{}` does not exist",
            path.display()
        ))
        .help(format!("create `{}` first", dir.display())));
    }
    std::fs::write(path, crate::specfile::INIT_TEMPLATE).map_err(|e| {
        usage(format!("cannot write `{}`: {e}", path.display()))
            .help("choose a path in a directory you can write to")
    })
}

/// The module crate around `start`: the nearest directory, from `start` up, whose
/// Cargo.toml has a `[package]`.
pub fn crate_around(start: &Path) -> Result<PathBuf, UsageError> {
    let start = std::path::absolute(start)
        .map_err(|e| usage(format!("invalid path `{}`: {e}", start.display())))?;
    start
        .ancestors()
        .find(|dir| crate::plan::read_crate(dir).is_ok())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            usage(format!("no crate at or above `{}`", start.display())).help(
                "run it inside a module crate (`xbuild new NAME` makes one), or pass --path DIR",
            )
        })
}

/// `xbuild run`: builds a host with the crate around the current directory (and the
/// `--with` extras) into the xbuild cache, reusing its generated workspace and compiled
/// dependencies, so an edit rebuilds only the crate and the host. Returns the host to run.
pub fn build_for_run(
    dev: &DevHost,
    cache: &Cache,
    options: &Options,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<PathBuf, BuildError> {
    let dir = crate_around(dev.path.as_deref().unwrap_or(Path::new(".")))?;
    let (name, _) = crate::plan::read_crate(&dir).map_err(usage)?;
    let out_dir = cache.root().join("run").join(&name);
    std::fs::create_dir_all(&out_dir)
        .map_err(builder::io(format!("create `{}`", out_dir.display())))?;
    let output = out_dir.join("host");
    let mut with = vec![format!("{name}={}", dir.display())];
    with.extend(dev.with.iter().cloned());
    // A crate developed against an xbuild-core by path (a checkout of xbuild, say) is built
    // against that core: xbuild's own copy beside it would be a second core.
    let core_path = match crate::lint::core_dependency(&dir) {
        crate::lint::CoreDependency::Declared {
            path: Some(path), ..
        } => Some(path),
        _ => None,
    };
    let request = BuildRequest {
        source: BuildSource::Flags(DistFlags {
            with,
            output: Some(output.clone()),
            registry: dev.registry.clone(),
            profile: Some(if dev.release { "release" } else { "dev" }.to_owned()),
            no_standard: dev.no_standard,
            core_path,
            ..DistFlags::default()
        }),
        lockfile: Some(out_dir.join("host.lock")),
        ..BuildRequest::default()
    };
    build(&request, cache, options, reporter, interrupt)?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        build: crate::commands::build::BuildArgs,
    }

    fn flags(args: &[&str]) -> (DistFlags, bool) {
        let args = Flags::parse_from([&["xbuild", "--from", "./host"][..], args].concat()).build;
        (args.dist_flags(), args.upgrade)
    }

    #[test]
    fn a_build_from_a_host_with_other_modules_is_no_longer_its_distribution() {
        let mut edge = Distribution::named("edge");
        edge.apply_flags(&flags(&["--with", "acme-greet@1"]).0, false)
            .unwrap();
        edge.version = Some("1.0.0".into());
        edge.description = Some("the edge proxy".into());
        let target = "x86_64-unknown-linux-gnu".to_owned();
        let (unchanged, upgrade) = flags(&[]);
        let rebuilt = dist_from_host(edge.clone(), target.clone(), &unchanged, upgrade).unwrap();
        assert_eq!(
            (rebuilt.name.as_str(), rebuilt.version.as_deref()),
            ("edge", Some("1.0.0"))
        );
        assert_eq!(rebuilt.targets, std::slice::from_ref(&target));
        for changed in [
            &["--with", "extra@1"][..],
            &["--without", "acme-greet"],
            &["--upgrade"],
            &["--replace", "itoa=../itoa"],
        ] {
            let (changed_flags, upgrade) = flags(changed);
            let other =
                dist_from_host(edge.clone(), target.clone(), &changed_flags, upgrade).unwrap();
            assert_eq!(other.name, crate::specfile::FLAGS_DIST, "{changed:?}");
            assert_eq!(other.version, None, "{changed:?}");
            assert_eq!(other.description, None, "{changed:?}");
        }
    }
}

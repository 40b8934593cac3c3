//! The operations behind the host subcommands, callable without a CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::admin;
use crate::build_info::BuildInfo;
use crate::config;
use crate::error::counted;
use crate::lifecycle::{Apps, Context, LoadError};
use crate::registry::{ModuleRegistration, Registry};

type OpResult = Result<(), Box<dyn std::error::Error>>;

/// `version`: the distribution's name, version and description when the build had them.
pub fn version_line(info: &BuildInfo) -> String {
    let core = format!("xbuild-core {}, build {}", crate::VERSION, info.build_id);
    match &info.distribution {
        Some(dist) => {
            let mut line = dist.name.clone();
            if let Some(version) = &dist.version {
                line += &format!(" {version}");
            }
            line += &format!(" (xbuild host; {core})");
            if let Some(description) = &dist.description {
                line += &format!("\n{description}");
            }
            line
        }
        None => format!("xbuild host ({core})"),
    }
}

/// `build-info`. Besides the module crates the build declared, it lists every other crate
/// that registered modules in `registry` (a module crate that another one depends on), so
/// each crate with code in the host's registry is named.
pub fn build_info(info: &BuildInfo, registry: Option<&Registry<'_>>, json: bool) -> String {
    let mut report = info.report();
    let mut found: Vec<crate::build_info::ExpectedCrate> = Vec::new();
    for module in registry.into_iter().flat_map(|r| r.modules()) {
        let known = report
            .modules
            .iter()
            .chain(&found)
            .any(|c| c.name == module.crate_name && c.version == module.crate_version);
        if !known {
            found.push(crate::build_info::ExpectedCrate {
                name: module.crate_name.to_owned(),
                version: module.crate_version.to_owned(),
                source: None,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    report.modules.extend(found);
    if json {
        return serde_json::to_string_pretty(&report).expect("report serializes") + "\n";
    }
    let mut out = String::new();
    if let Some(dist) = &report.distribution {
        out += &format!(
            "distribution: {}{}\n",
            dist.name,
            dist.version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        );
        if let Some(description) = &dist.description {
            out += &format!("description:  {description}\n");
        }
    }
    out += &format!(
        "build ID:     {}\ncore version: {}\nrustc:        {}\ntarget:       {}\nprofile:      {}\n",
        report.build_id, report.core_version, report.rustc, report.target, report.profile
    );
    if let (Some(crates), Some(sha256)) = (report.dependencies, &report.sbom_sha256) {
        out += &format!("sbom:         {crates} crates in .dep-v0 (sha256 {sha256})\n");
    }
    if let Some(sizes) = &report.sizes {
        let largest: Vec<String> = sizes
            .crates
            .iter()
            .take(3)
            .map(|c| format!("{} {}", c.name, human_size(c.bytes)))
            .collect();
        out += &format!(
            "size:         {} (largest crates: {}; std {}; `build-info --json` has them all)\n",
            human_size(sizes.file_bytes),
            largest.join(", "),
            human_size(sizes.std_bytes)
        );
    }
    out.push_str("modules:\n");
    if report.modules.is_empty() {
        out.push_str("  (none declared)\n");
    }
    for module in &report.modules {
        out.push_str(&format!("  {} {}\n", module.name, module.version));
    }
    out
}

/// A byte count for people, in binary units as xbuild prints them (`1.5 MiB`).
fn human_size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at GiB")
}

#[derive(Serialize)]
struct ListedModule<'a> {
    id: &'a str,
    #[serde(rename = "crate")]
    krate: &'a str,
    version: &'a str,
    standard: bool,
    interface: String,
}

/// The interface as `dyn CRATE::Trait`: its crate and name, without the module path inside
/// the crate (`dyn xbuild_core::module::Module` is `xbuild_core::Module` to its users).
fn interface_name(full: &str) -> String {
    let path = full.strip_prefix("dyn ").unwrap_or(full);
    if path.contains(['<', ' ', '+']) {
        return full.to_owned();
    }
    match (path.split_once("::"), path.rsplit_once("::")) {
        (Some((krate, _)), Some((_, name))) => format!("dyn {krate}::{name}"),
        _ => full.to_owned(),
    }
}

/// `list-modules`: standard modules first, then the others, each group with a count,
/// like Caddy's.
pub fn list_modules(
    registry: &Registry<'_>,
    versions: bool,
    json: bool,
    skip_standard: bool,
) -> String {
    let shown: Vec<&ModuleRegistration> = registry
        .modules()
        .filter(|m| !(skip_standard && m.is_standard()))
        .collect();
    if json {
        let listed: Vec<_> = shown
            .iter()
            .map(|m| ListedModule {
                id: m.id,
                krate: m.crate_name,
                version: m.crate_version,
                standard: m.is_standard(),
                interface: interface_name(m.interface()),
            })
            .collect();
        return serde_json::to_string_pretty(&listed).expect("list serializes") + "\n";
    }
    let line = |m: &ModuleRegistration| {
        if versions {
            format!("{} {} {}\n", m.id, m.crate_name, m.crate_version)
        } else {
            format!("{}\n", m.id)
        }
    };
    let (standard, other): (Vec<_>, Vec<_>) = shown.into_iter().partition(|m| m.is_standard());
    let mut out = String::new();
    if !skip_standard {
        standard.iter().for_each(|m| out.push_str(&line(m)));
        out.push_str(&format!("\n  Standard modules: {}\n\n", standard.len()));
    }
    other.iter().for_each(|m| out.push_str(&line(m)));
    out.push_str(&format!("\n  Non-standard modules: {}\n", other.len()));
    out
}

/// One thing `selftest` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelftestProblem {
    /// What the problem concerns: a crate, a module or the manifest, with its version or
    /// path.
    pub subject: String,
    /// What is wrong with it, and the likely cause.
    pub problem: String,
}

/// What `selftest` checked.
#[derive(Debug, Default, Serialize)]
pub struct SelftestReport {
    /// How many expected module crates (from [`BuildInfo::modules`]) were checked.
    pub crates_checked: usize,
    /// Modules that went through decode, provision, validate and cleanup with an empty
    /// config.
    pub modules_instantiated: Vec<String>,
    /// Modules that need a config to be instantiated, so were only looked up.
    pub modules_needing_config: Vec<String>,
    /// The leak audit of each module: whether it left threads or open files behind.
    pub audit: Vec<AuditEntry>,
    /// Everything found wrong; the selftest passes when this is empty.
    pub problems: Vec<SelftestProblem>,
}

/// One module's leak audit.
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    /// The module's ID.
    pub module: String,
    /// What the audit found.
    #[serde(flatten)]
    pub audited: super::audit::Audited,
}

/// The seed's smoke test: every expected crate registered something, and every module that
/// accepts an empty config goes through decode, provision, validate and cleanup.
pub fn selftest(registry: &Registry<'_>, info: &BuildInfo) -> SelftestReport {
    let mut report = SelftestReport::default();
    let mut by_crate: BTreeMap<&str, Vec<&ModuleRegistration>> = BTreeMap::new();
    for module in registry.modules() {
        by_crate.entry(module.crate_name).or_default().push(module);
    }
    for expected in &info.modules {
        report.crates_checked += 1;
        match by_crate.get(expected.name.as_str()) {
            None => report.problems.push(SelftestProblem {
                subject: format!("crate `{}` {}", expected.name, expected.version),
                problem: format!(
                    "registered no modules: it has no `xbuild_core::register_module!`, or it was \
                     linked against another xbuild-core than this host's {} (its registrations \
                     went into a slice nobody reads), or dropped by the linker (the host's \
                     main.rs must name it with `use {} as _;`)",
                    crate::VERSION,
                    expected.name.replace('-', "_")
                ),
            }),
            Some(modules) => {
                if let Some(m) = modules.iter().find(|m| m.crate_version != expected.version) {
                    report.problems.push(SelftestProblem {
                        subject: format!("crate `{}`", expected.name),
                        problem: format!(
                            "expected version {} but module `{}` was registered by version {}",
                            expected.version, m.id, m.crate_version
                        ),
                    });
                }
            }
        }
    }
    let mut ctx = Context::new(registry);
    for module in registry.modules() {
        let config = match module.audit() {
            crate::Audit::Config(json) => match serde_json::from_str(json) {
                Ok(config) => config,
                Err(err) => {
                    report.problems.push(problem(
                        module,
                        format!("the config its registration gives selftest is not JSON: {err}"),
                    ));
                    continue;
                }
            },
            _ => config::Value::Null,
        };
        // The host's own path (decode, provision, validate), then cleanup, which also
        // cleans up any children the module loaded.
        match ctx.load_any(module, config) {
            Ok(mut loaded) => match loaded.cleanup() {
                Ok(()) => report.modules_instantiated.push(module.id.to_owned()),
                Err(err) => report.problems.push(problem(module, err.to_string())),
            },
            Err(LoadError::Config(err)) if err.is_missing_field() => {
                report.modules_needing_config.push(module.id.to_owned());
            }
            Err(err) => report.problems.push(problem(module, err.to_string())),
        }
    }
    for module in registry.modules() {
        let audited = super::audit::audit(registry, module);
        if let super::audit::Audited::Leaked { left } = &audited {
            report.problems.push(problem(
                module,
                format!(
                    "leaks: after its cleanup{} it left {}; stop what it starts and close what it opens (in stop or cleanup)",
                    if module.interface() == std::any::type_name::<dyn crate::App>() {
                        " (and its start and stop)"
                    } else {
                        ""
                    },
                    left.join(", ")
                ),
            ));
        }
        report.audit.push(AuditEntry {
            module: module.id().to_owned(),
            audited,
        });
    }
    report
}

fn problem(module: &ModuleRegistration, text: String) -> SelftestProblem {
    SelftestProblem {
        subject: format!(
            "module `{}` ({} {})",
            module.id, module.crate_name, module.crate_version
        ),
        problem: text,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("selftest found {}", crate::error::counted(*.0, "problem", "problems"))]
struct SelftestFailed(usize);

/// The seed's "verify the build ID, refuse mismatches": if a manifest sits beside `exe`, it
/// must describe this very binary (an old manifest beside a new host, or an old host copied
/// over a new one, is a deployment mistake).
pub fn check_manifest(exe: &Path, info: &BuildInfo) -> Option<SelftestProblem> {
    let path = crate::manifest::manifest_path(exe);
    let text = std::fs::read_to_string(&path).ok()?;
    let subject = format!("manifest `{}`", path.display());
    let mismatch = |problem: String| {
        Some(SelftestProblem {
            subject: subject.clone(),
            problem,
        })
    };
    let manifest: crate::manifest::Manifest = match serde_json::from_str(&text) {
        Ok(manifest) => manifest,
        Err(err) => return mismatch(format!("is unreadable: {err}")),
    };
    if manifest.build_id != info.build_id {
        return mismatch(format!(
            "is for build {}, but this host is build {}; deploy the host and its manifest together",
            manifest.build_id, info.build_id
        ));
    }
    match crate::build_info::sha256_file(exe) {
        Ok(sha) if sha == manifest.sha256 => None,
        Ok(sha) => mismatch(format!(
            "gives sha256 {} but this binary's is {sha}; the binary was changed or replaced after the build",
            manifest.sha256
        )),
        Err(err) => mismatch(format!("cannot hash this binary to compare: {err}")),
    }
}

/// `selftest`: [`selftest`] plus [`check_manifest`] for the running binary, printed as text
/// or JSON; an error if any problem was found.
pub fn selftest_command(registry: &Registry<'_>, info: &BuildInfo, json: bool) -> OpResult {
    let mut report = selftest(registry, info);
    if let Ok(exe) = std::env::current_exe()
        && let Some(problem) = check_manifest(&exe, info)
    {
        report.problems.push(problem);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            println!("FAIL {}: {}", p.subject, p.problem);
        }
        let mut clean = 0;
        for entry in &report.audit {
            match &entry.audited {
                super::audit::Audited::Clean => clean += 1,
                super::audit::Audited::Skipped { reason } => {
                    println!("SKIP leak audit of module `{}`: {reason}", entry.module)
                }
                _ => {}
            }
        }
        println!(
            "selftest: {} checked, {} instantiated, {} a config, {} left nothing behind, {}",
            counted(report.crates_checked, "expected crate", "expected crates"),
            counted(report.modules_instantiated.len(), "module", "modules"),
            counted(report.modules_needing_config.len(), "needs", "need"),
            clean,
            counted(report.problems.len(), "problem", "problems")
        );
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(Box::new(SelftestFailed(report.problems.len())))
    }
}

/// `validate`: loads the config at `path` and provisions and validates its apps without
/// starting them, then cleans them up.
pub fn validate(registry: &Registry<'_>, path: &Path) -> OpResult {
    let config = config::load_file(path)?;
    admin::endpoint(&config, path)?;
    let mut apps = Apps::provision(registry, config)?;
    let ids = apps.ids();
    let errors = apps.cleanup();
    if let Some(err) = errors.into_iter().next() {
        return Err(Box::new(err));
    }
    println!(
        "config `{}` is valid (apps: {})",
        path.display(),
        ids.join(", ")
    );
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum ShutdownError {
    #[error("apps did not stop within {0:?}; exiting anyway")]
    Timeout(Duration),
    #[error("second signal received during shutdown; exiting now")]
    Interrupted,
    #[error("shutdown finished with {}:\n{}", crate::error::counted(.0.len(), "error", "errors"), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Errors(Vec<String>),
}

/// What the host's main loop waits for.
enum Event {
    Signal(i32),
    Admin(admin::Request, mpsc::Sender<admin::Response>),
}

/// `run`: provision, start (all or nothing), then serve until SIGINT or SIGTERM: stop apps
/// in reverse order and clean up, bounded by `limit`. SIGHUP reloads the config file, and
/// so does `reload` through the admin socket ([`reload`]); a reload that fails leaves the
/// running config as it was.
pub fn run(registry: &Registry<'static>, path: &Path, limit: Duration) -> OpResult {
    let config = config::load_file(path)?;
    let admin_socket = admin::endpoint(&config, path)?;
    // Listen before starting so a signal during startup is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let signals_handle = signals.handle();
    let (events, next_event) = mpsc::channel();
    {
        let events = events.clone();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if events.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        });
    }
    // Before the apps start, so a host whose socket another host holds serves nothing.
    let admin = match &admin_socket {
        Some(socket) => Some(open_admin(socket, &events)?),
        None => None,
    };
    let mut running = Running {
        apps: Apps::provision(registry, config.clone())?,
        config,
        // As the `reload` command sends it, so the same file is recognised as unchanged.
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
        admin,
        events,
    };
    if let Err(err) = running.apps.start() {
        running.apps.cleanup();
        return Err(Box::new(err));
    }
    match &running.admin {
        Some(admin) => tracing::info!(
            apps = ?running.apps.ids(),
            admin_socket = %admin.socket().path.display(),
            "host running; stop with SIGINT or SIGTERM, reload the config with SIGHUP or the `reload` command"
        ),
        None => tracing::info!(
            apps = ?running.apps.ids(),
            "host running; stop with SIGINT or SIGTERM, reload the config with SIGHUP (the admin socket is disabled)"
        ),
    }
    let signal = loop {
        match next_event.recv() {
            Ok(Event::Signal(SIGHUP)) => {
                // The outcome is logged and counted; a failed reload changes nothing.
                let file = running.path.clone();
                let _ = reload(registry, &mut running, Source::File(&file), false);
            }
            Ok(Event::Signal(signal)) => break signal,
            Ok(Event::Admin(
                admin::Request::Reload {
                    config_file,
                    config,
                    force,
                },
                reply,
            )) => {
                let source = Source::Loaded(&config_file, config);
                let response = match reload(registry, &mut running, source, force) {
                    Ok(Reloaded::Switched) => admin::Response::Reloaded,
                    Ok(Reloaded::Unchanged) => admin::Response::Unchanged,
                    // The client names the file and says the running config is
                    // unchanged (`Refused`); the host's own log line says it too.
                    Err(err) => admin::Response::Error {
                        error: super::error_chain(&*err),
                    },
                };
                let _ = reply.send(response);
            }
            Err(_) => break SIGTERM,
        }
    };
    tracing::info!(signal, "signal received; stopping apps in reverse order");
    // No reload once stopping has begun: the socket goes first.
    drop(running.admin.take());
    let mut apps = running.apps;

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let errors: Vec<String> = apps.shutdown().iter().map(ToString::to_string).collect();
        let _ = done.send(errors);
    });
    let deadline = Instant::now() + limit;
    let outcome = loop {
        match finished.recv_timeout(Duration::from_millis(50)) {
            Ok(errors) if errors.is_empty() => {
                tracing::info!("stopped cleanly");
                break Ok(());
            }
            Ok(errors) => break Err(ShutdownError::Errors(errors)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(ShutdownError::Errors(vec!["shutdown thread died".into()]));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let interrupted = next_event
            .try_iter()
            .any(|event| matches!(event, Event::Signal(signal) if signal != SIGHUP));
        if interrupted {
            break Err(ShutdownError::Interrupted);
        }
        if Instant::now() >= deadline {
            break Err(ShutdownError::Timeout(limit));
        }
    };
    signals_handle.close();
    outcome.map_err(|err| match err {
        ShutdownError::Timeout(_) => crate::Hinted::from_error(&err)
            .help("give the apps more time with --stop-timeout SECONDS, or find what an app's stop waits for")
            .into(),
        other => other.into(),
    })
}

fn open_admin(
    socket: &admin::Socket,
    events: &mpsc::Sender<Event>,
) -> Result<admin::Server, admin::AdminError> {
    let events = events.clone();
    admin::Server::open(
        socket,
        Box::new(move |request, reply| {
            let _ = events.send(Event::Admin(request, reply));
        }),
    )
}

/// The apps a host runs, the config they came from, and how it is reached.
pub(crate) struct Running {
    pub apps: Apps,
    pub config: config::Value,
    /// The config file: SIGHUP re-reads it, and the default admin socket is named by it.
    path: PathBuf,
    admin: Option<admin::Server>,
    events: mpsc::Sender<Event>,
}

/// Where a reload's config comes from.
pub(crate) enum Source<'a> {
    /// Read the file (SIGHUP).
    File(&'a Path),
    /// Already read from the file by the `reload` command.
    Loaded(&'a Path, config::Value),
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reloaded {
    /// The new config runs.
    Switched,
    /// The file holds the config already running; nothing was done (`force` reloads anyway).
    Unchanged,
}

/// The config is the one running, and refreshing modules failed (they keep what they had).
#[derive(Debug, thiserror::Error)]
#[error("the file is unchanged, and refreshing its modules failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
struct RefreshFailed(Vec<crate::guard::CallError>);

/// Reloads the host's config (Apps::reload), and moves the admin socket if the new config
/// puts it elsewhere: one log line says how it went, and `config_reload_total{status}`
/// counts it (`ok`, `error`, `unchanged`). An error is why it was refused: the running
/// config is then untouched.
pub(crate) fn reload(
    registry: &Registry<'_>,
    running: &mut Running,
    source: Source<'_>,
    force: bool,
) -> Result<Reloaded, Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let metrics = crate::metrics::core();
    let path = match &source {
        Source::File(path) | Source::Loaded(path, _) => path.to_path_buf(),
    };
    let outcome = (|| {
        let config = match source {
            Source::File(path) => config::load_file(path)?,
            Source::Loaded(_, config) => config,
        };
        if !force && config == running.config && path == running.path {
            // Nothing to re-provision, but modules re-read what lies outside the config.
            let errors = running.apps.refresh();
            if !errors.is_empty() {
                return Err(Box::new(RefreshFailed(errors)).into());
            }
            return Ok(Reloaded::Unchanged);
        }
        let socket = admin::endpoint(&config, &path)?;
        let moved_admin = if socket.as_ref() != running.admin.as_ref().map(|a| a.socket()) {
            Some(match &socket {
                Some(socket) => Some(open_admin(socket, &running.events)?),
                None => None,
            })
        } else {
            None
        };
        // If the apps fail, the new socket (if any) is dropped here and removed.
        let old_errors = running.apps.reload(registry, config.clone())?;
        running.config = config;
        running.path = path.clone();
        if let Some(admin) = moved_admin {
            running.admin = admin;
        }
        for err in old_errors {
            tracing::warn!(error = %err, "stopping the previous config's apps failed");
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Reloaded::Switched)
    })();
    let took_ms = started.elapsed().as_millis() as u64;
    let file = path.display().to_string();
    match outcome {
        Ok(Reloaded::Switched) => {
            metrics.reload_ok();
            tracing::info!(config = file, took_ms, apps = ?running.apps.ids(), "config reloaded");
            Ok(Reloaded::Switched)
        }
        Ok(Reloaded::Unchanged) => {
            metrics.reload_total("unchanged");
            tracing::info!(
                config = file,
                refreshed = running.apps.refresh_hook_count(),
                "config unchanged, not reloaded"
            );
            Ok(Reloaded::Unchanged)
        }
        Err(source) => {
            metrics.reload_total("error");
            // The file is a field, as in the other outcomes' lines; the error often names
            // it too (a file that does not parse), so the message does not.
            tracing::error!(
                config = file,
                error = %source,
                took_ms,
                "config reload failed; the running config is unchanged"
            );
            Err(source)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the running host refused config `{path}` (it keeps running the config it had): {error}")]
struct Refused {
    path: String,
    error: String,
}

/// `reload`: reads the config file here (a file that does not parse never reaches the
/// host) and hands it to the host running on the admin socket the file names (or
/// `address`); succeeds only if that host now runs it or already did.
pub fn reload_command(path: &Path, force: bool, address: Option<&Path>) -> OpResult {
    let config = config::load_file(path)?;
    let socket = match address {
        Some(address) => address.to_owned(),
        None => match admin::endpoint(&config, path)? {
            Some(socket) => socket.path,
            None => {
                return Err(Box::new(admin::AdminError::Disabled(
                    path.display().to_string(),
                )));
            }
        },
    };
    // The host may run in another directory: it gets the full path, to re-read on SIGHUP.
    let config_file = std::fs::canonicalize(path)?;
    let request = admin::Request::Reload {
        config_file,
        config,
        force,
    };
    match admin::send(&socket, &request)? {
        admin::Response::Reloaded => println!("config `{}` reloaded", path.display()),
        admin::Response::Unchanged => println!(
            "config `{}` is already running; not reloaded (`--force` reloads it anyway)",
            path.display()
        ),
        admin::Response::Error { error } => {
            return Err(Box::new(Refused {
                path: path.display().to_string(),
                error,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, Value, decode_strict};
    use crate::instance::ModuleInstance;
    use crate::module::{BoxError, Module};

    #[derive(serde::Deserialize)]
    struct Fine {}
    impl Module for Fine {}

    #[derive(serde::Deserialize)]
    struct Broken {}
    impl Module for Broken {
        fn provision(&mut self, _: &mut Context<'_>) -> Result<(), BoxError> {
            panic!("provision exploded")
        }
    }

    fn fine(config: Value) -> Result<ModuleInstance, ConfigError> {
        Ok(ModuleInstance::new::<dyn Module>(Box::new(
            decode_strict::<Fine>("fine", config)?,
        )))
    }

    fn broken(config: Value) -> Result<ModuleInstance, ConfigError> {
        Ok(ModuleInstance::new::<dyn Module>(Box::new(
            decode_strict::<Broken>("broken", config)?,
        )))
    }

    static MODULES: [ModuleRegistration; 2] = [
        ModuleRegistration {
            id: "t.fine",
            interface: || "dyn Module",
            crate_name: "crate-a",
            crate_version: "1.0.0",
            audit: crate::registry::Audit::EmptyConfig,
            new: fine,
        },
        ModuleRegistration {
            id: "t.broken",
            interface: || "dyn Module",
            crate_name: "crate-b",
            crate_version: "1.0.0",
            audit: crate::registry::Audit::EmptyConfig,
            new: broken,
        },
    ];

    #[test]
    fn selftest_lists_every_problem() {
        let registry = Registry::new(&MODULES, &[]).unwrap();
        let info = BuildInfo::new("x")
            .module("crate-a", "1.0.0")
            .module("crate-b", "0.9.0")
            .module("crate-gone", "3.0.0");
        let report = selftest(&registry, &info);
        assert_eq!(report.modules_instantiated, ["t.fine"]);
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.subject, p.problem))
            .collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("crate `crate-b`: expected version 0.9.0"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("crate `crate-gone` 3.0.0: registered no modules"),
            "{}",
            problems[1]
        );
        assert!(
            problems[1].contains("`use crate_gone as _;`"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].contains("panicked in provision: provision exploded"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn list_groups_standard_modules_first() {
        let mut standard = MODULES[0].clone_for_test();
        standard.crate_name = "xbuild-http";
        standard.id = "http";
        let slice = [standard, MODULES[1].clone_for_test()];
        let registry = Registry::new(&slice, &[]).unwrap();
        let text = list_modules(&registry, true, false, false);
        assert_eq!(
            text,
            "http xbuild-http 1.0.0\n\n  Standard modules: 1\n\nt.broken crate-b 1.0.0\n\n  Non-standard modules: 1\n"
        );
        let skipped = list_modules(&registry, false, false, true);
        assert_eq!(skipped, "t.broken\n\n  Non-standard modules: 1\n");
    }

    impl ModuleRegistration {
        fn clone_for_test(&self) -> ModuleRegistration {
            ModuleRegistration { ..*self }
        }
    }

    #[test]
    fn interfaces_are_named_by_crate_and_trait_however_registered() {
        assert_eq!(
            interface_name("dyn xbuild_core::module::Module"),
            "dyn xbuild_core::Module"
        );
        assert_eq!(
            interface_name("dyn xbuild_http::Handler"),
            "dyn xbuild_http::Handler"
        );
        // Left alone where shortening could mislead.
        assert_eq!(interface_name("dyn a::B<c::D>"), "dyn a::B<c::D>");
        assert_eq!(interface_name("dyn Local"), "dyn Local");
        // What the macro records, whether the registration wrote the path or not.
        let registry = crate::Registry::linked().unwrap();
        for module in registry.modules() {
            assert!(
                module.interface().starts_with("dyn "),
                "{}",
                module.interface()
            );
            assert!(module.interface().contains("::"), "{}", module.interface());
        }
    }
}

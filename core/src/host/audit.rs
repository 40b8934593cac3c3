//! `selftest`'s leak audit (the seed's "plugin leaks goroutines: audit during CI; require
//! plugins to expose a Shutdown"): each module goes through its whole life (load, and for
//! an app start and stop, then cleanup) twice; the second time is measured. The first
//! absorbs what is created once per process on first use (a lazily started global pool,
//! a log file opened once), so what the second leaves is what every load leaves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Value;
use crate::lifecycle::{Apps, Context, LifecycleError, LoadError};
use crate::module::App;
use crate::registry::{Audit, ModuleRegistration, Registry};

/// How long threads told to stop get to exit before they count as left behind: a stop that
/// signals its threads and does not join them is not a leak if they are gone soon after.
const SETTLE: Duration = Duration::from_secs(2);

/// What the audit found for one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Audited {
    /// It left nothing behind.
    Clean,
    /// It left threads or file descriptors behind: each is described.
    Leaked { left: Vec<String> },
    /// Not audited: the registration opts out (`selftest = skip(...)`), or the module needs
    /// a config that its registration does not give.
    Skipped { reason: String },
    /// Its own life failed (an error other than a missing config field); selftest reports
    /// that error elsewhere.
    Failed,
}

/// The threads and open file descriptors of this process.
#[derive(Debug, Default, PartialEq, Eq)]
struct Resources {
    /// Thread ID, and its name.
    threads: BTreeMap<u64, String>,
    /// Descriptor, and what it refers to (`/tmp/x`, `socket:[123]`).
    fds: BTreeMap<u64, String>,
}

impl Resources {
    fn now() -> Resources {
        let entries = |dir: &str| -> Vec<u64> {
            // Collected before anything else is opened, so only the listing's own
            // descriptor is extra, and it is closed (unreadable) when looked at below.
            let mut found: Vec<u64> = std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            found.sort_unstable();
            found
        };
        let threads = entries("/proc/self/task")
            .into_iter()
            .filter_map(|tid| {
                let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
                Some((tid, name.trim_end().to_owned()))
            })
            .collect();
        let fds = entries("/proc/self/fd")
            .into_iter()
            .filter_map(|fd| {
                let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
                Some((fd, target.display().to_string()))
            })
            .collect();
        Resources { threads, fds }
    }

    /// What is here now that was not in `before`, described for a report.
    fn left_since(&self, before: &Resources) -> Vec<String> {
        let mut left = Vec::new();
        for (tid, name) in &self.threads {
            if !before.threads.contains_key(tid) {
                left.push(format!("thread `{name}` (tid {tid}) still running"));
            }
        }
        for (fd, target) in &self.fds {
            if before.fds.get(fd) != Some(target) {
                left.push(format!("file descriptor {fd} still open ({target})"));
            }
        }
        left
    }
}

/// Audits `module`: two full lives, the second measured.
pub fn audit(registry: &Registry<'_>, module: &ModuleRegistration) -> Audited {
    let config = match module.audit() {
        Audit::Skip(reason) => {
            return Audited::Skipped {
                reason: format!("its registration opts out: {reason}"),
            };
        }
        Audit::Config(json) => match serde_json::from_str::<Value>(json) {
            Ok(config) => config,
            Err(_) => return Audited::Failed,
        },
        _ => Value::Null,
    };
    let is_app = module.interface() == std::any::type_name::<dyn App>();
    let life = || {
        if is_app {
            app_life(registry, module, config.clone())
        } else {
            module_life(registry, module, config.clone())
        }
    };
    match life() {
        Ok(()) => {}
        Err(Life::NeedsConfig) => {
            return Audited::Skipped {
                reason:
                    "it needs a config; give it one in its registration (`selftest = config(...)`)"
                        .into(),
            };
        }
        Err(Life::Failed) => return Audited::Failed,
    }
    let before = Resources::now();
    if life().is_err() {
        return Audited::Failed;
    }
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = Resources::now().left_since(&before);
        if left.is_empty() {
            return Audited::Clean;
        }
        if Instant::now() >= deadline {
            return Audited::Leaked { left };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

enum Life {
    NeedsConfig,
    Failed,
}

/// Load (decode, provision, validate) and cleanup, as selftest's instantiation check does.
fn module_life(
    registry: &Registry<'_>,
    module: &ModuleRegistration,
    config: Value,
) -> Result<(), Life> {
    let mut ctx = Context::new(registry);
    match ctx.load_any(module, config) {
        Ok(mut loaded) => loaded.cleanup().map_err(|_| Life::Failed),
        Err(LoadError::Config(err)) if err.is_missing_field() => Err(Life::NeedsConfig),
        Err(_) => Err(Life::Failed),
    }
}

/// An app's life as `run` gives it: provision, start, stop, cleanup.
fn app_life(
    registry: &Registry<'_>,
    module: &ModuleRegistration,
    config: Value,
) -> Result<(), Life> {
    let host = serde_json::json!({ "apps": { module.id(): config } });
    let mut apps = match Apps::provision(registry, host) {
        Ok(apps) => apps,
        Err(LifecycleError::Load {
            source: LoadError::Config(err),
            ..
        }) if err.is_missing_field() => return Err(Life::NeedsConfig),
        Err(_) => return Err(Life::Failed),
    };
    if apps.start().is_err() {
        apps.cleanup();
        return Err(Life::Failed);
    }
    if apps.shutdown().is_empty() {
        Ok(())
    } else {
        Err(Life::Failed)
    }
}

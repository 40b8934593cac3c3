//! The test kit (feature `testing`): a module author tests a module without building a host.
//! A module is instantiated from a config snippet through the path a host takes (decode
//! strictly, provision, validate), called through the guard, and cleaned up; the instance
//! counts how its calls went; [`Instance::metrics`] shows the Prometheus series a host
//! would expose for it.
//!
//! In the module crate's Cargo.toml:
//!
//! ```toml
//! [dev-dependencies]
//! xbuild-core = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use xbuild_core::{BoxError, Module};
//!
//! #[derive(serde::Deserialize)]
//! struct Counter {
//!     start: u32,
//! }
//! impl Module for Counter {
//!     fn validate(&self) -> Result<(), BoxError> {
//!         if self.start > 100 { return Err("start must be at most 100".into()); }
//!         Ok(())
//!     }
//! }
//! xbuild_core::register_module!("kit.counter", Counter);
//!
//! let mut counter = xbuild_core::testing::load_toml::<dyn Module>("kit.counter", "start = 3")?;
//! counter.call("ping", |_| Ok(()))?;
//! assert_eq!(counter.calls("ping").ok, 1);
//! counter.cleanup()?;
//! assert_eq!(counter.calls("cleanup").ok, 1);
//!
//! let refused = xbuild_core::testing::load_toml::<dyn Module>("kit.counter", "start = 300");
//! assert!(refused.err().unwrap().to_string().contains("start must be at most 100"));
//! # Ok::<(), BoxError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::Value;
use crate::guard::CallError;
use crate::lifecycle::{Context, LoadError, Loaded};
use crate::module::{BoxError, Module};
use crate::registry::Registry;

/// A module instantiated as a host would, held as interface `I`.
pub struct Instance<I: ?Sized + Module> {
    loaded: Loaded<I>,
    calls: Mutex<BTreeMap<&'static str, Calls>>,
}

/// How the calls of one method through an [`Instance`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Calls {
    /// Calls that returned `Ok`.
    pub ok: u64,
    /// Calls that returned an error.
    pub error: u64,
    /// Calls that panicked (caught by the guard).
    pub panic: u64,
}

/// Loads module `id` (`namespace.name`) as interface `I` from a JSON config, through the
/// linked registry: decoded strictly, provisioned and validated, as in a host.
pub fn load<I: ?Sized + Module>(id: &str, config: Value) -> Result<Instance<I>, BoxError> {
    let registry = Registry::linked()?;
    let namespace = crate::id::namespace_of(id);
    let name = crate::id::name_of(id);
    let loaded = Context::new(&registry)
        .load::<I>(namespace, name, config)
        .map_err(|e: LoadError| Box::new(e) as BoxError)?;
    Ok(Instance {
        loaded,
        calls: Mutex::default(),
    })
}

/// [`load`] from a TOML snippet: the module's table as a host config file would hold it.
pub fn load_toml<I: ?Sized + Module>(id: &str, toml: &str) -> Result<Instance<I>, BoxError> {
    let config: Value = toml::from_str(toml)?;
    load(id, config)
}

impl<I: ?Sized + Module> Instance<I> {
    /// The module's ID.
    pub fn id(&self) -> &'static str {
        self.loaded.id()
    }

    /// Calls into the module through the guard, as a host does: a panic comes back as
    /// [`CallError::Panicked`], and the call is counted.
    pub fn call<R>(
        &self,
        method: &'static str,
        f: impl FnOnce(&I) -> Result<R, BoxError>,
    ) -> Result<R, CallError> {
        let result = self.loaded.call(method, f);
        self.count(method, &result);
        result
    }

    /// [`call`](Self::call) with mutable access.
    pub fn call_mut<R>(
        &mut self,
        method: &'static str,
        f: impl FnOnce(&mut I) -> Result<R, BoxError>,
    ) -> Result<R, CallError> {
        let result = self.loaded.call_mut(method, f);
        self.count(method, &result);
        result
    }

    fn count<R>(&self, method: &'static str, result: &Result<R, CallError>) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = calls.entry(method).or_default();
        match result {
            Ok(_) => entry.ok += 1,
            Err(e) if e.is_panic() => entry.panic += 1,
            Err(_) => entry.error += 1,
        }
    }

    /// How the calls of `method` through this instance went so far (`cleanup` included).
    pub fn calls(&self, method: &str) -> Calls {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.get(method).copied().unwrap_or_default()
    }

    /// The Prometheus series the host would expose for this module: the lines of
    /// [`metrics::render`](crate::metrics::render) labelled with its ID. They are
    /// process-wide, so they include other instances of the same module in the same test
    /// binary; use [`calls`](Self::calls) for this instance alone.
    pub fn metrics(&self) -> String {
        let label = format!("module=\"{}\"", self.id());
        crate::metrics::render()
            .lines()
            .filter(|line| !line.starts_with('#') && line.contains(&label))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Runs the module's cleanup hook through the guard (once).
    pub fn cleanup(&mut self) -> Result<(), CallError> {
        let result = self.loaded.cleanup();
        self.count("cleanup", &result);
        result
    }

    /// The loaded module, for what the kit does not wrap.
    pub fn loaded(&self) -> &Loaded<I> {
        &self.loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Boom {}
    impl Module for Boom {}
    crate::register_module!("kit.boom", Boom);

    #[test]
    fn panics_and_unknown_fields_are_what_a_host_would_see() {
        let boom = load::<dyn Module>("kit.boom", serde_json::json!({})).unwrap();
        let err = boom
            .call::<()>("explode", |_| panic!("kaboom"))
            .unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(
            boom.calls("explode"),
            Calls {
                ok: 0,
                error: 0,
                panic: 1
            }
        );
        let metrics = boom.metrics();
        assert!(
            metrics.contains(
                r#"module_call_total{module="kit.boom",method="explode",status="panic"} 1"#
            ),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"module_failed{module="kit.boom"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.lines().all(|l| l.contains(r#"module="kit.boom""#)),
            "{metrics}"
        );
        let unknown = load::<dyn Module>("kit.boom", serde_json::json!({"x": 1}));
        assert!(
            unknown
                .err()
                .unwrap()
                .to_string()
                .contains("unknown field `x`")
        );
        let missing = load::<dyn Module>("kit.nope", Value::Null);
        assert!(missing.err().unwrap().to_string().contains("nope"));
    }
}

//! The traits module authors implement. Every hook is optional except an app's start and
//! stop, and each runs at a documented point, so a module never does I/O at registration
//! time (the seed's "database not ready during init" outage).

use crate::lifecycle::Context;

/// The error type hooks return; any error type converts into it with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A module: a value decoded from its config section, then taken through the lifecycle.
///
/// Order, for every module the host loads:
/// 1. the config section is decoded strictly into the module's type (unknown fields fail);
/// 2. [`provision`](Module::provision) sets it up, loading any child modules through the
///    [`Context`];
/// 3. [`validate`](Module::validate) checks the result, without side effects;
/// 4. (apps only) [`App::start`], later [`App::stop`];
/// 5. [`cleanup`](Module::cleanup) releases what provision acquired. It runs for every
///    module that provisioned successfully, even if a later step failed.
///
/// ```
/// use serde::Deserialize;
/// use xbuild_core::{BoxError, Context, Module, Registry};
///
/// #[derive(Deserialize)]
/// struct Pool {
///     size: usize,
///     #[serde(skip)]
///     connections: Vec<String>,
/// }
///
/// impl Module for Pool {
///     fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
///         self.connections = (0..self.size).map(|i| format!("conn-{i}")).collect();
///         Ok(())
///     }
///     fn validate(&self) -> Result<(), BoxError> {
///         if self.connections.is_empty() {
///             return Err("size must be at least 1".into());
///         }
///         Ok(())
///     }
///     fn cleanup(&mut self) -> Result<(), BoxError> {
///         self.connections.clear();
///         Ok(())
///     }
/// }
///
/// xbuild_core::register_module!("storage.pool", Pool);
///
/// let registry = Registry::linked()?;
/// let mut ctx = Context::new(&registry);
/// let mut pool = ctx.load::<dyn Module>("storage", "pool", serde_json::json!({ "size": 2 }))?;
/// pool.cleanup()?;
///
/// // Validation fails; the pool provisioned, so it was cleaned up before the error returned.
/// let config = serde_json::json!({ "size": 0 });
/// let err = ctx.load::<dyn Module>("storage", "pool", config).err().expect("refused");
/// assert!(err.to_string().contains("size must be at least 1"), "{err}");
///
/// // Decoding is strict: a field the module does not know is an error naming it.
/// let config = serde_json::json!({ "size": 2, "timeout": 5 });
/// let err = ctx.load::<dyn Module>("storage", "pool", config).err().expect("refused");
/// assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
/// # Ok::<(), BoxError>(())
/// ```
pub trait Module: Send + Sync + 'static {
    /// Sets the module up from its decoded config. Load child modules here.
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Checks the provisioned module is usable. Must not change anything.
    fn validate(&self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Releases what provision acquired. A module that loaded children cleans them up here
    /// (through [`Loaded::cleanup`](crate::Loaded::cleanup)).
    fn cleanup(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A top-level module, configured under `[apps.<id>]`, that runs until the host stops.
///
/// An app's ID has no dot, and it is registered `as dyn App`:
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use xbuild_core::{App, Apps, BoxError, Module, Registry};
///
/// static SERVING: AtomicBool = AtomicBool::new(false);
///
/// #[derive(serde::Deserialize)]
/// struct Echo {
///     port: u16,
/// }
/// impl Module for Echo {
///     fn validate(&self) -> Result<(), BoxError> {
///         if self.port == 0 {
///             return Err("port must not be 0".into());
///         }
///         Ok(())
///     }
/// }
/// impl App for Echo {
///     fn start(&mut self) -> Result<(), BoxError> {
///         // A real app binds its listener here and serves on threads of its own.
///         SERVING.store(true, Ordering::SeqCst);
///         Ok(())
///     }
///     fn stop(&mut self) -> Result<(), BoxError> {
///         SERVING.store(false, Ordering::SeqCst);
///         Ok(())
///     }
/// }
///
/// xbuild_core::register_module!("echo", Echo as dyn App);
///
/// // What `run` does with `[apps.echo]` in the config, minus waiting for a signal.
/// let registry = Registry::linked()?;
/// let config = serde_json::json!({ "apps": { "echo": { "port": 7 } } });
/// let mut apps = Apps::provision(&registry, config)?;
/// assert_eq!(apps.ids(), ["echo"]);
/// apps.start()?;
/// assert!(SERVING.load(Ordering::SeqCst));
/// assert!(apps.shutdown().is_empty());
/// assert!(!SERVING.load(Ordering::SeqCst));
/// # Ok::<(), BoxError>(())
/// ```
pub trait App: Module {
    /// Starts serving. Should return once the app is running (e.g. its listeners are bound),
    /// doing the long-running work on threads it owns.
    fn start(&mut self) -> Result<(), BoxError>;

    /// Stops gracefully; the host bounds how long it waits.
    fn stop(&mut self) -> Result<(), BoxError>;
}

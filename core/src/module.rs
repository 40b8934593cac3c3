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
///    module that provisioned successfully, even if a later step failed; then the core
///    cleans up the children the module loaded, in reverse load order.
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

    /// Releases what provision acquired. Children loaded through the [`Context`] are not
    /// cleaned up here: the core does that after this hook, newest first.
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
/// use xbuild_core::host::Apps;
/// use xbuild_core::{App, BoxError, Module, Registry};
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

/// An optional hook: what a module that reads something besides its config (certificate
/// files, a cache of remote data) implements to re-read it when the operator asks the host
/// to reload but the config file has not changed (SIGHUP after certificates were renewed,
/// `HOST reload` of the running file). A config that changed needs no hook: it is
/// provisioned afresh, so every module reads its files again.
///
/// It is a trait of its own, not a method of [`Module`], so modules that do not need it are
/// untouched. A module registers an implementation in its provision with
/// [`Context::on_refresh`](crate::Context::on_refresh), usually an `Arc` of the state it
/// serves from; it is called through the guard (panics caught, calls counted) while the
/// module keeps serving, so it swaps in what it read only once all of it has been read.
///
/// ```
/// use std::sync::{Arc, RwLock};
/// use xbuild_core::{BoxError, Context, Module, Refresh, Registry};
///
/// #[derive(serde::Deserialize)]
/// struct Motd {
///     file: std::path::PathBuf,
///     #[serde(skip)]
///     text: Arc<MotdText>,
/// }
/// #[derive(Default)]
/// struct MotdText {
///     file: RwLock<std::path::PathBuf>,
///     current: RwLock<String>,
/// }
/// impl Refresh for MotdText {
///     fn refresh(&self) -> Result<(), BoxError> {
///         let file = self.file.read().unwrap().clone();
///         // Read first; a file that cannot be read leaves the current text in place.
///         let text = std::fs::read_to_string(&file)?;
///         *self.current.write().unwrap() = text;
///         Ok(())
///     }
/// }
/// impl Module for Motd {
///     fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
///         *self.text.file.write().unwrap() = self.file.clone();
///         self.text.refresh()?;
///         ctx.on_refresh(self.text.clone());
///         Ok(())
///     }
/// }
/// xbuild_core::register_module!("doc.motd", Motd as dyn Module);
/// # let dir = std::env::temp_dir().join(format!("motd-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let file = dir.join("motd.txt");
/// # std::fs::write(&file, "hello")?;
/// # let registry = Registry::linked()?;
/// # let mut ctx = Context::new(&registry);
/// # ctx.load::<dyn Module>("doc", "motd", serde_json::json!({ "file": file }))?;
/// # assert_eq!(ctx.refresh_hooks().ids(), ["doc.motd"]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), BoxError>(())
/// ```
pub trait Refresh: Send + Sync + 'static {
    /// Reads again what the module took from outside its config; on error, keeps what it
    /// had (the host logs the error and counts the reload as failed).
    fn refresh(&self) -> Result<(), BoxError>;
}

/// State a module builds in [`provision`](Module::provision) and uses in every call after.
///
/// A module's type is decoded from its config before it is provisioned, so what provision
/// prepares (compiled rules, clients, open files) cannot be a plain field. The core hands a
/// module out (as a [`Loaded`](crate::Loaded)) only after its provision and validation
/// succeeded, so the module's methods read this without a "was it provisioned?" check.
///
/// ```
/// use xbuild_core::{BoxError, Context, Module, Provisioned, Registry};
///
/// #[derive(serde::Deserialize)]
/// struct Greeting {
///     name: String,
///     #[serde(skip)]
///     text: Provisioned<String>,
/// }
/// impl Module for Greeting {
///     fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
///         self.text.set(format!("hello, {}", self.name));
///         Ok(())
///     }
/// }
/// impl Greeting {
///     fn greet(&self) -> &str {
///         &self.text
///     }
/// }
/// xbuild_core::register_module!("doc.greeting", Greeting as dyn Module);
/// # let registry = Registry::linked()?;
/// # let mut ctx = Context::new(&registry);
/// # ctx.load::<dyn Module>("doc", "greeting", serde_json::json!({ "name": "x" }))?;
/// # Ok::<(), BoxError>(())
/// ```
pub struct Provisioned<T>(Option<T>);

impl<T> Default for Provisioned<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Provisioned<T> {
    /// Stores what provision prepared (a second call replaces it).
    pub fn set(&mut self, value: T) {
        self.0 = Some(value);
    }

    /// Whether [`set`](Provisioned::set) ran; for code that may run before provision, such
    /// as a `Drop` impl.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Mutable access, e.g. in cleanup.
    ///
    /// # Panics
    /// If provision did not set it: only possible when the module is used without the core,
    /// which hands modules out after provision only.
    pub fn get_mut(&mut self) -> &mut T {
        match &mut self.0 {
            Some(value) => value,
            None => not_provisioned::<T>(),
        }
    }
}

impl<T> std::ops::Deref for Provisioned<T> {
    type Target = T;

    /// # Panics
    /// If provision did not set it (see [`get_mut`](Provisioned::get_mut)).
    fn deref(&self) -> &T {
        match &self.0 {
            Some(value) => value,
            None => not_provisioned::<T>(),
        }
    }
}

#[cold]
fn not_provisioned<T>() -> ! {
    panic!(
        "`Provisioned<{}>` read before the module's provision set it: modules must be loaded through xbuild_core::Context",
        std::any::type_name::<T>()
    )
}

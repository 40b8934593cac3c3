//! The lifecycle: loading modules (lookup, strict decode, provision, validate) and running
//! apps (start all or none, stop in reverse, clean up everything that provisioned).

use std::future::Future;
use std::mem::ManuallyDrop;

use serde::Deserialize;

use crate::config::{self, ConfigError, Value};
use crate::guard::{self, CallError, MethodSeries};
use crate::instance::ModuleInstance;
use crate::module::{App, BoxError, Module, Refresh};
use crate::registry::{InstantiateError, LookupError, ModuleRegistration, Registry};
use scope::{Membership, Retire, Retiring, Scope};

mod scope;

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No module of that name in the namespace.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The config section does not decode into the module's type.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The module exists but was registered as another interface than the one asked for;
    /// nothing was provisioned.
    #[error("module `{id}` is registered as `{registered}`, but `{requested}` was asked for")]
    WrongInterface {
        /// ID of the module found.
        id: &'static str,
        /// The namespace it was looked up in.
        namespace: String,
        /// The interface it was registered as, as written in its registration.
        registered: &'static str,
        /// The interface asked for, as [`std::any::type_name`] gives it.
        requested: &'static str,
    },
    /// [`Context::load_inline`] found no string field naming the module.
    #[error("a module config in namespace `{namespace}` needs a `{key}` field naming the module")]
    MissingKey {
        /// The namespace the module would come from.
        namespace: String,
        /// The field that should name it.
        key: String,
        /// Names of the namespace's modules, for the hint.
        available: Vec<&'static str>,
    },
    /// Decoding, provision or validation failed or panicked. If validation failed, the
    /// module was already cleaned up.
    #[error(transparent)]
    Call(#[from] CallError),
}

fn one_of(available: &[&str]) -> Vec<String> {
    if available.is_empty() {
        Vec::new()
    } else {
        vec![format!("one of {}", available.join(", "))]
    }
}

impl LoadError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Vec<String> {
        match self {
            LoadError::WrongInterface { namespace, .. } => vec![format!(
                "it cannot be used in this place; pick a module of namespace `{namespace}` written for it"
            )],
            LoadError::MissingKey { available, .. } => one_of(available),
            // `transparent`: the chain skips the inner error, so its help is asked here.
            LoadError::Lookup(inner) => inner.help(),
            LoadError::Config(inner) => crate::error::Diagnostic::help(inner),
            _ => Vec::new(),
        }
    }
}

/// What a module's provision hook gets: the registry, to load child modules by namespace.
///
/// The context owns what is loaded through it. A child's [`Loaded`] value belongs to the
/// module that loaded it, which stores it as it likes; when that value is dropped, the child
/// is cleaned up, together with its siblings in reverse load order, once the parent is gone:
/// after the parent's own cleanup hook, or at once if the parent's provision or validation
/// fails later. A module therefore never cleans up its children by hand.
pub struct Context<'a> {
    registry: &'a Registry<'a>,
    /// The children of the module being provisioned; `None` for a context a host or test
    /// made, whose caller cleans up what it loads.
    scope: Option<Scope>,
    /// The module being provisioned, `None` for a context a host or test made.
    module: Option<&'static str>,
    /// [`Refresh`] hooks registered by the modules loaded through this context and the
    /// contexts of their provisions (one list for a whole config).
    refresh: RefreshHooks,
    /// The modules that asked to be restarted on a reload ([`Context::restart_on_reload`]).
    restarts: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
}

/// The [`Refresh`] hooks registered through a context (and the contexts of the modules it
/// loaded), by module ID, in registration order: what a reload of an unchanged config
/// calls. A shared handle: clones see the same hooks.
#[derive(Clone, Default)]
pub struct RefreshHooks(std::sync::Arc<std::sync::Mutex<Vec<RefreshHook>>>);

/// A [`Refresh`] hook and the ID of the module that registered it.
type RefreshHook = (&'static str, std::sync::Arc<dyn Refresh>);

impl RefreshHooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RefreshHook>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The IDs of the modules whose hooks these are, one per hook.
    pub fn ids(&self) -> Vec<&'static str> {
        self.lock().iter().map(|(id, _)| *id).collect()
    }

    /// Calls every hook, in registration order, through the guard (panics caught, calls
    /// counted); returns the errors. A module whose hook fails keeps what it had.
    pub fn refresh(&self) -> Vec<CallError> {
        let hooks = self.lock().clone();
        hooks
            .iter()
            .filter_map(|(id, hook)| guard::call(id, "refresh", || hook.refresh()).err())
            .collect()
    }
}

impl<'a> Context<'a> {
    /// A context that loads modules from `registry`. Hooks get theirs from the core; a host
    /// or test makes one to load modules itself. Modules loaded through it are cleaned up
    /// when their [`Loaded`] value is dropped, or earlier with [`Loaded::cleanup`].
    pub fn new(registry: &'a Registry<'a>) -> Self {
        Self {
            registry,
            scope: None,
            module: None,
            refresh: RefreshHooks::default(),
            restarts: Default::default(),
        }
    }

    /// Called in an app's provision by an app that cannot run beside the running config's
    /// app of the same ID (it holds something it cannot share with it, such as a port or a
    /// lock): a reload then stops that one before starting this one, a restart with a gap,
    /// instead of switching in place. If this one then fails to start, the old one is
    /// started again. Has no effect for modules that are not apps.
    pub fn restart_on_reload(&mut self) {
        if let Some(module) = self.module {
            self.restarts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(module);
        }
    }

    /// Registers `hook` to be called when the host is asked to reload and the config has
    /// not changed (see [`Refresh`]). Called from a module's provision; if that provision
    /// or its validation fails, the hook is dropped with the module.
    pub fn on_refresh(&mut self, hook: std::sync::Arc<dyn Refresh>) {
        let module = self.module.unwrap_or("(host)");
        self.refresh.lock().push((module, hook));
    }

    /// The [`Refresh`] hooks registered through this context and the modules it loaded: a
    /// host or test kit calls them as a reload of an unchanged config does.
    pub fn refresh_hooks(&self) -> RefreshHooks {
        self.refresh.clone()
    }

    /// The registry modules are loaded from, e.g. to list what a namespace offers.
    pub fn registry(&self) -> &'a Registry<'a> {
        self.registry
    }

    /// Loads module `name` of `namespace` as interface `I` from its config section:
    /// decode strictly, provision, validate.
    pub fn load<I: ?Sized + Module>(
        &mut self,
        namespace: &str,
        name: &str,
        config: Value,
    ) -> Result<Loaded<I>, LoadError> {
        let registration = self.registry.lookup(namespace, name)?;
        let instance = instantiate(registration, config)?;
        if !instance.is::<I>() {
            return Err(LoadError::WrongInterface {
                id: registration.id,
                namespace: namespace.to_owned(),
                registered: registration.interface(),
                requested: std::any::type_name::<I>(),
            });
        }
        let (instance, children) = self.provision(registration, instance)?;
        let module = instance
            .into_interface::<I>()
            .expect("interface checked before provisioning");
        Ok(self.adopt(registration.id, module, children))
    }

    /// Loads a registration as whatever interface it was registered as (selftest's way:
    /// it checks every module without knowing their interfaces).
    pub(crate) fn load_any(
        &mut self,
        registration: &ModuleRegistration,
        config: Value,
    ) -> Result<Loaded<ModuleInstance>, LoadError> {
        let instance = instantiate(registration, config)?;
        let (instance, children) = self.provision(registration, instance)?;
        Ok(self.adopt(registration.id, Box::new(instance), children))
    }

    /// Provisions and validates a decoded module, with a context of its own whose scope
    /// collects the children it loads. On failure the module and its children are gone,
    /// cleaned up, when this returns.
    fn provision(
        &self,
        registration: &ModuleRegistration,
        mut instance: ModuleInstance,
    ) -> Result<(ModuleInstance, Scope), LoadError> {
        let id = registration.id;
        tracing::info!(
            module = id,
            krate = registration.crate_name,
            version = registration.crate_version,
            "provisioning module"
        );
        let children = Scope::default();
        let hooks_before = self.refresh.lock().len();
        let mut own = Context {
            registry: self.registry,
            scope: Some(children.clone()),
            module: Some(id),
            refresh: self.refresh.clone(),
            restarts: self.restarts.clone(),
        };
        let outcome = match guard::provision(id, || instance.as_module().provision(&mut own)) {
            Err(err) => Err(err),
            Ok(()) => {
                guard::call(id, "validate", || instance.as_module().validate()).inspect_err(|_| {
                    // It provisioned, so it gets its cleanup though it will not be used.
                    let _ = guard::call(id, "cleanup", || instance.as_module().cleanup());
                })
            }
        };
        match outcome {
            Ok(()) => Ok((instance, children)),
            Err(err) => {
                // The hooks it and its children registered go with them.
                self.refresh.lock().truncate(hooks_before);
                // Dropping it hands back the children it kept; those it dropped already
                // wait in the scope. Either way they are cleaned up here, newest first.
                drop(instance);
                children.close();
                Err(err.into())
            }
        }
    }

    fn adopt<I: ?Sized + Module>(
        &self,
        id: &'static str,
        module: Box<I>,
        children: Scope,
    ) -> Loaded<I> {
        Loaded {
            id,
            module: ManuallyDrop::new(module),
            series: MethodSeries::default(),
            cleaned_up: false,
            children,
            membership: self.scope.as_ref().map(Scope::adopt),
        }
    }

    /// Loads a module whose name is a field of its own config, Caddy's "inline key":
    /// `{ handler = "static_response", body = "hi" }` with `key = "handler"`.
    pub fn load_inline<I: ?Sized + Module>(
        &mut self,
        namespace: &str,
        key: &str,
        mut config: Value,
    ) -> Result<Loaded<I>, LoadError> {
        let name = config
            .as_object_mut()
            .and_then(|map| map.shift_remove(key))
            .and_then(|v| v.as_str().map(str::to_owned));
        match name {
            Some(name) => self.load(namespace, &name, config),
            None => Err(LoadError::MissingKey {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                available: self
                    .registry
                    .in_namespace(namespace)
                    .map(|m| m.name())
                    .collect(),
            }),
        }
    }
}

fn instantiate(
    registration: &ModuleRegistration,
    config: Value,
) -> Result<ModuleInstance, LoadError> {
    registration.instantiate(config).map_err(|err| match err {
        InstantiateError::Config(err) => err.into(),
        InstantiateError::Call(err) => err.into(),
    })
}

/// A provisioned and validated module, held as the interface its namespace defines. Every
/// call into it should go through [`call`](Loaded::call) or [`call_async`](Loaded::call_async),
/// which catch panics and record metrics.
///
/// Dropping it cleans the module up (unless [`cleanup`](Loaded::cleanup) already ran), and
/// then the children it loaded, newest first. A child of another module is cleaned up once
/// that module is gone, in reverse load order with its siblings.
pub struct Loaded<I: ?Sized + Module> {
    id: &'static str,
    // Taken out only in `drop`, to be handed to the scope that cleans it up.
    module: ManuallyDrop<Box<I>>,
    series: MethodSeries,
    cleaned_up: bool,
    children: Scope,
    membership: Option<Membership>,
}

impl<I: ?Sized + Module> Loaded<I> {
    /// The module's full ID (`http.handlers.static_response`).
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// Calls into the module through the guard.
    pub fn call<R>(
        &self,
        method: &'static str,
        f: impl FnOnce(&I) -> Result<R, BoxError>,
    ) -> Result<R, CallError> {
        guard::call_with(self.id, method, Some(&self.series), || f(&self.module))
    }

    /// [`call`](Loaded::call) with mutable access.
    pub fn call_mut<R>(
        &mut self,
        method: &'static str,
        f: impl FnOnce(&mut I) -> Result<R, BoxError>,
    ) -> Result<R, CallError> {
        let module = &mut **self.module;
        guard::call_with(self.id, method, Some(&self.series), || f(module))
    }

    /// Calls async module code through the guard; every poll is protected.
    pub fn call_async<'s, R, F>(
        &'s self,
        method: &'static str,
        f: impl FnOnce(&'s I) -> F,
    ) -> impl Future<Output = Result<R, CallError>>
    where
        F: Future<Output = Result<R, BoxError>> + 's,
    {
        // `f` runs at the first poll, inside the guard: a panic while it makes its future
        // is caught too.
        let module = &self.module;
        let future = async move { f(module).await };
        guard::call_async_with(self.id, method, Some(&self.series), future)
    }

    /// Runs the module's cleanup hook now, to see its error (once; later calls and the
    /// drop do nothing more). Its children are cleaned up when this value is dropped.
    pub fn cleanup(&mut self) -> Result<(), CallError> {
        if std::mem::replace(&mut self.cleaned_up, true) {
            return Ok(());
        }
        let module = &mut **self.module;
        guard::call(self.id, "cleanup", || module.cleanup())
    }
}

impl<I: ?Sized + Module> Drop for Loaded<I> {
    fn drop(&mut self) {
        // SAFETY: `module` is taken exactly once, here, and `self` is not used after.
        let module = unsafe { ManuallyDrop::take(&mut self.module) };
        let retiring = Box::new(Retiring {
            id: self.id,
            module,
            cleaned_up: self.cleaned_up,
            children: std::mem::take(&mut self.children),
        });
        match self.membership.take() {
            Some(membership) => membership.hand_back(retiring),
            None => retiring.retire(),
        }
    }
}

/// The host config file's top level.
#[derive(Debug, Deserialize)]
struct HostConfig {
    #[serde(default)]
    apps: serde_json::Map<String, Value>,
    /// The host's admin socket, read by the host CLI (`crate::host::admin`), not by apps.
    #[serde(default)]
    #[allow(dead_code)]
    admin: Value,
}

/// Lifecycle failures of a whole host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The config's top level does not decode (only `apps` and `admin` are allowed there).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An app could not be loaded; the apps loaded before it were cleaned up.
    #[error("cannot load app `{app}`: {source}")]
    Load {
        /// The app's ID, as the config names it.
        app: String,
        /// Why it could not be loaded.
        #[source]
        source: LoadError,
    },
    /// The config names no apps.
    #[error("the config has no apps, so there is nothing to run")]
    NoApps {
        /// IDs of the registered apps, for the hint.
        available: Vec<&'static str>,
    },
    /// An app failed to start; the apps started before it were stopped again.
    #[error("{}", describe_start_failure(.failed, .rollback))]
    Start {
        /// The failed start.
        failed: CallError,
        /// Errors from stopping the apps already started; empty if they all stopped.
        rollback: Vec<CallError>,
    },
}

impl LifecycleError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Vec<String> {
        match self {
            LifecycleError::NoApps { available } => {
                let mut help = vec!["add a section such as `[apps.http]`".to_owned()];
                help.extend(one_of(available));
                help
            }
            LifecycleError::Config(inner) => crate::error::Diagnostic::help(inner),
            _ => Vec::new(),
        }
    }
}

fn describe_start_failure(failed: &CallError, rollback: &[CallError]) -> String {
    let mut text = format!("startup failed: {failed}");
    // What the rollback did is a note (LifecycleError::notes) when it went well; when it
    // failed too, that is part of the error.
    if !rollback.is_empty() {
        text.push_str("\n  stopping the apps already started also failed:");
        for err in rollback {
            text.push_str(&format!("\n  - {err}"));
        }
    }
    text
}

/// The apps of one config, provisioned and validated, in config order.
pub struct Apps {
    apps: Vec<Loaded<dyn App>>,
    started: usize,
    /// Started apps stopped ahead of the others by a reload that restarts them.
    paused: Vec<usize>,
    /// The IDs of the apps that restart on a reload ([`Context::restart_on_reload`]).
    restarts: Vec<&'static str>,
    refresh: RefreshHooks,
}

impl Apps {
    /// Loads every app named under `apps` in the config. All or nothing: if one fails, the
    /// ones already provisioned are cleaned up.
    pub fn provision(registry: &Registry<'_>, config: Value) -> Result<Apps, LifecycleError> {
        let host: HostConfig = config::decode_strict("config file", config)?;
        if host.apps.is_empty() {
            return Err(LifecycleError::NoApps {
                available: registry.in_namespace("").map(|m| m.id).collect(),
            });
        }
        let mut ctx = Context::new(registry);
        let mut apps = Apps {
            apps: Vec::with_capacity(host.apps.len()),
            started: 0,
            paused: Vec::new(),
            restarts: Vec::new(),
            refresh: RefreshHooks::default(),
        };
        for (name, section) in host.apps {
            match ctx.load::<dyn App>("", &name, section) {
                Ok(app) => apps.apps.push(app),
                Err(source) => {
                    apps.cleanup();
                    return Err(LifecycleError::Load { app: name, source });
                }
            }
        }
        apps.refresh = ctx.refresh_hooks();
        apps.restarts = ctx
            .restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(apps)
    }

    /// The apps' IDs, in config order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.apps.iter().map(|a| a.id()).collect()
    }

    /// Starts the apps in order. If one fails, those already started are stopped in reverse
    /// order and both the start error and any stop errors are returned.
    pub fn start(&mut self) -> Result<(), LifecycleError> {
        while self.started < self.apps.len() {
            let app = &mut self.apps[self.started];
            tracing::info!(app = app.id(), "starting app");
            if let Err(failed) = app.call_mut("start", |a| a.start()) {
                let rollback = self.stop();
                return Err(LifecycleError::Start { failed, rollback });
            }
            self.started += 1;
        }
        Ok(())
    }

    /// Stops the started apps in reverse order; returns the errors (stopping goes on past
    /// a failing app).
    pub fn stop(&mut self) -> Vec<CallError> {
        let mut errors = Vec::new();
        while self.started > 0 {
            self.started -= 1;
            if self.paused.contains(&self.started) {
                continue;
            }
            let app = &mut self.apps[self.started];
            tracing::info!(app = app.id(), "stopping app");
            if let Err(err) = app.call_mut("stop", |a| a.stop()) {
                errors.push(err);
            }
        }
        self.paused.clear();
        errors
    }

    /// Cleans up every app, in reverse order, each followed by the children it loaded;
    /// returns the apps' errors (the children's are logged). The apps are gone afterwards.
    pub fn cleanup(&mut self) -> Vec<CallError> {
        self.started = 0;
        self.refresh = RefreshHooks::default();
        let mut errors = Vec::new();
        while let Some(mut app) = self.apps.pop() {
            errors.extend(app.cleanup().err());
        }
        errors
    }

    /// Calls every module's [`Refresh`] hook (in the order they were registered) through
    /// the guard; returns the errors. Each module keeps what it had if its hook fails.
    pub fn refresh(&self) -> Vec<CallError> {
        self.refresh.refresh()
    }

    /// How many [`Refresh`] hooks the modules registered.
    pub fn refresh_hook_count(&self) -> usize {
        self.refresh.lock().len()
    }

    /// Starts again the apps a failed reload stopped ahead of the others.
    fn resume(&mut self) {
        for index in std::mem::take(&mut self.paused).into_iter().rev() {
            let app = &mut self.apps[index];
            tracing::info!(app = app.id(), "starting app again: the reload failed");
            if let Err(err) = app.call_mut("start", |a| a.start()) {
                tracing::error!(app = app.id(), error = %err, "app could not be started again; it is down until the next reload");
                self.paused.push(index);
            }
        }
    }

    /// Stop, then cleanup.
    pub fn shutdown(&mut self) -> Vec<CallError> {
        let mut errors = self.stop();
        errors.extend(self.cleanup());
        errors
    }

    /// Replaces these running apps with those of `config`, as Caddy reloads: the new apps
    /// are provisioned, validated and started beside the running ones (an app that shares
    /// what it cannot hold twice, as the HTTP app shares its listening sockets, switches
    /// over without a gap), and only then are the old ones stopped (in-flight work finishing
    /// within each app's grace period) and cleaned up. If anything of the new config fails,
    /// the new apps already started are stopped, all of them are cleaned up, and these keep
    /// running untouched; the error says what failed.
    ///
    /// An app whose new instance asked for it ([`Context::restart_on_reload`]) is restarted
    /// instead: once the new config is provisioned and validated, the running instance is
    /// stopped before the new apps start; if they fail to start, it is started again.
    ///
    /// Returns the errors of stopping and cleaning up the old apps: the new config runs
    /// whatever they were.
    pub fn reload(
        &mut self,
        registry: &Registry<'_>,
        config: Value,
    ) -> Result<Vec<CallError>, LifecycleError> {
        let mut next = Apps::provision(registry, config)?;
        // Apps that cannot run beside their predecessor: it stops first (a restart).
        let mut old_errors = Vec::new();
        for index in (0..self.started).rev() {
            let app = &mut self.apps[index];
            if next.restarts.contains(&app.id()) {
                tracing::info!(
                    app = app.id(),
                    "stopping app to restart it with the new config"
                );
                old_errors.extend(app.call_mut("stop", |a| a.stop()).err());
                self.paused.push(index);
            }
        }
        if let Err(err) = next.start() {
            next.cleanup();
            self.resume();
            return Err(err);
        }
        let mut old = std::mem::replace(self, next);
        old_errors.extend(old.shutdown());
        Ok(old_errors)
    }
}

impl crate::error::Diagnostic for LoadError {
    fn help(&self) -> Vec<String> {
        LoadError::help(self)
    }
}

impl crate::error::Diagnostic for LifecycleError {
    fn help(&self) -> Vec<String> {
        LifecycleError::help(self)
    }

    fn notes(&self) -> Vec<String> {
        match self {
            LifecycleError::Start { rollback, .. } if rollback.is_empty() => {
                vec!["the apps of this config already started were stopped again".to_owned()]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;

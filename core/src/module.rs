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
pub trait App: Module {
    /// Starts serving. Should return once the app is running (e.g. its listeners are bound),
    /// doing the long-running work on threads it owns.
    fn start(&mut self) -> Result<(), BoxError>;

    /// Stops gracefully; the host bounds how long it waits.
    fn stop(&mut self) -> Result<(), BoxError>;
}

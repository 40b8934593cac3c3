//! # xbuild-core
//!
//! The crate every xbuild host and module shares. xbuild composes one static host binary
//! from module crates at build time (Caddy's xcaddy, for Rust); this crate is the small,
//! versioned contract between them:
//!
//! - **Registration**: a module crate calls [`register_module!`] once per module. The macro
//!   puts a [`ModuleRegistration`] into a `linkme` distributed slice whose name carries this
//!   crate's API version, so module crates need no linkme dependency of their own, and a
//!   module built against an incompatible core is detectably absent rather than mixed in.
//! - **Namespaces as extension points**: IDs are dotted (`http.handlers.static_response`).
//!   A module that hosts others (an HTTP app) asks its [`Context`] for "module `name` of
//!   namespace `http.handlers`, as `dyn Handler`" and gets a typed [`Loaded`] value.
//! - **Lifecycle** ([`Module`], [`App`]): strict config decoding, provision, validate, start,
//!   stop, cleanup; startup is all or nothing.
//! - **Call-site safety**: every call into a module goes through [`guard`], which catches
//!   panics and records metrics ([`metrics::render`] gives Prometheus text).
//! - **The host CLI** ([`host::main`]): `run`, `validate`, `reload`, `list-modules`, `build-info`,
//!   `selftest`, `version`, plus commands modules add with [`register_command!`].
//!
//! What is where: the crate root holds what a module needs ([`Module`], [`App`],
//! [`Context`], [`Loaded`], [`Provisioned`], the two macros and their errors); [`metrics`]
//! its own metrics; `testing` (feature `testing`) the test kit; [`host`] and [`build_info`]
//! what a host binary and xbuild need. Items marked `#[doc(hidden)]` are not part of the
//! API. The guide from a new crate to a published one is `docs/writing-a-module.md` in
//! xbuild's repository.
//!
//! ```
//! use serde::Deserialize;
//! use xbuild_core::{BoxError, Module};
//!
//! /// The interface of a namespace, defined by the module that hosts it.
//! pub trait Greeter: Module {
//!     fn greet(&self) -> String;
//! }
//!
//! #[derive(Deserialize)]
//! struct Hello {
//!     #[serde(default = "default_name")]
//!     name: String,
//! }
//! fn default_name() -> String { "world".into() }
//!
//! impl Module for Hello {
//!     fn validate(&self) -> Result<(), BoxError> {
//!         if self.name.is_empty() { return Err("name must not be empty".into()); }
//!         Ok(())
//!     }
//! }
//! impl Greeter for Hello {
//!     fn greet(&self) -> String { format!("hello, {}", self.name) }
//! }
//!
//! xbuild_core::register_module!("greeters.hello", Hello as dyn Greeter);
//! ```
//!
//! A malformed or reserved ID does not compile:
//!
//! ```compile_fail
//! #[derive(serde::Deserialize)]
//! struct M {}
//! impl xbuild_core::Module for M {}
//! xbuild_core::register_module!("Bad-ID", M);
//! ```

#![deny(missing_docs)]

pub mod build_info;
mod config;
pub mod error;
pub mod guard;
pub mod host;
pub mod id;
mod instance;
mod lifecycle;
pub mod log_writer;
pub mod manifest;
pub mod metrics;
mod module;
mod registry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use build_info::BuildInfo;
pub use config::{ConfigError, Value};

/// Durations in configs and flags: a number of seconds, or a string with units as in
/// Caddy's configs (`"30s"`, `"1m30s"`, `"500ms"`). For a module's config:
/// `#[serde(deserialize_with = "xbuild_core::duration::seconds")] timeout: f64`.
pub mod duration {
    pub use crate::config::{optional_seconds, parse_seconds, seconds};
}
pub use error::Hinted;
pub use guard::CallError;
pub use lifecycle::{Context, LoadError, Loaded, RefreshHooks};
pub use module::{App, BoxError, Module, Provisioned, Refresh};
pub use registry::{
    Audit, CommandRegistration, LookupError, ModuleRegistration, Registry, RegistryError,
    STANDARD_CRATES,
};

/// This crate's version; hosts report it in `build-info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The API version: the part of [`VERSION`] that semver compatibility depends on (the minor
/// version while the major is 0). It is in the names of the registration slices, so modules
/// built against a core with another API version register into a slice this core never
/// reads, and the host's selftest reports them as missing instead of mixing them in.
///
/// Written once, in the slice names below; this constant and `Cargo.toml`'s version are
/// checked against them at compile time.
pub const API_VERSION: &str = "0.1";

const _: () = assert!(
    __private::api_version_matches(VERSION, API_VERSION)
        && __private::slice_name_matches(__private::MODULES_SLICE, API_VERSION)
        && __private::slice_name_matches(__private::COMMANDS_SLICE, API_VERSION),
    "bump API_VERSION and rename the registration slices together with the crate's version"
);

/// Registers a module with the host.
///
/// `register_module!("namespace.name", Type as dyn Interface)` — `Type` must implement
/// `serde::Deserialize` (its fields are its config) and `Interface`, a trait extending
/// [`Module`] that the namespace's host module defines (apps use [`App`]). Without
/// `as ...` the module is registered as `dyn Module`.
///
/// The ID is checked at compile time; the crate name and version are captured from Cargo.
///
/// `selftest`'s leak audit loads every module (and starts and stops every app), cleans it
/// up, and fails one that left a thread running or a file descriptor open. It loads a module
/// with an empty config unless the registration says otherwise, as a last argument:
/// - `selftest = config(r#"{"servers": ...}"#)`: with this config (JSON), e.g. an app
///   listening on `127.0.0.1:0`, or a module that needs a field to load;
/// - `selftest = skip("connects to PostgreSQL at start")`: not at all, for a module that
///   needs outside resources; selftest reports the reason.
///
/// ```
/// use xbuild_core::{Audit, Module, Registry};
///
/// #[derive(serde::Deserialize)]
/// struct Pool {}
/// impl Module for Pool {}
///
/// xbuild_core::register_module!("db.pool", Pool, selftest = skip("needs a database"));
///
/// let registry = Registry::linked()?;
/// assert_eq!(registry.lookup("db", "pool")?.audit(), Audit::Skip("needs a database"));
/// # Ok::<(), xbuild_core::BoxError>(())
/// ```
///
/// ```
/// use xbuild_core::{BoxError, Context, Module, Registry};
///
/// /// The interface of namespace `shapes`, defined by the module that hosts it.
/// pub trait Shape: Module {
///     fn area(&self) -> u32;
/// }
///
/// #[derive(serde::Deserialize)]
/// struct Square {
///     side: u32,
/// }
/// impl Module for Square {}
/// impl Shape for Square {
///     fn area(&self) -> u32 {
///         self.side * self.side
///     }
/// }
///
/// xbuild_core::register_module!("shapes.square", Square as dyn Shape);
///
/// let registry = Registry::linked()?;
/// assert!(registry.lookup("shapes", "square")?.interface().ends_with("::Shape"));
///
/// // A host module loads it from its config section, as the interface it defines.
/// let mut ctx = Context::new(&registry);
/// let config = serde_json::json!({ "side": 3 });
/// let mut square = ctx.load::<dyn Shape>("shapes", "square", config)?;
/// assert_eq!(square.call("area", |s| Ok(s.area()))?, 9);
/// square.cleanup()?;
/// # Ok::<(), BoxError>(())
/// ```
#[macro_export]
macro_rules! register_module {
    ($id:literal, $module:ty as $interface:ty, selftest = $audit:ident($arg:expr) $(,)?) => {
        $crate::__register_module!(
            $id,
            $module,
            $interface,
            $crate::__private::selftest::$audit($arg)
        );
    };
    ($id:literal, $module:ty, selftest = $audit:ident($arg:expr) $(,)?) => {
        $crate::__register_module!(
            $id,
            $module,
            dyn $crate::Module,
            $crate::__private::selftest::$audit($arg)
        );
    };
    ($id:literal, $module:ty as $interface:ty $(,)?) => {
        $crate::__register_module!($id, $module, $interface, $crate::Audit::EmptyConfig);
    };
    ($id:literal, $module:ty $(,)?) => {
        $crate::__register_module!($id, $module, dyn $crate::Module, $crate::Audit::EmptyConfig);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __register_module {
    ($id:literal, $module:ty, $interface:ty, $audit:expr) => {
        const _: () = {
            ::core::assert!(
                $crate::__private::is_registrable_id($id),
                "invalid xbuild module ID: use dotted lowercase ASCII, digits and `_` (`namespace.name`), outside the reserved `xbuild` namespace"
            );
            #[$crate::__private::linkme::distributed_slice($crate::__private::XBUILD_CORE_API_0_1_MODULES)]
            #[linkme(crate = $crate::__private::linkme)]
            static REGISTRATION: $crate::ModuleRegistration = $crate::ModuleRegistration::__new(
                $id,
                || ::core::any::type_name::<$interface>(),
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                |config| {
                    let module: $module = $crate::__private::decode_strict($id, config)?;
                    let boxed: ::std::boxed::Box<$interface> = ::std::boxed::Box::new(module);
                    ::core::result::Result::Ok($crate::__private::ModuleInstance::new(boxed))
                },
                $audit,
            );
        };
    };
}

/// Adds a subcommand to the host CLI: `register_command!("name", "what it does", run)`
/// with `fn run(args: Vec<String>) -> i32` (the arguments after the name; returns the exit
/// code).
///
/// The host runs the command through the guard, so a panic in it is reported as an error,
/// and its name must not be one of the host's own commands (`run`, `validate`, `reload`,
/// `list-modules`, `build-info`, `selftest`, `version`, `help`): the host refuses to start
/// with such a registration.
///
/// ```
/// use xbuild_core::{BoxError, BuildInfo, host};
///
/// fn greet(args: Vec<String>) -> i32 {
///     match args.as_slice() {
///         [name] => {
///             println!("hello, {name}");
///             0
///         }
///         _ => {
///             eprintln!("usage: greet NAME");
///             2
///         }
///     }
/// }
///
/// xbuild_core::register_command!("greet", "Print a greeting", greet);
///
/// // `my-host greet world`, as the host's `main` would run it:
/// let args = ["my-host", "greet", "world"].map(Into::into).to_vec();
/// assert_eq!(host::run(BuildInfo::new("doc"), args), 0);
///
/// let registry = xbuild_core::Registry::linked()?;
/// let command = registry.command("greet").expect("registered");
/// assert_eq!(command.about(), "Print a greeting");
/// assert_eq!(command.run(Vec::new()), 2);
/// # Ok::<(), BoxError>(())
/// ```
#[macro_export]
macro_rules! register_command {
    ($name:literal, $about:literal, $run:path $(,)?) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice(
                $crate::__private::XBUILD_CORE_API_0_1_COMMANDS
            )]
            #[linkme(crate = $crate::__private::linkme)]
            static COMMAND: $crate::CommandRegistration = $crate::CommandRegistration::__new(
                $name,
                $about,
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                $run,
            );
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use linkme;

    pub use crate::config::{decode_strict, load_file};
    pub use crate::instance::ModuleInstance;
    use crate::{CommandRegistration, ModuleRegistration};

    /// The forms of `register_module!`'s `selftest = ...` option.
    pub mod selftest {
        use crate::Audit;

        /// `selftest = config(r#"{...}"#)`: audit the module loaded with this config.
        pub const fn config(json: &'static str) -> Audit {
            Audit::Config(json)
        }

        /// `selftest = skip("why")`: do not audit it; selftest reports the reason.
        pub const fn skip(reason: &'static str) -> Audit {
            Audit::Skip(reason)
        }
    }

    pub(crate) const MODULES_SLICE: &str = stringify!(XBUILD_CORE_API_0_1_MODULES);
    pub(crate) const COMMANDS_SLICE: &str = stringify!(XBUILD_CORE_API_0_1_COMMANDS);

    /// Whether `api` is the semver-significant part of `version`: `0.MINOR` while the
    /// major is 0, else `MAJOR`.
    pub(crate) const fn api_version_matches(version: &str, api: &str) -> bool {
        let (v, a) = (version.as_bytes(), api.as_bytes());
        let dots = if !v.is_empty() && v[0] == b'0' { 2 } else { 1 };
        let mut i = 0;
        let mut seen = 0;
        while i < v.len() {
            if v[i] == b'.' {
                seen += 1;
                if seen == dots {
                    break;
                }
            }
            if i >= a.len() || a[i] != v[i] {
                return false;
            }
            i += 1;
        }
        i == a.len()
    }

    /// Whether slice name `name` ends in `API_<api with `_` for `.`>_MODULES` or `_COMMANDS`.
    pub(crate) const fn slice_name_matches(name: &str, api: &str) -> bool {
        let (n, a) = (name.as_bytes(), api.as_bytes());
        let prefix = b"XBUILD_CORE_API_";
        if n.len() < prefix.len() + a.len() + 1 {
            return false;
        }
        let mut i = 0;
        while i < prefix.len() {
            if n[i] != prefix[i] {
                return false;
            }
            i += 1;
        }
        let mut j = 0;
        while j < a.len() {
            let want = if a[j] == b'.' { b'_' } else { a[j] };
            if n[prefix.len() + j] != want {
                return false;
            }
            j += 1;
        }
        n[prefix.len() + a.len()] == b'_'
    }

    // The identifiers are the linker section names (FACTS.md): distinctive, and versioned
    // so two semver-incompatible cores never share (and corrupt) one slice.
    #[linkme::distributed_slice]
    pub static XBUILD_CORE_API_0_1_MODULES: [ModuleRegistration];

    #[linkme::distributed_slice]
    pub static XBUILD_CORE_API_0_1_COMMANDS: [CommandRegistration];

    /// Compile-time twin of [`crate::id::check_registrable`].
    pub const fn is_registrable_id(id: &str) -> bool {
        let bytes = id.as_bytes();
        if bytes.is_empty() || bytes.len() > crate::id::MAX_ID_LEN {
            return false;
        }
        let mut i = 0;
        let mut segment_start = true;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'.' {
                if segment_start {
                    return false;
                }
                segment_start = true;
            } else {
                let ok =
                    b.is_ascii_lowercase() || b == b'_' || (b.is_ascii_digit() && !segment_start);
                if !ok {
                    return false;
                }
                segment_start = false;
            }
            i += 1;
        }
        if segment_start {
            return false;
        }
        let reserved = b"xbuild";
        let mut j = 0;
        while j < reserved.len() {
            if j >= bytes.len() || bytes[j] != reserved[j] {
                return true;
            }
            j += 1;
        }
        !(bytes.len() == reserved.len() || bytes[reserved.len()] == b'.')
    }

    #[cfg(test)]
    mod tests {
        use super::{api_version_matches, slice_name_matches};

        #[test]
        fn the_api_version_is_checked_against_the_version_and_slice_names() {
            assert!(api_version_matches("0.1.0", "0.1"));
            assert!(api_version_matches("0.1.7-rc.1", "0.1"));
            assert!(!api_version_matches("0.2.0", "0.1"));
            assert!(!api_version_matches("0.12.0", "0.1"));
            assert!(api_version_matches("1.4.2", "1"));
            assert!(!api_version_matches("1.4.2", "1.4"));
            assert!(slice_name_matches("XBUILD_CORE_API_0_1_MODULES", "0.1"));
            assert!(!slice_name_matches("XBUILD_CORE_API_0_12_MODULES", "0.1"));
            assert!(!slice_name_matches("XBUILD_CORE_API_0_2_MODULES", "0.1"));
            assert!(slice_name_matches("XBUILD_CORE_API_1_COMMANDS", "1"));
        }

        #[test]
        fn const_check_agrees_with_runtime_check() {
            for id in [
                "http",
                "a.b",
                "a..b",
                ".a",
                "a.",
                "",
                "A",
                "a.1b",
                "a1.b2",
                "xbuild",
                "xbuild.x",
                "xbuilds",
                "x_build.a",
                "a-b",
                "http.handlers.static_response",
            ] {
                assert_eq!(
                    super::is_registrable_id(id),
                    crate::id::check_registrable(id).is_ok(),
                    "{id}"
                );
            }
        }
    }
}

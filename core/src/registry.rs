//! The module registry: every registration the linker collected, checked once at startup,
//! and looked up by namespace. Everything here is a pure function over a slice so tests can
//! hand in a fake one instead of the linked-in distributed slice.

use std::collections::HashMap;
use std::fmt;

use crate::config::{ConfigError, Value};
use crate::id::{self, IdError};
use crate::instance::ModuleInstance;

/// One module, as its crate registered it through [`register_module!`](crate::register_module)
/// (the only way to make one).
pub struct ModuleRegistration {
    pub(crate) id: &'static str,
    /// [`std::any::type_name`] of the interface (not const yet, hence a function).
    pub(crate) interface: fn() -> &'static str,
    pub(crate) crate_name: &'static str,
    pub(crate) crate_version: &'static str,
    pub(crate) new: fn(Value) -> Result<ModuleInstance, ConfigError>,
    pub(crate) audit: Audit,
}

/// How `selftest`'s leak audit loads a module, chosen where it is registered (see
/// [`register_module!`](crate::register_module)): the audit loads it (and starts and stops
/// an app), cleans it up, and fails a module that left threads or open files behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Audit {
    /// With an empty config (`null`); a module that needs a config is then not audited.
    EmptyConfig,
    /// With this config (JSON), e.g. an app listening on `127.0.0.1:0`.
    Config(&'static str),
    /// Not audited, for this reason (it needs a database, a device, another host...);
    /// selftest reports it.
    Skip(&'static str),
}

impl fmt::Debug for ModuleRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleRegistration")
            .field("id", &self.id)
            .field("interface", &self.interface())
            .field("crate_name", &self.crate_name)
            .field("crate_version", &self.crate_version)
            .finish()
    }
}

impl ModuleRegistration {
    #[doc(hidden)]
    pub const fn __new(
        id: &'static str,
        interface: fn() -> &'static str,
        crate_name: &'static str,
        crate_version: &'static str,
        new: fn(Value) -> Result<ModuleInstance, ConfigError>,
        audit: Audit,
    ) -> Self {
        Self {
            id,
            interface,
            crate_name,
            crate_version,
            new,
            audit,
        }
    }

    /// How `selftest` audits the module for leaks.
    pub fn audit(&self) -> Audit {
        self.audit
    }

    /// Dotted module ID, e.g. `http.handlers.static_response`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The interface the module is handed out as, as [`std::any::type_name`] names it
    /// (`dyn xbuild_http::Handler`) however the registration wrote it; used in messages
    /// when a caller asks for another type.
    pub fn interface(&self) -> &'static str {
        (self.interface)()
    }

    /// Package name of the crate that registered the module (captured at compile time).
    pub fn crate_name(&self) -> &'static str {
        self.crate_name
    }

    /// Package version of the crate that registered the module.
    pub fn crate_version(&self) -> &'static str {
        self.crate_version
    }

    /// Whether the module is one of the standard modules: those of a default host (what
    /// `xbuild-standard` names), like Caddy's. The project's other module crates
    /// (`xbuild-tls`, `xbuild-http-auth`, ...) are not: a host has them only when built
    /// with them.
    pub fn is_standard(&self) -> bool {
        is_standard_crate(self.crate_name)
    }

    /// The namespace the module extends: its ID up to the last dot (`""` for apps).
    pub fn namespace(&self) -> &'static str {
        id::namespace_of(self.id)
    }

    /// The name a config uses for the module inside its namespace: the ID's last segment.
    pub fn name(&self) -> &'static str {
        id::name_of(self.id)
    }

    /// Decodes a config into a fresh instance. Decoding runs the module's own code (its
    /// `Deserialize` impl and field defaults), so it goes through the guard too.
    pub(crate) fn instantiate(&self, config: Value) -> Result<ModuleInstance, InstantiateError> {
        match crate::guard::call(self.id, "decode", || Ok((self.new)(config))) {
            Ok(Ok(instance)) => Ok(instance),
            Ok(Err(config)) => Err(InstantiateError::Config(config)),
            Err(call) => Err(InstantiateError::Call(call)),
        }
    }
}

/// Why [`ModuleRegistration::instantiate`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InstantiateError {
    /// The config does not decode into the module's type.
    #[error(transparent)]
    Config(ConfigError),
    /// Decoding panicked (in the module's `Deserialize` impl or a field default).
    #[error(transparent)]
    Call(crate::guard::CallError),
}

/// The crates of the standard modules: what `xbuild-standard` depends on. Kept in step
/// with it and with `registry.toml`'s `standard = true` entries by the test suite.
pub const STANDARD_CRATES: &[&str] = &["xbuild-http"];

/// See [`ModuleRegistration::is_standard`].
pub(crate) fn is_standard_crate(crate_name: &str) -> bool {
    STANDARD_CRATES.contains(&crate_name)
}

/// A subcommand a module adds to the host CLI, registered with
/// [`register_command!`](crate::register_command) (the only way to make one).
#[derive(Debug)]
pub struct CommandRegistration {
    pub(crate) name: &'static str,
    pub(crate) about: &'static str,
    pub(crate) crate_name: &'static str,
    pub(crate) crate_version: &'static str,
    pub(crate) run: fn(Vec<String>) -> i32,
}

impl CommandRegistration {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        about: &'static str,
        crate_name: &'static str,
        crate_version: &'static str,
        run: fn(Vec<String>) -> i32,
    ) -> Self {
        Self {
            name,
            about,
            crate_name,
            crate_version,
            run,
        }
    }

    /// The subcommand, as typed after the host's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// One line for the host's `--help`.
    pub fn about(&self) -> &'static str {
        self.about
    }

    /// Package name of the crate that registered the command (captured at compile time).
    pub fn crate_name(&self) -> &'static str {
        self.crate_name
    }

    /// Package version of the crate that registered the command.
    pub fn crate_version(&self) -> &'static str {
        self.crate_version
    }

    /// Runs the command with the arguments after its name; returns the exit code. Not
    /// guarded: the host runs it through [`guard::call`](crate::guard::call).
    pub fn run(&self, args: Vec<String>) -> i32 {
        (self.run)(args)
    }
}

/// Host subcommands modules may not take over.
pub(crate) const BUILTIN_COMMANDS: &[&str] = &[
    "run",
    "validate",
    "reload",
    "list-modules",
    "build-info",
    "selftest",
    "version",
    "help",
];

/// One thing wrong with the set of registrations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegistryProblem {
    /// Two registrations share one module ID.
    #[error("module ID `{id}` is registered twice: by {first} and by {second}")]
    DuplicateId {
        /// The shared ID.
        id: String,
        /// The crate (name and version) of the first registration.
        first: String,
        /// The crate of the second one.
        second: String,
    },
    /// A registration's ID is malformed or reserved (possible only for registrations not
    /// made with [`register_module!`](crate::register_module), which checks at compile time).
    #[error("{krate} registers an invalid module: {source}")]
    BadId {
        /// The crate (name and version) that registered it.
        krate: String,
        /// What is wrong with the ID.
        #[source]
        source: IdError,
    },
    /// Two crates register the same host command.
    #[error("host command `{name}` is registered twice: by {first} and by {second}")]
    DuplicateCommand {
        /// The shared command name.
        name: String,
        /// The crate (name and version) of the first registration.
        first: String,
        /// The crate of the second one.
        second: String,
    },
    /// A crate registers a command named like one of the [`BUILTIN_COMMANDS`].
    #[error("{krate} registers host command `{name}`, which is reserved by xbuild-core")]
    ReservedCommand {
        /// The command name.
        name: String,
        /// The crate (name and version) that registered it.
        krate: String,
    },
}

/// All problems found; startup refuses to go on with any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the module registry is inconsistent:\n{}", list(.0))]
pub struct RegistryError(pub(crate) Vec<RegistryProblem>);

fn list(problems: &[RegistryProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn crate_label(name: &str, version: &str) -> String {
    format!("`{name}` {version}")
}

/// A checked view over a slice of registrations, indexed by ID.
#[derive(Debug, Clone)]
pub struct Registry<'a> {
    modules: &'a [ModuleRegistration],
    commands: &'a [CommandRegistration],
    by_id: HashMap<&'a str, usize>,
}

impl<'a> Registry<'a> {
    /// Checks every registration (IDs well formed and not reserved, no duplicates, command
    /// names free) in one pass and reports every problem, not only the first. Hosts use
    /// [`linked`](Registry::linked); this is for the core's tests and benchmarks.
    #[doc(hidden)]
    pub fn new(
        modules: &'a [ModuleRegistration],
        commands: &'a [CommandRegistration],
    ) -> Result<Self, RegistryError> {
        let mut problems = Vec::new();
        let mut by_id: HashMap<&'a str, usize> = HashMap::with_capacity(modules.len());
        for (index, module) in modules.iter().enumerate() {
            if let Err(source) = id::check_registrable(module.id) {
                problems.push(RegistryProblem::BadId {
                    krate: crate_label(module.crate_name, module.crate_version),
                    source,
                });
                continue;
            }
            if let Some(&earlier) = by_id.get(module.id) {
                let first = &modules[earlier];
                problems.push(RegistryProblem::DuplicateId {
                    id: module.id.to_owned(),
                    first: crate_label(first.crate_name, first.crate_version),
                    second: crate_label(module.crate_name, module.crate_version),
                });
                continue;
            }
            by_id.insert(module.id, index);
        }
        let mut command_owner: HashMap<&str, &CommandRegistration> = HashMap::new();
        for command in commands {
            let krate = crate_label(command.crate_name, command.crate_version);
            if BUILTIN_COMMANDS.contains(&command.name) {
                problems.push(RegistryProblem::ReservedCommand {
                    name: command.name.to_owned(),
                    krate,
                });
            } else if let Some(first) = command_owner.insert(command.name, command) {
                problems.push(RegistryProblem::DuplicateCommand {
                    name: command.name.to_owned(),
                    first: crate_label(first.crate_name, first.crate_version),
                    second: krate,
                });
            }
        }
        if problems.is_empty() {
            Ok(Self {
                modules,
                commands,
                by_id,
            })
        } else {
            Err(RegistryError(problems))
        }
    }

    /// The registry of everything linked into this binary.
    pub fn linked() -> Result<Registry<'static>, RegistryError> {
        Registry::new(
            &crate::__private::XBUILD_CORE_API_0_1_MODULES,
            &crate::__private::XBUILD_CORE_API_0_1_COMMANDS,
        )
    }

    /// The module with the full ID `id`.
    pub fn get(&self, id: &str) -> Option<&'a ModuleRegistration> {
        self.by_id.get(id).map(|&i| &self.modules[i])
    }

    /// Finds `name` inside `namespace`, or says which names the namespace does have.
    pub fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<&'a ModuleRegistration, LookupError> {
        let id = if namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{namespace}.{name}")
        };
        self.get(&id).ok_or_else(|| LookupError {
            namespace: namespace.to_owned(),
            requested: id,
            available: self
                .in_namespace(namespace)
                .map(|m| m.id.to_owned())
                .collect(),
        })
    }

    /// Modules whose ID sits directly in `namespace` (not in nested namespaces), sorted.
    pub fn in_namespace<'s>(
        &'s self,
        namespace: &'s str,
    ) -> impl Iterator<Item = &'a ModuleRegistration> + 's {
        let mut found: Vec<_> = self
            .modules()
            .filter(|m| m.namespace() == namespace)
            .collect();
        found.sort_by_key(|m| m.id);
        found.into_iter()
    }

    /// Every accepted registration, in ID order.
    pub fn modules(&self) -> impl Iterator<Item = &'a ModuleRegistration> + '_ {
        let mut indices: Vec<usize> = self.by_id.values().copied().collect();
        indices.sort_by_key(|&i| self.modules[i].id);
        indices.into_iter().map(|i| &self.modules[i])
    }

    /// Every registered host command.
    pub fn commands(&self) -> &'a [CommandRegistration] {
        self.commands
    }

    /// The host command called `name`.
    pub fn command(&self, name: &str) -> Option<&'a CommandRegistration> {
        self.commands.iter().find(|c| c.name == name)
    }

    /// How many modules were accepted.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no module was accepted.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// A namespace lookup that found nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}", describe_miss(.namespace, .requested))]
pub struct LookupError {
    /// The namespace searched (`""` for apps).
    pub namespace: String,
    /// The full ID asked for.
    pub requested: String,
    /// IDs the namespace does have, sorted.
    pub available: Vec<String>,
}

fn describe_miss(namespace: &str, requested: &str) -> String {
    let place = if namespace.is_empty() {
        "among the apps (top-level modules)".to_owned()
    } else {
        format!("in namespace `{namespace}`")
    };
    format!("unknown module `{requested}` {place}")
}

impl LookupError {
    /// What the user can do about it: the modules there are, or how to get one.
    pub(crate) fn help(&self) -> Vec<String> {
        vec![if self.available.is_empty() {
            "none are registered: add a module crate that provides one (`xbuild --with CRATE`)"
                .to_owned()
        } else {
            format!(
                "available: {}",
                self.available
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }]
    }
}

impl RegistryError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Vec<String> {
        if self
            .0
            .iter()
            .any(|p| matches!(p, RegistryProblem::DuplicateId { .. }))
        {
            vec!["remove one of the two crates from the build, or ask its author to rename the module".into()]
        } else {
            Vec::new()
        }
    }
}

impl crate::error::Diagnostic for LookupError {
    fn help(&self) -> Vec<String> {
        LookupError::help(self)
    }
}

impl crate::error::Diagnostic for RegistryError {
    fn help(&self) -> Vec<String> {
        RegistryError::help(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn no_config(_: Value) -> Result<ModuleInstance, ConfigError> {
        Err(ConfigError::new("test", "", "not constructible"))
    }

    pub(crate) fn fake(id: &'static str, krate: &'static str) -> ModuleRegistration {
        ModuleRegistration {
            id,
            interface: || "dyn Module",
            crate_name: krate,
            crate_version: "1.0.0",
            audit: Audit::EmptyConfig,
            new: no_config,
        }
    }

    #[test]
    fn finds_modules_by_namespace() {
        let slice = [
            fake("http.handlers.b", "x"),
            fake("http.handlers.a", "x"),
            fake("http.handlers.deep.c", "x"),
            fake("http", "x"),
        ];
        let registry = Registry::new(&slice, &[]).unwrap();
        assert_eq!(
            registry.lookup("http.handlers", "a").unwrap().id,
            "http.handlers.a"
        );
        assert_eq!(registry.lookup("", "http").unwrap().id, "http");
        let ids: Vec<_> = registry
            .in_namespace("http.handlers")
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["http.handlers.a", "http.handlers.b"]);
    }

    #[test]
    fn a_miss_names_namespace_request_and_alternatives() {
        let slice = [fake("http.handlers.b", "x"), fake("http.handlers.a", "x")];
        let registry = Registry::new(&slice, &[]).unwrap();
        let err = registry.lookup("http.handlers", "nope").unwrap_err();
        assert_eq!(err.requested, "http.handlers.nope");
        assert_eq!(err.available, ["http.handlers.a", "http.handlers.b"]);
        let text = crate::host::error_chain(&err);
        assert!(text.contains("`http.handlers`"), "{text}");
        assert!(text.contains("\nhelp: available: "), "{text}");
        assert!(
            text.contains("`http.handlers.a`, `http.handlers.b`"),
            "{text}"
        );
        let empty = crate::host::error_chain(&registry.lookup("tls", "x").unwrap_err());
        assert!(empty.contains("none are registered"), "{empty}");
    }

    #[test]
    fn duplicates_name_both_crates_and_versions() {
        let mut second = fake("http.handlers.a", "other-crate");
        second.crate_version = "2.3.4";
        let slice = [fake("http.handlers.a", "first-crate"), second];
        let err = Registry::new(&slice, &[]).unwrap_err();
        assert_eq!(
            err.0,
            [RegistryProblem::DuplicateId {
                id: "http.handlers.a".into(),
                first: "`first-crate` 1.0.0".into(),
                second: "`other-crate` 2.3.4".into(),
            }]
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let slice = [
            fake("Bad.ID", "a"),
            fake("xbuild.internal", "b"),
            fake("ok.one", "c"),
            fake("ok.one", "d"),
        ];
        let err = Registry::new(&slice, &[]).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(matches!(
            err.0[1],
            RegistryProblem::BadId {
                source: IdError::Reserved(_),
                ..
            }
        ));
    }

    #[test]
    fn command_names_are_checked() {
        fn run(_: Vec<String>) -> i32 {
            0
        }
        let cmd = |name, krate| CommandRegistration {
            name,
            about: "",
            crate_name: krate,
            crate_version: "1.0.0",
            run,
        };
        let commands = [cmd("run", "a"), cmd("hash", "b"), cmd("hash", "c")];
        let err = Registry::new(&[], &commands).unwrap_err();
        assert!(matches!(err.0[0], RegistryProblem::ReservedCommand { .. }));
        assert!(matches!(err.0[1], RegistryProblem::DuplicateCommand { .. }));
    }

    #[test]
    fn validates_a_thousand_modules() {
        let ids: Vec<&'static str> = (0..1000)
            .map(|i| &*Box::leak(format!("bench.ns{}.module_{i}", i % 10).into_boxed_str()))
            .collect();
        let slice: Vec<_> = ids.iter().map(|id| fake(id, "x")).collect();
        let registry = Registry::new(&slice, &[]).unwrap();
        assert_eq!(registry.len(), 1000);
        assert_eq!(registry.in_namespace("bench.ns3").count(), 100);
    }
}

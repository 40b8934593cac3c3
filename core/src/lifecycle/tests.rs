//! Lifecycle order, rollback and typed lookup, over a fake registry.

use std::cell::RefCell;

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::config::decode_strict;
use crate::instance::ModuleInstance;
use crate::registry::ModuleRegistration;

thread_local! {
    static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(event: String) {
    EVENTS.with(|e| e.borrow_mut().push(event));
}

fn take_events() -> Vec<String> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recorder {
    name: String,
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default)]
    panic_in: Option<String>,
    #[serde(default)]
    child: Option<Value>,
    #[serde(skip)]
    loaded_child: Option<Loaded<dyn Child>>,
    /// Loaded in order, then kept in reverse: cleanup order must not depend on storage.
    #[serde(default)]
    children: Vec<Value>,
    #[serde(skip)]
    loaded_children: Vec<Loaded<dyn Child>>,
    /// Asks to be restarted, not switched in place, on a reload.
    #[serde(default)]
    restart: bool,
}

impl Recorder {
    fn hook(&self, hook: &str) -> Result<(), BoxError> {
        log(format!("{hook}:{}", self.name));
        if self.panic_in.as_deref() == Some(hook) {
            panic!("{} panicked in {hook}", self.name);
        }
        if self.fail.iter().any(|f| f == hook) {
            return Err(format!("{} refused to {hook}", self.name).into());
        }
        Ok(())
    }
}

impl Module for Recorder {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        if let Some(child) = self.child.take() {
            self.loaded_child =
                Some(ctx.load_inline::<dyn Child>("test.children", "kind", child)?);
        }
        for child in std::mem::take(&mut self.children) {
            let loaded = ctx.load_inline::<dyn Child>("test.children", "kind", child)?;
            self.loaded_children.insert(0, loaded);
        }
        if self.restart {
            ctx.restart_on_reload();
        }
        self.hook("provision")
    }
    fn validate(&self) -> Result<(), BoxError> {
        self.hook("validate")
    }
    fn cleanup(&mut self) -> Result<(), BoxError> {
        // The children are still there to use; the core cleans them up after this.
        if let Some(child) = &self.loaded_child {
            child.call("answer", |c| Ok(c.answer()))?;
        }
        self.hook("cleanup")
    }
}

impl App for Recorder {
    fn start(&mut self) -> Result<(), BoxError> {
        self.hook("start")
    }
    fn stop(&mut self) -> Result<(), BoxError> {
        self.hook("stop")
    }
}

trait Child: Module {
    fn answer(&self) -> u32;
}

#[derive(Deserialize)]
struct FortyTwo {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    fail_provision: bool,
}
/// A [`Refresh`] hook that logs `refresh:TAG`, and fails for tag `stale`.
struct LogRefresh(String);
impl Refresh for LogRefresh {
    fn refresh(&self) -> Result<(), BoxError> {
        log(format!("refresh:{}", self.0));
        if self.0 == "stale" {
            return Err("the files are gone".into());
        }
        Ok(())
    }
}

impl Module for FortyTwo {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        // Registered before failing: a failed provision must take its hook with it.
        ctx.on_refresh(std::sync::Arc::new(LogRefresh(self.tag.clone())));
        if self.fail_provision {
            return Err(format!("{} refused to provision", self.tag).into());
        }
        Ok(())
    }
    fn cleanup(&mut self) -> Result<(), BoxError> {
        log(format!("cleanup:forty_two{}", self.tag));
        Ok(())
    }
}
impl Child for FortyTwo {
    fn answer(&self) -> u32 {
        42
    }
}

/// Registered in the child namespace but as plain `dyn Module`: the wrong type there.
#[derive(Deserialize)]
struct NotAChild {}
impl Module for NotAChild {}

fn new_recorder(config: Value) -> Result<ModuleInstance, ConfigError> {
    let module: Recorder = decode_strict("app", config)?;
    Ok(ModuleInstance::new::<dyn App>(Box::new(module)))
}

fn new_forty_two(config: Value) -> Result<ModuleInstance, ConfigError> {
    let module: FortyTwo = decode_strict("test.children.forty_two", config)?;
    Ok(ModuleInstance::new::<dyn Child>(Box::new(module)))
}

fn new_not_a_child(config: Value) -> Result<ModuleInstance, ConfigError> {
    let module: NotAChild = decode_strict("test.children.plain", config)?;
    Ok(ModuleInstance::new::<dyn Module>(Box::new(module)))
}

const fn reg(
    id: &'static str,
    new: fn(Value) -> Result<ModuleInstance, ConfigError>,
) -> ModuleRegistration {
    ModuleRegistration {
        id,
        interface: || "test",
        crate_name: "test-crate",
        crate_version: "1.0.0",
        audit: crate::registry::Audit::EmptyConfig,
        new,
    }
}

fn new_exploding(_: Value) -> Result<ModuleInstance, ConfigError> {
    panic!("decoding exploded")
}

static MODULES: [ModuleRegistration; 6] = [
    reg("one", new_recorder),
    reg("two", new_recorder),
    reg("three", new_recorder),
    reg("test.children.forty_two", new_forty_two),
    reg("test.children.plain", new_not_a_child),
    reg("test.children.exploding", new_exploding),
];

fn registry() -> Registry<'static> {
    Registry::new(&MODULES, &[]).unwrap()
}

fn apps(config: Value) -> Result<Apps, LifecycleError> {
    let registry = Box::leak(Box::new(registry()));
    Apps::provision(registry, config)
}

#[test]
fn runs_hooks_in_lifecycle_order() {
    take_events();
    let mut apps = apps(json!({"apps": {"two": {"name": "b"}, "one": {"name": "a"}}})).unwrap();
    assert_eq!(apps.ids(), ["two", "one"], "config order is kept");
    apps.start().unwrap();
    assert!(apps.shutdown().is_empty());
    assert_eq!(
        take_events(),
        [
            "provision:b",
            "validate:b",
            "provision:a",
            "validate:a",
            "start:b",
            "start:a",
            "stop:a",
            "stop:b",
            "cleanup:a",
            "cleanup:b",
        ]
    );
}

#[test]
fn a_failed_start_stops_the_started_apps_and_reports_both_errors() {
    take_events();
    let mut apps = apps(json!({"apps": {
        "one": {"name": "a", "fail": ["stop"]},
        "two": {"name": "b", "fail": ["start"]},
        "three": {"name": "c"},
    }}))
    .unwrap();
    let err = apps.start().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("b refused to start"), "{text}");
    assert!(text.contains("a refused to stop"), "{text}");
    match err {
        LifecycleError::Start { failed, rollback } => {
            assert_eq!(failed.module(), "two");
            assert_eq!(rollback.len(), 1);
        }
        other => panic!("unexpected {other}"),
    }
    apps.cleanup();
    let events = take_events();
    assert!(!events.contains(&"start:c".to_string()), "{events:?}");
    let tail: Vec<_> = events.iter().skip(6).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "start:a",
            "start:b",
            "stop:a",
            "cleanup:c",
            "cleanup:b",
            "cleanup:a"
        ]
    );
}

#[test]
fn a_panicking_start_is_caught_and_rolled_back() {
    take_events();
    let mut apps = apps(json!({"apps": {
        "one": {"name": "a"},
        "two": {"name": "b", "panic_in": "start"},
    }}))
    .unwrap();
    let err = apps.start().unwrap_err();
    assert!(
        err.to_string()
            .contains("panicked in start: b panicked in start"),
        "{err}"
    );
    assert!(take_events().contains(&"stop:a".to_string()));
}

#[test]
fn a_failed_provision_cleans_up_the_apps_already_provisioned() {
    take_events();
    let err = apps(json!({"apps": {
        "one": {"name": "a"},
        "two": {"name": "b", "fail": ["validate"]},
    }}))
    .err()
    .unwrap();
    assert!(err.to_string().contains("cannot load app `two`"), "{err}");
    assert_eq!(
        take_events(),
        [
            "provision:a",
            "validate:a",
            "provision:b",
            "validate:b",
            "cleanup:b",
            "cleanup:a"
        ]
    );
}

#[test]
fn config_errors_name_the_field_or_module() {
    let unknown_field = apps(json!({"apps": {"one": {"name": "a", "colour": 1}}}))
        .err()
        .unwrap();
    assert!(
        unknown_field.to_string().contains("unknown field `colour`"),
        "{unknown_field}"
    );
    // The alternatives are help, printed after the message.
    let unknown_app = apps_err(json!({"apps": {"nope": {}}}));
    assert!(
        unknown_app.contains("unknown module `nope` among the apps"),
        "{unknown_app}"
    );
    assert!(
        unknown_app.contains("`one`, `three`, `two`"),
        "{unknown_app}"
    );
    let top_level = apps(json!({"apps": {}, "extra": 1}))
        .err()
        .unwrap()
        .to_string();
    assert!(top_level.contains("unknown field `extra`"), "{top_level}");
    let empty = apps(json!({})).err().unwrap().to_string();
    assert!(empty.contains("no apps"), "{empty}");
}

#[test]
fn typed_lookup_hit_miss_and_wrong_type() {
    let registry = registry();
    let mut ctx = Context::new(&registry);
    let mut child = ctx
        .load::<dyn Child>("test.children", "forty_two", Value::Null)
        .unwrap();
    assert_eq!(child.call("answer", |c| Ok(c.answer())).unwrap(), 42);
    assert_eq!(child.id(), "test.children.forty_two");
    take_events();
    child.cleanup().unwrap();
    child.cleanup().unwrap();
    assert_eq!(take_events(), ["cleanup:forty_two"], "cleanup runs once");

    let miss = ctx
        .load::<dyn Child>("test.children", "nope", Value::Null)
        .err()
        .unwrap();
    assert!(
        matches!(&miss, LoadError::Lookup(l) if l.available == ["test.children.exploding", "test.children.forty_two", "test.children.plain"])
    );

    let exploding = ctx
        .load::<dyn Child>("test.children", "exploding", Value::Null)
        .err()
        .unwrap();
    assert!(
        matches!(&exploding, LoadError::Call(c) if c.is_panic()),
        "a panicking decode is caught: {exploding}"
    );

    let wrong = ctx
        .load::<dyn Child>("test.children", "plain", Value::Null)
        .err()
        .unwrap();
    let text = wrong.to_string();
    assert!(matches!(wrong, LoadError::WrongInterface { .. }), "{text}");
    assert!(text.contains("registered as `test`"), "{text}");
    assert!(text.contains("Child"), "{text}");
}

#[test]
fn children_load_through_the_inline_key() {
    take_events();
    let mut apps =
        apps(json!({"apps": {"one": {"name": "a", "child": {"kind": "forty_two"}}}})).unwrap();
    apps.cleanup();
    assert_eq!(
        take_events(),
        [
            "provision:a",
            "validate:a",
            "cleanup:a",
            "cleanup:forty_two"
        ]
    );
    let missing = apps_err(json!({"apps": {"one": {"name": "a", "child": {}}}}));
    assert!(missing.contains("needs a `kind` field"), "{missing}");
    assert!(missing.contains("exploding, forty_two, plain"), "{missing}");
}

/// The error as the host prints it: the message, then its `help:` lines.
fn apps_err(config: Value) -> String {
    crate::host::error_chain(&apps(config).err().unwrap())
}

#[test]
fn children_are_cleaned_up_after_their_parent_newest_first() {
    take_events();
    let children = json!([{"kind": "forty_two", "tag": "1"}, {"kind": "forty_two", "tag": "2"}, {"kind": "forty_two", "tag": "3"}]);
    let mut apps = apps(json!({"apps": {
        "one": {"name": "a", "children": children},
        "two": {"name": "b", "child": {"kind": "forty_two", "tag": "b"}},
    }}))
    .unwrap();
    assert!(apps.cleanup().is_empty());
    let events: Vec<_> = take_events()
        .into_iter()
        .filter(|e| e.starts_with("cleanup"))
        .collect();
    assert_eq!(
        events,
        [
            "cleanup:b",
            "cleanup:forty_twob",
            "cleanup:a",
            "cleanup:forty_two3",
            "cleanup:forty_two2",
            "cleanup:forty_two1",
        ]
    );
}

#[test]
fn a_later_failure_cleans_up_the_children_already_loaded() {
    take_events();
    let children = json!([{"kind": "forty_two", "tag": "1"}, {"kind": "forty_two", "tag": "2"}, {"kind": "forty_two", "tag": "3", "fail_provision": true}]);
    let err = apps_err(json!({"apps": {"one": {"name": "a", "children": children}}}));
    assert!(err.contains("3 refused to provision"), "{err}");
    assert_eq!(take_events(), ["cleanup:forty_two2", "cleanup:forty_two1"]);

    // The parent provisioned but failed validation: its own cleanup, then its children.
    let children = json!([{"kind": "forty_two", "tag": "1"}, {"kind": "forty_two", "tag": "2"}]);
    let err = apps_err(
        json!({"apps": {"one": {"name": "a", "fail": ["validate"], "children": children}}}),
    );
    assert!(err.contains("a refused to validate"), "{err}");
    assert_eq!(
        take_events(),
        [
            "provision:a",
            "validate:a",
            "cleanup:a",
            "cleanup:forty_two2",
            "cleanup:forty_two1"
        ]
    );
}

#[test]
fn a_module_loaded_by_a_host_is_cleaned_up_when_dropped() {
    let registry = registry();
    let mut ctx = Context::new(&registry);
    take_events();
    let child = ctx
        .load::<dyn Child>("test.children", "forty_two", json!({"tag": "x"}))
        .unwrap();
    assert!(take_events().is_empty());
    drop(child);
    assert_eq!(take_events(), ["cleanup:forty_twox"]);
}

/// A child kept alive elsewhere (another thread's `Arc`) outlives its parent's cleanup and
/// is cleaned up when the last reference goes.
#[test]
fn a_child_that_outlives_its_parent_is_cleaned_up_when_it_goes() {
    use std::sync::{Arc, Mutex};
    static KEPT: Mutex<Option<Arc<Loaded<dyn Child>>>> = Mutex::new(None);

    #[derive(Deserialize)]
    struct Sharer {
        #[serde(skip)]
        child: Option<Arc<Loaded<dyn Child>>>,
    }
    impl Module for Sharer {
        fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
            let child = Arc::new(ctx.load::<dyn Child>(
                "test.children",
                "forty_two",
                json!({"tag": "kept"}),
            )?);
            *KEPT.lock().unwrap() = Some(child.clone());
            self.child = Some(child);
            Ok(())
        }
    }
    fn new_sharer(config: Value) -> Result<ModuleInstance, ConfigError> {
        let module: Sharer = decode_strict("sharer", config)?;
        Ok(ModuleInstance::new::<dyn Module>(Box::new(module)))
    }
    static SHARING: [ModuleRegistration; 2] = [
        reg("sharer", new_sharer),
        reg("test.children.forty_two", new_forty_two),
    ];
    let registry = Registry::new(&SHARING, &[]).unwrap();
    let mut ctx = Context::new(&registry);
    take_events();
    let sharer = ctx.load::<dyn Module>("", "sharer", json!({})).unwrap();
    drop(sharer);
    assert!(take_events().is_empty(), "still in use elsewhere");
    KEPT.lock().unwrap().take();
    assert_eq!(take_events(), ["cleanup:forty_twokept"]);
}

#[test]
fn refresh_hooks_are_called_in_order_and_go_with_a_failed_module() {
    take_events();
    let app = |tag: &str| json!({"name": "a", "children": [{"kind": "forty_two", "tag": tag}]});
    let apps_ok = apps(json!({"apps": {"one": app("x"), "two": app("y")}})).unwrap();
    assert_eq!(apps_ok.refresh_hook_count(), 2);
    take_events();
    assert!(apps_ok.refresh().is_empty());
    assert_eq!(take_events(), ["refresh:x", "refresh:y"]);

    let stale = apps(json!({"apps": {"one": app("stale")}})).unwrap();
    let errors = stale.refresh();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].module(), "test.children.forty_two");
    assert!(
        errors[0].to_string().contains("the files are gone"),
        "{}",
        errors[0]
    );

    // A child that fails its provision after registering a hook leaves none behind.
    let registry = registry();
    let mut ctx = Context::new(&registry);
    ctx.load::<dyn Child>("test.children", "forty_two", json!({"tag": "kept"}))
        .unwrap();
    let failed = json!({"tag": "gone", "fail_provision": true});
    assert!(
        ctx.load::<dyn Child>("test.children", "forty_two", failed)
            .is_err()
    );
    assert_eq!(ctx.refresh_hooks().ids(), ["test.children.forty_two"]);
}

#[test]
fn a_reload_switches_in_place_or_restarts_the_apps_that_ask_for_it() {
    let registry = Box::leak(Box::new(registry()));
    let config = |suffix: &str, fail: &[&str]| {
        json!({"apps": {
            "one": {"name": format!("a{suffix}")},
            "two": {"name": format!("b{suffix}"), "restart": true, "fail": fail},
        }})
    };
    let mut apps = Apps::provision(registry, config("", &[])).unwrap();
    apps.start().unwrap();
    take_events();
    assert!(apps.reload(registry, config("2", &[])).unwrap().is_empty());
    assert_eq!(
        take_events(),
        [
            "provision:a2",
            "validate:a2",
            "provision:b2",
            "validate:b2",
            // `two` restarts: its old instance stops before the new apps start...
            "stop:b",
            "start:a2",
            "start:b2",
            // ...while `one` switches in place: the old one stops after.
            "stop:a",
            "cleanup:b",
            "cleanup:a",
        ]
    );

    // The new `two` fails to start: the old one is started again, and both old apps run.
    let err = apps.reload(registry, config("3", &["start"])).unwrap_err();
    assert!(err.to_string().contains("b3 refused to start"), "{err}");
    let events = take_events();
    let after_provision = &events[4..];
    assert_eq!(
        after_provision,
        [
            "stop:b2",
            "start:a3",
            "start:b3",
            "stop:a3",
            "cleanup:b3",
            "cleanup:a3",
            "start:b2"
        ]
    );
    assert!(apps.shutdown().is_empty());
    assert_eq!(
        take_events(),
        ["stop:b2", "stop:a2", "cleanup:b2", "cleanup:a2"]
    );
}

//! What the core costs: the call guard against a plain trait-object call, and registry
//! validation at startup with 1,000 modules. Run with `cargo bench -p xbuild-core`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use xbuild_core::__private::ModuleInstance;
use xbuild_core::{ConfigError, Context, Module, ModuleRegistration, Registry, Value};

trait Adder: Module {
    fn add(&self, x: u64) -> u64;
}

#[derive(serde::Deserialize)]
struct Plus(u64);
impl Module for Plus {}
impl Adder for Plus {
    fn add(&self, x: u64) -> u64 {
        x.wrapping_add(self.0)
    }
}

xbuild_core::register_module!("bench.adders.plus", Plus as dyn Adder);

fn calls(c: &mut Criterion) {
    let module: Box<dyn Adder> = Box::new(Plus(3));
    let registry = Registry::linked().unwrap();
    let mut context = Context::new(&registry);
    let loaded = context
        .load::<dyn Adder>("bench.adders", "plus", Value::from(3))
        .unwrap();
    let mut group = c.benchmark_group("module_call");
    group.bench_function("direct_dyn_call", |b| {
        b.iter(|| black_box(module.add(black_box(7))))
    });
    // What hosts do: the call goes through the module's `Loaded` handle. At the default
    // timing (one call in 64 timed), every call timed, and none.
    use xbuild_core::guard::{CallTiming, set_call_timing};
    for (name, timing) in [
        ("guarded_call", CallTiming::DEFAULT),
        ("guarded_call_every_call_timed", CallTiming::Every),
        ("guarded_call_timing_off", CallTiming::Off),
    ] {
        set_call_timing(timing);
        group.bench_function(name, |b| {
            b.iter(|| black_box(loaded.call("add", |m| Ok(m.add(black_box(7)))).unwrap()))
        });
    }
    set_call_timing(CallTiming::DEFAULT);
    // A guarded call named only by strings, as `guard::call` takes it.
    group.bench_function("guarded_call_by_name", |b| {
        b.iter(|| {
            black_box(
                xbuild_core::guard::call("bench.adder", "add", || Ok(module.add(black_box(7))))
                    .unwrap(),
            )
        })
    });
    // The floor of timing a call: the guard reads the clock twice for a call it times (one
    // in 64 by default), whatever it does with the result.
    group.bench_function("two_clock_reads", |b| {
        b.iter(|| black_box(black_box(std::time::Instant::now()).elapsed()))
    });
    group.finish();
}

fn never(_: Value) -> Result<ModuleInstance, ConfigError> {
    unreachable!("validation never constructs modules")
}

fn registry(c: &mut Criterion) {
    let slice: Vec<ModuleRegistration> = (0..1000)
        .map(|i| {
            let id = Box::leak(format!("bench.ns{}.module_{i}", i % 20).into_boxed_str());
            // What `register_module!` expands to, with generated IDs.
            ModuleRegistration::__new(
                id,
                || "dyn Module",
                "bench-crate",
                "1.0.0",
                never,
                xbuild_core::Audit::EmptyConfig,
            )
        })
        .collect();
    c.bench_function("registry_validate_1000_modules", |b| {
        b.iter(|| black_box(Registry::new(black_box(&slice), &[]).unwrap().len()))
    });
    let checked = Registry::new(&slice, &[]).unwrap();
    c.bench_function("registry_lookup_in_1000_modules", |b| {
        b.iter(|| {
            black_box(
                checked
                    .lookup("bench.ns7", black_box("module_507"))
                    .unwrap()
                    .id(),
            )
        })
    });
}

criterion_group!(benches, calls, registry);
criterion_main!(benches);

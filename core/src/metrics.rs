//! Metrics for every call into a module, named after the seed's section 9
//! (`plugin_call_total` and friends, with `module` for `plugin`), on the official
//! Prometheus client. One process-wide registry: modules may add their own metrics to it
//! (the HTTP app does), and [`render`] writes them all in Prometheus text format.
//!
//! A module adding metrics with labels depends on `prometheus-client` itself (the version
//! re-exported here): its `EncodeLabelSet` derive names `::prometheus_client`, which the
//! re-export cannot stand in for.

use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

pub use prometheus_client;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModuleStatus {
    pub module: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModuleLabel {
    pub module: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallStatus {
    pub module: &'static str,
    pub method: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabel {
    pub module: &'static str,
    pub method: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn call_buckets() -> Histogram {
    // 1 µs .. ~4 s: module calls range from trivial getters to request handling.
    Histogram::new(exponential_buckets(0.000_001, 4.0, 12))
}

fn provision_buckets() -> Histogram {
    // 100 µs .. ~26 s: provisioning may open files or sockets.
    Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
}

pub(crate) struct CoreMetrics {
    registry: Mutex<Registry>,
    pub provision_total: Family<ModuleStatus, Counter>,
    pub provision_seconds: Histograms<ModuleLabel>,
    pub call_total: Family<CallStatus, Counter>,
    pub call_seconds: Histograms<CallLabel>,
    pub failed: Family<ModuleLabel, Gauge>,
}

pub(crate) fn core() -> &'static CoreMetrics {
    static METRICS: OnceLock<CoreMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::default();
        let provision_total = Family::<ModuleStatus, Counter>::default();
        let provision_seconds: Histograms<ModuleLabel> =
            Family::new_with_constructor(provision_buckets);
        let call_total = Family::<CallStatus, Counter>::default();
        let call_seconds: Histograms<CallLabel> = Family::new_with_constructor(call_buckets);
        let failed = Family::<ModuleLabel, Gauge>::default();
        // The client appends `_total` to counters itself.
        registry.register(
            "module_provision",
            "Module provisions, by module and outcome (ok, error, panic)",
            provision_total.clone(),
        );
        registry.register(
            "module_provision_duration_seconds",
            "Time spent provisioning a module",
            provision_seconds.clone(),
        );
        registry.register(
            "module_call",
            "Calls from the host into a module, by method and outcome (ok, error, panic)",
            call_total.clone(),
        );
        registry.register(
            "module_call_duration_seconds",
            "Duration of calls from the host into a module",
            call_seconds.clone(),
        );
        registry.register(
            "module_failed",
            "1 once a module has panicked; the host keeps it loaded (it cannot be unloaded)",
            failed.clone(),
        );
        CoreMetrics {
            registry: Mutex::new(registry),
            provision_total,
            provision_seconds,
            call_total,
            call_seconds,
            failed,
        }
    })
}

/// Adds a metric of a module's own to the host-wide registry, so [`render`] includes it.
pub fn register(name: &str, help: &str, metric: impl Metric) {
    lock(&core().registry).register(name, help, metric);
}

/// Every registered metric in Prometheus text exposition format.
pub fn render() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &lock(&core().registry))
        .expect("writing to a String cannot fail");
    out
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the registry intact (registration is one push).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

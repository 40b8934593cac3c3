//! Metrics for every call into a module, named after the seed's section 9
//! (`plugin_call_total` and friends, with `module` for `plugin`), on the official
//! Prometheus client. One process-wide registry: modules may add their own metrics to it
//! (the HTTP app does), and [`render`] writes them all in Prometheus text format.
//!
//! # `prometheus-client` is part of this API, on purpose
//!
//! A module's own metrics are `prometheus-client` metrics: [`register`] takes any
//! [`prometheus_client::registry::Metric`], and [`DurationHistogram`] is one. Wrapping the
//! client would mean a second, poorer metrics API; instead this crate re-exports the one
//! version it is built with as [`prometheus_client`], and treats a semver-incompatible
//! upgrade of it as a change of its own [`API_VERSION`](crate::API_VERSION). The core's own
//! series (`module_call_total` and friends) are not exposed as values: read them through
//! [`render`].
//!
//! A module adding metrics with labels depends on `prometheus-client` itself, at the version
//! xbuild-core's `Cargo.toml` names: its `EncodeLabelSet` derive names `::prometheus_client`,
//! which the re-export cannot stand in for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry};

/// The metrics client this API is built on (see the module docs).
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

type Histograms<L> = Family<L, DurationHistogram, fn() -> DurationHistogram>;

fn call_buckets() -> DurationHistogram {
    // 1 µs .. ~4 s: module calls range from trivial getters to request handling.
    DurationHistogram::exponential(Duration::from_micros(1), 4, 12)
}

fn provision_buckets() -> DurationHistogram {
    // 100 µs .. ~26 s: provisioning may open files or sockets.
    DurationHistogram::exponential(Duration::from_micros(100), 4, 10)
}

pub(crate) struct CoreMetrics {
    registry: Mutex<Registry>,
    pub provision_total: Family<ModuleStatus, Counter>,
    pub provision_seconds: Histograms<ModuleLabel>,
    pub call_total: Family<CallStatus, Counter>,
    pub call_seconds: Histograms<CallLabel>,
    pub failed: Family<ModuleLabel, Gauge>,
    reloads: Family<ReloadStatus, Counter>,
    last_reload: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadStatus {
    status: &'static str,
}

impl CoreMetrics {
    /// Counts a reload by outcome: `ok`, `error` or `unchanged`.
    pub fn reload_total(&self, status: &'static str) {
        self.reloads.get_or_create(&ReloadStatus { status }).inc();
    }

    /// Counts a successful reload and notes its time.
    pub fn reload_ok(&self) {
        self.reload_total("ok");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_reload.set(i64::try_from(now).unwrap_or(i64::MAX));
    }
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
        let reloads = Family::<ReloadStatus, Counter>::default();
        let last_reload = Gauge::default();
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
            "Duration of calls from the host into a module (a sample: one call in 64 per thread by default, XBUILD_CALL_TIMING)",
            call_seconds.clone(),
        );
        registry.register(
            "module_failed",
            "1 once a module has panicked; the host keeps it loaded (it cannot be unloaded)",
            failed.clone(),
        );
        registry.register(
            "config_reload",
            "Config reloads (SIGHUP or `reload`), by outcome (ok, error, unchanged)",
            reloads.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the config was last reloaded successfully (Unix time; 0 before any reload)",
            last_reload.clone(),
        );
        CoreMetrics {
            registry: Mutex::new(registry),
            provision_total,
            provision_seconds,
            call_total,
            call_seconds,
            failed,
            reloads,
            last_reload,
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

/// A histogram of durations that records without a lock: each observation is two relaxed
/// atomic additions (its bucket and the sum, in nanoseconds). The client's own histogram
/// takes a mutex per observation, which costs more than the module calls it times and
/// serialises every worker thread on one lock per series. Clones share the series.
///
/// It encodes as an ordinary Prometheus histogram in seconds.
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    inner: Arc<HistogramSeries>,
}

#[derive(Debug)]
struct HistogramSeries {
    /// Upper bounds of the finite buckets, in nanoseconds, ascending.
    bounds: Box<[u64]>,
    /// One count per bound, then the `+Inf` bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// Buckets `first`, `first × factor`, … (`count` of them), then `+Inf`.
    pub fn exponential(first: Duration, factor: u32, count: usize) -> Self {
        let first = u64::try_from(first.as_nanos()).unwrap_or(u64::MAX).max(1);
        let bounds: Box<[u64]> =
            std::iter::successors(Some(first), |b| b.checked_mul(u64::from(factor)))
                .take(count)
                .collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(HistogramSeries {
                bounds,
                counts,
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        self.observe_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// [`observe`](DurationHistogram::observe) for a duration already in nanoseconds.
    pub fn observe_nanos(&self, nanos: u64) {
        let series = &*self.inner;
        // Most calls land in the first buckets, so a forward scan beats a binary search.
        let bucket = series
            .bounds
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(series.bounds.len());
        series.counts[bucket].fetch_add(1, Ordering::Relaxed);
        series.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        let counts = &self.inner.counts;
        counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = &*self.inner;
        let buckets: Vec<(f64, u64)> = series
            .bounds
            .iter()
            .map(|&bound| Duration::from_nanos(bound).as_secs_f64())
            .chain(std::iter::once(f64::INFINITY))
            .zip(series.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(series.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_histogram_buckets_and_encodes_in_seconds() {
        let h = DurationHistogram::exponential(Duration::from_micros(1), 4, 3);
        for nanos in [0, 1_000, 1_001, 16_000, 16_001, u64::MAX / 2] {
            h.observe_nanos(nanos);
        }
        h.observe(Duration::from_micros(3));
        assert_eq!(h.count(), 7);

        let mut registry = Registry::default();
        registry.register("t", "help", h.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        // Cumulative: ≤1 µs holds 0 and 1000 ns; ≤4 µs adds 1001 and 3 µs; ≤16 µs adds 16000.
        for line in [
            r#"t_bucket{le="0.000001"} 2"#,
            r#"t_bucket{le="0.000004"} 4"#,
            r#"t_bucket{le="0.000016"} 5"#,
            r#"t_bucket{le="+Inf"} 7"#,
            "t_count 7",
            "# TYPE t histogram",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
    }
}

//! What the app records about each request: a request ID (in the request, the response and
//! the access log, so one request can be followed across logs and upstreams), per-route
//! Prometheus metrics in the core's registry, and the access log line.

use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The request header (and response header) carrying the request ID.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's ID, in its extensions. Unique within a process run; the random start keeps
/// IDs of different runs apart in aggregated logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub(crate) fn next() -> Self {
        static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
        let counter =
            COUNTER.get_or_init(|| AtomicU64::new(RandomState::new().hash_one(std::process::id())));
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let mut text = String::with_capacity(16);
        let _ = write!(text, "{n:016x}");
        Self(HeaderValue::try_from(text).expect("hex digits are a valid header value"))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("built from hex digits")
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// A label value shared by every request of a route, so recording allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Label(pub Arc<str>);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    server: Label,
    route: Label,
    method: &'static str,
    code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    server: Label,
    route: Label,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Histograms,
}

fn duration_buckets() -> Histogram {
    // 50 µs .. ~52 s.
    Histogram::new(exponential_buckets(0.000_05, 4.0, 11))
}

/// Registered once per process: several apps (or tests) share one family, told apart by
/// the `server` label, instead of registering duplicate metric names.
fn metrics() -> &'static HttpMetrics {
    static METRICS: OnceLock<HttpMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: Histograms = Family::new_with_constructor(duration_buckets);
        xbuild_core::metrics::register(
            "http_requests",
            "HTTP requests answered, by server, route, method and status code",
            requests.clone(),
        );
        xbuild_core::metrics::register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head), by server and route",
            duration.clone(),
        );
        HttpMetrics { requests, duration }
    })
}

/// The route label of requests no route matched.
pub(crate) const UNMATCHED: &str = "(unmatched)";

/// Pre-created metric handles of one route of one server.
pub(crate) struct RouteMetrics {
    server: Label,
    route: Label,
    duration: Histogram,
}

impl RouteMetrics {
    pub fn new(server: &Arc<str>, route: &Arc<str>) -> Self {
        let labels = RouteLabels {
            server: Label(server.clone()),
            route: Label(route.clone()),
        };
        let duration = metrics().duration.get_or_create(&labels).clone();
        Self {
            server: labels.server,
            route: labels.route,
            duration,
        }
    }

    pub fn record(&self, method: &http::Method, code: u16, seconds: f64) {
        self.duration.observe(seconds);
        metrics()
            .requests
            .get_or_create(&RequestLabels {
                server: self.server.clone(),
                route: self.route.clone(),
                method: method_label(method),
                code,
            })
            .inc();
    }
}

/// Methods outside the standard set share one label, so clients cannot grow the metric
/// without bound by inventing methods.
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_header_values() {
        let a = RequestId::next();
        let b = RequestId::next();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn route_metrics_render_with_their_labels() {
        let m = RouteMetrics::new(&"unit-srv".into(), &"unit-route".into());
        m.record(&http::Method::from_bytes(b"BREW").unwrap(), 418, 0.001);
        let text = xbuild_core::metrics::render();
        assert!(
            text.contains(
                r#"http_requests_total{server="unit-srv",route="unit-route",method="OTHER",code="418"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_request_duration_seconds_count{server="unit-srv",route="unit-route"} 1"#
            ),
            "{text}"
        );
    }
}

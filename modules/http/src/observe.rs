//! What the app records about each request: a request ID (in the request, the response and
//! the access log, so one request can be followed across logs and upstreams), per-route
//! Prometheus metrics in the core's registry, and the access log line.

use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use http::HeaderValue;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use xbuild_core::metrics::DurationHistogram;

/// The response header carrying the request ID when the access log is on (so a client
/// can quote the ID of its log line), and the request header reverse_proxy sends upstream.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a header name, made at compile time (`from_static` at run time
/// costs a validation per request).
pub(crate) const REQUEST_ID: http::HeaderName = http::HeaderName::from_static(REQUEST_ID_HEADER);

/// A request's ID. Unique within a process run; the random start keeps IDs of different
/// runs apart in aggregated logs. Shown as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    pub(crate) fn next() -> Self {
        static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
        let counter =
            COUNTER.get_or_init(|| AtomicU64::new(RandomState::new().hash_one(std::process::id())));
        Self(counter.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = DIGITS[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// The ID as a header value (built on demand: most requests need it once).
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_bytes(&self.hex()).expect("hex digits are a valid header value")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
    }
}

/// What the server knows about a request beyond the request itself; handlers get it from
/// [`Next::info`](crate::Next::info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    /// The client's address.
    pub remote: SocketAddr,
    pub id: RequestId,
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
    code: StatusLabel,
}

/// A status code as a label: `-` for [`NO_STATUS`](crate::access_log::NO_STATUS), as the
/// access log writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StatusLabel(u16);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        match self.0 {
            crate::access_log::NO_STATUS => encoder.write_str("-"),
            code => encoder.write_str(itoa::Buffer::new().format(code)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    server: Label,
    route: Label,
}

type Histograms = Family<RouteLabels, DurationHistogram, fn() -> DurationHistogram>;

struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Histograms,
}

fn duration_buckets() -> DurationHistogram {
    // 50 µs .. ~52 s.
    DurationHistogram::exponential(Duration::from_micros(50), 4, 11)
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
    duration: DurationHistogram,
    /// The route's counters by (method, code), found here without hashing label strings:
    /// a route sees few combinations, and the family lookup is the costly part.
    counters: RwLock<Vec<(u32, Counter)>>,
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
            counters: RwLock::default(),
        }
    }

    pub fn record(&self, method: MethodLabel, code: u16, elapsed: Duration) {
        self.duration.observe(elapsed);
        let MethodLabel(index, method) = method;
        let key = (index << 16) | u32::from(code);
        let cached = read(&self.counters)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, counter)| counter.inc());
        if cached.is_none() {
            let counter = metrics()
                .requests
                .get_or_create(&RequestLabels {
                    server: self.server.clone(),
                    route: self.route.clone(),
                    method,
                    code: StatusLabel(code),
                })
                .clone();
            counter.inc();
            write(&self.counters).push((key, counter));
        }
    }
}

// A panic cannot leave the cache half-updated (it is one push), so a poisoned lock is fine.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A method's metric label, with a small number standing for it. Methods outside the
/// standard set share one label, so clients cannot grow the metric without bound by
/// inventing methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MethodLabel(u32, &'static str);

impl MethodLabel {
    /// A request hyper could not parse, whose method is unknown.
    pub const UNPARSED: MethodLabel = MethodLabel(10, "-");

    pub fn of(method: &http::Method) -> Self {
        use http::Method;
        let (index, label) = match *method {
            Method::GET => (0, "GET"),
            Method::HEAD => (1, "HEAD"),
            Method::POST => (2, "POST"),
            Method::PUT => (3, "PUT"),
            Method::DELETE => (4, "DELETE"),
            Method::PATCH => (5, "PATCH"),
            Method::OPTIONS => (6, "OPTIONS"),
            Method::CONNECT => (7, "CONNECT"),
            Method::TRACE => (8, "TRACE"),
            _ => (9, "OTHER"),
        };
        Self(index, label)
    }
}

/// Names become metric label values and log fields; keep them printable and unquoted.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(format!(
            "invalid {kind} name `{}`: use a non-empty name without quotes, backslashes or control characters",
            crate::access_log::visible(name)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_printable() {
        assert!(check_name("route", "api v1").is_ok());
        assert!(
            check_name("route", "a\"b")
                .unwrap_err()
                .contains("route name")
        );
        assert!(check_name("server", "").is_err());
    }

    #[test]
    fn request_ids_are_distinct_hex() {
        let a = RequestId::next();
        let b = RequestId::next();
        assert_ne!(a, b);
        assert_eq!(RequestId(0xfe).to_string(), "00000000000000fe");
        assert_eq!(RequestId(u64::MAX).header_value(), "ffffffffffffffff");
        assert_eq!(a.header_value(), a.to_string().as_str());
    }

    #[test]
    fn route_metrics_render_with_their_labels() {
        let m = RouteMetrics::new(&"unit-srv".into(), &"unit-route".into());
        let brew = MethodLabel::of(&http::Method::from_bytes(b"BREW").unwrap());
        m.record(brew, 418, Duration::from_millis(1));
        // Cached and uncached paths count into the same series.
        m.record(brew, 418, Duration::from_millis(1));
        m.record(
            MethodLabel::of(&http::Method::GET),
            418,
            Duration::from_millis(1),
        );
        let text = xbuild_core::metrics::render();
        assert!(
            text.contains(
                r#"http_requests_total{server="unit-srv",route="unit-route",method="OTHER",code="418"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_request_duration_seconds_count{server="unit-srv",route="unit-route"} 3"#
            ),
            "{text}"
        );
    }
}

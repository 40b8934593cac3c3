//! `http.handlers.rate_limit`: a per-client request budget; past it, 429.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use serde::Deserialize;
use xbuild_core::metrics::prometheus_client::metrics::counter::Counter;
use xbuild_core::{BoxError, Context, Module, Provisioned};
use xbuild_http::client::TrustedProxies;
use xbuild_http::http::{HeaderValue, StatusCode, header};
use xbuild_http::{Handler, HandlerFuture, Next, Request, Response, text_response};

use crate::store::BoundedStore;

const MAX_REQUESTS: i64 = 1_000_000;
const MIN_WINDOW: f64 = 0.001;
const MAX_WINDOW: f64 = 86_400.0;
const MAX_CLIENTS: i64 = 10_000_000;

fn default_window() -> f64 {
    1.0
}

fn default_max_clients() -> i64 {
    100_000
}

/// Module `http.handlers.rate_limit`; its fields are its config (see the crate's README).
///
/// Each client may make `requests` requests per `window` seconds, `burst` of them at once;
/// a request past that is answered `429 Too Many Requests` with `Retry-After`, any other
/// is passed on.
#[derive(Deserialize)]
pub struct RateLimit {
    /// Requests a client may make per window. Required (a host's `selftest` then counts the
    /// handler as needing a config, not as failing).
    requests: i64,
    /// The window, in seconds.
    #[serde(
        default = "default_window",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    window: f64,
    /// Requests a client may make at once, after being idle; defaults to `requests`.
    burst: Option<i64>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or networks).
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// Clients tracked one by one at most.
    #[serde(default = "default_max_clients")]
    max_clients: i64,

    #[serde(skip)]
    state: Provisioned<State>,
}

type Limiter = RateLimiter<IpAddr, BoundedStore, DefaultClock>;

struct State {
    limiter: Limiter,
    store: BoundedStore,
    proxies: TrustedProxies,
}

impl Module for RateLimit {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        let requests = self.requests;
        if !(1..=MAX_REQUESTS).contains(&requests) {
            return Err(format!(
                "invalid requests `{requests}`: give 1 to {MAX_REQUESTS} (requests per window)"
            )
            .into());
        }
        let window = self.window;
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&window) {
            return Err(format!(
                "invalid window `{window}`: give seconds from {MIN_WINDOW} to {MAX_WINDOW} (one day), e.g. `window = 60`"
            )
            .into());
        }
        let burst = self.burst.unwrap_or(requests);
        let burst = u32::try_from(burst)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                format!(
                    "invalid burst `{burst}`: give 1 to {} (requests a client may make at once; default: requests)",
                    u32::MAX
                )
            })?;
        if !(1..=MAX_CLIENTS).contains(&self.max_clients) {
            return Err(format!(
                "invalid max_clients `{}`: give 1 to {MAX_CLIENTS} (clients tracked one by one)",
                self.max_clients
            )
            .into());
        }
        let proxies = TrustedProxies::parse(&self.trusted_proxies)?;
        // One request's worth of budget comes back every window / requests: at least 1 ns,
        // since the window is at least 1 ms and requests at most a million.
        let period = Duration::from_secs_f64(window / requests as f64);
        let quota = Quota::with_period(period)
            .ok_or_else(|| {
                format!(
                    "window `{window}` is too short for requests `{requests}`: give a longer window"
                )
            })?
            .allow_burst(burst);
        let store = BoundedStore::new(self.max_clients as usize);
        limited(); // registered now, so the series reads 0 before the first refusal
        self.state.set(State {
            limiter: RateLimiter::new(quota, store.clone(), DefaultClock::default()),
            store,
            proxies,
        });
        Ok(())
    }
}

impl Handler for RateLimit {
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let state = &*self.state;
            let client = state
                .proxies
                .client_ip(request.headers(), next.info().remote.ip());
            match state.check(client) {
                Ok(()) => next.run(request).await,
                Err(retry_after) => {
                    limited().inc();
                    Ok(too_many(retry_after))
                }
            }
        })
    }
}

impl State {
    /// Takes one request from `client`'s budget, or says in how many whole seconds (at
    /// least 1) there will be one.
    fn check(&self, client: IpAddr) -> Result<(), u64> {
        let key = client_key(client);
        if self.store.turns_away(&key) && self.store.sweep_due() {
            // Forgets clients whose budget is full again: that loses nothing.
            self.limiter.retain_recent();
            self.store.swept();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// The key a client is counted under: its address, or for IPv6 its /64, the block one
/// subscriber usually gets (counting single IPv6 addresses would let one client use 2^64
/// of them, each with a fresh budget).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

fn too_many(retry_after: u64) -> Response {
    let mut response = text_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests: retry after the number of seconds in Retry-After\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// `http_rate_limited_total`: requests answered 429, process-wide.
fn limited() -> &'static Counter {
    static LIMITED: OnceLock<Counter> = OnceLock::new();
    LIMITED.get_or_init(|| {
        let counter = Counter::default();
        xbuild_core::metrics::register(
            "http_rate_limited",
            "Requests rate_limit answered 429: the client was over its rate",
            counter.clone(),
        );
        counter
    })
}

xbuild_core::register_module!("http.handlers.rate_limit", RateLimit as dyn Handler);

#[cfg(test)]
mod tests {
    use super::*;

    fn state(requests: u32, window: Duration, max_clients: usize) -> State {
        let quota = Quota::with_period(window / requests)
            .unwrap()
            .allow_burst(NonZeroU32::new(requests).unwrap());
        let store = BoundedStore::new(max_clients);
        State {
            limiter: RateLimiter::new(quota, store.clone(), DefaultClock::default()),
            store,
            proxies: TrustedProxies::default(),
        }
    }

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(i.into())
    }

    #[test]
    fn the_store_never_holds_more_than_max_clients() {
        let state = state(1, Duration::from_secs(3600), 100);
        for i in 0..10_000 {
            let _ = state.check(v4(i));
            assert!(
                state.limiter.len() <= 100,
                "{} after {i}",
                state.limiter.len()
            );
        }
        assert_eq!(state.limiter.len(), 100);
        // The first hundred have places of their own: each used its one request.
        assert_eq!(state.check(v4(5)), Err(3600));
        // The rest share one overflow budget, used up by the first of them.
        assert!(state.check(v4(50_000)).is_err());
    }

    #[test]
    fn a_sweep_forgets_idle_clients_to_make_room() {
        // A budget that is full again 1 ms after a request.
        let state = state(1, Duration::from_millis(1), 10);
        for i in 0..10 {
            assert_eq!(state.check(v4(i)), Ok(()));
        }
        assert_eq!(state.check(v4(10)), Ok(())); // the overflow budget; the store is full
        std::thread::sleep(Duration::from_millis(20));
        // The next new client finds the store full, sweeps the idle ones out and gets a
        // place of its own.
        assert_eq!(state.check(v4(11)), Ok(()));
        assert_eq!(state.limiter.len(), 1);
        assert!(!state.store.turns_away(&v4(12)));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}

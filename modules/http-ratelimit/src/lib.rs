//! # xbuild-http-ratelimit
//!
//! Per-client rate limiting for hosts built with xbuild: the handler
//! `http.handlers.rate_limit` ([`RateLimit`]). Each client (an IP address; an IPv6 client
//! by its /64) may make `requests` requests per `window` seconds, in bursts of up to
//! `burst`; past that it is answered `429 Too Many Requests` with a `Retry-After`, and
//! otherwise the request is passed on. The limiter is the `governor` crate's (GCRA).
//!
//! ```toml
//! [[apps.http.servers.main.routes]]
//! match = { path = ["/api/*"] }
//! handle = [
//!   { handler = "rate_limit", requests = 10, window = 1, burst = 20, trusted_proxies = ["10.0.0.0/8"] },
//!   { handler = "reverse_proxy", upstreams = ["127.0.0.1:9000"] },
//! ]
//! ```
//!
//! Build it into a host with `xbuild --with xbuild-http-ratelimit@0.1`.
//!
//! Memory stays bounded whatever the number of clients: at most `max_clients` are tracked
//! one by one; when that many are tracked, idle ones (whose budget is full again, so
//! forgetting them changes nothing) are swept out, and if none are idle, new clients share
//! one overflow budget until room frees up. The crate's README says more.
//!
//! The handler's module ID is in namespace `http.handlers`, which the standard HTTP app
//! (`xbuild-http`) opens for other crates; this crate's own namespace is
//! `xbuild_http_ratelimit`.

#![deny(missing_docs)]

mod rate_limit;
mod store;

pub use rate_limit::RateLimit;

//! The http app's integration suite: each test starts the app in-process from a config and
//! talks to it over loopback with real HTTP.

// Helpers: starting hosts, clients, upstream servers.
mod support;
// Handlers registered only in this test binary (panicking, slow, echoing, cleanup-counting).
mod test_handlers;

// Routing and static_response.
mod routes;
// file_server: index files, content types, conditional requests, ranges, containment.
mod file_server;
// reverse_proxy and headers.
mod proxy_headers;
// Per-server limits: head and body sizes, stalled reads and writes, HTTP/2 streams.
mod limits;
// metrics, panics, shutdown.
mod lifecycle;
// Config errors as `host validate` reports them, and the shipped examples.
mod validate;
// The handler test kit (feature `testing`) as handler crates use it.
mod kit;

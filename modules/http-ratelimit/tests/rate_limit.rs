//! `http.handlers.rate_limit` through the handler test kit: requests from chosen client
//! addresses, as the server would send them.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

use xbuild_http::Request;
use xbuild_http::http::{HeaderValue, StatusCode};
use xbuild_http::testing::{self, TestHandler, TestResponse, get};
// Links the crate, and with it its registration: nothing here names its items.
use xbuild_http_ratelimit as _;

fn from(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 40000)
}

fn send(limit: &TestHandler, client: &str, request: Request) -> TestResponse {
    limit.send_from(from(client), request).unwrap()
}

fn forwarded_for(client: &str) -> Request {
    let mut request = get("/");
    request
        .headers_mut()
        .insert("x-forwarded-for", HeaderValue::from_str(client).unwrap());
    request
}

fn statuses(limit: &TestHandler, client: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| send(limit, client, get("/")).status.as_u16())
        .collect()
}

#[test]
fn each_client_has_its_own_budget() {
    let limit = testing::load_toml("rate_limit", "requests = 2\nwindow = 60").unwrap();
    assert_eq!(statuses(&limit, "192.0.2.1", 3), [200, 200, 429]);
    assert_eq!(statuses(&limit, "192.0.2.2", 3), [200, 200, 429]);
    assert_eq!(statuses(&limit, "192.0.2.1", 1), [429]);
    // Only what was allowed reached the rest of the route.
    assert_eq!(limit.passed_on().len(), 4);
}

#[test]
fn past_the_limit_the_answer_is_429_with_retry_after() {
    let limit = testing::load_toml("rate_limit", "requests = 1\nwindow = 30").unwrap();
    assert_eq!(send(&limit, "192.0.2.9", get("/")).status, StatusCode::OK);
    let refused = send(&limit, "192.0.2.9", get("/"));
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.text(),
        "too many requests: retry after the number of seconds in Retry-After\n"
    );
    assert_eq!(
        refused.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // A fast rate still says at least one second.
    let limit = testing::load_toml("rate_limit", "requests = 100\nburst = 1").unwrap();
    assert_eq!(statuses(&limit, "192.0.2.9", 2), [200, 429]);
    assert_eq!(
        send(&limit, "192.0.2.9", get("/")).header("retry-after"),
        Some("1")
    );

    let metrics = xbuild_core::metrics::render();
    assert!(
        metrics.contains("# TYPE http_rate_limited counter"),
        "{metrics}"
    );
    let limited: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("http_rate_limited_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(limited >= 2, "{limited}");
}

#[test]
fn burst_and_window_set_the_budget() {
    // 1 request per 10 s, 3 at once.
    let limit = testing::load_toml("rate_limit", "requests = 1\nwindow = 10\nburst = 3").unwrap();
    assert_eq!(statuses(&limit, "192.0.2.3", 4), [200, 200, 200, 429]);
    // A fractional window: 2 per 1.5 s, so one request's worth comes back every 0.75 s.
    let limit = testing::load_toml("rate_limit", "requests = 2\nwindow = 1.5").unwrap();
    assert_eq!(statuses(&limit, "192.0.2.3", 3), [200, 200, 429]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(statuses(&limit, "192.0.2.3", 1), [200]);
}

#[test]
fn x_forwarded_for_counts_only_from_trusted_proxies() {
    let limit = testing::load_toml(
        "rate_limit",
        "requests = 1\nwindow = 60\ntrusted_proxies = [\"10.0.0.0/8\"]",
    )
    .unwrap();
    // Through the proxy, each forwarded client has its own budget...
    assert_eq!(
        send(&limit, "10.0.0.5", forwarded_for("198.51.100.1")).status,
        StatusCode::OK
    );
    assert_eq!(
        send(&limit, "10.0.0.5", forwarded_for("198.51.100.1")).status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&limit, "10.0.0.6", forwarded_for("198.51.100.2")).status,
        StatusCode::OK
    );
    // ...and the proxy's own budget is untouched.
    assert_eq!(send(&limit, "10.0.0.5", get("/")).status, StatusCode::OK);
    // From anyone else the header is a claim, not believed: the peer is the client.
    assert_eq!(
        send(&limit, "203.0.113.7", forwarded_for("198.51.100.9")).status,
        StatusCode::OK
    );
    assert_eq!(
        send(&limit, "203.0.113.7", forwarded_for("198.51.100.10")).status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Claiming to be an exhausted client does not hurt it from an untrusted peer either.
    assert_eq!(
        send(&limit, "203.0.113.8", forwarded_for("198.51.100.1")).status,
        StatusCode::OK
    );

    // Without trusted_proxies, no proxy is believed.
    let limit = testing::load_toml("rate_limit", "requests = 1\nwindow = 60").unwrap();
    assert_eq!(
        send(&limit, "10.0.0.5", forwarded_for("198.51.100.1")).status,
        StatusCode::OK
    );
    assert_eq!(
        send(&limit, "10.0.0.5", forwarded_for("198.51.100.2")).status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[test]
fn ipv6_clients_share_a_budget_per_64() {
    let limit = testing::load_toml("rate_limit", "requests = 2\nwindow = 60").unwrap();
    assert_eq!(statuses(&limit, "2001:db8:0:1::1", 1), [200]);
    assert_eq!(statuses(&limit, "2001:db8:0:1::ffff", 2), [200, 429]);
    assert_eq!(statuses(&limit, "2001:db8:0:2::1", 2), [200, 200]);
}

#[test]
fn beyond_max_clients_new_clients_share_one_overflow_budget() {
    let limit =
        testing::load_toml("rate_limit", "requests = 1\nwindow = 3600\nmax_clients = 3").unwrap();
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        assert_eq!(statuses(&limit, client, 1), [200], "{client}");
    }
    // The store is full of clients that are not idle: the fourth client takes the one
    // overflow budget, and every client after it finds it used up.
    assert_eq!(statuses(&limit, "192.0.2.4", 1), [200]);
    for i in 5..200 {
        assert_eq!(
            statuses(&limit, &format!("192.0.2.{i}"), 1),
            [429],
            "client {i}"
        );
    }
    // The tracked clients keep their own budgets.
    assert_eq!(statuses(&limit, "192.0.2.1", 1), [429]);
}

#[test]
fn configs_out_of_range_are_refused_with_what_to_give() {
    for (config, expected) in [
        ("", "missing field `requests`"),
        ("requests = 0", "invalid requests `0`: give 1 to 1000000"),
        (
            "requests = 1000001",
            "invalid requests `1000001`: give 1 to 1000000",
        ),
        (
            "requests = 5\nwindow = 0",
            "invalid window `0`: give seconds from 0.001 to 86400",
        ),
        ("requests = 5\nwindow = -1", "invalid window `-1`"),
        ("requests = 5\nwindow = 86401", "invalid window `86401`"),
        // NaN does not survive the core's JSON form: it arrives as null, and serde says so.
        ("requests = 5\nwindow = nan", "at `window`: invalid type"),
        (
            "requests = 5\nburst = 0",
            "invalid burst `0`: give 1 to 4294967295",
        ),
        ("requests = 5\nburst = -3", "invalid burst `-3`"),
        (
            "requests = 5\nmax_clients = 0",
            "invalid max_clients `0`: give 1 to 10000000",
        ),
        (
            "requests = 5\nmax_clients = 10000001",
            "invalid max_clients `10000001`",
        ),
        (
            "requests = 5\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "invalid entry `10.0.0.0/33` in trusted_proxies: give an IP address or a network",
        ),
        ("requests = 5\nper = \"second\"", "unknown field `per`"),
        ("requests = \"ten\"", "requests"),
    ] {
        let err = testing::load_toml("rate_limit", config)
            .err()
            .unwrap_or_else(|| panic!("`{config}` loaded"))
            .to_string();
        assert!(
            err.contains(expected),
            "`{config}`:\n{err}\nwanted: {expected}"
        );
    }
    // The edges of the ranges load.
    for config in [
        "requests = 1\nwindow = 0.001",
        "requests = 1000000\nwindow = 86400\nburst = 1\nmax_clients = 1",
        "requests = 3\nwindow = 2\nmax_clients = 10000000\ntrusted_proxies = [\"::1\", \"192.168.0.0/16\"]",
    ] {
        testing::load_toml("rate_limit", config).unwrap_or_else(|e| panic!("`{config}`: {e}"));
    }
}

#[test]
fn a_real_server_limits_its_clients() {
    let server = testing::TestServer::start_toml(
        "[servers.main]\n[[servers.main.routes]]\nhandle = [\n  { handler = \"rate_limit\", requests = 1, window = 60 },\n  { handler = \"static_response\", body = \"hello\" },\n]",
    )
    .unwrap();
    let exchange = || {
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let first = exchange();
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.ends_with("hello"), "{first}");
    let second = exchange();
    assert!(
        second.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{second}"
    );
    assert!(
        second.to_ascii_lowercase().contains("\r\nretry-after: "),
        "{second}"
    );
}

//! Route matching (host, path, method; first match wins) and static_response.

use crate::support::{Host, get, get_with, send};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

const CONFIG: &str = r#"
[apps.http]
worker_threads = 1
[apps.http.servers.routes]
listen = ["{addr}"]

[[apps.http.servers.routes.routes]]
match = { host = ["api.example.com"] }
handle = [{ handler = "static_response", body = "api host" }]

[[apps.http.servers.routes.routes]]
match = { path = ["/exact"] }
handle = [{ handler = "static_response", status = 201, body = "exact", headers = { "Content-Type" = "text/x-test", "X-Test" = "1" } }]

[[apps.http.servers.routes.routes]]
match = { path = ["/files/*"], method = ["POST"] }
handle = [{ handler = "static_response", status = 204 }]

[[apps.http.servers.routes.routes]]
match = { path = ["/files/*"] }
handle = [{ handler = "static_response", body = "files prefix" }]

[[apps.http.servers.routes.routes]]
match = { path = ["/"] }
handle = [{ handler = "static_response", body = "Hello" }]
"#;

#[test]
fn static_response_sets_status_headers_and_body() {
    let host = Host::start(CONFIG);
    let answer = get(&host.url("/exact"));
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, "exact");
    assert_eq!(answer.header("content-type"), "text/x-test");
    assert_eq!(answer.header("x-test"), "1");
    assert_eq!(answer.header("x-request-id").len(), 16);

    let hello = get(&host.url("/"));
    assert_eq!((hello.status.as_u16(), hello.body.as_str()), (200, "Hello"));
    assert_eq!(hello.header("content-type"), "text/plain; charset=utf-8");
    assert_ne!(hello.header("x-request-id"), answer.header("x-request-id"));
}

#[test]
fn routes_match_on_host_path_and_method_in_order() {
    let host = Host::start(CONFIG);
    // The host route comes first, so it takes every path of that host.
    let by_host = get_with(&host.url("/exact"), &[("host", "API.example.com:99")]);
    assert_eq!(by_host.body, "api host");
    // Exact paths are exact.
    assert_eq!(get(&host.url("/exact/more")).status, 404);
    // Prefixes, and methods: POST takes the earlier route, GET falls through to the next.
    assert_eq!(get(&host.url("/files/a/b")).body, "files prefix");
    let post = send(
        Request::post(host.url("/files/a"))
            .body(Full::new(Bytes::from("x")))
            .unwrap(),
    );
    assert_eq!(post.status, 204);
    assert_eq!(post.body, "");
    // Percent-encoded paths match as decoded.
    assert_eq!(get(&host.url("/%66iles/x")).body, "files prefix");
    // Nothing matches.
    let none = get(&host.url("/nothing"));
    assert_eq!(none.status, 404);
    assert!(none.body.contains("no route matched"), "{}", none.body);
}

#[test]
fn a_route_whose_handlers_all_pass_answers_404() {
    let host = Host::start(
        r#"
        [apps.http.servers.pass]
        listen = ["{addr}"]
        [[apps.http.servers.pass.routes]]
        handle = [{ handler = "headers", response = { set = { "X-Seen" = "1" } } }]
        "#,
    );
    let answer = get(&host.url("/"));
    assert_eq!(answer.status, 404);
    assert!(
        answer.body.contains("no handler answered"),
        "{}",
        answer.body
    );
    // The headers handler still worked on the way back.
    assert_eq!(answer.header("x-seen"), "1");
}

#[test]
fn h2c_is_opt_in() {
    let both = Host::start(
        r#"
        [apps.http.servers.both]
        listen = ["{addr}"]
        access_log = false
        protocols = ["h1", "h2c"]
        [[apps.http.servers.both.routes]]
        handle = [{ handler = "static_response", body = "either" }]
        "#,
    );
    let h2 = crate::support::send_h2(&both.url("/")).unwrap();
    assert_eq!((h2.0, h2.1.as_str()), (http::Version::HTTP_2, "either"));
    assert_eq!(get(&both.url("/")).body, "either");

    let h1_only = Host::start(
        r#"
        [apps.http.servers.h1]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.h1.routes]]
        handle = [{ handler = "static_response", body = "h1" }]
        "#,
    );
    let answer = get(&h1_only.url("/"));
    assert_eq!(answer.body, "h1");
    // Without an access log there is no log line for a request ID to point at.
    assert!(answer.headers.get("x-request-id").is_none());
    assert!(crate::support::send_h2(&h1_only.url("/")).is_err());
}

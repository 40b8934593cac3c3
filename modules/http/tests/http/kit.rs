//! The handler test kit (feature `testing`), as a handler crate uses it: a handler loaded
//! from its config, a recording next handler, and the real server on an ephemeral port.

use std::io::{Read, Write};
use std::net::TcpStream;

use http::{Method, StatusCode};
use xbuild_http::testing::{self, TestServer, get, request};

#[test]
fn a_middleware_handler_passes_requests_on_and_changes_what_comes_back() {
    let headers = testing::load_toml(
        "http.handlers.headers",
        r#"
        request = { set = { X-Tenant = "acme" }, remove = ["Cookie"] }
        response = { set = { X-Served = "yes" } }
        "#,
    )
    .unwrap();
    assert_eq!(headers.id(), "http.handlers.headers");
    headers.next_answers(|passed| {
        xbuild_http::text_response(
            StatusCode::CREATED,
            if passed.body.as_ref() == b"payload" {
                "got it"
            } else {
                "no body"
            },
        )
    });
    let mut sent = request(Method::POST, "/orders?x=1", "payload");
    sent.headers_mut()
        .insert("cookie", "secret".parse().unwrap());
    let response = headers.send(sent).unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.text(), "got it");
    assert_eq!(response.header("x-served"), Some("yes"));
    let passed = headers.passed_on();
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0].method, Method::POST);
    assert_eq!(passed[0].uri, "/orders?x=1");
    assert_eq!(passed[0].headers["x-tenant"], "acme");
    assert!(!passed[0].headers.contains_key("cookie"));
    let metrics = headers.metrics();
    assert!(
        metrics.contains(
            r#"module_call_total{module="http.handlers.headers",method="serve",status="ok"}"#
        ),
        "{metrics}"
    );
}

#[test]
fn a_handler_that_answers_never_reaches_next_and_errors_name_the_config() {
    let answer = testing::load_toml("static_response", "status = 204").unwrap();
    let response = answer.send(get("/")).unwrap();
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(answer.passed_on().is_empty());
    let unknown = testing::load_toml("static_response", "colour = 1")
        .err()
        .unwrap();
    assert!(
        unknown.to_string().contains("unknown field `colour`"),
        "{unknown}"
    );
    let missing = testing::load_toml("no_such_handler", "").err().unwrap();
    assert!(missing.to_string().contains("no_such_handler"), "{missing}");
}

#[test]
fn the_test_server_serves_on_an_ephemeral_port_and_stops_when_dropped() {
    let server = TestServer::start_toml(
        r#"
        worker_threads = 1
        [servers.main]
        listen = ["0.0.0.0:80"]
        access_log = false
        [[servers.main.routes]]
        handle = [ { handler = "static_response", body = "served" } ]
        "#,
    )
    .unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 80, "{addr}");
    assert_eq!(server.addr_of("main"), Some(addr));
    assert_eq!(server.url("/x"), format!("http://{addr}/x"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("served"), "{answer}");
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

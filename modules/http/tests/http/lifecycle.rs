//! Metrics output, panic isolation, and graceful shutdown.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::{Host, get, raw, rt, send_async};
use crate::test_handlers::{CLEANED_UP, slow_entered};

#[test]
fn metrics_show_module_calls_and_per_route_requests() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.metered]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.metered.routes]]
        name = "metrics"
        match = { path = ["/metrics"] }
        handle = [{ handler = "metrics" }]
        [[apps.http.servers.metered.routes]]
        name = "hello"
        handle = [{ handler = "static_response", status = 202, body = "hi" }]
        "#,
    );
    for _ in 0..3 {
        assert_eq!(get(&host.url("/hello")).status, 202);
    }
    let metrics = get(&host.url("/metrics"));
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").contains("openmetrics-text"));
    let text = metrics.body;
    assert!(
        text.contains(
            r#"module_call_total{module="http.handlers.static_response",method="serve",status="ok"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{server="metered",route="hello",method="GET",code="202"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{server="metered",route="hello"} 3"#),
        "{text}"
    );
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.panics]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.panics.routes]]
        match = { path = ["/metrics"] }
        handle = [{ handler = "metrics" }]
        [[apps.http.servers.panics.routes]]
        handle = [{ handler = "test_panic" }, { handler = "static_response", body = "fine" }]
        "#,
    );
    let boom = get(&host.url("/boom"));
    assert_eq!(boom.status, 500);
    assert!(boom.body.contains("internal server error"), "{}", boom.body);
    // Same server, same handler instance, right after.
    let fine = get(&host.url("/fine"));
    assert_eq!((fine.status.as_u16(), fine.body.as_str()), (200, "fine"));
    assert_eq!(get(&host.url("/boom")).status, 500);
    assert_eq!(get(&host.url("/fine")).status, 200);
    // A panic while the body streams: the head (200) has gone out, so the body is cut
    // short, and the panic is counted as the module's `body` call.
    let streamed = raw(host.addr, "GET /stream-boom HTTP/1.1");
    assert!(streamed.starts_with("HTTP/1.1 200"), "{streamed}");
    assert!(streamed.contains("partial"), "{streamed}");
    assert!(
        !streamed.ends_with("0\r\n\r\n"),
        "the body was not cut short: {streamed:?}"
    );
    assert_eq!(get(&host.url("/fine")).status, 200);
    // A body that fails with an error (no panic) is counted as the module's error.
    // (The connection ends at the failure, perhaps before the head was flushed.)
    crate::support::raw_bytes(
        host.addr,
        b"GET /stream-error HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        std::time::Duration::from_secs(30),
    );

    let text = get(&host.url("/metrics")).body;
    assert!(
        text.contains(
            r#"module_call_total{module="http.handlers.test_panic",method="body",status="error"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"module_call_total{module="http.handlers.test_panic",method="body",status="panic"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"module_call_total{module="http.handlers.test_panic",method="serve",status="panic"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"module_failed{module="http.handlers.test_panic"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{server="panics",route="1",method="GET",code="500"} 2"#
        ),
        "{text}"
    );
}

#[test]
fn stop_lets_an_in_flight_request_finish_then_cleans_up() {
    let mut host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        grace_period = 30.0
        [apps.http.servers.slow]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.slow.routes]]
        handle = [{ handler = "test_cleanup", tag = "shutdown-test" }, { handler = "test_slow", tag = "finish", millis = 300 }]
        "#,
    );
    let url = host.url("/slow");
    let in_flight = rt().spawn(send_async(
        Request::get(url).body(Full::<Bytes>::default()).unwrap(),
    ));
    // Stop only once the handler has the request.
    rt().block_on(slow_entered("finish").notified());
    let cleaned_before = CLEANED_UP.load(Ordering::SeqCst);
    let errors = host.apps.shutdown();
    assert!(errors.is_empty(), "{errors:?}");

    let answer = rt()
        .block_on(in_flight)
        .unwrap()
        .expect("the in-flight request finished");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "slow done");
    // Cleanup reached the handler inside the route.
    assert_eq!(CLEANED_UP.load(Ordering::SeqCst), cleaned_before + 1);
    // The listener is gone.
    assert!(std::net::TcpStream::connect(host.addr).is_err());
}

#[test]
fn stop_is_bounded_by_the_grace_period() {
    let mut host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        grace_period = 0.2
        [apps.http.servers.stuck]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.stuck.routes]]
        handle = [{ handler = "test_slow", tag = "stuck" }]
        "#,
    );
    let url = host.url("/forever");
    let in_flight = rt().spawn(send_async(
        Request::get(url).body(Full::<Bytes>::default()).unwrap(),
    ));
    rt().block_on(slow_entered("stuck").notified());
    // Returns although the handler never answers; the client sees its connection closed.
    let errors = host.apps.shutdown();
    assert!(errors.is_empty(), "{errors:?}");
    let outcome = rt().block_on(in_flight).unwrap();
    assert!(
        outcome.is_err(),
        "a request that never finished got an answer"
    );
}

//! Per-server limits a client runs into: the size of a request's head and body, a body
//! that stalls (read_timeout), a client that stops reading (write_timeout), and HTTP/2's
//! concurrent streams. Idle and slow-header limits are in the suite's standard_host tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Host, body_upstream, raw_bytes, raw_head, raw_status, rt};

/// A server whose one route proxies to an upstream that reads whole bodies; `server` adds
/// config lines to the server.
fn proxy_reading_bodies(server: &str) -> Host {
    let upstream = body_upstream();
    Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.limits]
        listen = ["{{addr}}"]
        access_log = false
        {server}
        [[apps.http.servers.limits.routes]]
        handle = [{{ handler = "reverse_proxy", upstreams = ["{upstream}"] }}]
        "#
    ))
}

#[test]
fn a_request_head_past_max_header_bytes_is_answered_431() {
    let host = proxy_reading_bodies("max_header_bytes = 16384");
    let big = "x".repeat(20_000);
    let answer = raw_head(
        host.addr,
        &format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close"),
    );
    assert_eq!(raw_status(&answer), 431, "{answer}");
    let fits = "x".repeat(10_000);
    let answer = raw_head(
        host.addr,
        &format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {fits}\r\nConnection: close"),
    );
    assert_eq!(raw_status(&answer), 200, "{answer}");

    // The default (64 KiB) holds too.
    let default = proxy_reading_bodies("");
    let huge = "x".repeat(100_000);
    let answer = raw_head(
        default.addr,
        &format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\nConnection: close"),
    );
    assert_eq!(raw_status(&answer), 431, "{answer}");
}

#[test]
fn a_body_past_max_request_body_is_answered_413_announced_or_not() {
    let host = proxy_reading_bodies("max_request_body = 1000");
    let wait = Duration::from_secs(20);
    // Announced with Content-Length: refused before any handler runs.
    let announced = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n{}",
        "a".repeat(2000)
    );
    let answer = raw_bytes(host.addr, announced.as_bytes(), wait);
    assert_eq!(raw_status(&answer), 413, "{answer}");
    // Chunked, so only reading finds out: the upstream never gets the whole body.
    let chunk = "b".repeat(600);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let answer = raw_bytes(host.addr, chunked.as_bytes(), wait);
    assert_eq!(raw_status(&answer), 413, "{answer}");
    // Within the limit, the body goes through whole.
    let small = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{}",
        "c".repeat(1000)
    );
    let answer = raw_bytes(host.addr, small.as_bytes(), wait);
    assert!(answer.contains("read 1000 bytes"), "{answer}");
}

#[test]
fn a_body_that_stalls_past_read_timeout_is_answered_408() {
    let host = proxy_reading_bodies("read_timeout = 1");
    let started = Instant::now();
    // Half the announced body, then nothing.
    let answer = raw_bytes(
        host.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabcde",
        Duration::from_secs(20),
    );
    assert_eq!(raw_status(&answer), 408, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered only after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_stops_reading_is_cut_off_after_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Far more than loopback's socket buffers hold, so the server's writes stall.
    let size = 64 << 20;
    std::fs::write(dir.path().join("big.bin"), vec![7u8; size]).unwrap();
    let host = Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.files]
        listen = ["{{addr}}"]
        access_log = false
        write_timeout = 1
        [[apps.http.servers.files.routes]]
        handle = [{{ handler = "file_server", root = {root:?} }}]
        "#,
        root = dir.path().to_str().unwrap()
    ));
    let mut stream = TcpStream::connect(host.addr).unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Read nothing for a while: the server's writes wait on a full socket.
    std::thread::sleep(Duration::from_secs(4));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(
        received < size,
        "the whole file ({received} bytes) arrived: the stalled write was not cut off"
    );
}

#[test]
fn http2_connections_are_told_the_stream_limit() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.h2]
        listen = ["{addr}"]
        access_log = false
        protocols = ["h2c"]
        max_concurrent_streams = 7
        [[apps.http.servers.h2.routes]]
        handle = [{ handler = "static_response", body = "ok" }]
        "#,
    );
    let limit = rt().block_on(async {
        let stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
        let (client, connection) = h2::client::handshake(stream).await.unwrap();
        let mut connection = Box::pin(connection);
        // The server's SETTINGS arrive as the connection is driven; one request makes sure.
        let mut client = client.ready().await.unwrap();
        let (response, _) = client
            .send_request(http::Request::get("http://t/").body(()).unwrap(), true)
            .unwrap();
        let driver = async { (&mut connection).await };
        tokio::select! {
            answered = response => { answered.unwrap(); }
            _ = driver => panic!("the connection ended first"),
        }
        connection.max_concurrent_send_streams()
    });
    assert_eq!(limit, 7);
}

/// A keep-alive HTTP/1.1 connection from `local` (a loopback address) that has had one
/// answer; `None` when the server closed it instead of answering.
fn kept_alive(local: &str, addr: std::net::SocketAddr) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .ok()?;
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer[..read]);
    answer.starts_with("HTTP/1.1 200").then_some(stream)
}

fn answering(server: &str) -> Host {
    Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.fair]
        listen = ["{{addr}}"]
        access_log = false
        {server}
        [[apps.http.servers.fair.routes]]
        handle = [{{ handler = "static_response", body = "ok" }}]
        "#
    ))
}

#[test]
fn one_client_holds_at_most_max_connections_per_client() {
    let host = answering("max_connections_per_client = 3");
    let held: Vec<TcpStream> = (0..3)
        .map(|_| kept_alive("127.0.0.1", host.addr).expect("within its share"))
        .collect();
    assert!(
        kept_alive("127.0.0.1", host.addr).is_none(),
        "a fourth connection from the same client is closed unserved"
    );
    // Another client is served all the same.
    assert!(kept_alive("127.0.0.2", host.addr).is_some());
    // A connection given back is the client's again.
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(kept_alive("127.0.0.1", host.addr).is_some());
}

#[test]
fn a_full_server_closes_the_connection_idle_longest_for_a_new_client() {
    let host = answering("max_connections = 3");
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| kept_alive("127.0.0.1", host.addr).expect("room for three"))
        .collect();
    // Full, with every connection idle: a new client gets in, and an idle one is closed.
    assert!(kept_alive("127.0.0.2", host.addr).is_some());
    let closed = idle
        .into_iter()
        .filter_map(|mut stream| {
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut byte = [0u8; 1];
            matches!(stream.read(&mut byte), Ok(0)).then_some(())
        })
        .count();
    assert_eq!(closed, 1, "exactly one idle connection made room");
}

#[test]
fn http2_pings_do_not_keep_an_idle_connection_open() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.pings]
        listen = ["{addr}"]
        access_log = false
        protocols = ["h2c"]
        idle_timeout = 1
        [[apps.http.servers.pings.routes]]
        handle = [{ handler = "static_response", body = "ok" }]
        "#,
    );
    let addr = host.addr;
    let closed = rt().block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, mut connection) = h2::client::handshake(stream).await.unwrap();
        let mut pings = connection.ping_pong().expect("a ping handle");
        let mut connection = Box::pin(connection);
        let mut client = client.ready().await.unwrap();
        let (response, _) = client
            .send_request(http::Request::get("http://t/").body(()).unwrap(), true)
            .unwrap();
        tokio::select! {
            answered = response => { answered.unwrap(); }
            _ = &mut connection => panic!("the connection ended before the answer"),
        }
        // A PING every 100 ms for up to 20 s: without a request, the connection is idle
        // all the same, and idle_timeout (1 s) closes it.
        let pinging = async {
            for _ in 0..200 {
                if pings.ping(h2::Ping::opaque()).await.is_err() {
                    return true; // the connection is gone
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        tokio::select! {
            _ = &mut connection => true,
            gone = pinging => gone,
        }
    });
    assert!(closed, "pings kept an idle HTTP/2 connection open");
}

#[test]
fn a_malformed_body_read_by_a_handler_is_the_clients_fault() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.uploads]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.uploads.routes]]
        handle = [{ handler = "test_reads_body" }]
        "#,
    );
    // Chunked framing that breaks: a chunk size that is not hex.
    let answer = raw_bytes(
        host.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\nzz\r\n",
        Duration::from_secs(20),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let fine = raw_bytes(
        host.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(20),
    );
    assert!(fine.ends_with("read 5 bytes"), "{fine}");
}

/// Floods an h2c server with `frame` (a whole HTTP/2 frame) after the connection preface,
/// never reading; returns whether the server ended the connection (the flood's writes
/// fail) rather than kept taking frames.
fn flood_without_reading(addr: std::net::SocketAddr, frame: &[u8]) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    // The preface and an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let batch: Vec<u8> = frame.repeat(1000);
    // 64 MiB of frames at most: far more than socket buffers hold, so a server that kept
    // reading would take them all and a bounded one stops reading and times out.
    let started = std::time::Instant::now();
    for _ in 0..(64 << 20) / batch.len() {
        if stream.write_all(&batch).is_err() {
            return true;
        }
        // A safety net, not a timing assertion: the server ends it within seconds.
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    false
}

#[test]
fn http2_ping_and_settings_floods_cost_bounded_memory_and_end_the_connection() {
    // h2 answers a PING or SETTINGS only once the previous answer is written, and reads
    // no further frame meanwhile: a client that floods them without reading its answers
    // stalls its own connection, which write_timeout then closes.
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.flood]
        listen = ["{addr}"]
        access_log = false
        protocols = ["h2c"]
        write_timeout = 1
        [[apps.http.servers.flood.routes]]
        handle = [{ handler = "static_response", body = "ok" }]
        "#,
    );
    let ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong";
    assert!(flood_without_reading(host.addr, ping), "PINGs");
    let settings = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64";
    assert!(flood_without_reading(host.addr, settings), "SETTINGS");
    // The server still serves.
    assert_eq!(
        crate::support::send_h2(&format!("http://{}/", host.addr))
            .unwrap()
            .1,
        "ok"
    );
}

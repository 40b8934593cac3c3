//! reverse_proxy (round-robin, forwarding headers, failover, 502) and headers (request and
//! response: set, add, remove).

use crate::support::{
    Host, echo_upstream, free_port, get, get_with, raw_head, raw_status, send_h2,
};

fn proxy(upstreams: &[String]) -> Host {
    proxy_with(upstreams, "", "")
}

/// A server whose one route proxies to `upstreams`; `server` and `handler` are extra
/// config lines for the server and extra fields (`, key = value`) for the handler.
fn proxy_with(upstreams: &[String], server: &str, handler: &str) -> Host {
    let list = upstreams
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.proxy]
        listen = ["{{addr}}"]
        {server}
        [[apps.http.servers.proxy.routes]]
        handle = [{{ handler = "reverse_proxy", upstreams = [{list}], connect_timeout = 2.0{handler} }}]
        "#
    ))
}

/// The `name: value` lines of an echo upstream's answer, as pairs.
fn lines(body: &str) -> Vec<(String, String)> {
    body.lines()
        .filter_map(|l| l.split_once(": ").or_else(|| l.split_once('=')))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn round_robin_across_upstreams() {
    let a = echo_upstream("a");
    let b = echo_upstream("b");
    let host = proxy(&[a.to_string(), format!("http://{b}")]);
    let served: Vec<String> = (0..4)
        .map(|_| {
            let answer = get(&host.url("/x"));
            assert_eq!(answer.status, 200);
            value(&lines(&answer.body), "upstream").unwrap().to_owned()
        })
        .collect();
    assert_eq!(served.iter().filter(|s| *s == "a").count(), 2, "{served:?}");
    assert!(served.windows(2).all(|w| w[0] != w[1]), "{served:?}");
}

#[test]
fn sets_forwarding_headers_and_keeps_path_and_host() {
    let upstream = echo_upstream("only");
    let host = proxy(&[upstream.to_string()]);
    let answer = get_with(
        &host.url("/p/a?q=1"),
        &[
            ("host", "site.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "must not pass"),
            ("x-custom", "passes"),
        ],
    );
    let pairs = lines(&answer.body);
    assert_eq!(value(&pairs, "path"), Some("/p/a?q=1"), "{pairs:?}");
    assert_eq!(value(&pairs, "host"), Some("site.example"));
    // The client's own X-Forwarded-For is replaced by the address this server saw.
    assert_eq!(value(&pairs, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(value(&pairs, "x-forwarded-proto"), Some("http"));
    assert_eq!(value(&pairs, "x-forwarded-host"), Some("site.example"));
    assert_eq!(value(&pairs, "x-custom"), Some("passes"));
    assert_eq!(value(&pairs, "x-hop"), None, "{pairs:?}");
    // The request ID travels to the upstream, and (with the access log on) to the client.
    assert_eq!(
        value(&pairs, "x-request-id"),
        Some(answer.header("x-request-id"))
    );
}

#[test]
fn host_header_upstream_tells_the_upstream_its_own_address() {
    let upstream = echo_upstream("named");
    let host = proxy_with(&[upstream.to_string()], "", r#", host_header = "upstream""#);
    let answer = get_with(&host.url("/"), &[("host", "site.example")]);
    let pairs = lines(&answer.body);
    assert_eq!(
        value(&pairs, "host"),
        Some(upstream.to_string().as_str()),
        "{pairs:?}"
    );
    // The client's host still travels, as X-Forwarded-Host.
    assert_eq!(value(&pairs, "x-forwarded-host"), Some("site.example"));
}

#[test]
fn the_upstream_gets_the_cleaned_path_unless_raw_path_is_asked_for() {
    let upstream = echo_upstream("paths");
    let cleaned = proxy(&[upstream.to_string()]);
    let raw = proxy_with(&[upstream.to_string()], "", ", raw_path = true");
    let target = "/a//b/./c/../d?q=1";
    let path = |host: &Host| {
        let answer = raw_head(
            host.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close"),
        );
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        value(&lines(&body), "path").map(str::to_owned)
    };
    assert_eq!(path(&cleaned).as_deref(), Some("/a/b/d?q=1"));
    assert_eq!(path(&raw).as_deref(), Some(target));
}

#[test]
fn answers_502_when_no_upstream_answers() {
    let nothing = format!("127.0.0.1:{}", free_port());
    let host = proxy(std::slice::from_ref(&nothing));
    let answer = get(&host.url("/"));
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("bad gateway"), "{}", answer.body);
}

#[test]
fn answers_504_when_the_upstream_does_not_answer_in_time() {
    // Accepts connections (the kernel's backlog does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = Host::start(&format!(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.timeout]
        listen = ["{{addr}}"]
        [[apps.http.servers.timeout.routes]]
        handle = [{{ handler = "reverse_proxy", upstreams = ["{}"], response_timeout = 0.2 }}]
        "#,
        silent.local_addr().unwrap()
    ));
    let answer = get(&host.url("/"));
    assert_eq!(answer.status, 504);
    assert!(answer.body.contains("gateway timeout"), "{}", answer.body);
}

#[test]
fn skips_an_upstream_that_refuses_connections() {
    let down = format!("127.0.0.1:{}", free_port());
    let up = echo_upstream("up");
    let host = proxy(&[down, up.to_string()]);
    for _ in 0..3 {
        let answer = get(&host.url("/"));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.starts_with("upstream=up"), "{}", answer.body);
    }
}

#[test]
fn headers_changes_requests_and_responses() {
    let host = Host::start(
        r#"
        [apps.http]
        worker_threads = 1
        [apps.http.servers.hdr]
        listen = ["{addr}"]
        access_log = false
        [[apps.http.servers.hdr.routes]]
        handle = [
          { handler = "headers",
            request = { remove = ["x-drop"], set = { "X-Set" = "new" }, add = { "X-Add" = ["one", "two"] } },
            response = { remove = ["x-from-handler"], set = { "X-Frame-Options" = "DENY" }, add = { "X-Multi" = "two" } } },
          { handler = "test_echo_headers" },
        ]
        "#,
    );
    let answer = get_with(
        &host.url("/"),
        &[("x-drop", "gone"), ("x-set", "old"), ("x-add", "zero")],
    );
    assert_eq!(answer.status, 200);
    let pairs = lines(&answer.body);
    assert_eq!(value(&pairs, "x-drop"), None, "{pairs:?}");
    assert_eq!(value(&pairs, "x-set"), Some("new"));
    let added: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n == "x-add")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(added, ["zero", "one", "two"]);

    assert!(answer.headers.get("x-from-handler").is_none());
    assert_eq!(answer.header("x-frame-options"), "DENY");
    let multi: Vec<_> = answer.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["one", "two"]);
}

#[test]
fn one_host_decides_the_route_and_is_what_the_upstream_is_told() {
    let upstream = echo_upstream("only");
    let host = proxy(&[upstream.to_string()]);
    let addr = host.addr;
    // The absolute-form authority wins over the Host header (RFC 9112).
    let answer = raw_head(
        addr,
        "GET http://public.example/x HTTP/1.1\r\nHost: admin.internal\r\nConnection: close",
    );
    assert_eq!(raw_status(&answer), 200, "{answer}");
    let pairs = lines(&answer);
    assert_eq!(value(&pairs, "host"), Some("public.example"), "{answer}");
    assert_eq!(value(&pairs, "x-forwarded-host"), Some("public.example"));
    // Userinfo in the authority disguises the host (RFC 9110 §4.2.4): refused.
    let answer = raw_head(
        addr,
        "GET http://user:pw@public.example/x HTTP/1.1\r\nHost: other\r\nConnection: close",
    );
    assert_eq!(raw_status(&answer), 400, "{answer}");
    // The upstream is told the canonical host, however the client spelled it.
    let answer = raw_head(
        addr,
        "GET /x HTTP/1.1\r\nHost: Public.Example.:8080\r\nConnection: close",
    );
    assert_eq!(
        value(&lines(&answer), "host"),
        Some("public.example:8080"),
        "{answer}"
    );
    // Two Host headers, or none in HTTP/1.1, are refused; HTTP/1.0 may leave it out.
    let two = raw_head(
        addr,
        "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close",
    );
    assert_eq!(raw_status(&two), 400, "{two}");
    let none = raw_head(addr, "GET /x HTTP/1.1\r\nConnection: close");
    assert_eq!(raw_status(&none), 400, "{none}");
    let old = raw_head(addr, "GET /x HTTP/1.0");
    assert_eq!(raw_status(&old), 200, "{old}");
}

#[test]
fn over_h2c_the_upstream_is_told_the_clients_authority() {
    let upstream = echo_upstream("only");
    let host = proxy_with(&[upstream.to_string()], r#"protocols = ["h2c"]"#, "");
    let url = host.url("/over-h2");
    let (version, body) = send_h2(&url).unwrap();
    assert_eq!(version, http::Version::HTTP_2);
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let pairs = lines(&body);
    assert_eq!(value(&pairs, "host"), Some(authority.as_str()), "{body}");
    assert_eq!(
        value(&pairs, "x-forwarded-host"),
        Some(authority.as_str()),
        "{body}"
    );
}

#[test]
fn a_stale_content_length_beside_chunked_framing_is_not_forwarded() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
            );
        }
    });
    let host = proxy(&[upstream.to_string()]);
    let answer = get(&host.url("/"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "hello world");
    assert_ne!(
        answer.headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"2"[..])
    );
}

#[test]
fn forwarding_headers_are_believed_only_from_trusted_proxies() {
    let upstream = echo_upstream("only");
    let forged = [
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
    ];
    // By default nobody in front is trusted.
    let host = proxy(&[upstream.to_string()]);
    let pairs = lines(&get_with(&host.url("/"), &forged).body);
    assert_eq!(value(&pairs, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(value(&pairs, "forwarded"), None, "{pairs:?}");
    assert_eq!(value(&pairs, "x-real-ip"), None, "{pairs:?}");
    drop(host);

    let trusting = proxy_with(
        &[upstream.to_string()],
        "",
        r#", trusted_proxies = ["127.0.0.0/8", "::1"]"#,
    );
    let pairs = lines(&get_with(&trusting.url("/"), &forged).body);
    assert_eq!(value(&pairs, "x-forwarded-for"), Some("6.6.6.6, 127.0.0.1"));
    assert_eq!(value(&pairs, "forwarded"), Some("for=6.6.6.6"));
    assert_eq!(value(&pairs, "x-real-ip"), Some("6.6.6.6"));

    let refused = crate::support::provision(&format!(
        r#"
        [apps.http.servers.proxy]
        listen = ["127.0.0.1:0"]
        [[apps.http.servers.proxy.routes]]
        handle = [{{ handler = "reverse_proxy", upstreams = ["{upstream}"], trusted_proxies = ["10.0.0.0/33"] }}]
        "#
    ));
    let err = refused.err().expect("a bad network is refused");
    assert!(
        err.contains("invalid entry `10.0.0.0/33` in trusted_proxies"),
        "{err}"
    );
}

/// Writes `request` byte for byte and reads the whole answer.
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn a_malformed_request_body_is_the_clients_fault_not_the_upstreams() {
    let upstream = echo_upstream("only");
    let host = proxy(&[upstream.to_string()]);
    let upload = |chunk_size: &str| {
        exchange(
            host.addr,
            format!(
                "POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk_size}\r\nhello\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    // `zz` is not a chunk size.
    let garbled = upload("zz");
    assert_eq!(raw_status(&garbled), 400, "{garbled}");
    // A well-formed upload still goes through.
    let fine = upload("5");
    assert_eq!(raw_status(&fine), 200, "{fine}");
}

#[test]
fn an_upstreams_unasked_101_is_not_passed_on() {
    // An upstream that answers every request by switching protocols.
    let upstream = crate::support::canned_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nraw bytes",
    );
    let host = proxy(&[upstream.to_string()]);
    let answer = raw_head(host.addr, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close");
    assert_eq!(raw_status(&answer), 502, "{answer}");
}

#[test]
fn a_transfer_coding_other_than_chunked_is_refused_not_lost() {
    let upstream = echo_upstream("only");
    let host = proxy(&[upstream.to_string()]);
    // A request body in `gzip, chunked`: the gzip coding would be lost on the way.
    let answer = crate::support::raw_bytes(
        host.addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        std::time::Duration::from_secs(20),
    );
    assert_eq!(raw_status(&answer), 501, "{answer}");
    // Plain chunked goes through.
    let answer = crate::support::raw_bytes(
        host.addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        std::time::Duration::from_secs(20),
    );
    assert_eq!(raw_status(&answer), 200, "{answer}");

    // An upstream that answers in `gzip, chunked`.
    let coded = crate::support::canned_upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let host = proxy(&[coded.to_string()]);
    let answer = raw_head(host.addr, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close");
    assert_eq!(raw_status(&answer), 502, "{answer}");
}

#[test]
fn options_asterisk_reaches_the_upstream_as_asterisk() {
    let (upstream, heads) = crate::support::canned_upstream_heads(
        b"HTTP/1.1 200 OK\r\nAllow: GET, OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    let host = proxy(&[upstream.to_string()]);
    let answer = raw_head(
        host.addr,
        "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close",
    );
    assert_eq!(raw_status(&answer), 200, "{answer}");
    let head = heads
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    assert!(head.starts_with("OPTIONS * HTTP/1.1\r\n"), "{head}");
    // The asterisk-form is for OPTIONS only (RFC 9112, section 3.2.4).
    let answer = raw_head(host.addr, "GET * HTTP/1.1\r\nHost: t\r\nConnection: close");
    assert_eq!(raw_status(&answer), 400, "{answer}");
}

#[test]
fn an_upstream_body_that_stalls_is_cut_after_read_timeout() {
    use std::io::{Read, Write};
    // An upstream that announces 100 bytes, sends 10 and then nothing, holding the
    // connection open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            held.push(stream);
        }
    });
    let host = Host::start(&format!(
        r#"
        [apps.http.servers.main]
        listen = ["{{addr}}"]
        access_log = false
        [[apps.http.servers.main.routes]]
        handle = [{{ handler = "reverse_proxy", upstreams = ["{upstream}"], read_timeout = 0.5 }}]
        "#
    ));
    let mut client = std::net::TcpStream::connect(host.addr).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // The server ends the connection (the read returns) instead of waiting with the
    // upstream; the client's own limit (60 s) would be an error.
    let ended = client.read_to_end(&mut answer);
    assert!(ended.is_ok(), "{ended:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("0123456789"), "{answer}");
}

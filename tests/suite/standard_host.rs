//! The standard host: built once by xbuild with the standard modules (plus test handlers
//! that panic or are slow on purpose) and driven with real HTTP requests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::http::{free_port, get, request, wait_listening};
use crate::support::xbuild::{XBUILD, core_path};
use crate::support::{Ran, Spawned, redact, run, write};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Builds the host once for every test here (they share the cache with the xbuild tests).
fn host() -> &'static str {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standard-host");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let handlers = repo_root().join("tests/fixtures/fixture-http-handlers");
        let output = dir.join("host");
        let ran = Ran::from_output(
            Command::new(XBUILD)
                .arg("--with")
                .arg(format!("fixture-http-handlers={}", handlers.display()))
                .arg("--core-path")
                .arg(core_path())
                .arg("--output")
                .arg(&output)
                .arg("-q")
                .env("TMPDIR", dir.join("tmp"))
                .envs(crate::support::xbuild::shared_cache())
                .output()
                .unwrap(),
        );
        ran.success();
        output
    })
    .to_str()
    .unwrap()
}

/// A running host; killed if a test fails before stopping it.
struct Server {
    process: Option<Spawned>,
}

impl Server {
    fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[])
    }

    fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(host());
        command
            .arg("run")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .current_dir(repo_root());
        Self {
            process: Some(Spawned::new(command)),
        }
    }

    fn stop(mut self) -> Ran {
        let process = self.process.take().unwrap();
        process.signal("TERM");
        process.finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.child.kill();
        }
    }
}

fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    write(&path, text);
    path
}

#[test]
fn the_quick_start_answers_hello_and_every_example_validates() {
    let examples = repo_root().join("examples");
    for example in ["hello.toml", "file_server.toml", "reverse_proxy.toml"] {
        let config = examples.join(example);
        let mut command = Command::new(host());
        command
            .arg("validate")
            .arg("--config")
            .arg(&config)
            .current_dir(repo_root());
        Ran::from_output(command.output().unwrap()).success();
    }
    let server = Server::start(&examples.join("hello.toml"));
    wait_listening("127.0.0.1:8080");
    let response = get("127.0.0.1:8080", "/");
    assert_eq!(response.status, 200);
    assert!(response.text().contains("Hello"), "{}", response.text());
    assert!(response.header("x-request-id").is_some(), "{response:?}");
    let out = server.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn list_modules_separates_the_standard_modules() {
    let all = run(host(), &["list-modules"]).success();
    snapbox::assert_data_eq!(
        all.stdout,
        snapbox::str![[r#"
http
http.handlers.file_server
http.handlers.headers
http.handlers.metrics
http.handlers.reverse_proxy
http.handlers.static_response

  Standard modules: 6

http.handlers.test_panic
http.handlers.test_slow

  Non-standard modules: 2

"#]]
    );
    let others = run(host(), &["list-modules", "--skip-standard", "--versions"]).success();
    snapbox::assert_data_eq!(
        others.stdout,
        snapbox::str![[r#"
http.handlers.test_panic fixture-http-handlers 0.1.0
http.handlers.test_slow fixture-http-handlers 0.1.0

  Non-standard modules: 2

"#]]
    );
    // The curated index (registry.toml) says truly what the standard crates register, and
    // the host calls standard exactly the crates the index does.
    let listed: serde_json::Value =
        serde_json::from_str(&run(host(), &["list-modules", "--json"]).success().stdout).unwrap();
    let known: serde_json::Value =
        serde_json::from_str(&run(XBUILD, &["list-known", "--json"]).success().stdout).unwrap();
    let crates_where = |list: &serde_json::Value, standard: bool| {
        let mut crates: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["standard"] == standard)
            .map(|m| m["crate"].as_str().unwrap().to_owned())
            .collect();
        crates.sort_unstable();
        crates.dedup();
        crates
    };
    assert_eq!(crates_where(&listed, true), crates_where(&known, true));
    assert_eq!(crates_where(&known, true), xbuild_core::STANDARD_CRATES);
    for entry in known
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["standard"] == true)
    {
        let registered: Vec<&serde_json::Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["crate"] == entry["crate"])
            .map(|m| &m["id"])
            .collect();
        let indexed: Vec<&serde_json::Value> = entry["ids"].as_array().unwrap().iter().collect();
        assert_eq!(
            registered, indexed,
            "registry.toml entry for {}",
            entry["crate"]
        );
    }
    let skipped = run(host(), &["list-modules", "--skip-standard"]).success();
    assert_eq!(
        skipped.stdout,
        "http.handlers.test_panic\nhttp.handlers.test_slow\n\n  Non-standard modules: 2\n"
    );
}

#[test]
fn static_response_and_headers_shape_requests_and_responses() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start("echo");
    let port = free_port();
    let config = config_file(
        dir.path(),
        &format!(
            r#"[apps.http.servers.main]
listen = ["127.0.0.1:{port}"]

[[apps.http.servers.main.routes]]
match = {{ path = ["/static"], method = ["GET"] }}
handle = [
  {{ handler = "headers", response = {{ set = {{ "X-Set" = "one" }}, add = {{ "X-Added" = ["a", "b"] }}, remove = ["X-Drop-Me"] }} }},
  {{ handler = "static_response", status = 201, headers = {{ "X-Drop-Me" = "gone", "X-Kept" = "kept" }}, body = "made" }},
]

[[apps.http.servers.main.routes]]
match = {{ path = ["/proxied/*"] }}
handle = [
  {{ handler = "headers", request = {{ set = {{ "X-Req" = "yes" }}, remove = ["X-Secret"] }} }},
  {{ handler = "reverse_proxy", upstreams = ["{}"] }},
]
"#,
            upstream.addr
        ),
    );
    let server = Server::start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr);

    let response = get(&addr, "/static");
    assert_eq!(response.status, 201);
    assert_eq!(response.text(), "made");
    assert_eq!(response.header("x-set"), Some("one"));
    assert_eq!(response.header("x-kept"), Some("kept"));
    assert!(response.header("x-drop-me").is_none(), "{response:?}");
    let added: Vec<_> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-added"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(added, ["a", "b"]);
    // Method matching: POST is not routed, so nobody answers.
    assert_eq!(request(&addr, "POST", "/static", &[]).status, 404);

    let proxied = request(&addr, "GET", "/proxied/x", &[("X-Secret", "hush")]);
    assert_eq!(proxied.status, 200, "{}", proxied.text());
    let seen = upstream.last_request().to_ascii_lowercase();
    assert!(seen.contains("x-req: yes"), "{seen}");
    assert!(!seen.contains("x-secret"), "{seen}");
    assert!(seen.contains("x-forwarded-for: 127.0.0.1"), "{seen}");
    assert!(seen.starts_with("get /proxied/x http/1.1"), "{seen}");
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn file_server_serves_conditionally_and_by_range_and_never_escapes_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    write(&site.join("index.html"), "<h1>index page</h1>");
    write(&site.join("notes.txt"), "0123456789abcdef");
    write(&dir.path().join("secret.txt"), "TOP SECRET");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), site.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), site.join("up")).unwrap();
    let port = free_port();
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.files]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[apps.http.servers.files.routes]]\nhandle = [{{ handler = \"file_server\", root = \"{}\" }}]\n",
            site.display()
        ),
    );
    let server = Server::start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr);

    let index = get(&addr, "/");
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>index page</h1>");
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{index:?}"
    );

    let notes = get(&addr, "/notes.txt");
    assert_eq!(notes.status, 200);
    assert!(
        notes
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let etag = notes.header("etag").expect("an ETag").to_owned();
    let modified = notes
        .header("last-modified")
        .expect("a Last-Modified")
        .to_owned();
    assert_eq!(
        request(&addr, "GET", "/notes.txt", &[("If-None-Match", &etag)]).status,
        304
    );
    assert_eq!(
        request(
            &addr,
            "GET",
            "/notes.txt",
            &[("If-Modified-Since", &modified)]
        )
        .status,
        304
    );
    let ranged = request(&addr, "GET", "/notes.txt", &[("Range", "bytes=2-5")]);
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.text(), "2345");
    assert_eq!(ranged.header("content-range"), Some("bytes 2-5/16"));

    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/notes.txt/../../secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "//etc/passwd",
        "/%00",
    ] {
        let response = get(&addr, target);
        assert!(
            [400, 403, 404].contains(&response.status),
            "{target}: {} {}",
            response.status,
            response.text()
        );
        assert!(
            !response.text().contains("TOP SECRET"),
            "{target} leaked the secret"
        );
        assert!(
            !response.text().contains("root:"),
            "{target} leaked /etc/passwd"
        );
    }
    assert_eq!(server.stop().code, Some(0));
}

/// A tiny upstream server: answers every request with its name and remembers the last
/// request head.
struct Upstream {
    addr: String,
    last: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Upstream {
    fn start(name: &'static str) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = last.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                *seen.lock().unwrap() = head;
                let body = format!("answered by {name}");
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, last }
    }

    fn last_request(&self) -> String {
        self.last.lock().unwrap().clone()
    }
}

#[test]
fn reverse_proxy_takes_upstreams_in_turn_and_answers_502_when_none_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Upstream::start("A"), Upstream::start("B"));
    let dead = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.front]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[apps.http.servers.front.routes]]\nmatch = {{ path = [\"/dead\"] }}\n\
             handle = [{{ handler = \"reverse_proxy\", upstreams = [\"{dead}\"], connect_timeout = 2.0 }}]\n\
             [[apps.http.servers.front.routes]]\n\
             handle = [{{ handler = \"reverse_proxy\", upstreams = [\"{}\", \"http://{}\"] }}]\n",
            a.addr, b.addr
        ),
    );
    let server = Server::start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr);
    let answers: Vec<String> = (0..4).map(|_| get(&addr, "/").text()).collect();
    assert_ne!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0], answers[2], "{answers:?}");
    assert_eq!(answers[1], answers[3], "{answers:?}");
    assert!(
        answers.contains(&"answered by A".to_owned())
            && answers.contains(&"answered by B".to_owned())
    );
    let host_header = a.last_request().to_ascii_lowercase();
    assert!(
        host_header.contains("x-forwarded-for: 127.0.0.1"),
        "{host_header}"
    );
    assert!(
        host_header.contains("x-forwarded-proto: http"),
        "{host_header}"
    );
    assert_eq!(get(&addr, "/dead").status, 502);
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn a_panicking_handler_answers_500_is_counted_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http]\ngrace_period = 1\n[apps.http.servers.main]\nlisten = [\"127.0.0.1:{port}\"]\n\
             protocols = [\"h1\", \"h2c\"]\nmax_header_bytes = 8192\n\
             [[apps.http.servers.main.routes]]\nname = \"boom\"\nmatch = {{ path = [\"/panic\"] }}\nhandle = [{{ handler = \"test_panic\" }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"metrics\"\nmatch = {{ path = [\"/metrics\"] }}\nhandle = [{{ handler = \"metrics\" }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"fine\"\nhandle = [{{ handler = \"static_response\", body = \"still here\" }}]\n"
        ),
    );
    let server = Server::start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr);
    assert_eq!(get(&addr, "/panic").status, 500);
    let next = get(&addr, "/");
    assert_eq!((next.status, next.text().as_str()), (200, "still here"));
    assert_eq!(get(&addr, "/panic").status, 500);
    let metrics = get(&addr, "/metrics").text();
    for expected in [
        r#"module_call_total{module="http.handlers.test_panic",method="serve",status="panic"} 2"#,
        r#"module_call_total{module="http.handlers.static_response",method="serve",status="ok"} 1"#,
        r#"module_failed{module="http.handlers.test_panic"} 1"#,
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("route=\"boom\""),
        "per-route metrics:\n{metrics}"
    );
    let out = server.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked at"), "{}", out.stderr);
}

#[test]
fn sigterm_lets_a_slow_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("slow-started");
    let port = free_port();
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http]\ngrace_period = 30.0\n[apps.http.servers.main]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[apps.http.servers.main.routes]]\nhandle = [{{ handler = \"test_slow\", millis = 1500, started_marker = \"{}\" }}]\n",
            marker.display()
        ),
    );
    let server = Server::start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr);
    let client = {
        let addr = addr.clone();
        std::thread::spawn(move || get(&addr, "/slow"))
    };
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never reached its handler"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = server.stop();
    let response = client.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "slow request done\n");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "no longer accepting"
    );
}

#[test]
fn validate_names_unknown_handlers_fields_and_bad_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"nope\" }]\n",
            &[
                "unknown module `http.handlers.nope` in namespace `http.handlers`",
                "`http.handlers.file_server`",
                "`http.handlers.static_response`",
            ][..],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"static_response\", bodyy = \"x\" }]\n",
            &["unknown field `bodyy`"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nlistne = 1\n",
            &["unknown field `listne`"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"not-an-address\"]\n",
            &["not-an-address"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:80\\r\\nX: y\"]\n",
            &["invalid listen address `127.0.0.1:80\\u{000d}\\u{000a}X: y`"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nread_header_timeout = 0\n",
            &[
                "server `a`: invalid read_header_timeout `0`: give a number of seconds above 0 and at most 3600",
            ],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nidle_timeout = 1e300\n",
            &["invalid idle_timeout", "at most 86400"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = 0\n",
            &["invalid max_connections `0`: give a number from 1 to 1000000"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nmax_header_bytes = 100\n",
            &["invalid max_header_bytes (bytes) `100`: give a number from 8192 to 16777216"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nmax_request_body = 0\n",
            &["invalid max_request_body (bytes) `0`: give a number from 1 to 1099511627776"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nwrite_timeout = -1\n",
            &["invalid write_timeout `-1`: give a number of seconds above 0 and at most 86400"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = \"many\"\n",
            &["expected a whole number, 0 or more"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nwrite_timeout = \"soon\"\n",
            &["invalid duration \"soon\""],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nidle_timeout = \"2 days\"\n",
            &["invalid idle_timeout `172800`: give a number of seconds above 0 and at most 86400"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\nmax_concurrent_streams = 0\n",
            &["invalid max_concurrent_streams `0`: give a number from 1 to 10000"],
        ),
        (
            "[apps.http]\ngrace_period = 1e300\n[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n",
            &["invalid grace_period `1e300`: give a number of seconds from 0 to 3600"],
        ),
        (
            "[apps.http]\nworker_threads = 100000\n[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n",
            &["invalid worker_threads `100000`: give a number from 1 to 1024"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"static_response\", body = \"hello world\", headers = { \"Content-Length\" = \"2\" } }]\n",
            &["header `Content-Length` cannot be set from a config: it frames the message"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"headers\", response = { set = { \"transfer-encoding\" = \"chunked\" } } }]\n",
            &["response.set: header `transfer-encoding` cannot be set from a config"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"static_response\", headers = { \"X-A\" = \"a\\nb\" } }]\n",
            &["invalid value `a\\u{000a}b` for header `X-A`"],
        ),
        (
            "[apps.http.servers.a]\nlisten = [\"127.0.0.1:0\"]\n[[apps.http.servers.a.routes]]\nhandle = [{ handler = \"static_response\", status = 101 }]\n",
            &["invalid status `101`: give a code from 200 to 599"],
        ),
    ];
    // Each refusal whole (message, causes, help), not only the words the table names.
    let mut transcript = String::new();
    for (text, expected) in cases {
        let config = config_file(dir.path(), text);
        let out = run(host(), &["validate", "--config", config.to_str().unwrap()]);
        assert_ne!(out.code, Some(0), "{text}");
        for needle in expected {
            assert!(
                out.stderr.contains(needle),
                "{text}\nwanted {needle:?} in:\n{}",
                out.stderr
            );
        }
        transcript += &format!(
            "$ validate {:?}\n{}\n",
            text.lines().last().unwrap_or(""),
            out.stderr
        );
    }
    snapbox::assert_data_eq!(
        redact(&transcript, dir.path()),
        snapbox::str![[r#"
$ validate "handle = [{ handler = /"nope/" }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: unknown module `http.handlers.nope` in namespace `http.handlers`
help: available: `http.handlers.file_server`, `http.handlers.headers`, `http.handlers.metrics`, `http.handlers.reverse_proxy`, `http.handlers.static_response`, `http.handlers.test_panic`, `http.handlers.test_slow`

$ validate "handle = [{ handler = /"static_response/", bodyy = /"x/" }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: invalid config for `http.handlers.static_response`: unknown field `bodyy`
help: check its spelling against the documentation of `http.handlers.static_response`

$ validate "listne = 1"
error: cannot load app `http`: invalid config for `http` at `servers.a`: unknown field `listne`
help: check its spelling against the documentation of `http`

$ validate "listen = [/"not-an-address/"]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid listen address `not-an-address`: expected IP:PORT such as `127.0.0.1:8080`, `[::1]:8080` or `:8080`

$ validate "listen = [/"127.0.0.1:80//r//nX: y/"]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid listen address `127.0.0.1:80/u{000d}/u{000a}X: y`: expected IP:PORT such as `127.0.0.1:8080`, `[::1]:8080` or `:8080`

$ validate "read_header_timeout = 0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid read_header_timeout `0`: give a number of seconds above 0 and at most 3600

$ validate "idle_timeout = 1e300"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid idle_timeout `1e300`: give a number of seconds above 0 and at most 86400

$ validate "max_connections = 0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid max_connections `0`: give a number from 1 to 1000000

$ validate "max_header_bytes = 100"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid max_header_bytes (bytes) `100`: give a number from 8192 to 16777216

$ validate "max_request_body = 0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid max_request_body (bytes) `0`: give a number from 1 to 1099511627776

$ validate "write_timeout = -1"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid write_timeout `-1`: give a number of seconds above 0 and at most 86400

$ validate "max_connections = /"many/""
error: cannot load app `http`: invalid config for `http` at `servers.a.max_connections`: invalid type: string "many", expected a whole number, 0 or more

$ validate "write_timeout = /"soon/""
error: cannot load app `http`: invalid config for `http` at `servers.a.write_timeout`: invalid duration "soon": give seconds (30, 0.5) or a duration such as "30s", "1m30s" or "500ms"

$ validate "idle_timeout = /"2 days/""
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid idle_timeout `172800`: give a number of seconds above 0 and at most 86400

$ validate "max_concurrent_streams = 0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`: invalid max_concurrent_streams `0`: give a number from 1 to 10000

$ validate "listen = [/"127.0.0.1:0/"]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in validate: invalid grace_period `1e300`: give a number of seconds from 0 to 3600

$ validate "listen = [/"127.0.0.1:0/"]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in validate: invalid worker_threads `100000`: give a number from 1 to 1024, or leave it out

$ validate "handle = [{ handler = /"static_response/", body = /"hello world/", headers = { /"Content-Length/" = /"2/" } }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.static_response" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: module `http.handlers.static_response` failed in provision: header `Content-Length` cannot be set from a config: it frames the message, and the server writes it from what it actually sends

$ validate "handle = [{ handler = /"headers/", response = { set = { /"transfer-encoding/" = /"chunked/" } } }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.headers" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: module `http.handlers.headers` failed in provision: response.set: header `transfer-encoding` cannot be set from a config: it frames the message, and the server writes it from what it actually sends

$ validate "handle = [{ handler = /"static_response/", headers = { /"X-A/" = /"a//nb/" } }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.static_response" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: module `http.handlers.static_response` failed in provision: invalid value `a/u{000a}b` for header `X-A`: a header value cannot hold control characters (line breaks included)

$ validate "handle = [{ handler = /"static_response/", status = 101 }]"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.static_response" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `a`, routes[0].handle[0]: module `http.handlers.static_response` failed in provision: invalid status `101`: give a code from 200 to 599


"#]]
    );
}

#[test]
fn a_deny_route_cannot_be_walked_around_with_unclean_paths() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    write(&site.join("admin/x"), "secret file");
    write(&site.join("public.txt"), "public file");
    let upstream = Upstream::start("upstream");
    let (files, proxied) = (free_port(), free_port());
    let deny = "[[apps.http.servers.{s}.routes]]\nmatch = { path = [\"/admin/*\"] }\n\
        handle = [{ handler = \"static_response\", status = 403, body = \"denied\" }]\n";
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.files]\nlisten = [\"127.0.0.1:{files}\"]\n{}\
             [[apps.http.servers.files.routes]]\n\
             handle = [{{ handler = \"file_server\", root = \"{}\" }}]\n\
             [apps.http.servers.proxied]\nlisten = [\"127.0.0.1:{proxied}\"]\n{}\
             [[apps.http.servers.proxied.routes]]\n\
             handle = [{{ handler = \"reverse_proxy\", upstreams = [\"{}\"] }}]\n",
            deny.replace("{s}", "files"),
            site.display(),
            deny.replace("{s}", "proxied"),
            upstream.addr
        ),
    );
    let server = Server::start(&config);
    let (files, proxied) = (format!("127.0.0.1:{files}"), format!("127.0.0.1:{proxied}"));
    wait_listening(&files);
    wait_listening(&proxied);
    // The routes work as written.
    assert_eq!(get(&files, "/public.txt").text(), "public file");
    assert_eq!(get(&proxied, "/public").text(), "answered by upstream");
    assert!(upstream.last_request().starts_with("GET /public HTTP/1.1"));
    for target in [
        "/admin/x",
        "//admin/x",
        "/./admin/x",
        "/%2e/admin/x",
        "/%2E%2E/admin/x",
        "/foo/../admin/x",
        "/foo/%2e%2e/admin/x",
        "/ADMIN/x",
        "/Admin/./x",
        "/%61dmin/x",
        "/admin%2Fx",
    ] {
        let from_files = get(&files, target);
        assert_eq!(from_files.status, 403, "{target}: {from_files:?}");
        assert!(!from_files.text().contains("secret"), "{target}");
        let from_proxy = get(&proxied, target);
        assert_eq!(from_proxy.status, 403, "{target}: {from_proxy:?}");
    }
    // Nothing reached the upstream after the one public request.
    assert!(
        upstream.last_request().starts_with("GET /public HTTP/1.1"),
        "{}",
        upstream.last_request()
    );
    // A folder asked for with a doubled slash redirects on this server, not to `//sub/`
    // (which a browser reads as another host).
    write(&site.join("sub/index.html"), "sub");
    let redirect = get(&files, "//sub");
    assert!((300..400).contains(&redirect.status), "{redirect:?}");
    assert_eq!(redirect.header("location"), Some("/sub/"), "{redirect:?}");
    // What is forwarded is the cleaned path.
    get(&proxied, "/a/./b//c/../d?q=1");
    assert!(
        upstream
            .last_request()
            .starts_with("GET /a/b/d?q=1 HTTP/1.1"),
        "{}",
        upstream.last_request()
    );
    // Userinfo in an absolute-form target is refused (RFC 9110 §4.2.4: it disguises the
    // authority), and as a credential it is never written to the log.
    let with_userinfo = get(&files, "http://user:hunter2@site.example/public.txt");
    assert_eq!(with_userinfo.status, 400, "{with_userinfo:?}");
    let out = server.stop();
    assert_eq!(out.code, Some(0));
    assert!(
        out.stderr.contains("uri=http://site.example/public.txt"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

/// A `match.host` deny route holds for every spelling of its host, over HTTP/1.1 (Host
/// header and absolute-form) and HTTP/2 (`:authority`); a Host that is no valid
/// `host[:port]` gets 400; `validate` refuses patterns that could never match.
#[test]
fn a_host_deny_route_holds_for_every_spelling_of_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.main]\nlisten = [\"{addr}\"]\nprotocols = [\"h1\", \"h2c\"]\n\
             [[apps.http.servers.main.routes]]\nmatch = {{ host = [\"admin.example\", \"B\u{dc}cher.example\"] }}\n\
             handle = [{{ handler = \"static_response\", status = 403, body = \"denied\" }}]\n\
             [[apps.http.servers.main.routes]]\n\
             handle = [{{ handler = \"static_response\", body = \"open\" }}]\n"
        ),
    );
    let server = Server::start(&config);
    wait_listening(&addr);
    let with_host = |host: &str| {
        crate::support::http::request_raw(
            &addr,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(with_host("public.example").text(), "open");
    for host in [
        "admin.example",
        "ADMIN.example",
        "admin.example.",
        "Admin.Example.:80",
        "admin.example:8080",
        // An international name, in punycode (as browsers send it) or raw UTF-8.
        "xn--bcher-kva.example",
        "b\u{fc}cher.example.",
        "B\u{dc}CHER.example:80",
    ] {
        let answer = with_host(host);
        assert_eq!(answer.status, 403, "Host: {host}: {answer:?}");
    }
    for target in [
        "http://admin.example./",
        "http://ADMIN.EXAMPLE:80/",
        "http://admin.example/",
    ] {
        let answer = request(&addr, "GET", target, &[]);
        assert_eq!(answer.status, 403, "{target}: {answer:?}");
    }
    // HTTP/2 with prior knowledge: the :authority is the host.
    for authority in ["admin.example.", "ADMIN.example:443"] {
        assert_eq!(h2_status(&addr, authority), 403, ":authority {authority}");
    }
    assert_eq!(h2_status(&addr, "public.example"), 200);
    // Hosts that are no `host[:port]`: 400, never a route's answer.
    for host in ["a:80:80", "evil@a", "a/x", "a,b", "", "a..b", "a:http"] {
        let answer = with_host(host);
        assert_eq!(answer.status, 400, "Host: {host:?}: {answer:?}");
    }
    assert_eq!(server.stop().code, Some(0));

    // Patterns no request could match are refused by validate, each named.
    let mut transcript = String::new();
    for (pattern, field) in [
        ("admin.example:80", "host"),
        ("a\u{200d}.example", "host"),
        ("/admin%2Fx", "path"),
        ("/a/../admin/*", "path"),
        ("/a//b", "path"),
        ("/a/*/b", "path"),
    ] {
        let config = config_file(
            dir.path(),
            &format!(
                "[apps.http.servers.main]\nlisten = [\"{addr}\"]\n\
                 [[apps.http.servers.main.routes]]\nmatch = {{ {field} = [\"{pattern}\"] }}\n\
                 handle = [{{ handler = \"static_response\", status = 403 }}]\n"
            ),
        );
        let refused = Ran::from_output(
            Command::new(host())
                .args(["validate", "--config"])
                .arg(&config)
                .output()
                .unwrap(),
        );
        assert_ne!(refused.code, Some(0), "{pattern} accepted");
        transcript += &format!("$ validate: {field} {pattern:?}\n{}\n", refused.stderr);
    }
    snapbox::assert_data_eq!(
        redact(&transcript.replace(&addr.to_string(), "[ADDR]"), dir.path()),
        snapbox::str![[r#"
$ validate: host "admin.example:80"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid host `admin.example:80` in `match.host`: the port is not part of the match (requests are matched by host alone), so this never matches; give a host name such as `example.com` or `*.example.com`

$ validate: host "a/u{200d}.example"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid host `a/u{200d}.example` in `match.host`: it is not a valid international host name (UTS #46), so no request could match it; give a host name such as `example.com` or `*.example.com`

$ validate: path "/admin%2Fx"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid path `/admin%2Fx` in `match.path`: requests are matched decoded, so a percent-encoded pattern never matches: write the characters themselves

$ validate: path "/a/../admin/*"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid path `/a/../admin/*` in `match.path`: requests are matched with their paths cleaned (no `.`, `..` or empty segments), so this never matches: write `/admin/*`

$ validate: path "/a//b"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid path `/a//b` in `match.path`: requests are matched with their paths cleaned (no `.`, `..` or empty segments), so this never matches: write `/a/b`

$ validate: path "/a/*/b"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
error: cannot load app `http`: module `http` failed in provision: server `main`, routes[0]: invalid path `/a/*/b` in `match.path`: `*` is only allowed at the end, for a prefix (`/api/*`)


"#]]
    );
}

/// One client holding more connections than it may, re-requesting on each, cannot keep a
/// second client from being served.
#[test]
fn one_client_cannot_keep_another_out() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.main]\nlisten = [\"{addr}\"]\nmax_connections = 8\nmax_connections_per_client = 4\n\
             [[apps.http.servers.main.routes]]\n\
             handle = [{{ handler = \"static_response\", body = \"served\" }}]\n"
        ),
    );
    let server = Server::start(&config);
    wait_listening(&addr);
    // The attacker opens twice its share and keeps asking on every connection it got.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = (0..8)
                .filter_map(|_| TcpStream::connect(&addr).ok())
                .collect();
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                held.retain_mut(|stream| {
                    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                    let mut buf = [0u8; 512];
                    stream
                        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                        .is_ok()
                        && stream.read(&mut buf).is_ok_and(|n| {
                            served += usize::from(n > 0);
                            n > 0
                        })
                });
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (held.len(), served)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // A second client, from another address, is answered within 2 s.
    let mut second = crate::support::http::connect_from("127.0.0.2", &addr);
    second
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    assert_eq!(exchange(&mut second, "/"), "served");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (kept, served) = attacker.join().unwrap();
    assert!(
        kept <= 4,
        "the attacker kept {kept} connections, past its 4"
    );
    assert!(served > 0, "the attacker's own share was served");
    assert_eq!(server.stop().code, Some(0));
}

/// The status of `GET /` over HTTP/2 with prior knowledge, with `authority` as :authority.
fn h2_status(addr: &str, authority: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(stream).await.unwrap();
        tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = http::Request::get(format!("http://{authority}/"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        response.await.unwrap().status().as_u16()
    })
}

#[test]
fn the_access_log_has_a_line_for_every_request_even_refused_or_cut_short() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // An upstream whose answer breaks off: 10 of the 100 bytes it announces.
    let broken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let broken_addr = broken.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in broken.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        }
    });
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let file: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(files.join("big.txt"), &file).unwrap();
    let marker = dir.path().join("slow-started");
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http]\ngrace_period = 1\n[apps.http.servers.main]\nlisten = [\"127.0.0.1:{port}\"]\n\
             protocols = [\"h1\", \"h2c\"]\nmax_header_bytes = 8192\n\
             [[apps.http.servers.main.routes]]\nname = \"boom\"\nmatch = {{ path = [\"/panic/*\"] }}\nhandle = [{{ handler = \"test_panic\" }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"files\"\nmatch = {{ path = [\"/big.txt\"] }}\nhandle = [{{ handler = \"file_server\", root = '{files}' }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"broken\"\nmatch = {{ path = [\"/broken\"] }}\nhandle = [{{ handler = \"reverse_proxy\", upstreams = [\"{broken_addr}\"] }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"slow\"\nmatch = {{ path = [\"/slow\"] }}\nhandle = [{{ handler = \"test_slow\", millis = 60000, started_marker = '{marker}' }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"metrics\"\nmatch = {{ path = [\"/metrics\"] }}\nhandle = [{{ handler = \"metrics\" }}]\n\
             [[apps.http.servers.main.routes]]\nname = \"fine\"\nhandle = [{{ handler = \"static_response\", body = \"fine\" }}]\n",
            files = files.display(),
            marker = marker.display(),
        ),
    );
    let addr = format!("127.0.0.1:{port}");
    let raw = |bytes: &[u8]| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(crate::support::PATIENCE))
            .unwrap();
        stream.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    // A connection whose `/slow` request the handler has begun (it touches the marker).
    let slow_request_started = || {
        let _ = std::fs::remove_file(&marker);
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let waited = std::time::Instant::now();
        while !marker.exists() {
            assert!(waited.elapsed() < crate::support::PATIENCE, "never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stream
    };
    for format in ["text", "json"] {
        let server = Server::start_with_env(&config, &[("XBUILD_LOG_FORMAT", format)]);
        wait_listening(&addr);
        let fine = get(&addr, "/fine?q=1");
        let id = fine.header("x-request-id").unwrap().to_owned();
        // hyper refuses these before any route sees them: an invalid method, a head too big.
        let refused = raw(b"G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
        let big = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "x".repeat(300_000)
        );
        assert!(raw(big.as_bytes()).starts_with("HTTP/1.1 431"));
        // 200 and part of the body, then the handler's body panics.
        let cut = raw(b"GET /panic/stream HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(
            cut.starts_with("HTTP/1.1 200") && cut.contains("partial"),
            "{cut}"
        );
        // A file delivered in full: no error.
        let delivered = get(&addr, "/big.txt");
        assert_eq!(delivered.text(), file);
        // An upstream's answer that breaks off: the client gets the head and part of it.
        let partial = raw(b"GET /broken HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(partial.starts_with("HTTP/1.1 200"), "{partial}");
        assert!(!partial.contains(&"0123456789".repeat(10)), "{partial}");
        // Over HTTP/2, the h2 layer refuses a header list past max_header_bytes (431) and
        // resets a request without `:method`, both before the server sees them; a third
        // request on the connection is served.
        let h2 = raw(&h2_refused_requests());
        assert!(h2.contains("fine"), "{h2:?}");
        // A client that leaves before its answer.
        let leaving = slow_request_started();
        drop(leaving);
        // The metrics count the same requests: those hyper refused, and the abandoned one
        // once the server has seen the client leave.
        let counted = |series: &str| {
            let waited = std::time::Instant::now();
            loop {
                let metrics = get(&addr, "/metrics").text();
                if metrics.lines().any(|l| l == series) {
                    break;
                }
                assert!(
                    waited.elapsed() < crate::support::PATIENCE,
                    "no `{series}` in\n{metrics}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        };
        counted(r#"http_requests_total{server="main",route="(rejected)",method="-",code="400"} 1"#);
        counted(r#"http_requests_total{server="main",route="(rejected)",method="-",code="431"} 1"#);
        counted(r#"http_requests_total{server="main",route="slow",method="GET",code="499"} 1"#);
        counted(r#"http_requests_total{server="main",route="broken",method="GET",code="200"} 1"#);
        counted(r#"http_requests_total{server="main",route="(rejected)",method="-",code="-"} 2"#);
        // A request still in flight when the host stops past its grace period (1 s).
        let staying = slow_request_started();
        let out = server.stop();
        drop(staying);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let access: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("http.access"))
            .collect();
        // One line per request, the metrics requests included (they come after the rest).
        let metrics_lines = access.iter().filter(|l| l.contains("/metrics")).count();
        assert!(metrics_lines >= 4, "{}", out.stderr);
        assert_eq!(access.len() - metrics_lines, 11, "{}", out.stderr);
        let fields = |line: &str| -> serde_json::Value {
            if format == "json" {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(line["target"], "http.access");
                line["fields"].clone()
            } else {
                let rest = line.split_once("http.access: request ").unwrap().1;
                rest.split(' ')
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').unwrap();
                        let value = value
                            .parse::<u64>()
                            .map_or_else(|_| value.into(), serde_json::Value::from);
                        (key.to_owned(), value)
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            }
        };
        let lines: Vec<serde_json::Value> = access.iter().map(|l| fields(l)).collect();
        let with = |key: &str, value: serde_json::Value| {
            lines
                .iter()
                .find(|l| l[key] == value)
                .unwrap_or_else(|| panic!("no {key}={value} line in {lines:#?}"))
        };
        let line = with("request_id", id.clone().into());
        assert_eq!(line["uri"], "/fine?q=1");
        assert_eq!(line["route"], "fine");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["status"], 200);
        assert_eq!(line["server"], "main");
        let line = with("status", 400.into());
        assert_eq!(line["route"], "(rejected)");
        assert_eq!(line["error"], "malformed_request");
        let line = with("status", 431.into());
        assert_eq!(line["route"], "(rejected)");
        let line = with("route", "boom".into());
        assert_eq!(line["status"], 200);
        assert_eq!(line["error"], "body_panicked", "{lines:#?}");
        let line = with("route", "files".into());
        assert_eq!(line["status"], 200);
        assert!(line.get("error").is_none(), "{lines:#?}");
        let line = with("route", "broken".into());
        assert_eq!(line["status"], 200);
        assert_eq!(line["error"], "body_failed", "{lines:#?}");
        let line = with("status", 499.into());
        assert_eq!(line["route"], "slow");
        assert_eq!(line["error"], "client_gone", "{lines:#?}");
        let line = with("status", 503.into());
        assert_eq!(line["route"], "slow");
        assert_eq!(line["error"], "server_stopped", "{lines:#?}");
        let refused: Vec<_> = lines
            .iter()
            .filter(|l| l["error"] == "refused_by_http2")
            .collect();
        assert_eq!(refused.len(), 2, "{lines:#?}");
        for line in refused {
            assert_eq!(line["route"], "(rejected)");
            // No status is known: h2 answered 431 to one and reset the other.
            let no_status = if format == "json" {
                serde_json::Value::Null
            } else {
                "-".into()
            };
            assert_eq!(line["status"], no_status, "{line}");
        }
    }
}

/// An HTTP/2 (prior knowledge) connection's bytes, written by hand as an attacker would:
/// the preface, SETTINGS, then three GET requests on streams 1, 3 and 5 (HPACK without
/// indexing): stream 1 with a 10,000-byte header, stream 3 with no `:method`, stream 5
/// fine; then a GOAWAY once the answers are in (the reader waits for the server to close).
fn h2_refused_requests() -> Vec<u8> {
    fn hpack_length(mut n: usize, out: &mut Vec<u8>) {
        // An HPACK integer with a 7-bit prefix (RFC 7541, section 5.1), no Huffman coding.
        if n < 127 {
            out.push(n as u8);
            return;
        }
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    fn literal(name: &str, value: &str, out: &mut Vec<u8>) {
        out.push(0x00);
        hpack_length(name.len(), out);
        out.extend(name.as_bytes());
        hpack_length(value.len(), out);
        out.extend(value.as_bytes());
    }
    fn headers(stream: u32, block: &[u8], out: &mut Vec<u8>) {
        out.extend(&(block.len() as u32).to_be_bytes()[1..]);
        // HEADERS, END_STREAM | END_HEADERS.
        out.extend([0x01, 0x05]);
        out.extend(stream.to_be_bytes());
        out.extend(block);
    }
    // :scheme http, :path /fine (literal), :authority t.
    let common = |out: &mut Vec<u8>| {
        out.push(0x86);
        out.extend([0x04, 0x05]);
        out.extend(b"/fine");
        out.extend([0x01, 0x01, b't']);
    };
    let mut bytes =
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    let mut big = vec![0x82];
    common(&mut big);
    literal("x-big", &"x".repeat(10_000), &mut big);
    headers(1, &big, &mut bytes);
    let mut no_method = Vec::new();
    common(&mut no_method);
    headers(3, &no_method, &mut bytes);
    let mut fine = vec![0x82];
    common(&mut fine);
    headers(5, &fine, &mut bytes);
    // GOAWAY (last stream 0, NO_ERROR): the server finishes stream 5 and closes.
    bytes.extend([0, 0, 8, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

/// Sends one keep-alive request on `stream` and reads its response's body.
fn exchange(stream: &mut std::net::TcpStream, target: &str) -> String {
    use std::io::{Read, Write};
    write!(stream, "GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

/// Whether the server closed `stream` (waiting at most the suite's patience).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(crate::support::PATIENCE))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before closing is fine; the close is what counts.
            Ok(_) => continue,
            Err(err) => {
                return matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                );
            }
        }
    }
}

#[test]
fn slow_idle_and_surplus_connections_are_bounded() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let (slow, idle, capped) = (free_port(), free_port(), free_port());
    let route = |server: &str| {
        format!(
            "[[apps.http.servers.{server}.routes]]\n\
             handle = [{{ handler = \"static_response\", body = \"hi from {server}\" }}]\n"
        )
    };
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.slow]\nlisten = [\"127.0.0.1:{slow}\"]\nread_header_timeout = 1\n{}\
             [apps.http.servers.idle]\nlisten = [\"127.0.0.1:{idle}\"]\nread_header_timeout = 30\nidle_timeout = 1\n{}\
             [apps.http.servers.capped]\nlisten = [\"127.0.0.1:{capped}\"]\nmax_connections = 2\nmax_connections_per_client = 2\n{}",
            route("slow"),
            route("idle"),
            route("capped")
        ),
    );
    let server = Server::start(&config);
    let (slow, idle, capped) = (
        format!("127.0.0.1:{slow}"),
        format!("127.0.0.1:{idle}"),
        format!("127.0.0.1:{capped}"),
    );
    for addr in [&slow, &idle, &capped] {
        wait_listening(addr);
    }

    // Half a request line, then nothing: closed after read_header_timeout.
    let mut loris = TcpStream::connect(&slow).unwrap();
    loris.write_all(b"GET /hal").unwrap();
    assert!(closed_by_server(&mut loris), "a slowloris stays connected");

    // A kept-alive connection with nothing in flight: closed after idle_timeout.
    let mut quiet = TcpStream::connect(&idle).unwrap();
    assert_eq!(exchange(&mut quiet, "/"), "hi from idle");
    assert!(
        closed_by_server(&mut quiet),
        "an idle connection stays open"
    );

    // One client holds at most max_connections_per_client: its next connection is closed
    // unserved.
    let mut first = TcpStream::connect(&capped).unwrap();
    let mut second = TcpStream::connect(&capped).unwrap();
    assert_eq!(exchange(&mut first, "/"), "hi from capped");
    assert_eq!(exchange(&mut second, "/"), "hi from capped");
    let mut third = TcpStream::connect(&capped).unwrap();
    assert!(
        closed_by_server(&mut third),
        "a third connection from one client"
    );
    // At max_connections, a new client gets in: the connection idle longest makes room.
    let mut other = crate::support::http::connect_from("127.0.0.2", &capped);
    assert_eq!(exchange(&mut other, "/"), "hi from capped");
    let still_open = |held: &mut TcpStream| {
        held.set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        match std::io::Read::read(held, &mut byte) {
            Ok(0) => false,
            Ok(_) => true,
            // Nothing to read within the wait: still open.
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    let mut open: Vec<TcpStream> = [first, second]
        .into_iter()
        .filter_map(|mut held| still_open(&mut held).then_some(held))
        .collect();
    assert_eq!(
        open.len(),
        1,
        "one idle connection made room, the other stays"
    );
    assert_eq!(exchange(&mut open[0], "/again"), "hi from capped");
    let out = server.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.matches("max_connections reached").count() == 1,
        "one warning, not one per connection: {}",
        out.stderr
    );
}

/// A start that fails on a later server's address (in use) has served nothing: every
/// address is bound before any is served, so no server ever said it was listening; the
/// error names the server and the address; the earlier server's address is free again.
#[test]
fn a_start_that_fails_on_a_later_address_has_served_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let first = format!("127.0.0.1:{}", free_port());
    // Servers start in name order: `a` is bound first, `b` fails.
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.a]\nlisten = [\"{first}\"]\n\
             [[apps.http.servers.a.routes]]\nhandle = [{{ handler = \"static_response\" }}]\n\
             [apps.http.servers.b]\nlisten = [\"{taken}\"]\n\
             [[apps.http.servers.b.routes]]\nhandle = [{{ handler = \"static_response\" }}]\n"
        ),
    );
    let failed = Ran::from_output(
        Command::new(host())
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap(),
    );
    assert_eq!(failed.code, Some(1), "{failed:?}");
    // Whole: no server said it was listening.
    snapbox::assert_data_eq!(
        redact(&failed.stderr.replace(&taken, "[TAKEN]"), dir.path()),
        snapbox::str![[r#"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.static_response" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="http.handlers.static_response" krate="xbuild-http" version="0.1.0"
[TIME]  INFO xbuild_core::lifecycle: starting app app="http"
error: startup failed: module `http` failed in start: server `b` cannot listen on `[TAKEN]`: Address already in use (os error 98)
note: the apps of this config already started were stopped again

"#]]
    );
    std::net::TcpListener::bind(&first).expect("the first server's address is free again");
}

/// SIGHUP reloads the config file while the host serves: under a steady client loop, 20
/// reloads alternating two configs switch the answer without one failed request; a broken
/// file and a config whose new address is in use are refused, logged, and leave the
/// running config serving; SIGHUP never stops the host.
#[test]
fn sighup_reloads_the_config_under_load_without_a_failed_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config_with = |body: &str, extra_listen: &str| {
        format!(
            "[apps.http]\ngrace_period = 5\n[apps.http.servers.main]\nlisten = [\"{addr}\"{extra_listen}]\n\
             [[apps.http.servers.main.routes]]\nhandle = [{{ handler = \"static_response\", body = \"{body}\" }}]\n"
        )
    };
    let config = config_file(dir.path(), &config_with("one", ""));
    let mut server = Server::start(&config);
    wait_listening(&addr);
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, addr) = (stop.clone(), addr.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = get(&addr, "/");
                assert_eq!(answer.status, 200, "{answer:?}");
                let body = answer.text();
                assert!(body == "one" || body == "two", "{body:?}");
                if seen.last() != Some(&body) {
                    seen.push(body);
                }
            }
            seen
        })
    };
    let answers = |expected: &str| {
        let waited = std::time::Instant::now();
        while get(&addr, "/").text() != expected {
            assert!(
                waited.elapsed() < crate::support::PATIENCE,
                "never answered {expected}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let process = server.process.as_mut().unwrap();
    for round in 0..20 {
        let body = if round % 2 == 0 { "two" } else { "one" };
        write(&config, &config_with(body, ""));
        process.signal("HUP");
        answers(body);
    }
    // A broken file, and an address another process holds: refused, the old config serves.
    // Each refusal is awaited: two SIGHUPs sent before the host handles the first are one.
    // (With an escape sequence in it, which the log shows escaped: it reaches the log
    // through the TOML error's snippet of the file.)
    write(&config, "[apps.http.servers.main\x1b[2J\n");
    process.signal("HUP");
    process.wait_for_stderr("config reload failed", 1);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap();
    write(&config, &config_with("three", &format!(", \"{taken}\"")));
    process.signal("HUP");
    process.wait_for_stderr("config reload failed", 2);
    stop.store(true, Ordering::Relaxed);
    let seen = client
        .join()
        .expect("every request of the client loop was answered");
    assert!(seen.len() >= 10, "the answers switched: {seen:?}");
    assert_eq!(get(&addr, "/").text(), "one");
    let out = server.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("config reloaded").count(),
        20,
        "{}",
        out.stderr
    );
    // The two refusals, whole: what was wrong with each, and that the old config stayed.
    let failed: String = out
        .stderr
        .lines()
        .filter(|l| l.contains("config reload failed"))
        .map(|l| format!("{l}\n"))
        .collect();
    // One line each: the TOML error's snippet is there with its line breaks escaped (`\n`:
    // paths are not normalised here, so the backslashes show as they are).
    snapbox::Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .normalize_paths(false)
        .eq(
        redact(&failed, dir.path()).replace(&taken.to_string(), "[TAKEN]"),
        snapbox::str![[r#"
[TIME] ERROR xbuild_core::host::ops: config reload failed; the running config is unchanged config="[ROOT]/config.toml" error=config file `[ROOT]/config.toml` is not valid TOML: TOML parse error at line 1, column 25\n  |\n1 | [apps.http.servers.main\u{1b}[2J\n  |                         ^\nunclosed table, expected `]` took_ms=0
[TIME] ERROR xbuild_core::host::ops: config reload failed; the running config is unchanged config="[ROOT]/config.toml" error=startup failed: module `http` failed in start: server `main` cannot listen on `[TAKEN]`: Address already in use (os error 98) took_ms=0

"#]]
    );
}

/// `HOST reload --config FILE`, run from an unrelated directory, reaches the host started
/// with that file through its admin socket: a new config is switched in, the same one is
/// skipped unless `--force`, and configs that fail validation or start are refused with a
/// non-zero exit naming the failure while the running config keeps serving. The socket is
/// private to the user (its mode and its directory's) and the host listens on no TCP port
/// but its server's.
#[test]
fn reload_through_the_admin_socket_refuses_bad_configs_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config_with = |body: &str, extra: &str| {
        format!(
            "[apps.http.servers.main]\nlisten = [\"{addr}\"{extra}]\n\
             [[apps.http.servers.main.routes]]\nhandle = [{{ handler = \"static_response\", body = \"{body}\" }}]\n"
        )
    };
    let config = config_file(dir.path(), &config_with("one", ""));
    let mut server = Server::start(&config);
    wait_listening(&addr);
    let process = server.process.as_mut().unwrap();
    let log = process.wait_for_stderr("host running", 1);
    let socket = log
        .split("admin_socket=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the host logs its admin socket:\n{log}"));
    let socket = Path::new(socket);

    // Private: only this user can connect, and nothing else listens on TCP.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{socket:?}");
    let parent = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o077, 0, "{socket:?}");
    assert_eq!(meta.uid(), parent.uid());
    let pid = process.child.id();
    assert_eq!(tcp_ports_listening(pid), vec![port]);

    let reload = |file: &Path, extra: &[&str]| {
        Ran::from_output(
            Command::new(host())
                .arg("reload")
                .arg("--config")
                .arg(file)
                .args(extra)
                .current_dir(elsewhere.path())
                .output()
                .unwrap(),
        )
    };
    // Every reload's output, compared whole at the end.
    let mut outputs: Vec<(&str, Ran)> = Vec::new();
    write(&config, &config_with("two", ""));
    outputs.push(("a new config", reload(&config, &[]).success()));
    assert_eq!(get(&addr, "/").text(), "two");
    outputs.push(("the same config", reload(&config, &[]).success()));
    outputs.push((
        "the same config, --force",
        reload(&config, &["--force"]).success(),
    ));

    // Fails validation: an unknown handler option.
    write(
        &config,
        &config_with("three", "").replace("body =", "bogus_option = 1, body ="),
    );
    outputs.push(("an unknown handler option", reload(&config, &[]).code(1)));
    assert_eq!(get(&addr, "/").text(), "two");

    // Fails at start: an address another process holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    write(&config, &config_with("three", &format!(", \"{taken}\"")));
    outputs.push((
        "an address another process holds",
        reload(&config, &[]).code(1),
    ));
    assert_eq!(get(&addr, "/").text(), "two");
    assert_eq!(tcp_ports_listening(pid), vec![port]);

    // A file that does not parse never reaches the host.
    write(&config, "[apps.http\n");
    outputs.push(("a file that is not TOML", reload(&config, &[]).code(1)));

    let out = server.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("config reload failed").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(!socket.exists(), "a stopped host removes its socket");
    // No host: the command says so.
    write(&config, &config_with("two", ""));
    outputs.push(("no running host", reload(&config, &[]).code(1)));

    let transcript: String = outputs
        .iter()
        .map(|(what, ran)| format!("$ reload: {what}\n{}{}\n", ran.stdout, ran.stderr))
        .collect();
    let transcript = redact(
        &transcript
            .replace(socket.to_str().unwrap(), "[SOCKET]")
            .replace(&taken, "[TAKEN]")
            .replace(&addr.to_string(), "[ADDR]"),
        dir.path(),
    );
    snapbox::assert_data_eq!(
        transcript,
        snapbox::str![[r#"
$ reload: a new config
config `[ROOT]/config.toml` reloaded

$ reload: the same config
config `[ROOT]/config.toml` is already running; not reloaded (`--force` reloads it anyway)

$ reload: the same config, --force
config `[ROOT]/config.toml` reloaded

$ reload: an unknown handler option
error: the running host refused config `[ROOT]/config.toml` (it keeps running the config it had): cannot load app `http`: module `http` failed in provision: server `main`, routes[0].handle[0]: invalid config for `http.handlers.static_response`: unknown field `bogus_option`
help: check its spelling against the documentation of `http.handlers.static_response`

$ reload: an address another process holds
error: the running host refused config `[ROOT]/config.toml` (it keeps running the config it had): startup failed: module `http` failed in start: server `main` cannot listen on `[TAKEN]`: Address already in use (os error 98)
note: the apps of this config already started were stopped again

$ reload: a file that is not TOML
error: config file `[ROOT]/config.toml` is not valid TOML: TOML parse error at line 1, column 11
  |
1 | [apps.http
  |           ^
unclosed table, expected `]`
help: fix the file at the line and column named

$ reload: no running host
error: no running host answers on admin socket `[SOCKET]`: No such file or directory (os error 2)
help: start the host with `run --config` and this config file, or pass the socket a running host logged at start with `--address`


"#]]
    );
}

/// The TCP ports process `pid` listens on: its socket descriptors matched against the
/// kernel's table of listening sockets.
fn tcp_ports_listening(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?.to_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is field 9.
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort();
    ports.dedup();
    ports
}

/// `XBUILD_LOG` filters by target (`info,http.access=off` keeps the host's lines and drops
/// the access log); a value that is not a filter is named in a warning and the default used.
#[test]
fn xbuild_log_filters_by_target_and_a_bad_filter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = config_file(
        dir.path(),
        &format!(
            "[apps.http.servers.main]\nlisten = [\"{addr}\"]\n\
             [[apps.http.servers.main.routes]]\nhandle = [{{ handler = \"static_response\", body = \"hi\" }}]\n"
        ),
    );
    for (filter, access_lines) in [("info,http.access=off", false), ("info,http=loud", true)] {
        let server = Server::start_with_env(&config, &[("XBUILD_LOG", filter)]);
        wait_listening(&addr);
        assert_eq!(get(&addr, "/").text(), "hi");
        let out = server.stop();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.stderr.contains("host running"),
            "{filter}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.contains("http.access"),
            access_lines,
            "{filter}: {}",
            out.stderr
        );
        let warned = out.stderr.contains(&format!(
            "warning: XBUILD_LOG `{filter}` is not a log filter"
        ));
        assert_eq!(warned, access_lines, "{filter}: {}", out.stderr);
    }
}

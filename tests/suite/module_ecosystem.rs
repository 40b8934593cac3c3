//! Module crates beyond the standard set, as their authors publish them and users compose
//! them: a handler crate from `xbuild new` to a host someone else builds, the auth, encode,
//! rate-limit and TLS crates of this repository published and built into one host, and one
//! host taking its modules from two registries.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::http::{free_port, get, request, wait_listening};
use crate::support::registry::TestRoot;
use crate::support::xbuild::{authors_target, installed_xbuild, xbuild};
use crate::support::{Ran, Spawned, redact, run, sha256, write};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    command
}

/// The installed xbuild, run in `dir` with the suite's cache.
fn installed_in(root: &TestRoot, dir: &Path, args: &[&str]) -> Ran {
    crate::support::xbuild::xbuild_in(installed_xbuild(), root, dir, args)
}

/// A host serving `config`; killed if the test fails before it is stopped.
struct Server(Option<Spawned>);

impl Server {
    fn start(host: &Path, config: &Path, addr: &str) -> Self {
        let mut command = Command::new(host);
        command.arg("run").arg("--config").arg(config);
        let server = Self(Some(Spawned::new(command)));
        wait_listening(addr);
        server
    }

    fn stop(mut self) -> Ran {
        let process = self.0.take().unwrap();
        process.signal("TERM");
        process.finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(process) = &mut self.0 {
            let _ = process.child.kill();
        }
    }
}

#[test]
fn a_handler_crate_goes_from_xbuild_new_to_a_host_someone_else_builds() {
    let root = TestRoot::new();
    let author = root.path().join("author");
    let created = installed_in(
        &root,
        &author,
        &["new", "acme-limit", "--template", "handler"],
    )
    .success();
    snapbox::assert_data_eq!(
        redact(&created.stderr, root.path()),
        snapbox::str![[r#"
     Created module crate `acme-limit` at ./acme-limit

"#]]
    );
    let krate = author.join("acme-limit");

    // Its tests pass on the first try with plain cargo, xbuild-http patched in like the core.
    let tested = Ran::from_output(
        cargo()
            .args(["test", "--quiet"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", authors_target())
            .output()
            .unwrap(),
    )
    .success();
    assert!(tested.stdout.contains("4 passed"), "{}", tested.stdout);

    // Lint accepts a handler ID in the namespace xbuild-http opens.
    let linted = installed_in(&root, &krate, &["lint"]).success();
    snapbox::assert_data_eq!(
        redact(&linted.stdout, root.path()),
        snapbox::str![[r#"
          ok core       xbuild-core `^0.1` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `acme_limit` or a namespace a dependency opens: `http.handlers.acme_limit` (opened by xbuild-http)
          ok registers  1 module: http.handlers.acme_limit
      Passed `acme-limit` is ready to list

"#]]
    );

    // Packaged as `cargo publish` would, and published to the registry.
    Ran::from_output(
        cargo()
            .args(["package", "--no-verify", "--quiet"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", authors_target())
            .output()
            .unwrap(),
    )
    .success();
    let packaged = authors_target().join("package/acme-limit-0.1.0.crate");
    let mut listing = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&packaged).unwrap(),
    ));
    let files: Vec<String> = listing
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        files.iter().all(|f| !f.contains(".xbuild/")),
        "the patched copies stay out of the package: {files:?}"
    );
    root.publish_crate_file("xtest", &packaged);

    // Someone else, elsewhere, builds a host with it and serves through the handler.
    let user = root.path().join("user");
    installed_in(
        &root,
        &user,
        &[
            "--registry",
            "xtest",
            "--with",
            "acme-limit@0.1",
            "--output",
            "host",
            "-q",
        ],
    )
    .success();
    let host = user.join("host");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = user.join("site.toml");
    write(
        &config,
        &format!(
            r#"
            [apps.http.servers.main]
            listen = ["{addr}"]
            [[apps.http.servers.main.routes]]
            handle = [
              {{ handler = "acme_limit", deny = ["/admin"] }},
              {{ handler = "static_response", body = "hello from the host" }},
            ]
            "#
        ),
    );
    let server = Server::start(&host, &config, &addr);
    let passed = get(&addr, "/");
    assert_eq!(passed.status, 200, "{passed:?}");
    assert_eq!(passed.header("x-acme-limit"), Some("passed"), "{passed:?}");
    assert_eq!(passed.text(), "hello from the host");
    let refused = get(&addr, "/admin/users");
    assert_eq!(refused.status, 403, "{refused:?}");
    let metrics = run(host.to_str().unwrap(), &["list-modules", "--json"]).success();
    assert!(
        metrics.stdout.contains("\"acme-limit\""),
        "{}",
        metrics.stdout
    );
    assert_eq!(server.stop().code, Some(0));
}

/// Packages crates of this workspace (with xbuild-core and xbuild-http, which cargo needs
/// to resolve them before they are published); returns the `.crate` files of `names`.
fn package_workspace_crates(names: &[&str], target: &Path) -> Vec<PathBuf> {
    let mut command = cargo();
    command
        .args(["package", "--no-verify", "--allow-dirty", "--quiet"])
        .args(["-p", "xbuild-core", "-p", "xbuild-http"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(repo_root());
    for name in names {
        command.args(["-p", name]);
    }
    Ran::from_output(command.output().unwrap()).success();
    names
        .iter()
        .map(|name| target.join(format!("package/{name}-0.1.0.crate")))
        .collect()
}

#[test]
fn the_auth_encode_rate_limit_and_tls_crates_work_in_one_host_beside_the_standard_modules() {
    let root = TestRoot::new();
    let crates = [
        "xbuild-http-auth",
        "xbuild-http-encode",
        "xbuild-http-ratelimit",
        "xbuild-tls",
    ];
    for file in package_workspace_crates(&crates, &root.path().join("package-target")) {
        root.publish_crate_file("xtest", &file);
    }
    xbuild(
        &root,
        &[
            "--registry",
            "xtest",
            "--with",
            "xbuild-http-auth@0.1",
            "--with",
            "xbuild-http-encode@0.1",
            "--with",
            "xbuild-http-ratelimit@0.1",
            "--with",
            "xbuild-tls@0.1",
            // Dev: what is shown here does not need optimised code, and brotli, zstd,
            // argon2 and ring compile several times faster without it.
            "--profile",
            "dev",
            "--output",
            "host",
            "-q",
        ],
    )
    .success();
    let host = root.path().join("host");
    let listed = run(host.to_str().unwrap(), &["list-modules"]).success();
    snapbox::assert_data_eq!(
        listed.stdout,
        snapbox::str![[r#"
http
http.handlers.file_server
http.handlers.headers
http.handlers.metrics
http.handlers.reverse_proxy
http.handlers.static_response

  Standard modules: 6

http.handlers.basic_auth
http.handlers.encode
http.handlers.rate_limit
http.tls.rustls

  Non-standard modules: 4

"#]]
    );

    // The curated index lists exactly what each crate registers.
    let registered: Vec<serde_json::Value> = serde_json::from_str(
        &run(host.to_str().unwrap(), &["list-modules", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    for krate in crates {
        let mut ids: Vec<&str> = registered
            .iter()
            .filter(|m| m["crate"] == krate)
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        let entry = xbuild_cli::known::known_modules()
            .into_iter()
            .find(|m| m.name == krate)
            .unwrap_or_else(|| panic!("{krate} in registry.toml"));
        let mut indexed = entry.ids.clone();
        indexed.sort_unstable();
        assert_eq!(ids, indexed, "{krate}");
        assert!(!entry.standard, "{krate}");
    }

    // Each crate passes what `xbuild lint` checks, against this host (which has them all,
    // and passed its selftest when xbuild built it) instead of one host per crate.
    let mut reports = String::new();
    for dir in ["http-auth", "http-encode", "http-ratelimit", "tls"] {
        let dir = repo_root().join("modules").join(dir);
        let manifest = xbuild_cli::lint::read_manifest(&dir).unwrap();
        let open = xbuild_cli::lint::open_namespaces(&dir, &manifest.name).unwrap();
        let mut findings = xbuild_cli::lint::static_checks(&dir, &manifest);
        findings.extend(xbuild_cli::lint::host_checks(&host, &manifest, &open));
        reports += &xbuild_cli::lint::render(&manifest.name, &findings);
        reports.push('\n');
    }
    snapbox::assert_data_eq!(
        redact(&reports, root.path()),
        snapbox::str![[r#"
          ok core       xbuild-core `^0.1.0` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `xbuild_http_auth` or a namespace a dependency opens: `http.handlers.basic_auth` (opened by xbuild-http)
          ok registers  1 module: http.handlers.basic_auth
      Passed `xbuild-http-auth` is ready to list

          ok core       xbuild-core `^0.1.0` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `xbuild_http_encode` or a namespace a dependency opens: `http.handlers.encode` (opened by xbuild-http)
          ok registers  1 module: http.handlers.encode
      Passed `xbuild-http-encode` is ready to list

          ok core       xbuild-core `^0.1.0` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `xbuild_http_ratelimit` or a namespace a dependency opens: `http.handlers.rate_limit` (opened by xbuild-http)
          ok registers  1 module: http.handlers.rate_limit
      Passed `xbuild-http-ratelimit` is ready to list

          ok core       xbuild-core `^0.1.0` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `xbuild_tls` or a namespace a dependency opens: `http.tls.rustls` (opened by xbuild-http)
          ok registers  1 module: http.tls.rustls
      Passed `xbuild-tls` is ready to list


"#]]
    );

    // The auth crate's host command hashes the password its config takes.
    let hashed = run(
        host.to_str().unwrap(),
        &["hash-password", "--plaintext", "open sesame"],
    )
    .success();
    let hash = hashed.stdout.trim();
    assert!(hash.starts_with("$argon2"), "{hash}");

    let site = root.path().join("site");
    let page: String = (0..400)
        .map(|i| format!("line {i} of a page worth compressing\n"))
        .collect();
    write(&site.join("files/page.txt"), &page);
    let addr = format!("127.0.0.1:{}", free_port());
    let https = format!("127.0.0.1:{}", free_port());
    let redirect = format!("127.0.0.1:{}", free_port());
    let certs = TestCertificates::new(&root.path().join("certs"));
    let config = root.path().join("site.toml");
    write(
        &config,
        &format!(
            r#"
            [apps.http.servers.main]
            listen = ["{addr}"]
            [[apps.http.servers.main.routes]]
            match = {{ path = ["/private/*"] }}
            handle = [
              {{ handler = "basic_auth", accounts = [{{ username = "alice", password = '{hash}' }}] }},
              {{ handler = "static_response", body = "the secret" }},
            ]
            [[apps.http.servers.main.routes]]
            match = {{ path = ["/files/*"] }}
            handle = [
              {{ handler = "encode" }},
              {{ handler = "file_server", root = "{site}" }},
            ]
            [[apps.http.servers.main.routes]]
            match = {{ path = ["/limited"] }}
            handle = [
              {{ handler = "rate_limit", requests = 2, window = 60 }},
              {{ handler = "static_response", body = "within the limit" }},
            ]

            [apps.http.servers.secure]
            listen = ["{https}"]
            redirect_from_http = ["{redirect}"]
            tls = {{ module = "rustls", certificates = [
              {{ certificate = "{certs}/a.example.pem", key = "{certs}/a.example.key" }},
              {{ certificate = "{certs}/b.example.pem", key = "{certs}/b.example.key" }},
            ] }}
            [[apps.http.servers.secure.routes]]
            handle = [{{ handler = "static_response", body = "over TLS" }}]
            "#,
            site = site.display(),
            certs = certs.dir.display(),
        ),
    );
    Ran::from_output(
        Command::new(&host)
            .args(["validate", "--config"])
            .arg(&config)
            .output()
            .unwrap(),
    )
    .success();
    let server = Server::start(&host, &config, &addr);

    // basic_auth: 401 with a challenge, then 200 with the right password only.
    let anonymous = get(&addr, "/private/x");
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic realm=")),
        "{anonymous:?}"
    );
    let basic = |credentials: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    };
    let wrong = request(
        &addr,
        "GET",
        "/private/x",
        &[("Authorization", &basic("alice:guess"))],
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let right = request(
        &addr,
        "GET",
        "/private/x",
        &[("Authorization", &basic("alice:open sesame"))],
    );
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(right.text(), "the secret");

    // encode: a gzip body that decompresses to the file, and Vary.
    let compressed = request(
        &addr,
        "GET",
        "/files/page.txt",
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(compressed.status, 200, "{compressed:?}");
    assert_eq!(
        compressed.header("content-encoding"),
        Some("gzip"),
        "{compressed:?}"
    );
    assert!(
        compressed
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
        "{compressed:?}"
    );
    assert!(
        compressed.body.len() < page.len() / 4,
        "{} bytes",
        compressed.body.len()
    );
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(&compressed.body[..])
        .read_to_string(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, page);
    let plain = get(&addr, "/files/page.txt");
    assert_eq!(plain.header("content-encoding"), None, "{plain:?}");
    assert_eq!(plain.text(), page);

    // rate_limit: two requests pass, the third gets 429 with Retry-After.
    for _ in 0..2 {
        assert_eq!(get(&addr, "/limited").status, 200);
    }
    let limited = get(&addr, "/limited");
    assert_eq!(limited.status, 429, "{limited:?}");
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {limited:?}"));
    assert!((1..=60).contains(&retry), "{retry}");
    // Another client (127.0.0.2, loopback too) has a budget of its own.
    let other = crate::support::http::request_from("127.0.0.2", &addr, "GET", "/limited", &[]);
    assert_eq!(other.status, 200, "{other:?}");

    // TLS: curl, trusting only the test CA, gets 200 from each name over HTTP/1.1 and
    // HTTP/2. Each certificate covers one name, so each verified handshake shows the server
    // chose the certificate by the name the client sent (SNI).
    wait_listening(&https);
    let port = https.rsplit(':').next().unwrap();
    for name in ["a.example", "b.example"] {
        for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
            let fetched = curl(&[
                "--cacert",
                certs.ca.to_str().unwrap(),
                "--resolve",
                &format!("{name}:{port}:127.0.0.1"),
                flag,
                "--write-out",
                " %{http_code} %{http_version}",
                &format!("https://{name}:{port}/"),
            ])
            .success();
            assert_eq!(
                fetched.stdout,
                format!("over TLS 200 {version}"),
                "{name} {flag}"
            );
        }
    }
    // A client that offers TLS 1.1 at most is refused in the handshake (curl's exit 35:
    // the TLS connection failed). SECLEVEL=0 lets OpenSSL offer TLS 1.1 at all, so the
    // refusal is the server's.
    let old = curl(&[
        "--cacert",
        certs.ca.to_str().unwrap(),
        "--resolve",
        &format!("a.example:{port}:127.0.0.1"),
        "--tlsv1.1",
        "--tls-max",
        "1.1",
        "--ciphers",
        "DEFAULT@SECLEVEL=0",
        &format!("https://a.example:{port}/"),
    ]);
    assert_eq!(old.code, Some(35), "{old:?}");
    // The server's alert: handshake_failure, as rustls finds no signature scheme of TLS 1.1
    // for the certificate before it looks at the version (the raw ClientHello of
    // modules/tls/tests gets protocol_version).
    assert!(old.stderr.contains("alert handshake failure"), "{old:?}");
    // Plain HTTP on the redirect address: 308 to the same target over HTTPS.
    let redirected = get(&redirect, "/a?b=c");
    assert_eq!(redirected.status, 308, "{redirected:?}");
    assert_eq!(
        redirected.header("location"),
        Some(format!("https://127.0.0.1:{port}/a?b=c").as_str()),
        "{redirected:?}"
    );

    assert_eq!(server.stop().code, Some(0));
}

/// curl, quiet but for errors, with a time limit.
fn curl(args: &[&str]) -> Ran {
    Ran::from_output(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "20"])
            .args(args)
            .output()
            .expect("curl is installed"),
    )
}

/// A CA, and certificates it signed for `a.example` and `b.example`, as PEM files in `dir`
/// (`ca.pem`, `NAME.pem`, `NAME.key`).
struct TestCertificates {
    dir: PathBuf,
    ca: PathBuf,
}

impl TestCertificates {
    fn new(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        std::fs::create_dir_all(dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A subject of its own: with rcgen's default for both, OpenSSL (curl) would take
        // each server certificate for a self-signed one.
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "xbuild suite CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        write(&dir.join("ca.pem"), &ca.pem());
        for name in ["a.example", "b.example"] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca).unwrap();
            write(&dir.join(format!("{name}.pem")), &cert.pem());
            write(&dir.join(format!("{name}.key")), &key.serialize_pem());
        }
        Self {
            dir: dir.to_owned(),
            ca: dir.join("ca.pem"),
        }
    }
}

#[test]
fn one_host_takes_modules_from_two_registries_and_the_lock_names_both() {
    let root = TestRoot::new();
    root.add_registry("xcorp");
    root.package("public-mod", "1.0.0")
        .xbuild_module("public.module")
        .publish();
    root.package("corp-mod", "1.0.0")
        .xbuild_module("corp.module")
        .in_registry("xcorp")
        .publish();
    let project = root.path().join("project");
    write(
        &project.join("xbuild.toml"),
        r#"
[[dist]]
name = "mixed"
standard = false
profile = "dev"
registry = "xtest"

[[dist.modules]]
crate = "public-mod"
version = "1"

[[dist.modules]]
crate = "corp-mod"
version = "1"
registry = "xcorp"
"#,
    );
    let spec = project.join("xbuild.toml");
    let spec = spec.to_str().unwrap();
    xbuild(&root, &["build", "-f", spec, "-q"]).success();
    let host = project.join("dist/mixed");
    let listed = run(host.to_str().unwrap(), &["list-modules"]).success();
    assert!(
        listed.stdout.contains("public.module") && listed.stdout.contains("corp.module"),
        "{}",
        listed.stdout
    );

    // The lock names each crate's source, and the spec says which registry each came from.
    let lock = std::fs::read_to_string(project.join("xbuild.lock")).unwrap();
    // The embedded Cargo.lock, whichever way TOML quoted it.
    let unquoted = lock.replace("\\\"", "\"");
    let source_of = |name: &str| {
        let at = unquoted
            .find(&format!("name = \"{name}\""))
            .unwrap_or_else(|| panic!("{name} in the lock:\n{lock}"));
        unquoted[at..]
            .split("[[package]]")
            .next()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("source = "))
            .unwrap_or_else(|| panic!("a source for {name}:\n{lock}"))
            .to_owned()
    };
    assert!(
        source_of("public-mod").contains(&root.index_url_of("xtest")),
        "{lock}"
    );
    assert!(
        source_of("corp-mod").contains(&root.index_url_of("xcorp")),
        "{lock}"
    );
    assert!(lock.contains("registry = \"xcorp\""), "{lock}");

    // --locked builds the same bytes, with the lock left as it was.
    let before = sha256(&host);
    std::fs::remove_file(&host).unwrap();
    xbuild(&root, &["build", "-f", spec, "--locked", "-q"]).success();
    assert_eq!(sha256(&host), before);
    assert_eq!(
        std::fs::read_to_string(project.join("xbuild.lock")).unwrap(),
        lock
    );

    // The same mix from the command line: one registry for all, one crate from another.
    xbuild(
        &root,
        &[
            "--no-standard",
            "--profile",
            "dev",
            "--registry",
            "xtest",
            "--with",
            "public-mod@1",
            "--with",
            "xcorp:corp-mod@1",
            "--output",
            "flags-host",
            "-q",
        ],
    )
    .success();
    let listed = run(
        root.path().join("flags-host").to_str().unwrap(),
        &["list-modules"],
    )
    .success();
    snapbox::assert_data_eq!(
        listed.stdout,
        snapbox::str![[r#"

  Standard modules: 0

corp.module
public.module

  Non-standard modules: 2

"#]]
    );
    let refused = xbuild(&root, &["--with", "x corp:corp-mod@1"]).code(2);
    snapbox::assert_data_eq!(
        redact(&refused.stderr, root.path()),
        snapbox::str![[r#"
error: --with `x corp:corp-mod@1`: invalid registry name `x corp`
help: use ASCII letters, digits and `-_`

"#]]
    );
}

//! `http.handlers.basic_auth` through the handler test kit: loaded from TOML as a host loads
//! it, sent requests as the server sends them.

use std::io::{Read, Write};
use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use base64ct::Encoding;
use xbuild_http::Request;
use xbuild_http::http::{HeaderValue, StatusCode, header};
use xbuild_http::testing::{self, TestHandler, get};
// Links the crate, and with it its registrations, whatever the tests name of it.
use xbuild_http_auth as _;

/// A hash with argon2's cheapest parameters, so the tests run fast in debug builds; the
/// handler verifies with whatever parameters a hash names.
fn cheap_hash(password: &str) -> String {
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(64, 1, 1, None).unwrap(),
    );
    argon2
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

fn alice_and_bob() -> &'static str {
    static CONFIG: OnceLock<String> = OnceLock::new();
    CONFIG.get_or_init(|| {
        format!(
            "realm = \"staff only\"\naccounts = [\n  {{ username = \"alice\", password = \"{}\" }},\n  {{ username = \"bob\", password = \"{}\" }},\n]",
            cheap_hash("wonderland"),
            cheap_hash("builder")
        )
    })
}

fn load() -> TestHandler {
    testing::load_toml("basic_auth", alice_and_bob()).unwrap()
}

fn with_credentials(user: &str, password: &str) -> Request {
    let mut request = get("/private");
    let token = base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes());
    request.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    request
}

#[test]
fn no_credentials_get_a_challenge() {
    let auth = load();
    let response = auth.send(get("/private")).unwrap();
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Basic realm=\"staff only\", charset=\"UTF-8\"")
    );
    assert_eq!(
        response.text(),
        "unauthorized: this resource needs a valid username and password\n"
    );
    assert!(auth.passed_on().is_empty());
}

#[test]
fn wrong_unknown_and_malformed_credentials_are_refused() {
    let auth = load();
    let mut malformed = get("/private");
    malformed.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic not-base64!"),
    );
    let mut bearer = get("/private");
    bearer.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    for request in [
        with_credentials("alice", "builder"), // bob's password
        with_credentials("alice", ""),
        with_credentials("Alice", "wonderland"), // usernames are case-sensitive
        with_credentials("carol", "wonderland"), // unknown: verified against the dummy hash
        malformed,
        bearer,
    ] {
        let response = auth.send(request).unwrap();
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic realm=")
        );
    }
    assert!(auth.passed_on().is_empty());
    let metrics = xbuild_core::metrics::render();
    assert!(
        metrics.contains("# TYPE http_basic_auth_failures counter"),
        "{metrics}"
    );
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("http_basic_auth_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 6, "{refused}");
}

#[test]
fn right_credentials_pass_on_without_the_authorization_header() {
    let auth = load();
    let mut request = with_credentials("bob", "builder");
    request
        .headers_mut()
        .insert("x-kept", HeaderValue::from_static("yes"));
    let response = auth.send(request).unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.text(), "next");
    // Twice: the second is answered from the cache of verified credentials, the same way.
    let response = auth.send(with_credentials("alice", "wonderland")).unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let response = auth.send(with_credentials("alice", "wonderland")).unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let passed = auth.passed_on();
    assert_eq!(passed.len(), 3);
    for request in &passed {
        assert!(request.headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(request.uri, "/private");
    }
    assert_eq!(passed[0].headers["x-kept"], "yes");
}

#[test]
fn a_plain_text_password_is_refused_at_load() {
    let err = testing::load_toml(
        "basic_auth",
        "accounts = [ { username = \"alice\", password = \"hunter2\" } ]",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("accounts[0] (username `alice`): password is not a PHC hash string: it looks like a plain-text password"),
        "{err}"
    );
    assert!(err.contains("`HOST hash-password`"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password is never repeated: {err}"
    );
}

#[test]
fn configs_out_of_range_are_refused_with_what_to_give() {
    let hash = cheap_hash("x");
    let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
    let pbkdf2 = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA";
    let huge =
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA";
    let cases = [
        ("", "missing field `accounts`".to_owned()),
        ("accounts = []", "accounts is empty".to_owned()),
        (
            &format!("accounts = [ {{ username = \"a\", password = \"{hash}\" }}, {{ username = \"a\", password = \"{hash}\" }} ]"),
            "accounts[1]: duplicate username `a`: each username may appear once".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"a:b\", password = \"{hash}\" }} ]"),
            "accounts[0]: invalid username `a:b`: a Basic username cannot contain `:`".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"\", password = \"{hash}\" }} ]"),
            "accounts[0]: username is empty".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"a\", password = \"{bcrypt}\" }} ]"),
            "accounts[0] (username `a`): password is not a valid PHC hash string".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"a\", password = \"{pbkdf2}\" }} ]"),
            "accounts[0] (username `a`): password is a `pbkdf2-sha256` hash: basic_auth verifies argon2 hashes".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"a\", password = \"{huge}\" }} ]"),
            "password hash asks for `m=4194304` KiB of memory per verification: give a hash with m at most 1048576".to_owned(),
        ),
        (
            &format!("realm = \"say \\\"hi\\\"\"\naccounts = [ {{ username = \"a\", password = \"{hash}\" }} ]"),
            "invalid realm `say \\\"hi\\\"`: give 1 to 256 printable ASCII characters".to_owned(),
        ),
        (
            &format!("accounts = [ {{ username = \"a\", password = \"{hash}\", role = \"x\" }} ]"),
            "unknown field `role`".to_owned(),
        ),
    ];
    for (config, expected) in cases {
        let err = testing::load_toml("basic_auth", config)
            .err()
            .unwrap_or_else(|| panic!("`{config}` loaded"))
            .to_string();
        assert!(
            err.contains(&expected),
            "`{config}`:\n{err}\nwanted: {expected}"
        );
    }
}

#[test]
fn hash_password_makes_hashes_the_handler_accepts() {
    // What `HOST hash-password` prints (argon2's default parameters).
    let hash = xbuild_http_auth::hash_password(b"open sesame").unwrap();
    let config = format!("accounts = [ {{ username = \"ali\", password = \"{hash}\" }} ]");
    let auth = testing::load_toml("basic_auth", &config).unwrap();
    assert_eq!(
        auth.send(with_credentials("ali", "open sesame"))
            .unwrap()
            .status,
        StatusCode::OK
    );
    assert_eq!(
        auth.send(with_credentials("ali", "open sesam"))
            .unwrap()
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The command is registered with the host CLI; bad usage exits 2.
    let registry = xbuild_core::Registry::linked().unwrap();
    let command = registry.command("hash-password").expect("registered");
    assert_eq!(
        command.about(),
        "Hash a password for basic_auth's config (argon2id)"
    );
    assert_eq!(command.run(vec!["--no-such-flag".into()]), 2);
}

#[test]
fn a_real_server_challenges_then_serves() {
    let config = format!(
        "[servers.main]\n[[servers.main.routes]]\nhandle = [\n  {{ handler = \"basic_auth\", accounts = [ {{ username = \"alice\", password = \"{}\" }} ] }},\n  {{ handler = \"static_response\", body = \"secret stuff\" }},\n]",
        cheap_hash("wonderland")
    );
    let server = testing::TestServer::start_toml(&config).unwrap();
    let exchange = |authorization: &str| {
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: test\r\n{authorization}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let refused = exchange("");
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(
        refused.contains("www-authenticate: Basic realm=\"restricted\", charset=\"UTF-8\"\r\n"),
        "{refused}"
    );
    let token = base64ct::Base64::encode_string(b"alice:wonderland");
    let served = exchange(&format!("Authorization: Basic {token}\r\n"));
    assert!(served.starts_with("HTTP/1.1 200 OK\r\n"), "{served}");
    assert!(served.ends_with("secret stuff"), "{served}");
}

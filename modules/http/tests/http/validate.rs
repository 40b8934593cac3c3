//! Config errors, caught at provision (what `host validate` runs) with messages that name
//! the bad input; and the shipped example configs, which must validate.

use std::path::{Path, PathBuf};

use crate::support::provision;

/// The provision error for a config with one server and one route handling `handler`.
fn error_for(server_extra: &str, handler: &str) -> String {
    let config = format!(
        r#"
        [apps.http.servers.main]
        listen = ["127.0.0.1:1"]
        {server_extra}
        [[apps.http.servers.main.routes]]
        handle = [{handler}]
        "#
    );
    match provision(&config) {
        Ok(_) => panic!("config was accepted:\n{config}"),
        Err(err) => err,
    }
}

#[test]
fn unknown_handler_lists_the_available_ones() {
    let err = error_for("", r#"{ handler = "static_respons" }"#);
    assert!(err.contains("http.handlers.static_respons"), "{err}");
    for available in [
        "http.handlers.static_response",
        "http.handlers.file_server",
        "http.handlers.reverse_proxy",
        "http.handlers.headers",
        "http.handlers.metrics",
    ] {
        assert!(err.contains(available), "{available} missing from:\n{err}");
    }
    // Where it was.
    assert!(err.contains("server `main`, routes[0].handle[0]"), "{err}");
}

#[test]
fn a_handler_without_its_name_says_so() {
    let err = error_for("", r#"{ body = "x" }"#);
    assert!(err.contains("`handler`"), "{err}");
    assert!(err.contains("static_response"), "{err}");
}

#[test]
fn unknown_fields_are_named() {
    let in_handler = error_for("", r#"{ handler = "static_response", bodyy = "x" }"#);
    assert!(in_handler.contains("unknown field `bodyy`"), "{in_handler}");
    assert!(
        in_handler.contains("http.handlers.static_response"),
        "{in_handler}"
    );

    let in_server = error_for("lisen = 1", r#"{ handler = "static_response" }"#);
    assert!(in_server.contains("unknown field `lisen`"), "{in_server}");

    let in_nested = error_for(
        "",
        r#"{ handler = "headers", response = { sett = { "A" = "b" } } }"#,
    );
    assert!(in_nested.contains("unknown field `sett`"), "{in_nested}");

    let in_match = provision(
        r#"
        [apps.http.servers.main]
        listen = ["127.0.0.1:1"]
        [[apps.http.servers.main.routes]]
        match = { paths = ["/"] }
        "#,
    )
    .err()
    .unwrap();
    assert!(in_match.contains("unknown field `paths`"), "{in_match}");
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            r#"listen = ["127.0.0.1"]"#,
            r#"{ handler = "static_response" }"#,
            "invalid listen address `127.0.0.1`",
        ),
        (
            "",
            r#"{ handler = "static_response", status = 1000 }"#,
            "invalid status `1000`",
        ),
        (
            r#"listen = ["127.0.0.1:1"]
            protocols = ["h3"]"#,
            r#"{ handler = "static_response" }"#,
            "unknown protocol `h3`",
        ),
        (
            "",
            r#"{ handler = "headers", request = { set = { "Bad Name" = "x" } } }"#,
            "invalid header name `Bad Name`",
        ),
        (
            "",
            r#"{ handler = "headers", request = { add = { "Host" = "b.example" } } }"#,
            "`Host` cannot be added",
        ),
        (
            "",
            r#"{ handler = "headers", request = { set = { "host" = "a b" } } }"#,
            "invalid Host `a b`",
        ),
        (
            "",
            r#"{ handler = "headers", request = { set = { "Host" = ["a", "b"] } } }"#,
            "`Host` takes one value",
        ),
        (
            "",
            r#"{ handler = "reverse_proxy", upstreams = ["https://a:1"] }"#,
            "invalid upstream `https://a:1`",
        ),
        (
            "",
            r#"{ handler = "file_server", root = "/no/such/folder" }"#,
            "file_server root `/no/such/folder`",
        ),
    ];
    for (server_extra, handler, expected) in cases {
        // A second `listen` key would be a TOML error, so the bad one replaces the default.
        let err = if server_extra.is_empty() {
            error_for("", handler)
        } else {
            match provision(&format!(
                r#"
                [apps.http.servers.main]
                {server_extra}
                [[apps.http.servers.main.routes]]
                handle = [{handler}]
                "#
            )) {
                Ok(_) => panic!("accepted {server_extra}"),
                Err(err) => err,
            }
        };
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}

#[test]
fn route_names_must_be_usable_as_labels() {
    let err = provision(
        r#"
        [apps.http.servers.main]
        listen = ["127.0.0.1:1"]
        [[apps.http.servers.main.routes]]
        name = 'say "hi"'
        handle = [{ handler = "static_response" }]
        "#,
    )
    .err()
    .unwrap();
    assert!(
        err.contains("server `main`, routes[0]: invalid route name"),
        "{err}"
    );
}

#[test]
fn two_servers_cannot_share_an_address() {
    let err = provision(
        r#"
        [apps.http.servers.a]
        listen = ["127.0.0.1:1"]
        [apps.http.servers.b]
        listen = ["127.0.0.1:1"]
        "#,
    )
    .err()
    .unwrap();
    assert!(err.contains("`127.0.0.1:1` is used twice"), "{err}");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What `host validate` does with a TOML config (provision every app, then clean up),
/// without the CLI's global logger setup, which would write into every test's output.
fn validate_cli(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut apps = crate::support::provision(&text)?;
    match apps.cleanup().into_iter().next() {
        Some(err) => Err(err.to_string()),
        None => Ok(()),
    }
}

#[test]
fn validate_rejects_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[apps.http.servers.main]\nlisten = [\"nope\"]\n").unwrap();
    let err = validate_cli(&path).unwrap_err();
    assert!(err.contains("invalid listen address `nope`"), "{err}");
}

#[test]
fn the_examples_validate() {
    let examples = repo_root().join("examples");
    validate_cli(&examples.join("hello.toml")).unwrap();
    validate_cli(&examples.join("reverse_proxy.toml")).unwrap();
    // Its root is relative to the repository root, where the README runs it from.
    let text = std::fs::read_to_string(examples.join("file_server.toml")).unwrap();
    let site = examples.join("site");
    let fixed = text.replace(
        r#"root = "examples/site""#,
        &format!("root = {:?}", site.to_str().unwrap()),
    );
    assert_ne!(
        fixed, text,
        "file_server.toml no longer names examples/site"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file_server.toml");
    std::fs::write(&path, fixed).unwrap();
    validate_cli(&path).unwrap();
}

#[test]
fn reverse_proxy_read_timeout_out_of_range_is_refused() {
    for bad in ["0", "-1", "86401"] {
        let err = error_for(
            "",
            &format!(
                r#"{{ handler = "reverse_proxy", upstreams = ["127.0.0.1:9"], read_timeout = {bad} }}"#
            ),
        );
        assert!(err.contains("invalid read_timeout"), "{bad}: {err}");
    }
}

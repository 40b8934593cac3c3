//! Module authors' loop, as a new author meets it: `xbuild new`, `cargo test` in the new
//! crate (before xbuild-core is on crates.io), `xbuild run` building a host with it, and
//! `xbuild lint`.

use std::process::Command;

use crate::support::registry::TestRoot;
use crate::support::xbuild::{XBUILD, authors_target, xbuild};
use crate::support::{Ran, redact};

/// `xbuild ARGS` run in `dir` (a module crate), with the suite's shared cache.
fn xbuild_in(root: &TestRoot, dir: &std::path::Path, args: &[&str]) -> Ran {
    crate::support::xbuild::xbuild_in(std::path::Path::new(XBUILD), root, dir, args)
}

#[test]
fn a_new_module_crate_tests_and_runs_in_a_host() {
    let root = TestRoot::new();
    let created = xbuild(&root, &["new", "acme-hello"]).success();
    snapbox::assert_data_eq!(
        redact(&created.stderr, root.path()),
        snapbox::str![[r#"
     Created module crate `acme-hello` at ./acme-hello

"#]]
    );
    let krate = root.path().join("acme-hello");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        ".github/workflows/ci.yml",
        ".cargo/config.toml",
    ] {
        assert!(krate.join(file).is_file(), "{file}");
    }
    let again = xbuild(&root, &["new", "acme-hello"]).code(2);
    snapbox::assert_data_eq!(
        redact(&again.stderr, root.path()),
        snapbox::str![[r#"
error: `./acme-hello` already exists
help: choose another name, or remove it first

"#]]
    );

    // Its own tests pass with plain cargo: the module loads from its config as in a host.
    let tested = Ran::from_output(
        Command::new(env!("CARGO"))
            .args(["test", "--quiet"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", authors_target())
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap(),
    )
    .success();
    assert!(tested.stdout.contains("3 passed"), "{}", tested.stdout);

    // `xbuild run` inside it builds a host with it and runs the host with the arguments.
    let ran = xbuild_in(&root, &krate.join("src"), &["run", "--", "list-modules"]).success();
    // The crate's module beside the standard ones.
    snapbox::assert_data_eq!(
        ran.stdout,
        snapbox::str![[r#"
http
http.handlers.file_server
http.handlers.headers
http.handlers.metrics
http.handlers.reverse_proxy
http.handlers.static_response

  Standard modules: 6

acme_hello.greeting

  Non-standard modules: 1

"#]]
    );
    // Progress on stderr, as `xbuild build` shows it; `-q` hides it.
    assert!(ran.stderr.contains("Finished"), "{}", ran.stderr);
    let greeted = xbuild_in(&root, &krate, &["run", "-q", "--", "acme-hello", "author"]).success();
    assert_eq!(greeted.stdout, "hello, author\n");
    assert_eq!(greeted.stderr, "");

    // `lint` passes on the new crate, and names what an index would refuse.
    let passed = xbuild_in(&root, &krate, &["lint"]).success();
    snapbox::assert_data_eq!(
        redact(&passed.stdout, root.path()),
        snapbox::str![[r#"
          ok core       xbuild-core `^0.1` accepts 0.1.0, the one this xbuild builds with
          ok unwinding  no profile sets panic = "abort"
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `acme_hello`
          ok registers  1 module: acme_hello.greeting
      Passed `acme-hello` is ready to list

"#]]
    );
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        manifest.replace("panic = \"unwind\"", "panic = \"abort\""),
    )
    .unwrap();
    let failed = xbuild_in(&root, &krate, &["lint"]).code(1);
    // The dev host's build progress (the manifest changed), then the report.
    snapbox::assert_data_eq!(
        redact(&failed.stderr, root.path()),
        snapbox::str![[r#"
...
          ok core       xbuild-core `^0.1` accepts 0.1.0, the one this xbuild builds with
        FAIL unwinding  [profile.release] set panic = "abort", which defeats the host's call guard
          ok docs       description, license, README.md and crate docs
          ok namespace  every ID is under `acme_hello`
          ok registers  1 module: acme_hello.greeting
error: `acme-hello` fails 1 check: unwinding

"#]]
    );

    // Outside any crate, `run` says what to do.
    let outside = Ran::from_output(
        Command::new(XBUILD)
            .args(["run", "--path", "/"])
            .envs(crate::support::xbuild::shared_cache())
            .output()
            .unwrap(),
    )
    .code(2);
    snapbox::assert_data_eq!(
        outside.stderr,
        snapbox::str![[r#"
error: no crate at or above `/`
help: run it inside a module crate (`xbuild new NAME` makes one), or pass --path DIR

"#]]
    );
}

/// `xbuild search` over the curated index: a word from a module ID finds its crate, a miss
/// is not an error but says where else to look, and no word is a usage error.
#[test]
fn search_finds_crates_by_name_id_or_description() {
    let root = TestRoot::new();
    let found = xbuild(&root, &["search", "Reverse_Proxy"]).success();
    assert_eq!(
        found.stdout.lines().map(str::trim).collect::<Vec<_>>(),
        [
            "xbuild-http    # HTTP server app with routing by host, path and method, and handlers: static responses, files, reverse proxy, headers, metrics (standard)",
            "http.handlers.reverse_proxy",
        ],
        "{}",
        found.stdout
    );
    let json: serde_json::Value = serde_json::from_str(
        &xbuild(&root, &["search", "http", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(json[0]["crate"], "xbuild-http");
    let missed = xbuild(&root, &["search", "http", "kafka"]).success();
    assert_eq!(missed.stdout, "");
    snapbox::assert_data_eq!(
        missed.stderr,
        snapbox::str![[r#"
note: no module in xbuild's index matches `http kafka`
help: crates outside the index are on crates.io with the keyword `xbuild`: https://crates.io/keywords/xbuild

"#]]
    );
    // The module crates outside the default build are found by what they do.
    for (word, krate) in [
        ("auth", "xbuild-http-auth"),
        ("compress", "xbuild-http-encode"),
        ("rate", "xbuild-http-ratelimit"),
    ] {
        let found = xbuild(&root, &["search", word]).success();
        assert!(
            found
                .stdout
                .lines()
                .next()
                .is_some_and(|l| l.starts_with(krate)),
            "`search {word}` finds {krate} first:\n{}",
            found.stdout
        );
    }
    let usage = xbuild(&root, &["search"]).code(2);
    snapbox::assert_data_eq!(
        usage.stderr,
        snapbox::str![[r#"
error: the following required arguments were not provided:
  <WORD>...

Usage: xbuild-for-tests search <WORD>...

For more information, try '--help'.

"#]]
    );
}

//! The host CLI, observed by running a host binary built by plain cargo with fixture
//! modules (tests/hosts, tests/fixtures).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;

use snapbox::{assert_data_eq, str};

use crate::support::{Spawned, redact, run, write};

const HOST: &str = env!("CARGO_BIN_EXE_test-host");
const DUP_HOST: &str = env!("CARGO_BIN_EXE_test-host-dup");

#[test]
fn list_modules_shows_every_fixture_module() {
    let out = run(HOST, &["list-modules"]).success();
    assert_data_eq!(
        out.stdout,
        str![[r#"

  Standard modules: 0

extra.noop
greet_server
greeters.formal
greeters.hello
greeters.panicky

  Non-standard modules: 5

"#]]
    );

    let versions = run(HOST, &["list-modules", "--versions", "--skip-standard"]).success();
    assert_data_eq!(
        versions.stdout,
        str![[r#"
extra.noop fixture-extra 0.3.1
greet_server fixture-greeters 0.2.0
greeters.formal fixture-greeters 0.2.0
greeters.hello fixture-greeters 0.2.0
greeters.panicky fixture-greeters 0.2.0

  Non-standard modules: 5

"#]]
    );

    let json = run(HOST, &["list-modules", "--json"]).success();
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let hello = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "greeters.hello")
        .unwrap();
    assert_eq!(hello["crate"], "fixture-greeters");
    assert_eq!(hello["version"], "0.2.0");
    assert_eq!(hello["standard"], false);
    assert_eq!(hello["interface"], "dyn fixture_greeters::Greeter");
    let noop = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "extra.noop")
        .unwrap();
    assert_eq!(noop["interface"], "dyn xbuild_core::Module");
}

#[test]
fn selftest_passes_and_reports_what_it_did() {
    let out = run(HOST, &["selftest"]).success();
    assert_data_eq!(
        out.stdout,
        str![[r#"
SKIP leak audit of module `greet_server`: it needs a config; give it one in its registration (`selftest = config(...)`)
SKIP leak audit of module `greeters.formal`: it needs a config; give it one in its registration (`selftest = config(...)`)
selftest: 2 expected crates checked, 3 modules instantiated, 2 need a config, 3 left nothing behind, 0 problems

"#]]
    );
    let json = run(HOST, &["selftest", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        report["modules_needing_config"],
        serde_json::json!(["greet_server", "greeters.formal"])
    );
    // The leak audit skips (and says so) what needs a config it was not given.
    let skipped: Vec<&str> = report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "skipped")
        .map(|a| a["module"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["greet_server", "greeters.formal"]);
}

#[test]
fn build_info_reports_build_and_modules() {
    let out = run(HOST, &["build-info", "--json"]).success();
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(info["build_id"], "test-host-build");
    assert_eq!(info["core_version"], "0.1.0");
    assert!(
        info["rustc"].as_str().unwrap().starts_with("rustc "),
        "{info}"
    );
    assert_eq!(info["target"], "x86_64-unknown-linux-gnu");
    assert!(["debug", "release"].contains(&info["profile"].as_str().unwrap()));
    assert_eq!(info["modules"][0]["crate"], "fixture-greeters");
    assert_eq!(info["modules"][1]["version"], "0.3.1");
    let version = run(HOST, &["version"]).success();
    assert_data_eq!(
        version.stdout,
        str![[r#"
xbuild host (xbuild-core 0.1.0, build test-host-build)

"#]]
    );
}

#[test]
fn a_duplicate_id_fails_startup_naming_both_crates() {
    for command in [
        &["list-modules"][..],
        &["selftest"],
        &["validate", "--config", "x.toml"],
    ] {
        let out = run(DUP_HOST, command).code(1);
        assert_data_eq!(
            out.stderr,
            str![[r#"
error: the module registry is inconsistent:
  - module ID `greeters.hello` is registered twice: by `fixture-dup` 2.0.0 and by `fixture-greeters` 0.2.0
help: remove one of the two crates from the build, or ask its author to rename the module

"#]]
        );
    }
    // Describing the binary still works, so a broken build can be diagnosed.
    run(DUP_HOST, &["build-info"]).success();
}

#[test]
fn module_commands_join_the_cli() {
    let out = run(HOST, &["greet", "bob"]).success();
    assert_eq!(out.stdout, "hello, bob\n");
    // The module's command is listed beside the host's own.
    let help = run(HOST, &["--help"]).success();
    assert_data_eq!(
        help.stdout,
        str![[r#"
A host built with xbuild: its modules were linked in at build time

Usage: test-host <COMMAND>

Commands:
  run           Provision and start the apps of a config, and run until SIGINT or SIGTERM (SIGHUP reloads the config file)
  reload        Hand a new config to the host running on this machine, through its admin socket; the running config stays if the new one fails
  validate      Provision and validate a config without starting anything
  list-modules  List every registered module ID
  build-info    Show how this host was built
  selftest      Check that every expected module crate registered modules, and instantiate every module that works with an empty config
  version       Print the version
  greet         Print a greeting (a command added by a module)
  help          Print this message or the help of the given subcommand(s)

Options:
  -V, --version  Print the version (as the `version` command)
  -h, --help     Print help

"#]]
    );
    run(HOST, &["greet"]).code(2);
    let panicked = run(HOST, &["greet", "--panic"]).code(1);
    // One error in cargo's shape, no raw panic message or backtrace.
    assert_data_eq!(
        panicked.stderr,
        str![[r#"
[..]Z ERROR xbuild_core::guard: module panicked; marked failed, host keeps running module="greet" method="command" panic=greet was asked to panic (at tests/fixtures/fixture-greeters/src/lib.rs:169)
error: module `greet` panicked in command: greet was asked to panic (at tests/fixtures/fixture-greeters/src/lib.rs:169)

"#]]
    );
}

#[test]
fn usage_errors_exit_2() {
    let transcript: String = [&["list-modules", "--bogus"][..], &["run"], &[]]
        .iter()
        .map(|args| format!("$ host {args:?}\n{}\n", run(HOST, args).code(2).stderr))
        .collect();
    assert_data_eq!(
        transcript,
        str![[r#"
$ host ["list-modules", "--bogus"]
error: unexpected argument '--bogus' found

Usage: test-host list-modules [OPTIONS]

For more information, try '--help'.

$ host ["run"]
error: the following required arguments were not provided:
  --config <FILE>

Usage: test-host run --config <FILE>

For more information, try '--help'.

$ host []
A host built with xbuild: its modules were linked in at build time

Usage: test-host <COMMAND>

Commands:
  run           Provision and start the apps of a config, and run until SIGINT or SIGTERM (SIGHUP reloads the config file)
  reload        Hand a new config to the host running on this machine, through its admin socket; the running config stays if the new one fails
  validate      Provision and validate a config without starting anything
  list-modules  List every registered module ID
  build-info    Show how this host was built
  selftest      Check that every expected module crate registered modules, and instantiate every module that works with an empty config
  version       Print the version
  greet         Print a greeting (a command added by a module)
  help          Print this message or the help of the given subcommand(s)

Options:
  -V, --version  Print the version (as the `version` command)
  -h, --help     Print help


"#]]
    );
    // A call-timing setting that is not one is refused before anything runs.
    let bad_timing = crate::support::Ran::from_output(
        Command::new(HOST)
            .args(["list-modules"])
            .env("XBUILD_CALL_TIMING", "sometimes")
            .output()
            .unwrap(),
    )
    .code(2);
    assert_data_eq!(
        bad_timing.stderr,
        str![[r#"
error: XBUILD_CALL_TIMING: invalid call timing `sometimes`: use `every`, `off`, or a number N from 1 up to time one call in N
help: unset it for the default (one call in 64)

"#]]
    );
    // `--version` and `-V` work as everywhere, the same as the `version` command.
    let version = run(HOST, &["version"]).success().stdout;
    assert!(
        version.starts_with("xbuild host (xbuild-core "),
        "{version}"
    );
    assert_eq!(run(HOST, &["--version"]).success().stdout, version);
    assert_eq!(run(HOST, &["-V"]).success().stdout, version);
}

fn config(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    write(&path, text);
    path.to_str().unwrap().to_owned()
}

#[test]
fn validate_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = config(
        dir.path(),
        "good.toml",
        "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\n[apps.greet_server.greeters.hi]\ngreeter = \"hello\"\n",
    );
    let out = run(HOST, &["validate", "--config", &good]).success();
    assert_data_eq!(
        redact(&out.stdout, dir.path()),
        str![[r#"
config `[ROOT]/good.toml` is valid (apps: greet_server)

"#]]
    );

    let json = config(
        dir.path(),
        "good.json",
        r#"{"apps": {"greet_server": {"listen": "127.0.0.1:0", "greeters": {}}}}"#,
    );
    run(HOST, &["validate", "--config", &json]).success();

    let cases = [
        (
            "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\n[apps.greet_server.greeters.hi]\ngreeter = \"nope\"\n",
            "unknown module `greeters.nope` in namespace `greeters`",
        ),
        (
            "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\n[apps.greet_server.greeters.hi]\ngreeter = \"nope\"\n",
            "`greeters.formal`, `greeters.hello`, `greeters.panicky`",
        ),
        (
            "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\ngreeters = {}\nlisen = 1\n",
            "unknown field `lisen`",
        ),
        (
            "[apps.greet_server]\nlisten = \"nowhere\"\ngreeters = {}\n",
            "invalid listen address `nowhere`",
        ),
        (
            "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\n[apps.greet_server.greeters.f]\ngreeter = \"formal\"\n",
            "missing field `title`",
        ),
        ("[apps.nope]\n", "unknown module `nope` among the apps"),
        ("[apps\n", "is not valid TOML"),
    ];
    // Each refusal whole, not only the words the table names.
    let mut transcript = String::new();
    for (text, expected) in cases {
        let path = config(dir.path(), "bad.toml", text);
        let out = run(HOST, &["validate", "--config", &path]).code(1);
        assert!(
            out.stderr.contains(expected),
            "{text}\nwanted {expected:?} in:\n{}",
            out.stderr
        );
        let entry = format!("$ validate {text:?}\n{}\n", out.stderr);
        // The table names some configs twice, for two things their refusal says.
        if !transcript.contains(&entry) {
            transcript += &entry;
        }
    }
    assert_data_eq!(
        redact(&transcript, dir.path()),
        str![[r#"
$ validate "[apps.greet_server]/nlisten = /"127.0.0.1:0/"/n[apps.greet_server.greeters.hi]/ngreeter = /"nope/"/n"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
error: cannot load app `greet_server`: module `greet_server` failed in provision: unknown module `greeters.nope` in namespace `greeters`
help: available: `greeters.formal`, `greeters.hello`, `greeters.panicky`

$ validate "[apps.greet_server]/nlisten = /"127.0.0.1:0/"/n[apps.greet_server.greeters.hi]/ngreeter = /"nope/"/n"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
error: cannot load app `greet_server`: module `greet_server` failed in provision: unknown module `greeters.nope` in namespace `greeters`
help: available: `greeters.formal`, `greeters.hello`, `greeters.panicky`

$ validate "[apps.greet_server]/nlisten = /"127.0.0.1:0/"/ngreeters = {}/nlisen = 1/n"
error: cannot load app `greet_server`: invalid config for `greet_server`: unknown field `lisen`
help: check its spelling against the documentation of `greet_server`

$ validate "[apps.greet_server]/nlisten = /"nowhere/"/ngreeters = {}/n"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
error: cannot load app `greet_server`: module `greet_server` failed in validate: invalid listen address `nowhere`: invalid socket address syntax

$ validate "[apps.greet_server]/nlisten = /"127.0.0.1:0/"/n[apps.greet_server.greeters.f]/ngreeter = /"formal/"/n"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
error: cannot load app `greet_server`: module `greet_server` failed in provision: invalid config for `greeters.formal`: missing field `title`
help: add it to the config of `greeters.formal` (see its documentation)

$ validate "[apps.nope]/n"
error: cannot load app `nope`: unknown module `nope` among the apps (top-level modules)
help: available: `greet_server`

$ validate "[apps/n"
error: config file `[ROOT]/bad.toml` is not valid TOML: TOML parse error at line 1, column 6
  |
1 | [apps
  |      ^
unclosed table, expected `]`
help: fix the file at the line and column named


"#]]
    );
    let missing = run(HOST, &["validate", "--config", "/nonexistent/x.toml"]).code(1);
    assert_data_eq!(
        missing.stderr,
        str![[r#"
error: cannot read config file `/nonexistent/x.toml`: No such file or directory (os error 2)
help: check the path given to --config (relative paths start at the current directory)

"#]]
    );
}

fn ask(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    writeln!(stream, "{request}").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    reply.trim_end().to_owned()
}

#[test]
fn a_panicking_module_is_reported_and_counted_while_the_host_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "run.toml",
        "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\n\
         [apps.greet_server.greeters.hi]\ngreeter = \"hello\"\n\
         [apps.greet_server.greeters.bad]\ngreeter = \"panicky\"\n",
    );
    let mut command = Command::new(HOST);
    command
        .args(["run", "--config", &path])
        .env("RUST_BACKTRACE", "1")
        // Every call timed, so the histogram's count is the number of calls (by default
        // one call in 64 per thread is timed).
        .env("XBUILD_CALL_TIMING", "every");
    let mut host = Spawned::new(command);
    let line = host.wait_for_line("greet_server listening on ");
    let addr = line.rsplit(' ').next().unwrap().to_owned();

    assert_eq!(ask(&addr, "hi alice"), "ok hello, alice");
    assert_eq!(
        ask(&addr, "bad bob"),
        "error module `greeters.panicky` panicked in greet: cannot greet bob (at tests/fixtures/fixture-greeters/src/lib.rs:56)"
    );
    assert_eq!(
        ask(&addr, "bad carol").split(':').next(),
        Some("error module `greeters.panicky` panicked in greet")
    );
    assert_eq!(
        ask(&addr, "hi dave"),
        "ok hello, dave",
        "the host keeps working"
    );

    let mut metrics = String::new();
    let mut stream = TcpStream::connect(&addr).unwrap();
    writeln!(stream, "metrics").unwrap();
    stream.read_to_string(&mut metrics).unwrap();
    for expected in [
        r#"module_call_total{module="greeters.panicky",method="greet",status="panic"} 2"#,
        r#"module_call_total{module="greeters.hello",method="greet",status="ok"} 2"#,
        r#"module_failed{module="greeters.panicky"} 1"#,
        r#"module_provision_total{module="greet_server",status="ok"} 1"#,
        "module_call_duration_seconds_count{module=\"greeters.hello\",method=\"greet\"} 2",
        "# TYPE module_provision_duration_seconds histogram",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }

    host.signal("TERM");
    let out = host.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Whole: the panics went to the structured log, not as raw panic messages with a
    // backtrace.
    let output = format!("{}\n--- stderr\n{}", out.stdout, out.stderr).replace(&addr, "[ADDR]");
    let output = redact_run(&output, dir.path());
    assert_data_eq!(
        output,
        str![[r#"
greet_server listening on [ADDR]
greet_server stopped
--- stderr
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greeters.panicky" krate="fixture-greeters" version="0.2.0"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greeters.hello" krate="fixture-greeters" version="0.2.0"
[TIME]  INFO xbuild_core::lifecycle: starting app app="greet_server"
[TIME]  INFO xbuild_core::host::ops: host running; stop with SIGINT or SIGTERM, reload the config with SIGHUP or the `reload` command apps=["greet_server"] admin_socket=[SOCKET]
[TIME] ERROR xbuild_core::guard: module panicked; marked failed, host keeps running module="greeters.panicky" method="greet" panic=cannot greet bob (at tests/fixtures/fixture-greeters/src/lib.rs:56)
[TIME] ERROR xbuild_core::guard: module panicked; marked failed, host keeps running module="greeters.panicky" method="greet" panic=cannot greet carol (at tests/fixtures/fixture-greeters/src/lib.rs:56)
[TIME]  INFO xbuild_core::host::ops: signal received; stopping apps in reverse order signal=15
[TIME]  INFO xbuild_core::lifecycle: stopping app app="greet_server"
[TIME]  INFO xbuild_core::host::ops: stopped cleanly

"#]]
    );
}

#[test]
fn run_provisions_with_structured_logs_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "run.toml",
        "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\ngreeters = {}\n",
    );
    let mut command = Command::new(HOST);
    command.args(["run", "--config", &path]);
    let mut host = Spawned::new(command);
    host.wait_for_line("greet_server listening on ");
    host.signal("INT");
    let out = host.finish().success();
    snapbox::assert_data_eq!(
        redact_run(&out.stderr, dir.path()),
        snapbox::str![[r#"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
[TIME]  INFO xbuild_core::lifecycle: starting app app="greet_server"
[TIME]  INFO xbuild_core::host::ops: host running; stop with SIGINT or SIGTERM, reload the config with SIGHUP or the `reload` command apps=["greet_server"] admin_socket=[SOCKET]
[TIME]  INFO xbuild_core::host::ops: signal received; stopping apps in reverse order signal=2
[TIME]  INFO xbuild_core::lifecycle: stopping app app="greet_server"
[TIME]  INFO xbuild_core::host::ops: stopped cleanly

"#]]
    );
    snapbox::assert_data_eq!(
        redact(&out.stdout, dir.path()),
        snapbox::str![[r#"
greet_server listening on 127.0.0.1:[..]
greet_server stopped
"#]]
    );
}

#[test]
fn run_gives_up_on_an_app_that_does_not_stop_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "run.toml",
        "[apps.greet_server]\nlisten = \"127.0.0.1:0\"\ngreeters = {}\nstop_delay = 30\n",
    );
    let mut command = Command::new(HOST);
    command.args(["run", "--config", &path, "--stop-timeout", "500ms"]);
    let mut host = Spawned::new(command);
    host.wait_for_line("greet_server listening on ");
    host.signal("TERM");
    let out = host.finish().code(1);
    assert_data_eq!(
        redact_run(&out.stderr, dir.path()),
        str![[r#"
[TIME]  INFO xbuild_core::lifecycle: provisioning module module="greet_server" krate="fixture-greeters" version="0.2.0"
[TIME]  INFO xbuild_core::lifecycle: starting app app="greet_server"
[TIME]  INFO xbuild_core::host::ops: host running; stop with SIGINT or SIGTERM, reload the config with SIGHUP or the `reload` command apps=["greet_server"] admin_socket=[SOCKET]
[TIME]  INFO xbuild_core::host::ops: signal received; stopping apps in reverse order signal=15
[TIME]  INFO xbuild_core::lifecycle: stopping app app="greet_server"
error: apps did not stop within 500ms; exiting anyway
help: give the apps more time with --stop-timeout SECONDS, or find what an app's stop waits for

"#]]
    );
    let mut transcript = String::new();
    for bad in [
        "--stop-timeout=-1",
        "--stop-timeout=0",
        "--stop-timeout=soon",
    ] {
        let out = run(HOST, &["run", "--config", &path, bad]).code(2);
        transcript += &format!("$ host run {bad}\n{}\n", out.stderr);
    }
    assert_data_eq!(
        redact(&transcript, dir.path()),
        str![[r#"
$ host run --stop-timeout=-1
error: invalid value '-1' for '--stop-timeout <SECONDS>': `-1` is not a positive duration: give seconds (10, 0.5) or a duration such as `30s` or `2m`

For more information, try '--help'.

$ host run --stop-timeout=0
error: invalid value '0' for '--stop-timeout <SECONDS>': `0` is not a positive duration: give seconds (10, 0.5) or a duration such as `30s` or `2m`

For more information, try '--help'.

$ host run --stop-timeout=soon
error: invalid value 'soon' for '--stop-timeout <SECONDS>': `soon` is not a positive duration: give seconds (10, 0.5) or a duration such as `30s` or `2m`

For more information, try '--help'.


"#]]
    );
}

/// A host run's output with what moves written as placeholders: [`redact`]'s, and the
/// admin socket, whose name is made from the config file's path.
fn redact_run(text: &str, dir: &std::path::Path) -> String {
    let text = redact(text, dir);
    match text
        .split("admin_socket=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
    {
        Some(socket) => text.replace(socket, "[SOCKET]"),
        None => text,
    }
}

//! The xbuild CLI end to end: real cargo, a throwaway registry, real hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::{TestRoot, module_source};
use crate::support::{Ran, Spawned};

const XBUILD: &str = env!("CARGO_BIN_EXE_xbuild-for-tests");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// One cache of compiled dependencies for every test that builds a host.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xbuild-cache")
}

fn xbuild_command(root: &TestRoot, args: &[&str]) -> Command {
    let mut command = Command::new(XBUILD);
    command
        .args(args)
        .current_dir(root.path())
        .env("TMPDIR", root.tmp())
        .env("XBUILD_CACHE_DIR", cache_dir())
        .env_remove("RUST_BACKTRACE")
        .env_remove("XBUILD_CORE_PATH");
    command
}

fn xbuild(root: &TestRoot, args: &[&str]) -> Ran {
    Ran::from_output(xbuild_command(root, args).output().expect("run xbuild"))
}

/// `--message-format json` events of a run.
fn events(ran: &Ran) -> Vec<serde_json::Value> {
    ran.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event: {l:?}: {e}")))
        .collect()
}

fn steps(ran: &Ran) -> Vec<String> {
    events(ran)
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

fn manifest(output: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{}.manifest.json", output.display())).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn output_in(root: &TestRoot) -> PathBuf {
    root.path().join("out/host")
}

fn build_args<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--no-standard",
        "--message-format",
        "json",
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn bad_inputs_are_named_usage_errors_and_nothing_runs_or_is_written() {
    let root = TestRoot::new();
    let not_a_crate = root.path().join("empty-dir");
    std::fs::create_dir_all(&not_a_crate).unwrap();
    let other_name = root.path_crate("other-name", "", &[("src/lib.rs", "")]);
    let existing_dir = root.path().join("a-dir");
    std::fs::create_dir_all(&existing_dir).unwrap();
    let not_a_crate_spec = format!("foo={}", not_a_crate.display());
    let other_name_spec = format!("foo={}", other_name.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--with", ""], "empty module spec"),
        (vec!["--with", "a;b"], "invalid crate name `a;b`"),
        (vec!["--with", "foo\"bar"], "invalid crate name `foo\"bar`"),
        (vec!["--with", "foo\nname = \"x\""], "invalid crate name"),
        (
            vec!["--with", "../etc"],
            "`../etc` is a path, but a module spec starts with the crate's name",
        ),
        (
            vec!["--with", "a/../../b=./x"],
            "invalid crate name `a/../../b`",
        ),
        (
            vec!["--with", "foo@1.0\"\n[patch]"],
            "is not allowed in a version requirement",
        ),
        (
            vec!["--with", "foo@banana"],
            "invalid version requirement `banana`",
        ),
        (vec!["--with", "foo=bar"], "ambiguous replacement `bar`"),
        (
            vec!["--with", "foo=./does/not/exist"],
            "path `./does/not/exist` does not exist",
        ),
        (
            vec!["--with", "foo=../../../../../../../../nope"],
            "does not exist",
        ),
        (vec!["--with", &not_a_crate_spec], "Cargo.toml"),
        (
            vec!["--with", &other_name_spec],
            "is named `other-name`, not `foo`",
        ),
        (
            vec!["--with", "foo", "--with", "foo@2"],
            "crate `foo` is given twice",
        ),
        (vec!["--with", "xbuild-core"], "names xbuild-core"),
        (vec!["--replace", "foo@1"], "has no replacement"),
        (
            vec!["--with", "foo", "--replace", "foo=bar@1"],
            "`foo` is also a module",
        ),
        (
            vec!["--with", "foo", "--features", "bar/x"],
            "`bar` is not one of the `--with` crates",
        ),
        (
            vec!["--with", "foo", "--features", "foo/x;y"],
            "invalid feature name `x;y`",
        ),
        (
            vec!["--with", "foo", "--features", "nocrate"],
            "does not name a crate",
        ),
        (vec!["--profile", "fast"], "unknown profile `fast`"),
        (vec!["--registry", "a b"], "invalid registry name `a b`"),
        (
            vec!["--target", "x86_64;rm"],
            "invalid target triple `x86_64;rm`",
        ),
        (
            vec!["--core-path", "/nonexistent/core"],
            "xbuild-core not found at `/nonexistent/core`",
        ),
        (
            vec!["--output", existing_dir.to_str().unwrap()],
            "is an existing directory",
        ),
        (
            vec!["--output", "/nonexistent/dir/host"],
            "directory of --output `/nonexistent/dir/host` does not exist",
        ),
        (
            vec!["--locked"],
            "--locked needs the lock file of a previous build",
        ),
        (vec!["--bogus"], "--bogus"),
    ];
    for (args, expected) in cases {
        // Any cargo run would fail differently (exit 1), and leave a workspace behind.
        let out = Ran::from_output(
            xbuild_command(&root, &[&["--no-standard"][..], &args].concat())
                .env("CARGO", "/nonexistent/cargo")
                .output()
                .unwrap(),
        );
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(expected),
            "{args:?}: wanted {expected:?} in\n{}",
            out.stderr
        );
        assert_eq!(
            out.stderr.matches("error:").count(),
            1,
            "one message: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(!root.path().join("host").exists());
        assert!(root.leftover_workspaces().is_empty(), "{args:?}");
    }
}

#[test]
fn registry_versions_are_picked_as_cargo_would() {
    let root = TestRoot::new();
    for version in ["1.0.0", "1.2.0", "1.3.0", "2.0.0"] {
        let id = format!("versioned.v{}", version.replace('.', "_"));
        root.package("versioned-mod", version)
            .xbuild_module(&id)
            .publish();
    }
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let out_str = output.to_str().unwrap();
    for (spec, picked) in [
        ("versioned-mod@1.2", "1.3.0"),
        ("versioned-mod@=1.2.0", "1.2.0"),
        ("versioned-mod@~1.2", "1.2.0"),
    ] {
        let ran = xbuild(
            &root,
            &build_args(out_str, &["--registry", "xtest", "--with", spec]),
        )
        .success();
        let manifest = manifest(&output);
        assert_eq!(
            manifest["modules"][0]["version"], picked,
            "{spec}: {}",
            ran.stderr
        );
        let id = format!("versioned.v{}", picked.replace('.', "_"));
        assert_eq!(
            manifest["modules"][0]["ids"],
            serde_json::json!([id]),
            "{spec}"
        );
        let listed = crate::support::run(out_str, &["list-modules"]).success();
        assert!(
            listed.stdout.lines().any(|l| l == id),
            "{spec}: {}",
            listed.stdout
        );
    }

    let missing = xbuild(
        &root,
        &build_args(
            out_str,
            &["--registry", "xtest", "--with", "versioned-mod@9"],
        ),
    )
    .code(2);
    assert!(
        missing.stderr.contains("no version of `versioned-mod` matches `^9`; versions that exist include 2.0.0, 1.3.0, 1.2.0 and more"),
        "{}",
        missing.stderr
    );
    assert!(!steps(&missing).contains(&"compile".to_owned()));
    let unknown = xbuild(
        &root,
        &build_args(out_str, &["--registry", "xtest", "--with", "no-such-mod"]),
    )
    .code(2);
    assert!(
        unknown
            .stderr
            .contains("crate `no-such-mod` was not found in registry `xtest`"),
        "{}",
        unknown.stderr
    );
    assert!(root.leftover_workspaces().is_empty());
}

#[test]
fn a_yanked_version_is_skipped() {
    let root = TestRoot::new();
    root.package("yank-mod", "1.2.0")
        .xbuild_module("yank.v1_2_0")
        .publish();
    root.package("yank-mod", "1.3.0")
        .xbuild_module("yank.v1_3_0")
        .yanked()
        .publish();
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    xbuild(
        &root,
        &build_args(
            output.to_str().unwrap(),
            &["--registry", "xtest", "--with", "yank-mod@1.2"],
        ),
    )
    .success();
    assert_eq!(manifest(&output)["modules"][0]["version"], "1.2.0");
}

#[test]
fn modules_on_another_core_and_crates_that_are_not_modules_are_refused_before_compiling() {
    let root = TestRoot::new();
    root.package("xbuild-core", "0.2.0")
        .lib("pub fn future_api() {}\n")
        .publish();
    root.package("old-api-mod", "1.0.0")
        .dep("xbuild-core", "0.2")
        .lib("")
        .publish();
    root.package("plain-lib", "1.0.0")
        .lib("pub fn f() {}\n")
        .publish();
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let out = output.to_str().unwrap();

    let skew = xbuild(
        &root,
        &build_args(out, &["--registry", "xtest", "--with", "old-api-mod"]),
    )
    .code(2);
    assert!(
        skew.stderr.contains("two versions of xbuild-core"),
        "{}",
        skew.stderr
    );
    assert!(
        skew.stderr
            .contains("xbuild-core 0.1.0, wanted by the host"),
        "{}",
        skew.stderr
    );
    assert!(
        skew.stderr
            .contains("xbuild-core 0.2.0, wanted by `old-api-mod` 1.0.0"),
        "{}",
        skew.stderr
    );
    assert!(
        !steps(&skew).contains(&"compile".to_owned()),
        "{:?}",
        steps(&skew)
    );

    let plain = xbuild(
        &root,
        &build_args(out, &["--registry", "xtest", "--with", "plain-lib@1"]),
    )
    .code(2);
    assert!(
        plain
            .stderr
            .contains("`plain-lib` 1.0.0 is not an xbuild module"),
        "{}",
        plain.stderr
    );
    assert!(!steps(&plain).contains(&"compile".to_owned()));
    assert!(!output.exists());
    assert!(root.leftover_workspaces().is_empty());
}

#[test]
fn a_path_module_builds_a_static_host_with_a_manifest() {
    let root = TestRoot::new();
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    // A relative path, resolved against the working directory.
    let greeters = fixture("fixture-greeters");
    let relative = pathdiff(&greeters, root.path());
    let spec = format!("fixture-greeters={}", relative.display());
    let extra = format!("fixture-extra={}", fixture("fixture-extra").display());
    let args = build_args(
        output.to_str().unwrap(),
        &["--with", &spec, "--with", &extra],
    );
    let first = xbuild(&root, &args).success();
    assert_eq!(
        steps(&first),
        [
            "generate",
            "resolve",
            "compile",
            "check_static",
            "selftest",
            "install"
        ]
    );

    let host = output.to_str().unwrap();
    let listed = crate::support::run(host, &["list-modules", "--versions"]).success();
    assert!(
        listed
            .stdout
            .contains("greeters.hello fixture-greeters 0.2.0"),
        "{}",
        listed.stdout
    );
    crate::support::run(host, &["selftest"]).success();
    assert_eq!(
        xbuild::elf::dynamic_dependencies(&output).unwrap(),
        Vec::<String>::new(),
        "static"
    );

    let manifest = manifest(&output);
    let keys: Vec<&str> = manifest
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "build_id",
            "sha256",
            "core_version",
            "rustc",
            "target",
            "profile",
            "modules"
        ]
    );
    assert_eq!(
        manifest["sha256"],
        xbuild::manifest::sha256_file(&output).unwrap()
    );
    assert_eq!(manifest["profile"], "release");
    assert_eq!(manifest["modules"][0]["crate"], "fixture-greeters");
    assert!(
        manifest["modules"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("path+file:///")
    );
    assert_eq!(
        manifest["modules"][0]["ids"],
        serde_json::json!([
            "greet_server",
            "greeters.formal",
            "greeters.hello",
            "greeters.panicky"
        ])
    );
    let info: serde_json::Value = serde_json::from_str(
        &crate::support::run(host, &["build-info", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(info["build_id"], manifest["build_id"]);
    let finished = events(&first)
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(finished["build_id"], manifest["build_id"]);

    // selftest checks the manifest beside the host describes this very binary.
    let manifest_file = root.path().join("out/host.manifest.json");
    let original = std::fs::read_to_string(&manifest_file).unwrap();
    let build_id = manifest["build_id"].as_str().unwrap();
    std::fs::write(
        &manifest_file,
        original.replace(build_id, "0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let stale = crate::support::run(host, &["selftest"]).code(1);
    assert!(
        stale
            .stdout
            .contains("is for build 0123456789abcdef0123456789abcdef, but this host is build"),
        "{}",
        stale.stdout
    );
    let sha = manifest["sha256"].as_str().unwrap();
    std::fs::write(&manifest_file, original.replace(sha, &"0".repeat(64))).unwrap();
    let replaced = crate::support::run(host, &["selftest"]).code(1);
    assert!(
        replaced
            .stdout
            .contains("the binary was changed or replaced"),
        "{}",
        replaced.stdout
    );
    std::fs::write(&manifest_file, &original).unwrap();

    // The same inputs give the same build ID; --locked reuses the lock file beside the
    // output, and --keep-workdir leaves the generated workspace for inspection.
    let lock = root.path().join("out/host.lock");
    assert!(
        std::fs::read_to_string(&lock)
            .unwrap()
            .contains("name = \"fixture-greeters\"")
    );
    let mut again = args.clone();
    again.extend(["--locked", "--keep-workdir"]);
    let kept = xbuild(&root, &again).success();
    assert_eq!(self::manifest(&output)["build_id"], manifest["build_id"]);
    let workdir = events(&kept)
        .into_iter()
        .find(|e| e["event"] == "workdir")
        .unwrap();
    let workdir = PathBuf::from(workdir["path"].as_str().unwrap());
    let main_rs = std::fs::read_to_string(workdir.join("src/main.rs")).unwrap();
    assert!(
        main_rs.contains("use fixture_greeters as _;\nuse fixture_extra as _;\n"),
        "{main_rs}"
    );
    std::fs::remove_dir_all(&workdir).unwrap();
    assert!(root.leftover_workspaces().is_empty());

    // A lock file from another module set does not fit.
    let new_mod = root.path_crate(
        "new-mod",
        "",
        &[("src/lib.rs", &module_source("new.module"))],
    );
    let new_spec = format!("new-mod={}", new_mod.display());
    let mut other = build_args(
        output.to_str().unwrap(),
        &["--with", &spec, "--with", &new_spec, "--locked"],
    );
    other.push("--quiet");
    let stale = xbuild(&root, &other).code(2);
    assert!(
        stale.stderr.contains("does not fit this build"),
        "{}",
        stale.stderr
    );
}

fn pathdiff(target: &Path, base: &Path) -> PathBuf {
    let up = base.components().count() - 1;
    let mut path = PathBuf::new();
    for _ in 0..up {
        path.push("..");
    }
    path.join(target.strip_prefix("/").unwrap())
}

#[test]
fn a_failing_selftest_keeps_the_previous_output() {
    let root = TestRoot::new();
    let source = "#[derive(serde::Deserialize)]\nstruct Picky {}\n\
        impl xbuild_core::Module for Picky {\n\
            fn validate(&self) -> Result<(), xbuild_core::BoxError> { Err(\"picky is never satisfied\".into()) }\n\
        }\nxbuild_core::register_module!(\"picky.module\", Picky);\n";
    let picky = root.path_crate("picky-mod", "", &[("src/lib.rs", source)]);
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    std::fs::write(&output, b"previous host").unwrap();
    let spec = format!("picky-mod={}", picky.display());
    let out = xbuild(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &spec]),
    )
    .code(1);
    assert!(
        out.stderr.contains("the new host failed its selftest"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("picky is never satisfied"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"previous host");
    assert!(!root.path().join("out/host.manifest.json").exists());
    let staged: Vec<_> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(staged.len(), 1, "no staged files left beside the output");
}

#[test]
fn a_compile_error_names_the_module_crate() {
    let root = TestRoot::new();
    let broken = root.path_crate(
        "broken-mod",
        "",
        &[("src/lib.rs", "pub fn oops() -> u32 { \"not a number\" }\n")],
    );
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let spec = format!("broken-mod={}", broken.display());
    let out = xbuild_command(
        &root,
        &[
            "--no-standard",
            "--output",
            output.to_str().unwrap(),
            "--with",
            &spec,
        ],
    )
    .output()
    .unwrap();
    let out = Ran::from_output(out).code(1);
    assert!(
        out.stderr
            .contains("module crate `broken-mod` 0.1.0 failed to compile"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("mismatched types"),
        "cargo's diagnostic is shown: {}",
        out.stderr
    );
    assert!(!output.exists());
    assert!(root.leftover_workspaces().is_empty());
}

#[test]
fn sigint_during_cargo_leaves_the_previous_output_and_no_workspace() {
    let root = TestRoot::new();
    let marker = root.path().join("build-script-started");
    let build_rs = "fn main() {\n\
        if let Ok(marker) = std::env::var(\"SLOW_MOD_MARKER\") { std::fs::write(marker, \"\").unwrap(); }\n\
        std::thread::sleep(std::time::Duration::from_secs(120));\n}\n";
    let slow = root.path_crate(
        "slow-mod",
        "",
        &[
            ("src/lib.rs", &module_source("slow.module")),
            ("build.rs", build_rs),
        ],
    );
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    std::fs::write(&output, b"previous host, byte for byte").unwrap();
    let spec = format!("slow-mod={}", slow.display());
    let mut command = xbuild_command(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &spec]),
    );
    command.env("SLOW_MOD_MARKER", &marker);
    let mut xbuild = Spawned::new(command);
    xbuild.wait_for_line("\"step\":\"compile\"");
    let deadline = std::time::Instant::now() + crate::support::PATIENCE * 5;
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the build script never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    xbuild.signal("INT");
    let out = xbuild.finish();
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        b"previous host, byte for byte"
    );
    assert!(
        root.leftover_workspaces().is_empty(),
        "{:?}",
        root.leftover_workspaces()
    );
    let stray = Command::new("pgrep")
        .args(["-f", "slow-mod"])
        .output()
        .unwrap();
    assert!(stray.stdout.is_empty(), "the build script was stopped too");
}

#[test]
fn features_and_replacements_reach_the_dependency_graph() {
    let root = TestRoot::new();
    let feature_source = "#[derive(serde::Deserialize)]\nstruct M {}\nimpl xbuild_core::Module for M {}\n\
        #[cfg(feature = \"shout\")]\nxbuild_core::register_module!(\"feat.loud\", M);\n\
        #[cfg(not(feature = \"shout\"))]\nxbuild_core::register_module!(\"feat.quiet\", M);\n";
    let feat = root.path_crate(
        "feat-mod",
        "\n[features]\nshout = []\n",
        &[("src/lib.rs", feature_source)],
    );
    // `uses-helper` names `helper-lib`, whose registrations show which copy was linked.
    root.package("helper-lib", "1.0.0")
        .xbuild_module("helper.original")
        .publish();
    root.package("uses-helper", "1.0.0")
        .xbuild_module("uses.helper")
        .dep("helper-lib", "1.0")
        .lib(&format!(
            "use helper_lib as _;\n{}",
            module_source("uses.helper")
        ))
        .publish();
    let patched = root.path().join("crates/helper-lib");
    std::fs::create_dir_all(patched.join("src")).unwrap();
    std::fs::write(
        patched.join("Cargo.toml"),
        "[package]\nname = \"helper-lib\"\nversion = \"1.0.5\"\nedition = \"2021\"\n\n[dependencies]\nxbuild-core = \"0.1\"\nserde = { version = \"1\", features = [\"derive\"] }\n",
    )
    .unwrap();
    std::fs::write(patched.join("src/lib.rs"), module_source("helper.patched")).unwrap();

    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let feat_spec = format!("feat-mod={}", feat.display());
    let replace = format!("helper-lib={}", patched.display());
    let out = xbuild_command(
        &root,
        &[
            "build",
            "--no-standard",
            "-q",
            "--output",
            output.to_str().unwrap(),
            "--registry",
            "xtest",
            "--with",
            &feat_spec,
            "--features",
            "feat-mod/shout",
            "--with",
            "uses-helper@1",
            "--replace",
            &replace,
        ],
    )
    .output()
    .unwrap();
    let out = Ran::from_output(out).success();
    assert_eq!(out.stderr, "", "-q prints nothing on success");
    let listed =
        crate::support::run(output.to_str().unwrap(), &["list-modules", "--versions"]).success();
    assert!(
        listed.stdout.contains("feat.loud feat-mod 0.1.0"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("helper.patched helper-lib 1.0.5"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains("helper.original"),
        "{}",
        listed.stdout
    );
}

#[test]
fn a_killed_build_never_leaves_a_partial_output() {
    let root = TestRoot::new();
    let build_rs = "fn main() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n";
    let slow = root.path_crate(
        "killed-mod",
        "",
        &[
            ("src/lib.rs", &module_source("killed.module")),
            ("build.rs", build_rs),
        ],
    );
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    std::fs::write(&output, b"previous").unwrap();
    let spec = format!("killed-mod={}", slow.display());
    let mut xbuild = Spawned::new(xbuild_command(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &spec]),
    ));
    xbuild.wait_for_line("\"step\":\"compile\"");
    xbuild.signal("KILL");
    let out = xbuild.finish();
    assert_eq!(out.code, None, "killed by a signal");
    // Cargo ran in its own process group and is orphaned now; end it as a user would.
    let _ = Command::new("pkill").args(["-f", "killed-mod"]).status();
    assert_eq!(std::fs::read(&output).unwrap(), b"previous");
    let beside: Vec<_> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(beside.len(), 1, "nothing else written beside the output");
}

#[test]
fn a_module_crate_that_registers_nothing_fails_the_selftest() {
    let root = TestRoot::new();
    // Depends on xbuild-core, so it passes as a module, but registers no module.
    let empty = root.path_crate("empty-mod", "", &[("src/lib.rs", "pub fn helper() {}\n")]);
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let spec = format!("empty-mod={}", empty.display());
    let out = xbuild(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &spec]),
    )
    .code(1);
    assert!(
        out.stderr
            .contains("crate `empty-mod` 0.1.0: registered no modules"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`use empty_mod as _;`"),
        "{}",
        out.stderr
    );
    assert!(!output.exists());
}

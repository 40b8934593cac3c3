//! The xbuild CLI's builds: a static host with its manifest and lock file, and every way a
//! build can fail or be stopped without touching the previous output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::{TestRoot, module_source};
use crate::support::xbuild::{
    build_args, core_path, events, fixture, manifest, output_in, steps, xbuild, xbuild_command,
};
use crate::support::{Ran, Spawned, redact};

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
        &[
            "--with",
            &spec,
            "--with",
            &extra,
            "--core-path",
            core_path(),
        ],
    );
    let first = xbuild(&root, &args).success();
    let plan = &events(&first)[0];
    assert_eq!(plan["event"], "plan");
    assert_eq!(plan["version"], 1, "the plan event's schema version");
    assert_eq!(plan["dist"], "host");
    assert_eq!(plan["modules"][0]["crate"], "fixture-greeters");
    assert_eq!(plan["modules"][0]["source"], "path");
    assert_eq!(plan["profile"], "release");
    assert_eq!(plan["static"], true);
    // The fixtures live in this repository, so a rerun of the suite with nothing changed
    // has the same build ID, and the suite's cache (which outlives a run) answers it.
    let compiled = [
        "generate",
        "resolve",
        "compile",
        "check_static",
        "selftest",
        "install",
        "lock",
    ];
    // The lock beside the output is new (this test's root is), so it is written.
    let from_cache = ["generate", "resolve", "fresh", "install", "lock"];
    let taken = steps(&first);
    assert!(taken == compiled || taken == from_cache, "{taken:?}");

    let host = output.to_str().unwrap();
    let listed = crate::support::run(host, &["list-modules", "--versions"]).success();
    snapbox::assert_data_eq!(
        listed.stdout,
        snapbox::str![[r#"

  Standard modules: 0

extra.noop fixture-extra 0.3.1
greet_server fixture-greeters 0.2.0
greeters.formal fixture-greeters 0.2.0
greeters.hello fixture-greeters 0.2.0
greeters.panicky fixture-greeters 0.2.0

  Non-standard modules: 5

"#]]
    );
    crate::support::run(host, &["selftest"]).success();
    assert_eq!(
        xbuild_cli::elf::dynamic_dependencies(&output).unwrap(),
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
            "static",
            "modules",
            "sizes"
        ]
    );
    assert_eq!(manifest["static"], true);
    assert_eq!(
        manifest["sha256"],
        xbuild_cli::sbom::sha256_file(&output).unwrap()
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
    snapbox::assert_data_eq!(
        redact_build(&stale.stdout, &root),
        snapbox::str![[r#"
FAIL manifest `[ROOT]/out/host.manifest.json`: is for build [HASH], but this host is build [HASH]; deploy the host and its manifest together
SKIP leak audit of module `greet_server`: it needs a config; give it one in its registration (`selftest = config(...)`)
SKIP leak audit of module `greeters.formal`: it needs a config; give it one in its registration (`selftest = config(...)`)
selftest: 2 expected crates checked, 3 modules instantiated, 2 need a config, 3 left nothing behind, 1 problem

"#]]
    );
    snapbox::assert_data_eq!(
        redact_build(&stale.stderr, &root),
        snapbox::str![[r#"
error: selftest found 1 problem

"#]]
    );
    let sha = manifest["sha256"].as_str().unwrap();
    std::fs::write(&manifest_file, original.replace(sha, &"0".repeat(64))).unwrap();
    let replaced = crate::support::run(host, &["selftest"]).code(1);
    snapbox::assert_data_eq!(
        redact_build(&replaced.stdout, &root),
        snapbox::str![[r#"
FAIL manifest `[ROOT]/out/host.manifest.json`: gives sha256 [HASH] but this binary's is [HASH]; the binary was changed or replaced after the build
SKIP leak audit of module `greet_server`: it needs a config; give it one in its registration (`selftest = config(...)`)
SKIP leak audit of module `greeters.formal`: it needs a config; give it one in its registration (`selftest = config(...)`)
selftest: 2 expected crates checked, 3 modules instantiated, 2 need a config, 3 left nothing behind, 1 problem

"#]]
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
        &[
            "--with",
            &spec,
            "--with",
            &new_spec,
            "--locked",
            "--core-path",
            core_path(),
        ],
    );
    other.push("--quiet");
    let stale = xbuild(&root, &other).code(2);
    snapbox::assert_data_eq!(
        redact_build(&stale.stderr, &root),
        snapbox::str![[r#"
error: --locked: distribution `host` changed since the lock file `[ROOT]/out/host.lock` was written: module `fixture-extra=[..]/tests/fixtures/fixture-extra` was removed; module `new-mod=[ROOT]/crates/new-mod` was added
help: build without --locked (or run `xbuild update`) to resolve it again

"#]]
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
    snapbox::assert_data_eq!(
        redact_build(&out.stderr, &root),
        snapbox::str![[r#"
error: the new host failed its selftest, so `[ROOT]/out/host` was left as it was; it said:
  | FAIL module `picky.module` (picky-mod 0.1.0): module `picky.module` failed in validate: picky is never satisfied
  | selftest: 1 expected crate checked, 0 modules instantiated, 0 need a config, 0 left nothing behind, 1 problem
  | error: selftest found 1 problem
help: fix the modules named above, or pass --skip-selftest to install it anyway

"#]]
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
    // xbuild's steps, cargo's diagnostics (rustc's wording is not ours to pin), and one
    // error naming the crate.
    snapbox::assert_data_eq!(
        redact_build(&out.stderr, &root),
        snapbox::str![[r#"
  Generating host workspace (1 module crate)
   Resolving dependencies with cargo metadata
      Module broken-mod v0.1.0 (path+file://[ROOT]/crates/broken-mod)
    Resolved [..] packages
   Compiling host for x86_64-unknown-linux-gnu (release, static)
error[E0308]: mismatched types
...
error: module crate `broken-mod` 0.1.0 failed to compile (cargo's diagnostics are above)
help: fix what cargo reported above, then build again: what already compiled is kept in the xbuild cache

"#]]
    );
    assert!(
        out.stderr.contains("mismatched types"),
        "cargo's diagnostic is shown: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains('\x1b'),
        "no colour in a pipe: {}",
        out.stderr
    );
    assert!(!output.exists());
    assert!(root.leftover_workspaces().is_empty());

    // Colour when asked for, by flag or by cargo's variable; never in JSON, whose
    // diagnostics say where and in which crate.
    let mut base = vec![
        "--no-standard",
        "--output",
        output.to_str().unwrap(),
        "--with",
        &spec,
    ];
    let mut always = base.clone();
    always.extend(["--color", "always"]);
    let coloured = Ran::from_output(xbuild_command(&root, &always).output().unwrap()).code(1);
    assert!(coloured.stderr.contains("\x1b["), "{}", coloured.stderr);
    let by_env = Ran::from_output(
        xbuild_command(&root, &base)
            .env("CARGO_TERM_COLOR", "always")
            .output()
            .unwrap(),
    )
    .code(1);
    assert!(by_env.stderr.contains("\x1b["), "{}", by_env.stderr);
    let mut never = base.clone();
    never.extend(["--color", "never"]);
    let flag_wins = Ran::from_output(
        xbuild_command(&root, &never)
            .env("CARGO_TERM_COLOR", "always")
            .output()
            .unwrap(),
    )
    .code(1);
    assert!(!flag_wins.stderr.contains('\x1b'), "{}", flag_wins.stderr);
    base.extend(["--message-format", "json", "--color", "always"]);
    let json = Ran::from_output(xbuild_command(&root, &base).output().unwrap()).code(1);
    assert!(!json.stdout.contains('\x1b'), "{}", json.stdout);
    let diagnostic = events(&json)
        .into_iter()
        .find(|e| e["event"] == "diagnostic" && e["level"] == "error")
        .unwrap_or_else(|| panic!("no error diagnostic in {}", json.stdout));
    assert_eq!(diagnostic["crate"], "broken-mod");
    assert_eq!(diagnostic["version"], "0.1.0");
    assert_eq!(diagnostic["message"], "mismatched types");
    assert!(
        diagnostic["file"].as_str().unwrap().ends_with("src/lib.rs"),
        "{diagnostic}"
    );
    assert_eq!(diagnostic["line"], 1);
}

#[test]
fn a_host_whose_modules_clash_is_never_installed() {
    let root = TestRoot::new();
    let one = root.path_crate(
        "clash-one",
        "",
        &[("src/lib.rs", &module_source("clash.same"))],
    );
    let two = root.path_crate(
        "clash-two",
        "",
        &[("src/lib.rs", &module_source("clash.same"))],
    );
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let one = format!("clash-one={}", one.display());
    let two = format!("clash-two={}", two.display());
    for extra in [&[][..], &["--skip-selftest"][..]] {
        let mut args = vec![
            "--no-standard",
            "--output",
            output.to_str().unwrap(),
            "--with",
            &one,
            "--with",
            &two,
        ];
        args.extend_from_slice(extra);
        let out = Ran::from_output(xbuild_command(&root, &args).output().unwrap()).code(1);
        // The build's progress, then the one error, whole; its help offers no way around
        // it (no --skip-selftest).
        snapbox::assert_data_eq!(
            redact(&out.stderr, root.path()),
            snapbox::str![[r#"
...
error: the new host cannot start, so `[ROOT]/out/host` was left as it was; it said:
  | error: the module registry is inconsistent:
  |   - module ID `clash.same` is registered twice: by `clash-two` 0.1.0 and by `clash-one` 0.1.0
  | help: remove one of the two crates from the build, or ask its author to rename the module
help: fix or leave out the module crates named above: module IDs must be unique and valid

"#]]
        );
        assert!(!output.exists(), "{extra:?}");
    }
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
    snapbox::assert_data_eq!(
        redact_build(&out.stderr, &root),
        snapbox::str![[r#"
error: interrupted: cargo was stopped, the generated workspace removed and the output left as it was

"#]]
    );
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
    snapbox::assert_data_eq!(
        redact_build(&out.stderr, &root),
        snapbox::str![[r#"
error: the new host failed its selftest, so `[ROOT]/out/host` was left as it was; it said:
  | FAIL crate `empty-mod` 0.1.0: registered no modules: it has no `xbuild_core::register_module!`, or it was linked against another xbuild-core than this host's 0.1.0 (its registrations went into a slice nobody reads), or dropped by the linker (the host's main.rs must name it with `use empty_mod as _;`)
  | selftest: 1 expected crate checked, 0 modules instantiated, 0 need a config, 0 left nothing behind, 1 problem
  | error: selftest found 1 problem
help: fix the modules named above, or pass --skip-selftest to install it anyway

"#]]
    );
    assert!(!output.exists());
}

/// A file made immutable (`chattr +i`: not even root may rename it or over it) for as long
/// as this lives.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    /// `None` where `chattr` cannot do it (not root, or a file system without the flag).
    fn set(path: &'a Path) -> Option<Self> {
        let done = Command::new("chattr").arg("+i").arg(path).output().ok()?;
        done.status.success().then_some(Self(path))
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

/// Binary, manifest and lock change together or not at all: a build to an existing output
/// whose manifest cannot be replaced fails naming it and saying what it left, and the
/// previous three are there byte for byte, with nothing staged left beside them.
#[test]
fn an_install_that_cannot_replace_the_manifest_leaves_the_previous_set_byte_for_byte() {
    let root = TestRoot::new();
    // In a directory that does not exist yet: the install creates it, as cargo would.
    let output = output_in(&root);
    assert!(!output.parent().unwrap().exists());
    let owned = greeters_build(&output);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    xbuild(&root, &args).success();
    let manifest = output.with_file_name("host.manifest.json");
    let lock = output.with_file_name("host.lock");
    // The previous set, made different from what the next build installs.
    let mut host = std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .unwrap();
    std::io::Write::write_all(&mut host, b"previous").unwrap();
    drop(host);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n")).unwrap();
    let files = [&output, &manifest, &lock];
    let before = files.map(|p| std::fs::read(p).unwrap());
    let Some(immutable) = Immutable::set(&manifest) else {
        eprintln!("skipped: `chattr +i` is not available here (it needs root)");
        return;
    };
    let failed = xbuild(&root, &args).code(1);
    drop(immutable);
    snapbox::assert_data_eq!(
        redact_build(&failed.stderr, &root),
        snapbox::str![[r#"
error: cannot install `[ROOT]/out/host`: cannot move the previous `[ROOT]/out/host.manifest.json` aside: Operation not permitted (os error 1)
note: nothing was changed: `[ROOT]/out/host`, `[ROOT]/out/host.manifest.json` are as they were before this build; the lock `[ROOT]/out/host.lock` is unchanged
help: make the output's files and folder writable (and free space), then build again: the build is cached

"#]]
    );
    let after = files.map(|p| std::fs::read(p).unwrap());
    for ((file, before), after) in files.iter().zip(&before).zip(&after) {
        assert!(before == after, "`{}` changed", file.display());
    }
    let stray: Vec<_> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".xbuild"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // Writable again: the same build installs the new set, the lock readable by all as
    // cargo's Cargo.lock is.
    std::fs::remove_file(&lock).unwrap();
    xbuild(&root, &args).success();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&lock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(
        crate::support::xbuild::manifest(&output)["sha256"],
        crate::support::sha256(&output)
    );
}

/// Under a file size limit (`ulimit -f`) smaller than the host, the install fails with a
/// message saying so (not a silent death by SIGXFSZ) and leaves nothing in the output's
/// directory.
#[test]
fn a_file_size_limit_is_reported_and_leaves_nothing_behind() {
    let root = TestRoot::new();
    let output = output_in(&root);
    let owned = greeters_build(&output);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    // Built (or found in the suite's cache) first, so the limit meets the install.
    xbuild(&root, &args).success();
    std::fs::remove_dir_all(output.parent().unwrap()).unwrap();
    let inner = xbuild_command(&root, &args);
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg("ulimit -f 1024 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => limited.env(key, value),
            None => limited.env_remove(key),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        limited.current_dir(dir);
    }
    let failed = Ran::from_output(limited.output().unwrap());
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    snapbox::assert_data_eq!(
        redact_build(&failed.stderr, &root),
        snapbox::str![[r#"
error: cannot copy the host into `[ROOT]/out`: File too large (os error 27)
help: a file size limit stopped the write (`ulimit -f`): raise it for this shell, then build again

"#]]
    );
    let left: Vec<_> = std::fs::read_dir(output.parent().unwrap())
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// With less free space than a compile needs where the cache lives (as reported through
/// XBUILD_DISK_FREE), the build is refused before compiling, naming the folder, what is free
/// and what is needed, and how to make room; nothing is installed.
#[test]
fn a_build_without_room_to_compile_is_refused_before_compiling() {
    let root = TestRoot::new();
    let output = output_in(&root);
    // Never built before, so it would compile.
    let roomless = root.path_crate(
        "roomless-mod",
        "",
        &[("src/lib.rs", &module_source("roomless.module"))],
    );
    let spec = format!("roomless-mod={}", roomless.display());
    let args = build_args(output.to_str().unwrap(), &["--with", &spec]);
    let ran = Ran::from_output(
        xbuild_command(&root, &args)
            .env("XBUILD_DISK_FREE", (100u64 << 20).to_string())
            .output()
            .unwrap(),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    snapbox::assert_data_eq!(
        redact_build(&ran.stderr, &root),
        snapbox::str![[r#"
error: not enough free space for compiling a host: `[CACHE]` has 100.0 MiB free, and compiling a host needs about 1.0 GiB
help: make room: `xbuild clean` removes the hosts the cache keeps (compiled dependencies stay), `xbuild clean --all` everything; a lower XBUILD_CACHE_MAX keeps it smaller, XBUILD_CACHE_DIR moves it to a larger disk

"#]]
    );
    let taken = steps(&ran);
    assert!(!taken.iter().any(|s| s == "compile"), "{taken:?}");
    assert!(!output.exists());
}

/// Build arguments for the fixture greeters and extra module crates to `output`: the set
/// the first test here builds, so later tests find it in the suite's cache.
fn greeters_build(output: &Path) -> Vec<String> {
    let spec = format!("fixture-greeters={}", fixture("fixture-greeters").display());
    let extra = format!("fixture-extra={}", fixture("fixture-extra").display());
    build_args(
        output.to_str().unwrap(),
        &[
            "--with",
            &spec,
            "--with",
            &extra,
            "--core-path",
            core_path(),
        ],
    )
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// What each crate adds: a module crate embedding a 3 MiB table is the largest contributor
/// in the manifest, the `finished` event and the host's own `build-info --json`; a
/// `--max-size` under the host's size refuses it (exit 1, naming the crate) and leaves the
/// previous host, manifest and lock byte for byte.
#[test]
fn a_crate_with_a_large_table_is_the_largest_contributor_and_max_size_refuses_the_host() {
    let root = TestRoot::new();
    let source = "static TABLE: [u8; 3145728] = *include_bytes!(\"table.bin\");\n\
        #[derive(serde::Deserialize)]\nstruct Big {}\n\
        impl xbuild_core::Module for Big {\n\
            fn validate(&self) -> Result<(), xbuild_core::BoxError> {\n\
                // An index the compiler cannot know keeps the whole table in the binary.\n\
                let i = std::hint::black_box(TABLE.len() - 1);\n\
                if TABLE[i] == 0 { return Err(\"the table is empty\".into()); }\n\
                Ok(())\n\
            }\n\
        }\nxbuild_core::register_module!(\"big.table\", Big);\n";
    let big = root.path_crate("big-table", "", &[("src/lib.rs", source)]);
    // Not zeros: a zeroed static goes to .bss and costs the file nothing.
    let table: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i % 251) as u8 + 1)
        .collect();
    std::fs::write(big.join("src/table.bin"), &table).unwrap();
    let output = output_in(&root);
    let spec = format!("big-table={}", big.display());
    let built = xbuild(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &spec]),
    )
    .success();

    let manifest = manifest(&output);
    let sizes = &manifest["sizes"];
    assert_eq!(sizes["crates"][0]["crate"], "big-table", "{sizes:#}");
    assert!(sizes["crates"][0]["bytes"].as_u64().unwrap() >= table.len() as u64);
    assert_eq!(
        sizes["file_bytes"],
        std::fs::metadata(&output).unwrap().len()
    );
    let finished = events(&built)
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(&finished["sizes"], sizes);
    let info = Command::new(&output)
        .args(["build-info", "--json"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(&info["sizes"], sizes, "the host knows its own sizes");
    let text = Command::new(&output).arg("build-info").output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("(largest crates: big-table 3.0 MiB,"),
        "{text}"
    );

    let lock = root.path().join("out/host.lock");
    let files = [
        output.clone(),
        root.path().join("out/host.manifest.json"),
        lock,
    ];
    let before = files.clone().map(|p| std::fs::read(p).unwrap());
    let limit = (sizes["file_bytes"].as_u64().unwrap() - 1).to_string();
    let refused = xbuild(
        &root,
        &build_args(
            output.to_str().unwrap(),
            &["--with", &spec, "--max-size", &limit],
        ),
    )
    .code(1);
    let error = events(&refused)
        .into_iter()
        .find(|e| e["event"] == "error")
        .unwrap();
    // The sizes move with the compiler; the limit, the output and the largest crate do not.
    let message = error["message"]
        .as_str()
        .unwrap()
        .replace(&limit, "[LIMIT]");
    snapbox::assert_data_eq!(
        redact_build(&message, &root),
        snapbox::str![
            "the new host is [..] MiB ([..] bytes), over the limit of [..] MiB ([LIMIT] bytes), so `[ROOT]/out/host` was left as it was; the largest contributors: big-table 3.0 MiB, [..]"
        ]
    );
    snapbox::assert_data_eq!(
        redact_build(
            &serde_json::to_string_pretty(&error["help"]).unwrap(),
            &root
        ),
        snapbox::str![[r#"
[
  "leave out or replace the largest crates (`xbuild build -v` lists what each adds), or raise --max-size (`max-size` in a spec)"
]
"#]]
    );
    for (file, before) in files.iter().zip(&before) {
        assert!(
            std::fs::read(file).unwrap() == *before,
            "`{}` changed",
            file.display()
        );
    }
    // A size that is not one is a usage error naming the flag.
    let bad = xbuild(
        &root,
        &build_args(output.to_str().unwrap(), &["--max-size", "lots"]),
    )
    .code(2);
    snapbox::assert_data_eq!(
        redact_build(&bad.stderr, &root),
        snapbox::str![[r#"
error: invalid value 'lots' for '--max-size <SIZE>': `lots` does not start with a number; give a size such as `12MiB`, `500KB` or a number of bytes

For more information, try '--help'.

"#]]
    );
}

/// The leak audit: a module whose start leaves a thread running after stop, and one that
/// keeps a file open after cleanup, fail the host's selftest, each named with what it
/// left; a module that opts out is reported as skipped, not failed.
#[test]
fn selftest_names_modules_that_leave_a_thread_or_a_file_behind() {
    let root = TestRoot::new();
    let threads = "use std::sync::atomic::{AtomicBool, Ordering};\n\
        static STOP: AtomicBool = AtomicBool::new(false);\n\
        #[derive(serde::Deserialize)]\nstruct Spinner {}\n\
        impl xbuild_core::Module for Spinner {}\n\
        impl xbuild_core::App for Spinner {\n\
            fn start(&mut self) -> Result<(), xbuild_core::BoxError> {\n\
                std::thread::Builder::new().name(\"spinner-worker\".into()).spawn(|| {\n\
                    while !STOP.load(Ordering::Relaxed) { std::thread::sleep(std::time::Duration::from_millis(50)); }\n\
                })?;\n\
                Ok(())\n\
            }\n\
            // Forgets to tell its worker to stop.\n\
            fn stop(&mut self) -> Result<(), xbuild_core::BoxError> { Ok(()) }\n\
        }\nxbuild_core::register_module!(\"spinner\", Spinner as dyn xbuild_core::App);\n";
    let files = "#[derive(serde::Deserialize)]\nstruct Hoarder { #[serde(skip)] held: Vec<std::fs::File> }\n\
        impl xbuild_core::Module for Hoarder {\n\
            fn provision(&mut self, _: &mut xbuild_core::Context<'_>) -> Result<(), xbuild_core::BoxError> {\n\
                self.held.push(std::fs::File::open(\"/proc/self/status\")?);\n\
                Ok(())\n\
            }\n\
            // Keeps the file past cleanup, in a place nothing frees.\n\
            fn cleanup(&mut self) -> Result<(), xbuild_core::BoxError> {\n\
                std::mem::forget(std::mem::take(&mut self.held));\n\
                Ok(())\n\
            }\n\
        }\nxbuild_core::register_module!(\"hoard.files\", Hoarder);\n\
        #[derive(serde::Deserialize)]\nstruct Remote {}\n\
        impl xbuild_core::Module for Remote {}\n\
        xbuild_core::register_module!(\"hoard.remote\", Remote, selftest = skip(\"connects to a database\"));\n";
    let spinner = root.path_crate("spinner-mod", "", &[("src/lib.rs", threads)]);
    let hoarder = root.path_crate("hoarder-mod", "", &[("src/lib.rs", files)]);
    let output = output_in(&root);
    let args = [
        format!("spinner-mod={}", spinner.display()),
        format!("hoarder-mod={}", hoarder.display()),
    ];
    let built = xbuild(
        &root,
        &build_args(
            output.to_str().unwrap(),
            &["--with", &args[0], "--with", &args[1], "--skip-selftest"],
        ),
    );
    built.success();
    let ran = Command::new(&output).arg("selftest").output().unwrap();
    let stdout = String::from_utf8(ran.stdout).unwrap();
    assert_eq!(ran.status.code(), Some(1), "{stdout}");
    // The whole report: both leaks named with what each left, the opt-out said, nothing
    // else failed.
    snapbox::assert_data_eq!(
        stdout,
        snapbox::str![[r#"
FAIL module `hoard.files` (hoarder-mod 0.1.0): leaks: after its cleanup it left file descriptor [..] still open (/proc/[..]/status); stop what it starts and close what it opens (in stop or cleanup)
FAIL module `spinner` (spinner-mod 0.1.0): leaks: after its cleanup (and its start and stop) it left thread `spinner-worker` (tid [..]) still running; stop what it starts and close what it opens (in stop or cleanup)
SKIP leak audit of module `hoard.remote`: its registration opts out: connects to a database
selftest: 2 expected crates checked, 3 modules instantiated, 0 need a config, 0 left nothing behind, 2 problems

"#]]
    );
    let json = Command::new(&output)
        .args(["selftest", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let outcome = |id: &str| {
        report["audit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["module"] == id)
            .map(|a| a["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome("spinner").as_deref(), Some("leaked"));
    assert_eq!(outcome("hoard.files").as_deref(), Some("leaked"));
    assert_eq!(outcome("hoard.remote").as_deref(), Some("skipped"));
}

/// A build's output with what moves from run to run written as placeholders: the test's
/// folder `[ROOT]`, the suite's shared cache `[CACHE]`, times and hashes.
fn redact_build(text: &str, root: &TestRoot) -> String {
    let cache = crate::support::xbuild::cache_dir();
    redact(
        &text.replace(cache.to_str().expect("UTF-8 cache path"), "[CACHE]"),
        root.path(),
    )
}

//! xbuild as users get it: installed with `cargo install`, run from a directory that has
//! nothing to do with its source tree (which is gone), giving byte-identical hosts for the
//! same inputs, and keeping a bounded result cache that one xbuild at a time writes to.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::{TestRoot, module_source};
use crate::support::xbuild::{
    XBUILD, build_args, cache_dir, events, installed_xbuild, manifest, steps, xbuild,
    xbuild_command,
};
use crate::support::{Ran, Spawned, run, sha256};

#[test]
fn an_installed_xbuild_builds_hosts_from_anywhere_with_its_source_tree_gone() {
    let root = TestRoot::new();
    let installed = installed_xbuild();

    let version = run(installed.to_str().unwrap(), &["--version"]).success();
    // The version moves with each release; what it says of the core it carries does not.
    snapbox::assert_data_eq!(
        version.stdout,
        snapbox::str![[r#"
xbuild [..]
xbuild's crates: carried in this binary (xbuild-core [..], xbuild-http [..], xbuild-standard [..]), unpacked into the xbuild cache

"#]]
    );

    // The default build: the standard modules, from the copy the binary carries.
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run_installed = |args: &[&str]| {
        Ran::from_output(
            Command::new(installed)
                .args(args)
                .current_dir(&elsewhere)
                .env("TMPDIR", root.tmp())
                .envs(crate::support::xbuild::shared_cache())
                .env_remove("XBUILD_CORE_PATH")
                .output()
                .unwrap(),
        )
    };
    let built = run_installed(&["--output", "host", "--message-format", "json"]).success();
    // Compiled and selftested, or (a rerun of the suite with nothing changed: the cache
    // outlives a run) the same build ID's host, selftested when it was compiled.
    let taken = steps(&built);
    assert!(
        taken.contains(&"selftest".to_owned()) || taken.contains(&"fresh".to_owned()),
        "{taken:?}"
    );
    let host = elsewhere.join("host");
    assert_eq!(
        xbuild_cli::elf::dynamic_dependencies(&host).unwrap(),
        Vec::<String>::new()
    );
    run(host.to_str().unwrap(), &["selftest"]).success();
    // The standard modules pass the leak audit, the http app started and stopped on an
    // ephemeral port; none is skipped.
    let report = run(host.to_str().unwrap(), &["selftest", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    let audit = report["audit"].as_array().unwrap();
    assert!(audit.iter().any(|a| a["module"] == "http"), "{report:#}");
    assert!(audit.iter().all(|a| a["outcome"] == "clean"), "{report:#}");
    let manifest = manifest(&host);
    assert_eq!(manifest["modules"][0]["crate"], "xbuild-http");
    assert_eq!(
        manifest["modules"][0]["source"],
        format!("embedded in xbuild {}", xbuild_cli::VERSION)
    );
    let listed = run(host.to_str().unwrap(), &["list-modules"]).success();
    assert!(
        listed.stdout.contains("http.handlers.file_server"),
        "{}",
        listed.stdout
    );

    // Offline, once the crates are cached.
    run_installed(&["--output", "host", "--offline", "-q"]).success();

    // Third-party modules from a registry, without the standard ones (the registry is
    // configured in the test root, which cargo finds from `elsewhere` as from any project).
    root.package("installed-mod", "1.0.0")
        .xbuild_module("installed.module")
        .publish();
    run_installed(&[
        "--no-standard",
        "--registry",
        "xtest",
        "--with",
        "installed-mod@1",
        "--output",
        "third-party",
        "-q",
    ])
    .success();
    let listed = run(
        elsewhere.join("third-party").to_str().unwrap(),
        &["list-modules"],
    )
    .success();
    assert!(
        listed.stdout.lines().any(|l| l == "installed.module"),
        "{}",
        listed.stdout
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes_whatever_tmpdir_output_or_cache() {
    let root = TestRoot::new();
    root.package("repro-mod", "1.0.0")
        .xbuild_module("repro.module")
        .publish();
    // A second cache, so the second build compiles everything on its own.
    let other_cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xbuild-cache-repro");
    let build = |name: &str, cache: &Path, extra: &[&str]| -> (PathBuf, Ran) {
        let tmp = root.path().join(format!("tmp-{name}"));
        let out_dir = root.path().join(format!("out-{name}"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::create_dir_all(&out_dir).unwrap();
        let output = out_dir.join("host");
        let mut args = build_args(
            output.to_str().unwrap(),
            &["--with", "repro-mod@1", "--registry", "xtest"],
        );
        args.extend_from_slice(extra);
        let ran = Ran::from_output(
            xbuild_command(&root, &args)
                .env("TMPDIR", &tmp)
                .env("XBUILD_CACHE_DIR", cache)
                .output()
                .unwrap(),
        )
        .success();
        (output, ran)
    };
    let (first, _) = build("a", &cache_dir(), &[]);
    let (second, _) = build("b", &other_cache, &[]);
    assert_eq!(sha256(&first), sha256(&second), "byte-identical hosts");
    assert_eq!(manifest(&first)["build_id"], manifest(&second)["build_id"]);
    assert_eq!(manifest(&first)["sha256"], sha256(&first));
    // With debug info too, which records the directory rustc ran in.
    let (dev_first, _) = build("dev-a", &cache_dir(), &["--profile", "dev"]);
    let (dev_second, _) = build("dev-b", &other_cache, &["--profile", "dev"]);
    assert_eq!(
        sha256(&dev_first),
        sha256(&dev_second),
        "byte-identical dev hosts"
    );

    // A --locked rebuild, compiled again (the cached host removed first), gives it too,
    // and leaves the lock file as it was.
    let lock = root.path().join("out-b/host.lock");
    let lock_before = std::fs::read(&lock).unwrap();
    let clean = |args: &[&str]| {
        Ran::from_output(
            Command::new(XBUILD)
                .arg("clean")
                .args(args)
                .env("XBUILD_CACHE_DIR", &other_cache)
                .output()
                .unwrap(),
        )
        .success()
    };
    // As `cargo clean --dry-run`: what would go, and nothing goes.
    let hosts_before = std::fs::read_dir(other_cache.join("hosts"))
        .unwrap()
        .count();
    snapbox::assert_data_eq!(
        clean(&["--dry-run"]).stderr,
        snapbox::str![[r#"
     Summary [..] files, [..] total
warning: no files deleted due to --dry-run

"#]]
    );
    assert_eq!(
        std::fs::read_dir(other_cache.join("hosts"))
            .unwrap()
            .count(),
        hosts_before
    );
    assert!(hosts_before > 0);
    snapbox::assert_data_eq!(
        clean(&[]).stderr,
        snapbox::str![[r#"
     Removed [..] files, [..] total

"#]]
    );
    assert!(!other_cache.join("hosts").exists());
    let tmp = root.path().join("tmp-c");
    std::fs::create_dir_all(&tmp).unwrap();
    let args = build_args(
        second.to_str().unwrap(),
        &["--with", "repro-mod@1", "--registry", "xtest", "--locked"],
    );
    let locked = Ran::from_output(
        xbuild_command(&root, &args)
            .env("TMPDIR", &tmp)
            .env("XBUILD_CACHE_DIR", &other_cache)
            .output()
            .unwrap(),
    )
    .success();
    assert!(steps(&locked).contains(&"compile".to_owned()));
    assert_eq!(sha256(&second), sha256(&first));
    assert_eq!(std::fs::read(&lock).unwrap(), lock_before);

    // Over the cap, the cache is pruned after the build; the build itself is unharmed.
    let mut args = build_args(
        second.to_str().unwrap(),
        &["--with", "repro-mod@1", "--registry", "xtest"],
    );
    args.push("--locked");
    let capped = Ran::from_output(
        xbuild_command(&root, &args)
            .env("TMPDIR", &tmp)
            .env("XBUILD_CACHE_DIR", &other_cache)
            .env("XBUILD_CACHE_MAX", "1MiB")
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(steps(&capped).last().unwrap(), "prune", "{}", capped.stdout);
    assert!(!other_cache.join("hosts").exists() || dir_is_empty(&other_cache.join("hosts")));
    assert_eq!(sha256(&second), sha256(&first));
    run(second.to_str().unwrap(), &["selftest"]).success();
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn a_repeated_build_comes_from_the_cache_without_compiling() {
    let root = TestRoot::new();
    let output = root.path().join("out/host");
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let module = root.path_crate(
        "cached-mod",
        "",
        &[("src/lib.rs", &module_source("cached.module"))],
    );
    let spec = format!("cached-mod={}", module.display());
    let args = build_args(output.to_str().unwrap(), &["--with", &spec]);
    xbuild(&root, &args).success();
    let first = manifest(&output);
    let again = xbuild(&root, &args).success();
    assert_eq!(
        steps(&again),
        ["generate", "resolve", "fresh", "install"],
        "{}",
        again.stdout
    );
    let finished = events(&again)
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(finished["cached"], true);
    assert_eq!(manifest(&output), first);
    run(output.to_str().unwrap(), &["selftest"]).success();

    // A bad cap is a usage error, before anything runs.
    let bad = Ran::from_output(
        xbuild_command(&root, &args)
            .env("XBUILD_CACHE_MAX", "lots")
            .output()
            .unwrap(),
    )
    .code(2);
    snapbox::assert_data_eq!(
        bad.stderr,
        snapbox::str![[r#"
error: invalid XBUILD_CACHE_MAX: `lots` does not start with a number
help: give a size such as `2GiB`, `500MB` or a number of bytes

"#]]
    );
    // A file where the cache's directory should be is one too, naming where it came from.
    let file = root.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let on_a_file = Ran::from_output(
        xbuild_command(&root, &args)
            .env("XBUILD_CACHE_DIR", &file)
            .output()
            .unwrap(),
    )
    .code(2);
    snapbox::assert_data_eq!(
        crate::support::redact(&on_a_file.stderr, root.path()),
        snapbox::str![[r#"
error: the xbuild cache `[ROOT]/not-a-directory` (from XBUILD_CACHE_DIR) is a file, not a directory
help: point XBUILD_CACHE_DIR at a directory, or remove the file

"#]]
    );
}

#[test]
fn concurrent_xbuilds_on_one_cache_and_one_output_take_turns() {
    let root = TestRoot::new();
    let release = root.path().join("release-the-build");
    let build_rs = "fn main() {\n\
        let marker = std::path::PathBuf::from(std::env::var(\"HOLD_UNTIL\").unwrap());\n\
        while !marker.exists() { std::thread::sleep(std::time::Duration::from_millis(50)); }\n\
        println!(\"cargo::rerun-if-env-changed=HOLD_UNTIL\");\n}\n";
    let held = root.path_crate(
        "held-mod",
        "",
        &[
            ("src/lib.rs", &module_source("held.module")),
            ("build.rs", build_rs),
        ],
    );
    let output = root.path().join("out/host");
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let held_spec = format!("held-mod={}", held.display());
    let mut first = xbuild_command(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &held_spec]),
    );
    first.env("HOLD_UNTIL", &release);
    let mut first = Spawned::new(first);
    first.wait_for_line("\"step\":\"compile\"");

    let other = root.path_crate(
        "other-mod",
        "",
        &[("src/lib.rs", &module_source("other.module"))],
    );
    let other_spec = format!("other-mod={}", other.display());
    let mut second = Spawned::new(xbuild_command(
        &root,
        &build_args(output.to_str().unwrap(), &["--with", &other_spec]),
    ));
    second.wait_for_line("\"step\":\"wait\"");
    std::fs::write(&release, "").unwrap();
    let patience = crate::support::PATIENCE * 10;
    first.finish_within(patience).success();
    second.finish_within(patience).success();

    // The second build was the last to install: binary and manifest belong together.
    let manifest = manifest(&output);
    assert_eq!(manifest["sha256"], sha256(&output));
    assert_eq!(manifest["modules"][0]["crate"], "other-mod");
    run(output.to_str().unwrap(), &["selftest"]).success();
}

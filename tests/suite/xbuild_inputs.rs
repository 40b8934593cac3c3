//! The xbuild CLI's inputs and resolution: bad specs and flags, registry versions, yanked
//! crates, core skew, non-modules, features and replacements. Real cargo, a throwaway
//! registry.

use crate::support::registry::{TestRoot, module_source};
use crate::support::xbuild::{build_args, manifest, output_in, steps, xbuild, xbuild_command};
use crate::support::{Ran, redact};

#[test]
fn bad_inputs_are_named_usage_errors_and_nothing_runs_or_is_written() {
    let root = TestRoot::new();
    let not_a_crate = root.path().join("empty-dir");
    std::fs::create_dir_all(&not_a_crate).unwrap();
    let other_name = root.path_crate("other-name", "", &[("src/lib.rs", "")]);
    let existing_dir = root.path().join("a-dir");
    std::fs::create_dir_all(&existing_dir).unwrap();
    let a_file = root.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let under_a_file = a_file.join("dir/host");
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
            vec!["--output", under_a_file.to_str().unwrap()],
            "cannot be created: `",
        ),
        (
            vec!["--locked"],
            "--locked needs the lock file of a previous build",
        ),
        (vec!["--bogus"], "--bogus"),
    ];
    // Every message whole, as the user sees it: the table's texts say what each case is
    // about; the transcript says everything else printed is right too.
    let mut transcript = String::new();
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
        transcript += &format!("$ xbuild {args:?}\n{}\n", out.stderr);
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
    let transcript = transcript.replace(root.path().to_str().unwrap(), "[ROOT]");
    snapbox::assert_data_eq!(
        transcript,
        snapbox::str![[r#"
$ xbuild ["--with", ""]
error: --with: empty module spec
help: write `crate`, `crate@1.2` or `crate=../path`

$ xbuild ["--with", "a;b"]
error: --with: invalid crate name `a;b` in `a;b`: it contains a character other than ASCII letters, digits, `-` and `_`
help: crate names are ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters

$ xbuild ["--with", "foo/"bar"]
error: --with: invalid crate name `foo"bar` in `foo"bar`: it contains a character other than ASCII letters, digits, `-` and `_`
help: crate names are ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters

$ xbuild ["--with", "foo/nname = /"x/""]
error: --with: invalid crate name `foo/nname ` in `foo/nname = "x"`: it contains a character other than ASCII letters, digits, `-` and `_`
help: crate names are ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters

$ xbuild ["--with", "../etc"]
error: --with: `../etc` is a path, but a module spec starts with the crate's name
help: write `CRATE=../etc`, e.g. `my-module=../etc`

$ xbuild ["--with", "a/../../b=./x"]
error: --with: invalid crate name `a/../../b` in `a/../../b=./x`: it contains a character other than ASCII letters, digits, `-` and `_`
help: crate names are ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters

$ xbuild ["--with", "foo@1.0/"/n[patch]"]
error: --with: invalid version requirement `1.0"/n[patch]` in `foo@1.0"/n[patch]`: `/"` is not allowed in a version requirement
help: use cargo's syntax, e.g. `1.2`, `=1.2.3`, `~1.2` or `>=1, <2`

$ xbuild ["--with", "foo@banana"]
error: --with: invalid version requirement `banana` in `foo@banana`: unexpected character 'b' while parsing major version number
help: use cargo's syntax, e.g. `1.2`, `=1.2.3`, `~1.2` or `>=1, <2`

$ xbuild ["--with", "foo=bar"]
error: --with: ambiguous replacement `bar` in `foo=bar`
help: write `./bar` for a directory or `bar@VERSION` for a crate

$ xbuild ["--with", "foo=./does/not/exist"]
error: `foo=./does/not/exist`: path `./does/not/exist` does not exist or cannot be read (No such file or directory (os error 2))
help: give the directory holding the crate's Cargo.toml

$ xbuild ["--with", "foo=../../../../../../../../nope"]
error: `foo=../../../../../../../../nope`: path `../../../../../../../../nope` does not exist or cannot be read (No such file or directory (os error 2))
help: give the directory holding the crate's Cargo.toml

$ xbuild ["--with", "foo=[ROOT]/empty-dir"]
error: `foo=[ROOT]/empty-dir`: cannot read `[ROOT]/empty-dir/Cargo.toml`: No such file or directory (os error 2)
help: give the directory holding the crate's Cargo.toml (a crate, not a workspace root)

$ xbuild ["--with", "foo=[ROOT]/crates/other-name"]
error: `foo=[ROOT]/crates/other-name`: the crate at `[ROOT]/crates/other-name` is named `other-name`, not `foo`
help: write `other-name=[ROOT]/crates/other-name`

$ xbuild ["--with", "foo", "--with", "foo@2"]
error: crate `foo` is given twice (`--with foo@2` and an earlier `--with foo`)
help: keep one

$ xbuild ["--with", "xbuild-core"]
error: --with: `xbuild-core` names xbuild-core, which every host already uses
help: to build against another core, pass `--core-path DIR`

$ xbuild ["--replace", "foo@1"]
error: --replace: `foo@1` has no replacement
help: `--replace` takes `crate=../path` or `crate=other-crate@1.2`

$ xbuild ["--with", "foo", "--replace", "foo=bar@1"]
error: --replace `foo=bar@1`: `foo` is also a module (`--with`)
help: write `--with foo=bar@1` instead

$ xbuild ["--with", "foo", "--features", "bar/x"]
error: --features `bar/x`: `bar` is not one of the `--with` crates
help: add `--with bar`, or fix the crate name

$ xbuild ["--with", "foo", "--features", "foo/x;y"]
error: invalid feature name `x;y`
help: use ASCII letters, digits and `-_+.`

$ xbuild ["--with", "foo", "--features", "nocrate"]
error: --features `nocrate` does not name a crate
help: write `CRATE/FEATURE`

$ xbuild ["--profile", "fast"]
error: unknown profile `fast`
help: use `release` (the default) or `dev`

$ xbuild ["--registry", "a b"]
error: invalid registry name `a b`
help: use ASCII letters, digits and `-_`

$ xbuild ["--target", "x86_64;rm"]
error: invalid target triple `x86_64;rm`
help: use ASCII letters, digits and `-_.`

$ xbuild ["--core-path", "/nonexistent/core"]
error: xbuild-core not found at `/nonexistent/core` (No such file or directory (os error 2))
help: pass --core-path with the directory of the xbuild-core crate

$ xbuild ["--output", "[ROOT]/a-dir"]
error: --output `[ROOT]/a-dir` is an existing directory
help: give a file path, e.g. `[ROOT]/a-dir/host`

$ xbuild ["--output", "[ROOT]/a-file/dir/host"]
error: the directory of --output `[ROOT]/a-file/dir/host` cannot be created: `[ROOT]/a-file` is a file
help: choose an --output whose directories are directories

$ xbuild ["--locked"]
error: --locked needs the lock file of a previous build at `[ROOT]/host.lock`, and there is none
help: build once without --locked; xbuild writes it

$ xbuild ["--bogus"]
error: unexpected argument '--bogus' found

Usage: xbuild-for-tests --no-standard

For more information, try '--help'.


"#]]
    );
}

/// `xbuild --help` whole: every command's summary and every option, as a user reads them
/// (each summary a complete sentence, short enough for one line).
#[test]
fn help_lists_every_command_and_option() {
    let help = Ran::from_output(
        std::process::Command::new(crate::support::xbuild::XBUILD)
            .arg("--help")
            .env_remove("XBUILD_CORE_PATH")
            .output()
            .unwrap(),
    )
    .success();
    snapbox::assert_data_eq!(
        help.stdout,
        snapbox::str![[r#"
Compose one static host binary from xbuild module crates, at build time.

`xbuild --with CRATE@1.2 --with other=../path` generates a temporary cargo workspace whose main.rs names every module crate, compiles it and writes the host binary and a manifest beside it. `build` is the default subcommand.

Usage: xbuild-for-tests [OPTIONS]
       xbuild-for-tests <COMMAND>

Commands:
  build       Build a host (the default)
  list-known  List the curated index of known module crates
  search      Search the curated index of module crates by name, module ID or description
  init        Write a commented spec file (xbuild.toml) to start from
  new         Create a module crate ready to test and publish: one module and one host command (or, with `--template handler`, an HTTP handler), tests, README and CI workflow
  run         Inside a module crate: build a host with it (and `--with` extras) in the xbuild cache and run it with the arguments after `--`. Rebuilds are incremental
  lint        Check a module crate as a curated index would before listing it: IDs in its namespace, registers something, a compatible xbuild-core, unwinding, docs
  update      Resolve the spec's distributions again and rewrite the lock, as `cargo update`: all crates, or only the ones named (and what they need)
  verify      Check a host against its manifest: sha256, build ID, modules, static linking
  matrix      Print the spec's distribution × target pairs as a CI job matrix (one JSON line)
  clean       Remove the hosts kept in the xbuild cache (XBUILD_CACHE_DIR); compiled dependencies stay, so the next build is still quick
  help        Print this message or the help of the given subcommand(s)

Options:
  -f, --file <PATH>
          Build the distributions of a spec file (e.g. xbuild.toml) instead of one host described by flags; the lock goes beside it as xbuild.lock

      --dist <NAME>
          With -f: build only this distribution. Repeatable

      --from <HOST>
          Start from an existing host: its module set, versions and settings, read from the binary; `--with` adds or changes modules, `--without` drops them

      --without <CRATE>
          With --from: leave this module crate out. Repeatable

      --upgrade
          With --from: resolve every crate afresh instead of keeping the host's versions

      --with <SPEC>
          A module crate: `[registry:]crate[@version-req][=replacement]`; the replacement is a path or `other-crate@version`; `registry:` takes this crate from that registry (`crates-io:` for crates.io) whatever `--registry` says. Repeatable

      --replace <SPEC>
          Patch a dependency without adding it as a module: `crate=path` or `crate=other-crate@version`. Repeatable

      --features <CRATE/FEATURE>
          Enable a feature of a module crate: `crate/feature`. Repeatable

  -o, --output <PATH>
          Where to write the host binary (default: ./host); the manifest goes beside it as `PATH.manifest.json`

      --registry <NAME>
          Cargo alternative registry (from cargo's config) to take the `--with` crates from, unless one names its own (`--with corp:crate@1`)

      --target <TRIPLE>
          Target triple (default: this machine's). With -f: build only this one of each distribution's targets

      --profile <NAME>
          Cargo profile: `release` (the default) or `dev`

      --locked
          Build with exactly the resolution in the lock file and let nothing change: fails (exit 2) if the spec or the resolution would, naming what

      --lockfile <PATH>
          The lock file (default: xbuild.lock beside the spec file; `OUTPUT.lock` for a build from flags)

      --sbom
          Also write a CycloneDX SBOM beside the output (`OUTPUT.cdx.json`). Every host carries its crate list in its `.dep-v0` section either way

      --max-size <SIZE>
          Fail the build (exit 1, the output left as it was) if the host is larger than SIZE (`12MiB`, `500KB`, bytes), naming the crates that add the most

      --offline
          Do not touch the network (passed to cargo)

      --keep-workdir
          Leave the generated workspace in place and print where it is

      --skip-selftest
          Do not run `OUTPUT selftest` after building (e.g. when cross-compiling)

      --no-standard
          Leave out the standard modules (the HTTP app and its handlers)

      --no-static
          Link dynamically; by default Linux hosts are static (`+crt-static`)

      --core-path <DIR>
          Directory of an xbuild-core crate to build against, with the standard modules from DIR/../modules (default: the copies carried in this xbuild, or the registry's at this xbuild's version; `xbuild --version` says which)
          
          [env: XBUILD_CORE_PATH]

  -q, --quiet
          Print only errors

  -v, --verbose
          Also print cargo's own output

      --message-format <MESSAGE_FORMAT>
          `json`: one JSON event per line on stdout, for CI
          
          [default: human]
          [possible values: human, json]

      --color <WHEN>
          Colour in xbuild's and rustc's messages (default: auto, which is never for pipes and files, or what NO_COLOR and CARGO_TERM_COLOR say)
          
          [possible values: auto, always, never]

  -h, --help
          Print help (see a summary with '-h')

  -V, --version
          Print version

Environment:
  XBUILD_CACHE_DIR  the cache: compiled dependencies, xbuild's own crates, built hosts (default: $XDG_CACHE_HOME/xbuild or ~/.cache/xbuild)
  XBUILD_CACHE_MAX  cap on the cache's size, least recently used hosts pruned first (default: 2GiB)
  XBUILD_CORE_PATH  same as --core-path
  CARGO             the cargo to run (default: cargo)
  NO_COLOR, CARGO_TERM_COLOR  colour, when --color is not given

"#]]
    );
}

/// A directory or a missing file where a file is wanted is named as what it is, with what
/// to give instead (exit 2, nothing run).
#[test]
fn a_directory_or_a_missing_file_given_for_a_file_is_named() {
    let root = TestRoot::new();
    let dir = root.path().join("some-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.to_str().unwrap();
    let missing = root.path().join("missing");
    let missing = missing.to_str().unwrap();
    let mut transcript = String::new();
    for args in [
        vec!["verify", dir],
        vec!["verify", missing],
        vec!["build", "-f", dir],
        vec!["matrix", "-f", dir],
        vec!["update", "-f", missing],
    ] {
        let out = xbuild(&root, &args).code(2);
        transcript += &format!("$ xbuild {}\n{}\n", args.join(" "), out.stderr);
    }
    snapbox::assert_data_eq!(
        redact(&transcript, root.path()),
        snapbox::str![[r#"
$ xbuild verify [ROOT]/some-dir
error: `[ROOT]/some-dir` is a directory, not a host
help: give the path of a host binary xbuild built

$ xbuild verify [ROOT]/missing
error: cannot read the host `[ROOT]/missing`: No such file or directory (os error 2)
help: give the path of a host binary xbuild built

$ xbuild build -f [ROOT]/some-dir
error: cannot read the spec file `[ROOT]/some-dir`: Is a directory (os error 21)
help: give the path of the spec file, e.g. `DIR/xbuild.toml`

$ xbuild matrix -f [ROOT]/some-dir
error: cannot read the spec file `[ROOT]/some-dir`: Is a directory (os error 21)
help: give the path of the spec file, e.g. `DIR/xbuild.toml`

$ xbuild update -f [ROOT]/missing
error: cannot read the spec file `[ROOT]/missing`: No such file or directory (os error 2)
help: `xbuild init` writes one


"#]]
    );
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
    snapbox::assert_data_eq!(
        redact(&missing.stderr, root.path()),
        snapbox::str![[r#"
error: no version of `versioned-mod` matches `^9`; versions that exist include 2.0.0, 1.3.0, 1.2.0 and more
help: pick one of the versions that exist

"#]]
    );
    assert!(!steps(&missing).contains(&"compile".to_owned()));
    let unknown = xbuild(
        &root,
        &build_args(out_str, &["--registry", "xtest", "--with", "no-such-mod"]),
    )
    .code(2);
    snapbox::assert_data_eq!(
        redact(&unknown.stderr, root.path()),
        snapbox::str![[r#"
error: crate `no-such-mod` was not found in registry `xtest`
help: check the spelling, or pass `--registry NAME` if it is published to another registry

"#]]
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
    snapbox::assert_data_eq!(
        redact(&skew.stderr, root.path()),
        snapbox::str![[r#"
error: two versions of xbuild-core would be linked into the host:
  - xbuild-core 0.1.0, wanted by the host (this xbuild's core)
  - xbuild-core 0.2.0, wanted by `old-api-mod` 1.0.0
help: modules must share one xbuild-core; upgrade the modules built for the other version, or build with `--core-path` pointing at a core they share

"#]]
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
    snapbox::assert_data_eq!(
        redact(&plain.stderr, root.path()),
        snapbox::str![[r#"
error: `plain-lib` 1.0.0 is not an xbuild module: it does not depend on xbuild-core, so it cannot register modules
help: check the crate name, or ask its author to register its modules with `xbuild_core::register_module!`

"#]]
    );
    assert!(!steps(&plain).contains(&"compile".to_owned()));
    assert!(!output.exists());
    assert!(root.leftover_workspaces().is_empty());
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
    // `helper-lib` registers a module but was not asked for: it is a module crate of the
    // host all the same, so the manifest and build-info name it.
    let manifest = manifest(&output);
    let helper = manifest["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["crate"] == "helper-lib")
        .unwrap_or_else(|| panic!("helper-lib missing from {manifest}"));
    assert_eq!(helper["version"], "1.0.5");
    assert_eq!(helper["ids"], serde_json::json!(["helper.patched"]));
    let info = crate::support::run(output.to_str().unwrap(), &["build-info"]).success();
    assert!(
        info.stdout.contains("  helper-lib 1.0.5\n"),
        "{}",
        info.stdout
    );
}

/// Runs a build expected to be refused at resolution (exit 2, before compiling) and returns
/// its stderr.
fn refused(root: &TestRoot, extra: &[&str]) -> String {
    let output = output_in(root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let ran = xbuild(root, &build_args(output.to_str().unwrap(), extra)).code(2);
    assert!(!steps(&ran).contains(&"compile".to_owned()), "{extra:?}");
    assert_eq!(ran.stderr.matches("error:").count(), 1, "{}", ran.stderr);
    let error = crate::support::xbuild::events(&ran)
        .into_iter()
        .find(|e| e["event"] == "error")
        .expect("an error event");
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["help"].as_array().is_some_and(|h| !h.is_empty()),
        "help is data in JSON: {error}"
    );
    assert!(!ran.stderr.contains('\x1b'), "no colour in a pipe");
    ran.stderr
}

#[test]
fn resolution_failures_name_the_cause_and_what_to_do() {
    let root = TestRoot::new();
    root.package("yank-mod", "1.2.0")
        .xbuild_module("yank.old")
        .publish();
    root.package("yank-mod", "1.3.0")
        .xbuild_module("yank.new")
        .yanked()
        .publish();
    root.package("core9-mod", "1.0.0")
        .crates_io_dep("xbuild-core", "9", &[])
        .publish();
    root.package("feat-mod", "1.0.0")
        .xbuild_module("feat.module")
        .feature("loud")
        .publish();
    let xtest = |extra: &[&str]| {
        let mut args = vec!["--registry", "xtest"];
        args.extend_from_slice(extra);
        refused(&root, &args)
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            xtest(&["--with", "yank-mod@=1.3.0"]),
            &[
                "error: `yank-mod` 1.3.0 matches `=1.3.0` but is yanked",
                "help: pick a version that is not yanked",
            ],
        ),
        (
            xtest(&["--with", "core9-mod"]),
            &[
                "error: `core9-mod` 1.0.0 needs xbuild-core `^9`, but this xbuild builds hosts with xbuild-core 0.1.0",
            ],
        ),
        (
            xtest(&["--with", "feat-mod", "--features", "feat-mod/nope"]),
            &[
                "error: `feat-mod` has no feature `nope`",
                "help: `feat-mod` has `loud`",
            ],
        ),
        (
            xtest(&["--with", "xbuild-htp"]),
            &[
                "error: crate `xbuild-htp` was not found in registry `xtest`",
                "help: did you mean `xbuild-http`?",
            ],
        ),
        (
            refused(&root, &["--registry", "nosuchreg", "--with", "some-mod"]),
            &[
                "error: registry `nosuchreg` is not configured for cargo",
                "help: declare it where cargo finds its configuration, `.cargo/config.toml`",
                "[registries.nosuchreg]",
            ],
        ),
        (
            refused(
                &root,
                &["--offline", "--with", "xbuild-offline-never-downloaded"],
            ),
            &[
                "error: crate `xbuild-offline-never-downloaded` was not found",
                "help: build once without --offline",
            ],
        ),
        (
            refused(
                &root,
                &[
                    "--with",
                    &format!(
                        "fixture-extra={}",
                        crate::support::xbuild::fixture("fixture-extra").display()
                    ),
                ],
            ),
            &[
                "depends on the xbuild-core at `",
                "help: build against that core with `--core-path",
            ],
        ),
    ];
    let mut transcript = String::new();
    for (stderr, expected) in cases {
        for text in expected {
            assert!(stderr.contains(text), "wanted {text:?} in\n{stderr}");
        }
        transcript += &stderr;
        transcript.push('\n');
    }
    // Every refusal whole: the one error, its help, nothing of cargo's raw output.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_str()
        .unwrap();
    snapbox::assert_data_eq!(
        crate::support::redact(&transcript, root.path()).replace(repo, "[REPO]"),
        snapbox::str![[r#"
error: `yank-mod` 1.3.0 matches `=1.3.0` but is yanked: its publisher withdrew it
help: pick a version that is not yanked; a lock file that already names the yanked version keeps working with --locked

error: `core9-mod` 1.0.0 needs xbuild-core `^9`, but this xbuild builds hosts with xbuild-core 0.1.0
help: use a version of `core9-mod` made for xbuild-core 0.1.0, or an xbuild whose xbuild-core it fits

error: `feat-mod` has no feature `nope`
help: `feat-mod` has `loud`

error: crate `xbuild-htp` was not found in registry `xtest`
help: did you mean `xbuild-http`? (`xbuild list-known` lists known module crates)
help: check the spelling, or pass `--registry NAME` if it is published to another registry

error: registry `nosuchreg` is not configured for cargo
help: declare it where cargo finds its configuration, `.cargo/config.toml` in the directory xbuild runs in or a parent, or `$CARGO_HOME/config.toml`: `[registries.nosuchreg] index = "..."`

error: crate `xbuild-offline-never-downloaded` was not found
help: build once without --offline, so cargo can download it; offline, only crates already in cargo's cache can be used

error: a module crate depends on the xbuild-core at `[REPO]/core` by path, but this build uses xbuild's own copy
help: build against that core with `--core-path [REPO]/core` (the standard modules then come from its tree too), or depend on `xbuild-core = "0.1"` as published crates do


"#]]
    );
    assert!(!root.path().join("out/host").exists());
    assert!(root.leftover_workspaces().is_empty());
}

#[test]
fn cargo_habits_get_what_to_use_instead() {
    let root = TestRoot::new();
    // The answers are the command's: `--path` means a module crate to a build, the crate's
    // directory to lint; where a command has nothing to add, clap's own message stays, as
    // it does for flags no cargo command has.
    let mut transcript = String::new();
    for args in [
        &["--release"][..],
        &["build", "-p", "x"],
        &["--path", "."],
        &["--with", "lint", "--path", "."],
        &["lint", "--path", "."],
        &["lint", "--release"],
        &["--bogus"],
    ] {
        let out = xbuild(&root, args).code(2);
        transcript += &format!("$ xbuild {}\n{}\n", args.join(" "), out.stderr);
    }
    snapbox::assert_data_eq!(
        transcript,
        snapbox::str![[r#"
$ xbuild --release
error: unexpected argument `--release`
help: release is the default profile; use `--profile dev` for a dev (debug) build

$ xbuild build -p x
error: unexpected argument `-p`
help: xbuild builds one host; name module crates with `--with CRATE`

$ xbuild --path .
error: unexpected argument `--path`
help: give a local module crate as `--with CRATE=PATH`

$ xbuild --with lint --path .
error: unexpected argument `--path`
help: give a local module crate as `--with CRATE=PATH`

$ xbuild lint --path .
error: unexpected argument `--path`
help: give the crate's directory as an argument: `xbuild lint DIR`

$ xbuild lint --release
error: unexpected argument '--release' found

  tip: to pass '--release' as a value, use '-- --release'

Usage: xbuild-for-tests lint [PATH]

For more information, try '--help'.

$ xbuild --bogus
error: unexpected argument '--bogus' found

Usage: xbuild-for-tests [OPTIONS]
       xbuild-for-tests <COMMAND>

For more information, try '--help'.


"#]]
    );
}

#[test]
fn a_crate_is_replaced_by_another_crate_or_pinned_to_a_version() {
    let root = TestRoot::new();
    for version in ["1.0.0", "1.0.1"] {
        root.package("orig-lib", version)
            .xbuild_module(&format!("orig.v{}", version.replace('.', "_")))
            .publish();
    }
    root.package("fork-lib", "2.3.0")
        .xbuild_module("fork.lib")
        .feature("extra")
        .publish();
    root.package("uses-orig", "1.0.0")
        .xbuild_module("uses.orig")
        .dep("orig-lib", "1.0")
        .lib(&format!(
            "use orig_lib as _;\n{}",
            module_source("uses.orig")
        ))
        .publish();
    let output = output_in(&root);
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let out = output.to_str().unwrap();
    let ids = |replace: &str| -> Vec<String> {
        xbuild(
            &root,
            &build_args(
                out,
                &[
                    "--registry",
                    "xtest",
                    "--with",
                    "uses-orig@1",
                    "--replace",
                    replace,
                ],
            ),
        )
        .success();
        crate::support::run(out, &["list-modules", "--skip-standard"])
            .success()
            .stdout
            .lines()
            .filter(|l| l.contains('.') && !l.contains(':'))
            .map(str::to_owned)
            .collect()
    };
    // Another crate stands in for `orig-lib`: `uses-orig` links the fork's code.
    assert_eq!(ids("orig-lib=fork-lib@2.3"), ["fork.lib", "uses.orig"]);
    // The same crate at another version: a pin.
    assert_eq!(
        ids("orig-lib=orig-lib@=1.0.0"),
        ["orig.v1_0_0", "uses.orig"]
    );
    assert_eq!(
        ids("orig-lib=orig-lib@=1.0.1"),
        ["orig.v1_0_1", "uses.orig"]
    );

    let unused = refused(
        &root,
        &[
            "--registry",
            "xtest",
            "--with",
            "uses-orig@1",
            "--replace",
            "nothing-uses-me=fork-lib@2",
        ],
    );
    snapbox::assert_data_eq!(
        redact(&unused, root.path()),
        snapbox::str![[r#"
error: `--replace nothing-uses-me=...`: nothing in this build depends on `nothing-uses-me`
help: check the crate name; `xbuild --keep-workdir` and `cargo tree` in the kept workspace show what depends on what (`nothing-uses-me` may only be a dependency under some features)

"#]]
    );
}

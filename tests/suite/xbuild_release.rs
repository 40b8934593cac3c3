//! Release pipelines as CI runs them: a spec file with two distributions built into hosts
//! with manifests, SBOMs and one lock; a `--locked` rebuild; `verify` on each host (and on
//! a tampered one), `verify --rebuild`; the SBOM section read by cargo-auditable's reader;
//! and `build --from` adding a module to an existing host.

use std::path::Path;

use crate::support::registry::TestRoot;
use crate::support::xbuild::{build_args, events, manifest, steps, xbuild};
use crate::support::{Ran, redact, run, sha256, write};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The repository's `examples/xbuild.toml` and the module crate it names, copied into the
/// test's root (so nothing is written into the checkout).
fn examples_in(root: &TestRoot) -> std::path::PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dir = root.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(examples.join("xbuild.toml"), dir.join("xbuild.toml")).unwrap();
    copy_dir(&examples.join("modules"), &dir.join("modules"));
    dir
}

#[test]
fn a_spec_builds_its_distributions_with_a_lock_sboms_and_hosts_that_verify() {
    let root = TestRoot::new();
    let project = examples_in(&root);
    let spec = project.join("xbuild.toml");
    let spec = spec.to_str().unwrap();
    let ran = xbuild(&root, &["build", "-f", spec, "--message-format", "json"]).success();
    let finished: Vec<serde_json::Value> = events(&ran)
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 2, "{}", ran.stdout);
    let minimal = project.join("dist/minimal");
    let web = project.join("dist/web");
    for (host, sbom) in [(&minimal, &finished[0]), (&web, &finished[1])] {
        assert!(host.is_file());
        assert_eq!(manifest(host)["sha256"], sha256(host));
        let cdx_path = format!("{}.cdx.json", host.display());
        assert_eq!(sbom["sbom"], cdx_path.as_str());
        let cdx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cdx_path).unwrap()).unwrap();
        assert_eq!(cdx["bomFormat"], "CycloneDX");
        assert!(
            cdx["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "acme-greet"
                    && c["licenses"][0]["expression"] == "MIT OR Apache-2.0"),
            "{cdx}"
        );
    }
    // The distributions are what the spec says: names, versions, module sets.
    let version = run(minimal.to_str().unwrap(), &["version"]).success();
    assert!(
        version.stdout.starts_with("minimal 1.0.0 (xbuild host"),
        "{}",
        version.stdout
    );
    let listed = run(minimal.to_str().unwrap(), &["list-modules"]).success();
    assert!(
        listed.stdout.contains("greeters.plain"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains("http."),
        "no standard modules: {}",
        listed.stdout
    );
    let listed = run(web.to_str().unwrap(), &["list-modules"]).success();
    assert!(
        listed.stdout.contains("greeters.plain")
            && listed.stdout.contains("http.handlers.file_server")
    );
    let info = run(web.to_str().unwrap(), &["build-info", "--json"]).success();
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert!(info["dependencies"].as_u64().unwrap() > 10, "{info}");
    assert_eq!(info["sbom_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        info["distribution"]["description"],
        "The standard HTTP modules and the example greeter"
    );

    // One lock for both, which a --locked run leaves as it was, with the same bytes.
    let lock_path = project.join("xbuild.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        lock.contains("name = \"minimal\"") && lock.contains("name = \"web\""),
        "{lock}"
    );
    let before = (sha256(&minimal), sha256(&web));
    xbuild(&root, &["build", "-f", spec, "--locked"]).success();
    assert_eq!(
        (sha256(&minimal), sha256(&web)),
        before,
        "byte-identical with --locked"
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        lock,
        "the lock is stable"
    );

    // A lock whose resolution was edited by hand into something cargo cannot read: the
    // error names the lock file (not the generated workspace's Cargo.lock).
    let broken = lock.replacen("[[package]]", "[[package]", 1);
    assert_ne!(broken, lock);
    std::fs::write(&lock_path, &broken).unwrap();
    let refused = xbuild(&root, &["build", "-f", spec, "--locked"]).code(2);
    snapbox::assert_data_eq!(
        redact(&refused.stderr, root.path()),
        snapbox::str![[r#"
  Generating host workspace (1 module crate)
   Resolving dependencies with cargo metadata
error: the resolution of `minimal` on x86_64-unknown-linux-gnu in the lock file `[ROOT]/project/xbuild.lock` is not a Cargo.lock cargo can read (was it edited by hand?); cargo says:
Caused by:
  TOML parse error at line 5, column 11
    |
  5 | [[package]
    |           ^
  unclosed array table, expected `]`
help: restore `[ROOT]/project/xbuild.lock` from version control, or delete it (or run `xbuild update`) to resolve again

"#]]
    );
    std::fs::write(&lock_path, &lock).unwrap();

    // --locked refuses a spec that changed since the lock, naming what.
    let edited = std::fs::read_to_string(project.join("xbuild.toml"))
        .unwrap()
        .replacen("standard = false", "standard = false\nprofile = \"dev\"", 1);
    std::fs::write(project.join("xbuild.toml"), edited).unwrap();
    let refused = xbuild(
        &root,
        &["build", "-f", spec, "--dist", "minimal", "--locked"],
    )
    .code(2);
    snapbox::assert_data_eq!(
        redact(&refused.stderr, root.path()),
        snapbox::str![[r#"
error: --locked: distribution `minimal` changed since the lock file `[ROOT]/project/xbuild.lock` was written: `profile` changed from (default) to "dev"
help: build without --locked (or run `xbuild update`) to resolve it again

"#]]
    );

    // verify passes on each host; one changed byte is a sha256 mismatch (exit 1).
    let verified = xbuild(&root, &["verify", web.to_str().unwrap()]).success();
    // Every check, whole: what the release engineer reads.
    snapbox::assert_data_eq!(
        redact(&verified.stdout, root.path()),
        snapbox::str![[r#"
          ok sha256     [HASH]
          ok build ID   [HASH]
          ok sbom       [..] crates in .dep-v0
          ok crates     2 module crates as the host was built
          ok build info its module crates are the ones linked in
          ok core       xbuild-core 0.1.0
          ok profile    release
          ok target     x86_64-unknown-linux-gnu
          ok sizes      [..] crates measured; largest [..]
          ok modules    7 module IDs registered as listed
          ok rustc      rustc [..]
          ok static     no program interpreter, no shared libraries
    Verified `[ROOT]/project/dist/web` matches its manifest

"#]]
    );
    xbuild(&root, &["verify", minimal.to_str().unwrap()]).success();
    // A bare file name is the file in this directory, not a program looked up in PATH.
    let dist = minimal.parent().unwrap();
    let bare = crate::support::xbuild::xbuild_in(
        Path::new(crate::support::xbuild::XBUILD),
        &root,
        dist,
        &["verify", "minimal"],
    )
    .success();
    assert_eq!(
        bare.stdout.lines().last(),
        Some("    Verified `minimal` matches its manifest"),
        "{}",
        bare.stdout
    );
    let tampered = root.path().join("tampered");
    std::fs::copy(&minimal, &tampered).unwrap();
    std::fs::copy(
        format!("{}.manifest.json", minimal.display()),
        format!("{}.manifest.json", tampered.display()),
    )
    .unwrap();
    let mut bytes = std::fs::read(&tampered).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tampered, bytes).unwrap();
    let failed = xbuild(&root, &["verify", tampered.to_str().unwrap()]).code(1);
    snapbox::assert_data_eq!(
        redact(&failed.stderr, root.path()),
        snapbox::str![[r#"
    MISMATCH sha256     the host's sha256 is [HASH], the manifest says [HASH]
          ok build ID   [HASH]
          ok sbom       [..] crates in .dep-v0
          ok crates     1 module crate as the host was built
          ok build info its module crates are the ones linked in
          ok core       xbuild-core 0.1.0
          ok profile    release
          ok target     x86_64-unknown-linux-gnu
          ok sizes      [..] crates measured; largest [..]
     warning modules    not asked: xbuild never runs a host whose sha256 does not match its manifest
          ok static     no program interpreter, no shared libraries
error: `[ROOT]/tampered` does not match its manifest: 1 mismatch: sha256

"#]]
    );

    // A host replaced by a script that leaves a mark when run: a mismatch, and never run.
    let impostor = root.path().join("impostor");
    let mark = root.path().join("impostor-ran");
    write(
        &impostor,
        &format!("#!/bin/sh\ntouch '{}'\necho '[]'\n", mark.display()),
    );
    std::fs::set_permissions(
        &impostor,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::copy(
        format!("{}.manifest.json", minimal.display()),
        format!("{}.manifest.json", impostor.display()),
    )
    .unwrap();
    let failed = xbuild(&root, &["verify", impostor.to_str().unwrap()]).code(1);
    snapbox::assert_data_eq!(
        redact(&failed.stderr, root.path()),
        snapbox::str![[r#"
    MISMATCH sha256     the host's sha256 is [HASH], the manifest says [HASH]
    MISMATCH build ID   the host is not a host binary xbuild can read (not a readable ELF file: Invalid magic number: 0x732f6e69622f2123)
     warning modules    not asked: xbuild never runs a host whose sha256 does not match its manifest
    MISMATCH static     `[ROOT]/impostor` is not a readable ELF file: Invalid magic number: 0x732f6e69622f2123
error: `[ROOT]/impostor` does not match its manifest: 3 mismatches: sha256, build ID, static

"#]]
    );
    assert!(
        !mark.exists(),
        "verify ran a host that does not match its manifest"
    );

    // A manifest that misdescribes the host, one field at a time: each a named mismatch.
    let edited = root.path().join("edited");
    std::fs::copy(&minimal, &edited).unwrap();
    let original = manifest(&minimal);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 9] = [
        (
            "a module crate removed",
            |m| m["modules"] = serde_json::json!([]),
            "crates",
        ),
        (
            "a version changed",
            |m| m["modules"][0]["version"] = "9.9.9".into(),
            "crates",
        ),
        (
            "a source changed",
            |m| m["modules"][0]["source"] = "registry+https://example.com/index".into(),
            "crates",
        ),
        (
            "a crate invented",
            |m| {
                m["modules"].as_array_mut().unwrap().push(serde_json::json!(
            {"crate": "invented", "version": "1.0.0", "source": "registry+x", "ids": []}))
            },
            "crates",
        ),
        ("the profile", |m| m["profile"] = "debug".into(), "profile"),
        (
            "the compiler",
            |m| m["rustc"] = "rustc 1.0.0".into(),
            "rustc",
        ),
        (
            "the core version",
            |m| m["core_version"] = "0.0.1".into(),
            "core",
        ),
        (
            "the target",
            |m| m["target"] = "aarch64-unknown-linux-gnu".into(),
            "target",
        ),
        ("static", |m| m["static"] = false.into(), "static"),
    ];
    // What each verify printed besides the checks that passed.
    let mut mismatches = String::new();
    for (what, edit, check) in edits {
        let mut changed = original.clone();
        edit(&mut changed);
        write(
            Path::new(&format!("{}.manifest.json", edited.display())),
            &changed.to_string(),
        );
        let failed = xbuild(&root, &["verify", edited.to_str().unwrap()]).code(1);
        assert!(
            failed.stderr.contains(&format!("MISMATCH {check:<10}")),
            "{what}: {}",
            failed.stderr
        );
        mismatches += &format!("# {what}\n");
        for line in failed.stderr.lines() {
            if !line.trim_start().starts_with("ok ") {
                mismatches += line;
                mismatches.push('\n');
            }
        }
    }
    snapbox::assert_data_eq!(
        redact(&mismatches, root.path()),
        snapbox::str![[r#"
# a module crate removed
    MISMATCH crates     acme-greet 1.0.0 is in the host but not in the manifest
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: crates
# a version changed
    MISMATCH crates     acme-greet is version 9.9.9 in the manifest, 1.0.0 in the host
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: crates
# a source changed
    MISMATCH crates     acme-greet's source is `registry+https://example.com/index` in the manifest, `path+file://[ROOT]/project/modules/acme-greet` in the host
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: crates
# a crate invented
    MISMATCH crates     invented 1.0.0 is in the manifest but not in the host
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: crates
# the profile
    MISMATCH profile    the manifest says `debug`, the host `release`
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: profile
# the compiler
    MISMATCH rustc      the manifest says `rustc 1.0.0`, the host `rustc [..]`
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: rustc
# the core version
    MISMATCH core       the manifest says xbuild-core 0.0.1, the host links 0.1.0
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: core
# the target
    MISMATCH target     the manifest says `aarch64-unknown-linux-gnu`, the host `x86_64-unknown-linux-gnu`
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: target
# static
    MISMATCH static     the manifest says not static, but the host has no program interpreter and no shared libraries
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: static

"#]]
    );
    // The build information inside the binary edited (the manifest's sha256 made to fit):
    // it no longer agrees with the SBOM linked beside it.
    let mut bytes = std::fs::read(&minimal).unwrap();
    let version = original["modules"][0]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let needle = format!("\"crate\": \"acme-greet\",\n      \"version\": \"{version}\"");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("the build information is in the binary");
    let digit = at + needle.len() - 2;
    bytes[digit] = if bytes[digit] == b'9' { b'8' } else { b'9' };
    std::fs::write(&edited, &bytes).unwrap();
    let mut fitted = original.clone();
    fitted["sha256"] = sha256(&edited).into();
    fitted["modules"][0]["version"] =
        format!("{}{}", &version[..version.len() - 1], bytes[digit] as char).into();
    write(
        Path::new(&format!("{}.manifest.json", edited.display())),
        &fitted.to_string(),
    );
    let failed = xbuild(&root, &["verify", edited.to_str().unwrap()]).code(1);
    snapbox::assert_data_eq!(
        redact(&failed.stderr, root.path()),
        snapbox::str![[r#"
          ok sha256     [HASH]
          ok build ID   [HASH]
          ok sbom       [..] crates in .dep-v0
          ok crates     1 module crate as the host was built
    MISMATCH build info the host's build information names acme-greet 1.0.9, which its SBOM does not have: the build information was edited
          ok core       xbuild-core 0.1.0
          ok profile    release
          ok target     x86_64-unknown-linux-gnu
          ok sizes      [..] crates measured; largest [..]
          ok modules    1 module ID registered as listed
          ok rustc      rustc [..]
          ok static     no program interpreter, no shared libraries
error: `[ROOT]/edited` does not match its manifest: 1 mismatch: build info

"#]]
    );

    // The reproducibility proof: compiled again from what the host carries, same bytes.
    let rebuilt = xbuild(&root, &["verify", "--rebuild", minimal.to_str().unwrap()]).success();
    snapbox::assert_data_eq!(
        redact(&rebuilt.stdout, root.path()),
        snapbox::str![[r#"
          ok sha256     [HASH]
          ok build ID   [HASH]
          ok sbom       [..] crates in .dep-v0
          ok crates     1 module crate as the host was built
          ok build info its module crates are the ones linked in
          ok core       xbuild-core 0.1.0
          ok profile    release
          ok target     x86_64-unknown-linux-gnu
          ok sizes      [..] crates measured; largest [..]
          ok modules    1 module ID registered as listed
          ok rustc      rustc [..]
          ok static     no program interpreter, no shared libraries
          ok rebuild    byte-identical (build [HASH])
    Verified `[ROOT]/project/dist/minimal` matches its manifest

"#]]
    );

    // cargo-auditable's reader finds the crates in the `.dep-v0` section.
    let audit = auditable_info::audit_info_from_file(&web, Default::default()).unwrap();
    let core = audit
        .packages
        .iter()
        .find(|p| p.name == "xbuild-core")
        .expect("xbuild-core in the SBOM");
    assert_eq!(core.version.to_string(), xbuild_core::VERSION);
    assert!(
        audit
            .packages
            .iter()
            .any(|p| p.name == "acme-greet" && p.version.to_string() == "1.0.0")
    );
    // Its root is the distribution, as in the CycloneDX file beside it.
    let root = audit.packages.iter().find(|p| p.root).expect("a root");
    assert_eq!(
        (root.name.as_str(), root.version.to_string().as_str()),
        ("web", "1.0.0")
    );
}

#[test]
fn build_from_a_host_adds_a_module_and_keeps_the_other_versions() {
    let root = TestRoot::new();
    root.package("drift-mod", "1.0.0")
        .xbuild_module("drift.module")
        .publish();
    let first = root.path().join("out/first");
    std::fs::create_dir_all(first.parent().unwrap()).unwrap();
    let first_str = first.to_str().unwrap();
    xbuild(
        &root,
        &build_args(
            first_str,
            &["--with", "drift-mod@1", "--registry", "xtest", "--sbom"],
        ),
    )
    .success();
    // A crate of another registry has a purl naming that registry's index.
    let cdx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{first_str}.cdx.json")).unwrap())
            .unwrap();
    let drift = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "drift-mod")
        .expect("drift-mod in the SBOM");
    let purl = drift["purl"].as_str().expect("a purl");
    assert!(
        purl.starts_with("pkg:cargo/drift-mod@1.0.0?repository_url="),
        "{purl}"
    );
    // Newer versions appear after the host was built; --from keeps what the host has.
    root.package("drift-mod", "1.1.0")
        .xbuild_module("drift.module")
        .publish();
    root.package("added-mod", "1.0.0")
        .xbuild_module("added.module")
        .publish();
    let second = root.path().join("out/second");
    let ran = xbuild(
        &root,
        &[
            "build",
            "--from",
            first_str,
            "--with",
            "added-mod@1",
            "--output",
            second.to_str().unwrap(),
            "--message-format",
            "json",
        ],
    )
    .success();
    assert!(steps(&ran).contains(&"compile".to_owned()));
    let modules = manifest(&second)["modules"].clone();
    let version_of = |name: &str| {
        modules
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["crate"] == name)
            .map(|m| m["version"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        version_of("drift-mod").as_deref(),
        Some("1.0.0"),
        "{modules}"
    );
    assert_eq!(
        version_of("added-mod").as_deref(),
        Some("1.0.0"),
        "{modules}"
    );
    let listed = run(second.to_str().unwrap(), &["list-modules"]).success();
    assert!(listed.stdout.contains("drift.module") && listed.stdout.contains("added.module"));

    // --without drops a module; an unknown one is named.
    let unknown = xbuild(
        &root,
        &[
            "build",
            "--from",
            first_str,
            "--without",
            "nope",
            "--output",
            second.to_str().unwrap(),
        ],
    )
    .code(2);
    snapbox::assert_data_eq!(
        redact(&unknown.stderr, root.path()),
        snapbox::str![[r#"
error: --without `nope`: the host has no module crate `nope`
help: its module crates are `drift-mod`

"#]]
    );
    // A file that is not a host is refused before anything runs.
    let not_a_host = root.path().join("not-a-host");
    std::fs::write(&not_a_host, b"#!/bin/sh\n").unwrap();
    let refused = Ran::from_output(
        crate::support::xbuild::xbuild_command(
            &root,
            &["build", "--from", not_a_host.to_str().unwrap()],
        )
        .output()
        .unwrap(),
    )
    .code(2);
    snapbox::assert_data_eq!(
        redact(&refused.stderr, root.path()),
        snapbox::str![[r#"
error: `[ROOT]/not-a-host` is not a host binary xbuild can read (not a readable ELF file: Malformed entity: Too small)
help: xbuild reads Linux (ELF) hosts it built

"#]]
    );
}

/// The CI example, as shipped, on the example spec: every `xbuild` command line of every
/// job is run here (the matrix `xbuild matrix` prints, then each pair's build and verify),
/// and what the upload step names exists afterwards.
#[test]
fn the_ci_example_runs_as_shipped_on_the_example_spec() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci/github-release.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let jobs = &docs[0]["jobs"];
    // Every `xbuild ...` command of a job's scripts, including those inside `$(...)`.
    let commands_of = |job: &str| -> Vec<String> {
        let mut commands = Vec::new();
        for step in jobs[job]["steps"].as_vec().expect("steps") {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            for line in script.lines().map(str::trim) {
                if line.starts_with("xbuild ") {
                    commands.push(line.to_owned());
                } else if let Some(inner) = line.split("$(xbuild ").nth(1) {
                    let inner = inner.split(')').next().unwrap();
                    commands.push(format!("xbuild {inner}"));
                }
            }
        }
        commands
    };
    let installs: Vec<&str> = ["plan", "build"]
        .iter()
        .flat_map(|job| jobs[*job]["steps"].as_vec().unwrap())
        .filter_map(|step| step["run"].as_str())
        .filter(|script| script.contains("cargo install"))
        .collect();
    assert_eq!(installs.len(), 2, "xbuild is installed in both jobs");
    for install in &installs {
        assert!(
            install.contains("--locked") && install.contains("--tag"),
            "{install}"
        );
    }
    assert_eq!(
        docs[0]["env"]["XBUILD_VERSION"].as_str(),
        Some(xbuild_cli::VERSION),
        "the example installs this xbuild's version"
    );
    let plan = commands_of("plan");
    let build = commands_of("build");
    let subcommands = |commands: &[String]| -> Vec<String> {
        commands
            .iter()
            .map(|c| c.split_whitespace().nth(1).unwrap().to_owned())
            .collect()
    };
    assert_eq!(subcommands(&plan), ["matrix"], "{plan:?}");
    assert_eq!(subcommands(&build), ["build", "verify"], "{build:?}");
    assert!(build[0].contains("--locked"), "release builds are locked");
    assert!(
        jobs["build"]["strategy"]["matrix"]
            .as_str()
            .unwrap_or_default()
            .contains("needs.plan.outputs.matrix"),
        "the build matrix is the plan's"
    );

    // The project as the workflow finds it: the spec, its modules and the committed lock.
    let root = TestRoot::new();
    let project = examples_in(&root);
    let run_in_project = |command: &str| -> Ran {
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        Ran::from_output(
            crate::support::xbuild::xbuild_command(&root, &words)
                .current_dir(&project)
                .output()
                .unwrap(),
        )
    };
    run_in_project("xbuild build -f xbuild.toml -q").success();
    let printed = run_in_project(&plan[0]).success();
    let matrix: serde_json::Value = serde_json::from_str(printed.stdout.trim()).unwrap();
    let include = matrix["include"].as_array().expect("include");
    let dists: Vec<&str> = include
        .iter()
        .map(|e| e["dist"].as_str().unwrap())
        .collect();
    assert_eq!(dists, ["minimal", "web"], "{matrix}");
    let uploaded = jobs["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find_map(|s| s["with"]["path"].as_str())
        .expect("an upload step");
    for entry in include {
        let expand = |text: &str| {
            text.replace("${{ matrix.dist }}", entry["dist"].as_str().unwrap())
                .replace("${{ matrix.target }}", entry["target"].as_str().unwrap())
                .replace("${{ matrix.output }}", entry["output"].as_str().unwrap())
        };
        for command in &build {
            let expanded = expand(command);
            assert!(!expanded.contains("${{"), "unexpanded: {expanded}");
            run_in_project(&expanded).success();
        }
        for file in uploaded.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let file = expand(file);
            assert!(
                project.join(&file).is_file(),
                "{file} is not there to upload"
            );
        }
    }
}

#[test]
fn init_update_and_spec_refusals() {
    let root = TestRoot::new();
    // What each command printed, compared whole at the end.
    let mut transcript = String::new();
    let mut note = |command: &str, ran: &Ran| {
        transcript += &format!("$ xbuild {command}\n{}{}\n", ran.stdout, ran.stderr);
    };
    // `init` writes a spec that builds as is; it never overwrites one.
    note("init", &xbuild(&root, &["init"]).success());
    assert!(
        std::fs::read_to_string(root.path().join("xbuild.toml"))
            .unwrap()
            .contains("[[dist]]")
    );
    note("init", &xbuild(&root, &["init"]).code(2));

    root.package("drift-mod", "1.0.0")
        .xbuild_module("drift.module")
        .publish();
    let write_spec = |extra: &str| {
        let text = format!(
            "[[dist]]\nname = \"svc\"\nstandard = false\nregistry = \"xtest\"\n{extra}\n[[dist.modules]]\ncrate = \"drift-mod\"\nversion = \"1\"\n"
        );
        std::fs::write(root.path().join("svc.toml"), text).unwrap();
    };
    // An unknown key is named with its line; nothing runs.
    write_spec("colour = \"blue\"");
    note(
        "build -f svc.toml (an unknown key)",
        &xbuild(&root, &["build", "-f", "svc.toml"]).code(2),
    );
    // A target that is not installed is refused before anything is built.
    write_spec("targets = [\"x86_64-unknown-linux-gnu\", \"aarch64-unknown-linux-gnu\"]");
    note(
        "build -f svc.toml (a target not installed)",
        &xbuild(&root, &["build", "-f", "svc.toml"]).code(2),
    );
    assert!(
        !root
            .path()
            .join("dist/svc-x86_64-unknown-linux-gnu")
            .exists()
    );
    assert!(!root.path().join("xbuild.lock").exists());
    note(
        "build -f svc.toml --dist nope",
        &xbuild(&root, &["build", "-f", "svc.toml", "--dist", "nope"]).code(2),
    );

    // `update` resolves without compiling and reports changes as cargo does.
    write_spec("");
    note(
        "update -f svc.toml",
        &xbuild(&root, &["update", "-f", "svc.toml"]).success(),
    );
    let lock_path = root.path().join("xbuild.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        lock.contains("name = \"drift-mod\"\nversion = \"1.0.0\""),
        "{lock}"
    );
    note(
        "update -f svc.toml (nothing changed)",
        &xbuild(&root, &["update", "-f", "svc.toml"]).success(),
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        lock,
        "stable when nothing changed"
    );
    root.package("drift-mod", "1.1.0")
        .xbuild_module("drift.module")
        .publish();
    note(
        "update -f svc.toml drift-mod (1.1.0 published)",
        &xbuild(&root, &["update", "-f", "svc.toml", "drift-mod"]).success(),
    );
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        lock.contains("name = \"drift-mod\"\nversion = \"1.1.0\""),
        "{lock}"
    );
    note(
        "update -f svc.toml not-a-dep",
        &xbuild(&root, &["update", "-f", "svc.toml", "not-a-dep"]).code(2),
    );
    snapbox::assert_data_eq!(
        redact(&transcript, root.path()),
        snapbox::str![[r#"
$ xbuild init
     Created xbuild.toml

$ xbuild init
error: `xbuild.toml` already exists
help: pass --force to replace it, or give another path

$ xbuild build -f svc.toml (an unknown key)
error: in `svc.toml`: TOML parse error at line 5, column 1
  |
5 | colour = "blue"
  | ^^^^^^
unknown field `colour`, expected one of `name`, `version`, `description`, `modules`, `replace`, `standard`, `profile`, `targets`, `output`, `registry`, `static`, `selftest`, `sbom`, `core-path`, `max-size`, `max_size`
help: `xbuild init` writes a spec file with every field, commented

$ xbuild build -f svc.toml (a target not installed)
error: the standard library for target `aarch64-unknown-linux-gnu` is not installed
help: `rustup target add aarch64-unknown-linux-gnu`

$ xbuild build -f svc.toml --dist nope
error: no distribution named `nope` in the spec file
help: it defines `svc`

$ xbuild update -f svc.toml
   Resolving `svc` for x86_64-unknown-linux-gnu with cargo update
     Locking [..] packages
      Locked [ROOT]/xbuild.lock

$ xbuild update -f svc.toml (nothing changed)
   Resolving `svc` for x86_64-unknown-linux-gnu with cargo update

$ xbuild update -f svc.toml drift-mod (1.1.0 published)
   Resolving `svc` for x86_64-unknown-linux-gnu with cargo update
    Updating drift-mod v1.0.0 -> v1.1.0
      Locked [ROOT]/xbuild.lock

$ xbuild update -f svc.toml not-a-dep
   Resolving `svc` for x86_64-unknown-linux-gnu with cargo update
error: `xbuild update not-a-dep`: distribution `svc` has no such crate in its resolution
help: name crates that are in xbuild.lock, or none to update every crate


"#]]
    );
}

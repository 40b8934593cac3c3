//! Running the xbuild CLI under test: each test gets a [`TestRoot`] as working directory and
//! `TMPDIR`, and all share one cache of compiled dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Ran;
use super::registry::TestRoot;

pub const XBUILD: &str = env!("CARGO_BIN_EXE_xbuild-for-tests");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// xbuild-core of this checkout. The fixtures are members of this workspace and depend on
/// it by path, so builds with them pass `--core-path` (as when developing xbuild itself);
/// crates of a [`TestRoot`] depend on `xbuild-core = "0.1"` and use the copy xbuild carries.
pub fn core_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../core")
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// xbuild as a user gets it: `cargo install --locked --path xbuild` (in the dev profile)
/// from a copy of this checkout (tracked files and new ones not ignored), which is deleted afterwards, so
/// nothing of the source tree is there when it runs. Installed once per run of the suite.
pub fn installed_xbuild() -> &'static Path {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let checkout = tempfile::Builder::new()
            .prefix("checkout-")
            .tempdir_in(scratch)
            .unwrap();
        copy_checkout(checkout.path());
        let install_root = scratch.join("installed-xbuild");
        let install =
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    // `--debug`: what is tested is the installed binary's behaviour, which the
                    // profile does not change, and a release build of xbuild took minutes of
                    // the suite's 2 cores.
                    "install", "--locked", "--debug", "--force", "--quiet", "--path", "xbuild",
                    "--root",
                ])
                .arg(&install_root)
                .current_dir(checkout.path())
                // Kept between runs of the suite so a second run installs quickly; the copy's
                // path differs from the checkout's, so nothing of this workspace's own build is
                // reused.
                .env("CARGO_TARGET_DIR", scratch.join("install-target"))
                .output()
                .unwrap();
        Ran::from_output(install).success();
        drop(checkout);
        install_root.join("bin/xbuild")
    })
}

/// Copies the files of the checkout (tracked, and new ones not ignored) to `to`.
fn copy_checkout(to: &Path) {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo_root())
        .output()
        .expect("git ls-files");
    assert!(listed.status.success());
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let relative = Path::new(std::str::from_utf8(name).unwrap());
        let from = repo_root().join(relative);
        let dest = to.join(relative);
        // A link stays a link (`xbuild/templates` -> `../templates`), as git checks it out.
        if let Ok(target) = std::fs::read_link(&from) {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, &dest).unwrap();
            continue;
        }
        if !from.is_file() {
            continue; // deleted in the work tree
        }
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap();
    }
}

/// Where the crates module authors create are tested and packaged: one target directory
/// for all of them and every run, so their dependencies compile once.
pub fn authors_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("authors-target")
}

/// One cache of compiled dependencies for every test that builds a host.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xbuild-cache")
}

pub fn xbuild_command(root: &TestRoot, args: &[&str]) -> Command {
    command_in(Path::new(XBUILD), root, root.path(), args)
}

/// The environment that points an xbuild at the suite's shared cache. The cap is set far
/// above what the suite fills: at the default (2 GiB) a build of one test pruned the
/// cached hosts another test was about to reuse.
pub fn shared_cache() -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("XBUILD_CACHE_DIR", cache_dir().into_os_string()),
        ("XBUILD_CACHE_MAX", "1TiB".into()),
    ]
}

/// `binary ARGS` (an xbuild: the suite's, or the installed one) run in `dir`, with `root`'s
/// temp dir and the suite's shared cache.
pub fn command_in(binary: &Path, root: &TestRoot, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", root.tmp())
        .envs(shared_cache())
        .env_remove("RUST_BACKTRACE")
        .env_remove("XBUILD_CORE_PATH");
    command
}

/// [`command_in`], run; `dir` is created first.
pub fn xbuild_in(binary: &Path, root: &TestRoot, dir: &Path, args: &[&str]) -> Ran {
    std::fs::create_dir_all(dir).unwrap();
    Ran::from_output(
        command_in(binary, root, dir, args)
            .output()
            .expect("run xbuild"),
    )
}

pub fn xbuild(root: &TestRoot, args: &[&str]) -> Ran {
    Ran::from_output(xbuild_command(root, args).output().expect("run xbuild"))
}

/// `--message-format json` events of a run.
pub fn events(ran: &Ran) -> Vec<serde_json::Value> {
    ran.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event: {l:?}: {e}")))
        .collect()
}

/// The steps a build went through; waiting for another test's build to release the shared
/// cache is scheduling, not a step of this build, and left out.
pub fn steps(ran: &Ran) -> Vec<String> {
    events(ran)
        .iter()
        .filter(|e| e["event"] == "step" && e["step"] != "wait")
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

pub fn manifest(output: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{}.manifest.json", output.display())).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn output_in(root: &TestRoot) -> PathBuf {
    root.path().join("out/host")
}

pub fn build_args<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
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

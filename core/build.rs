//! Records the toolchain, target and profile this core (and so the host linking it) is
//! compiled with, for `build-info`: the values are facts of the compilation, not inputs.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=XBUILD_CORE_RUSTC={version}");
    for var in ["TARGET", "PROFILE"] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".into());
        println!("cargo:rustc-env=XBUILD_CORE_{var}={value}");
    }
    println!("cargo:rerun-if-env-changed=RUSTC");
}

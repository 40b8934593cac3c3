//! The code of `docs/writing-a-module.md`, checked by `cargo test`: `build.rs` makes every
//! `rust` block of the guide a module of this crate (its tests run here) and every `toml`
//! block a test that parses it, provisioning host configs as a host would. A guide edit
//! that no longer compiles or passes fails the workspace's tests.

#[cfg(test)]
mod guide {
    include!(concat!(env!("OUT_DIR"), "/guide.rs"));
}

/// Parses the TOML block at `line` of the guide; a host config (with `apps`) is also
/// provisioned and validated through the host's own path, then cleaned up.
#[cfg(test)]
fn check_toml(line: usize, text: &str) {
    let table: toml::Table = toml::from_str(text)
        .unwrap_or_else(|e| panic!("docs/writing-a-module.md line {line}: invalid TOML: {e}"));
    if table.contains_key("apps") {
        let config: xbuild_core::Value = serde_json::to_value(&table).expect("TOML is JSON");
        let registry = xbuild_core::Registry::linked().expect("a consistent registry");
        let mut apps = xbuild_core::host::Apps::provision(&registry, config).unwrap_or_else(|e| {
            panic!("docs/writing-a-module.md line {line}: the config is refused: {e}")
        });
        apps.cleanup();
    }
}

#[cfg(test)]
mod tests {
    /// Every module the guide registers passes the host's selftest (those that load with
    /// no config are loaded and cleaned up), beside xbuild-http's.
    #[test]
    fn the_guides_modules_pass_selftest() {
        let args = ["guide", "selftest"].map(Into::into).to_vec();
        let code = xbuild_core::host::run(xbuild_core::BuildInfo::new("guide"), args);
        assert_eq!(code, 0);
    }
}

//! A host config text through what `host validate --config FILE` runs: `config::load_file`
//! (TOML, or JSON when the text starts with `{`), strict decoding of `[apps.http]` into
//! `xbuild_http::HttpApp`, then `Apps::provision` with every module linked here (the core's
//! and xbuild-http's) and `cleanup`. Errors are expected; a panic is a bug, including one
//! the core's guard would catch inside a module call and turn into an error.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xbuild_core::__private::{decode_strict, load_file};
use xbuild_core::host::Apps;
use xbuild_core::{Registry, guard};
use xbuild_http::HttpApp;

fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // The guard installs its panic hook on its first call and keeps panics inside module
        // calls from reaching the previous one (libFuzzer's, which aborts). Wrap it, so that
        // every panic, caught or not, is reported as a crash.
        let _ = guard::call("fuzz", "setup", || Ok(()));
        let guard_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            guard_hook(info);
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        Registry::linked().expect("the linked modules register cleanly")
    })
}

/// `load_file` reads a file, so each input is written to one per process and extension.
fn config_file(json: bool) -> PathBuf {
    let extension = if json { "json" } else { "toml" };
    std::env::temp_dir().join(format!(
        "xbuild-fuzz-config-{}.{extension}",
        std::process::id()
    ))
}

fuzz_target!(|data: &[u8]| {
    let registry = registry();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = config_file(text.trim_start().starts_with('{'));
    std::fs::write(&path, text).expect("the fuzz config file can be written");
    let Ok(config) = load_file(&path) else {
        return;
    };
    if let Some(http) = config.pointer("/apps/http") {
        let _ = decode_strict::<HttpApp>("http", http.clone());
    }
    if let Ok(mut apps) = Apps::provision(registry, config) {
        apps.cleanup();
    }
});

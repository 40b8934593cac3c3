//! # xbuild-standard
//!
//! Names every standard module crate, so a host gets all of them with one line
//! (`use xbuild_standard as _;`). The names below are what keeps their registrations: the
//! linker drops a crate nobody names, and with it every module it registered, and that
//! holds transitively (FACTS.md, "linkme and linking").
//!
//! Standard modules: the `http` app and its handlers `http.handlers.static_response`,
//! `file_server`, `reverse_proxy`, `headers` and `metrics` (crate `xbuild-http`).

use xbuild_http as _;

#[cfg(test)]
mod tests {
    /// Every standard module is registered once this crate is linked.
    #[test]
    fn names_every_standard_module() {
        let registry = xbuild_core::Registry::linked().expect("registry is consistent");
        for id in [
            "http",
            "http.handlers.static_response",
            "http.handlers.file_server",
            "http.handlers.reverse_proxy",
            "http.handlers.headers",
            "http.handlers.metrics",
        ] {
            let module = registry
                .get(id)
                .unwrap_or_else(|| panic!("`{id}` is not registered"));
            assert!(
                module.is_standard(),
                "`{id}` comes from `{}`",
                module.crate_name()
            );
        }
    }
}

//! The integration suite: one test binary, each module a user-facing area.

// Helpers: temp dirs, running binaries, waiting for output.
mod support;

// The host CLI of a host built by plain cargo (tests/hosts), with fixture modules.
mod host_cli;

// The xbuild CLI: inputs, specs and resolution.
mod xbuild_inputs;

// The xbuild CLI: building, installing, failing and being interrupted.
mod xbuild_builds;

// xbuild as installed: from anywhere, reproducible, with a bounded result cache.
mod xbuild_anywhere;

// Release pipelines: spec files, the lock, SBOMs, verify, rebuilding from a host.
mod xbuild_release;

// Module authors: xbuild new, cargo test in the new crate, xbuild run.
mod module_authors;

// Module crates beyond the standard set: a handler crate from xbuild new to a host, the
// auth, encode and rate-limit crates in one host, modules from two registries.
mod module_ecosystem;

// The standard host (HTTP app and handlers), built with xbuild and driven over HTTP.
mod standard_host;

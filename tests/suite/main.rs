//! The integration suite: one test binary, each module a user-facing area.

// Helpers: temp dirs, running binaries, waiting for output.
mod support;

// The host CLI of a host built by plain cargo (tests/hosts), with fixture modules.
mod host_cli;

// The xbuild CLI: specs, resolution, compilation, installation, interruption.
mod xbuild_cli;

// The standard host (HTTP app and handlers), built with xbuild and driven over HTTP.
mod standard_host;

//! The test host, as xbuild would generate it: name every module crate, then hand over to
//! the core with the build information.

use fixture_extra as _;
use fixture_greeters as _;

fn main() {
    xbuild_core::host::main(
        xbuild_core::BuildInfo::new("test-host-build")
            .module("fixture-greeters", "0.2.0")
            .module("fixture-extra", "0.3.1"),
    )
}

//! A host linking two crates that register the same module ID.

use fixture_dup as _;
use fixture_greeters as _;

fn main() {
    xbuild_core::host::main(
        xbuild_core::BuildInfo::new("test-host-dup")
            .module("fixture-greeters", "0.2.0")
            .module("fixture-dup", "2.0.0"),
    )
}

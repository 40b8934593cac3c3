//! A host with every standard module, built with plain cargo: what the xbuild CLI
//! generates, minus the build information, for trying configs and for the benchmark.

use xbuild_standard as _;

fn main() {
    xbuild_core::host::main(xbuild_core::BuildInfo::new("dev"))
}

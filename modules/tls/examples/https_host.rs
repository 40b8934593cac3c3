//! A host with every standard module and this crate, built with plain cargo: what `xbuild
//! --with xbuild-tls` generates, minus the build information. bench/https_throughput.sh
//! measures it.

use xbuild_standard as _;
use xbuild_tls as _;

fn main() {
    xbuild_core::host::main(xbuild_core::BuildInfo::new("dev"))
}

//! The `xbuild` binary: everything lives in the library, so the integration suite can run
//! the same CLI.

fn main() {
    std::process::exit(xbuild_cli::main())
}

//! The xbuild CLI, built inside the test package so the suite can find it with
//! `CARGO_BIN_EXE_*` (cargo gives tests only their own package's binaries).

fn main() {
    std::process::exit(xbuild_cli::main())
}

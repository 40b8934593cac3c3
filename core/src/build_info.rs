//! What a host knows about how it was built: the build ID xbuild derived from the resolved
//! inputs, the module crates it was asked to link, and facts of the compilation. The seed's
//! "embed a build ID ... a manifest next to the host" starts here; `build-info --json` and
//! xbuild's manifest carry the same values.

use serde::{Deserialize, Serialize};

/// A module crate the host was built to contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExpectedCrate {
    /// Package name, as in `Cargo.toml` (`xbuild-http`).
    #[serde(rename = "crate")]
    pub name: String,
    /// Exact package version the build resolved.
    pub version: String,
    /// Where it came from (`registry+...`, `path+file://...`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The distribution a host was built as (xbuild's spec file, or its flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Distribution {
    /// Shown in place of "xbuild host" by `version` and `build-info`.
    pub name: String,
    /// The distribution's own version, independent of the module crates' versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// One line about the distribution, printed under the `version` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The software bill of materials a host carries in its `.dep-v0` section
/// (cargo-auditable's format), summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SbomSummary {
    /// Crates in the host, the host's own package included.
    pub crates: usize,
    /// sha256 of the section's bytes (zlib-compressed JSON).
    pub sha256: String,
}

/// Build information passed to [`host::main`](crate::host::main) by the generated `main.rs`.
/// Unknown fields are ignored, so a host whose core is older than the xbuild that built it
/// still starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BuildInfo {
    /// Identifies the build; xbuild derives it from the resolved inputs, so equal inputs give
    /// equal IDs.
    pub build_id: String,
    /// Cargo profile name; the core records `debug`/`release` itself when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The module crates the build asked for; `selftest` checks that each one registered
    /// modules, at the expected version.
    #[serde(default)]
    pub modules: Vec<ExpectedCrate>,
    /// The distribution the host was built as, if it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// The host's SBOM, when the build embedded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomSummary>,
    /// What xbuild needs to build this host again (its spec and resolution); the host
    /// itself only carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<serde_json::Value>,
}

impl ExpectedCrate {
    /// Crate `name` at exactly `version`, from `source` when known.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        source: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            source,
        }
    }
}

impl Distribution {
    /// A distribution called `name`, without version or description.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
            description: None,
        }
    }
}

impl SbomSummary {
    /// An SBOM of `crates` crates whose section hashes to `sha256` (hex).
    pub fn new(crates: usize, sha256: impl Into<String>) -> Self {
        Self {
            crates,
            sha256: sha256.into(),
        }
    }
}

impl BuildInfo {
    /// Build information with only a build ID; add module crates with
    /// [`module`](BuildInfo::module).
    pub fn new(build_id: impl Into<String>) -> Self {
        Self {
            build_id: build_id.into(),
            profile: None,
            modules: Vec::new(),
            distribution: None,
            sbom: None,
            rebuild: None,
        }
    }

    /// Declares a module crate the host must contain (checked by `selftest`).
    pub fn module(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.modules.push(ExpectedCrate::new(name, version, None));
        self
    }

    /// The full report, as `build-info --json` prints it.
    pub(crate) fn report(&self) -> BuildReport {
        BuildReport {
            build_id: self.build_id.clone(),
            core_version: crate::VERSION.to_owned(),
            rustc: env!("XBUILD_CORE_RUSTC").to_owned(),
            target: env!("XBUILD_CORE_TARGET").to_owned(),
            profile: self
                .profile
                .clone()
                .unwrap_or_else(|| env!("XBUILD_CORE_PROFILE").to_owned()),
            modules: self.modules.clone(),
            distribution: self.distribution.clone(),
            dependencies: self.sbom.as_ref().map(|s| s.crates),
            sbom_sha256: self.sbom.as_ref().map(|s| s.sha256.clone()),
            sizes: embedded_sizes(),
        }
    }
}

/// The section xbuild writes a host's [`Sizes`] into after linking: sizes are known only
/// once the binary exists, so they cannot be part of the build information compiled in.
/// As Go's linker leaves room for the build ID that `go tool buildid -w` writes later, the
/// core reserves the section, filled with spaces; xbuild overwrites its start with JSON.
pub const SIZES_SECTION: &str = ".xbuild-sizes";

/// Bytes reserved in [`SIZES_SECTION`]. About 40 bytes a crate: room for 400 crates, and
/// [`Sizes::fitted`] folds the smallest into one figure if a host has more.
pub const SIZES_CAPACITY: usize = 16 * 1024;

// Spaces, not zeros: an all-zero static would go to `.bss`, which has no bytes in the file
// to overwrite.
#[cfg_attr(target_os = "linux", unsafe(link_section = ".xbuild-sizes"))]
#[used]
static SIZES: [u8; SIZES_CAPACITY] = [b' '; SIZES_CAPACITY];

/// The sizes xbuild wrote into this host after linking (`None` for a host it did not
/// build, or one built by an xbuild that does not measure).
pub fn embedded_sizes() -> Option<Sizes> {
    // The compiler knows the static's initial value and would fold a plain read into "all
    // spaces"; its address read back through a volatile load is opaque to it. (A volatile
    // read of the array itself would compile to 16,384 single-byte loads.)
    // SAFETY: reading a local that holds a valid pointer to a static.
    let sizes = unsafe { std::ptr::read_volatile(&std::ptr::addr_of!(SIZES)) };
    // SAFETY: the pointer is `SIZES`'s, valid for the whole program.
    let bytes: &[u8; SIZES_CAPACITY] = unsafe { &*sizes };
    let text = std::str::from_utf8(bytes).ok()?.trim_end();
    if text.is_empty() {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// What each crate adds to a host: the bytes of the functions and data of its symbols in
/// the binary's symbol table, demangled and attributed to the crate that defines them, as
/// `cargo bloat --crates` does (but counting data too, not only code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sizes {
    /// The size of the host's file.
    pub file_bytes: u64,
    /// Crates of the host's dependency graph (package names), largest first. A generic
    /// function counts for the crate whose path names it (`core::ptr::drop_in_place<T>` is
    /// std's, whatever `T` is); a trait impl for the crate of the type it is for.
    pub crates: Vec<CrateSize>,
    /// Crates that were left out of `crates` to fit the section, together (`0` in the
    /// manifest, which lists them all).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub smaller_crates_bytes: u64,
    /// Rust's standard library: `std`, `core`, `alloc` and the crates they carry.
    pub std_bytes: u64,
    /// Symbols without Rust mangling: the C library (musl in a static host) and
    /// compiler-provided routines.
    pub c_bytes: u64,
    /// The symbol table and its names (`.symtab`, `.strtab`), which these figures come
    /// from; `strip` removes them (and with them what `build-info` can say).
    pub symbol_table_bytes: u64,
    /// Bytes in no symbol: ELF headers, unwind tables, relocations, padding.
    pub unattributed_bytes: u64,
}

/// One crate's share of a host; see [`Sizes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CrateSize {
    /// Package name (`xbuild-http`).
    #[serde(rename = "crate")]
    pub name: String,
    /// Bytes of its functions and data in the file.
    pub bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CrateSize {
    /// Crate `name` adds `bytes`.
    pub fn new(name: impl Into<String>, bytes: u64) -> Self {
        Self {
            name: name.into(),
            bytes,
        }
    }
}

impl Sizes {
    /// Sizes from their parts; `crates` is sorted largest first (then by name).
    pub fn new(
        file_bytes: u64,
        mut crates: Vec<CrateSize>,
        std_bytes: u64,
        c_bytes: u64,
        symbol_table_bytes: u64,
        unattributed_bytes: u64,
    ) -> Self {
        crates.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        Self {
            file_bytes,
            crates,
            smaller_crates_bytes: 0,
            std_bytes,
            c_bytes,
            symbol_table_bytes,
            unattributed_bytes,
        }
    }

    /// The JSON written into [`SIZES_SECTION`]: these sizes, with the smallest crates
    /// folded into [`smaller_crates_bytes`](Sizes::smaller_crates_bytes) until it fits in
    /// `capacity` bytes.
    pub fn fitted(&self, capacity: usize) -> Vec<u8> {
        let mut fitted = self.clone();
        loop {
            let json = serde_json::to_vec(&fitted).expect("sizes serialise");
            if json.len() <= capacity || fitted.crates.is_empty() {
                return json;
            }
            let smallest = fitted.crates.pop().expect("not empty");
            fitted.smaller_crates_bytes += smallest.bytes;
        }
    }
}

/// `build-info --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildReport {
    /// See [`BuildInfo::build_id`].
    pub build_id: String,
    /// The xbuild-core version linked into the host ([`VERSION`](crate::VERSION)).
    pub core_version: String,
    /// `rustc --version` of the compiler that built the core.
    pub rustc: String,
    /// Target triple the host was compiled for.
    pub target: String,
    /// Cargo profile: the one the build declared, else `debug` or `release`.
    pub profile: String,
    /// Module crates in the host: those the build declared, then (in `build-info`) any other
    /// crate that registered modules.
    pub modules: Vec<ExpectedCrate>,
    /// See [`BuildInfo::distribution`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Crates in the host (its SBOM's entries), when it carries an SBOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<usize>,
    /// sha256 of the host's `.dep-v0` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_sha256: Option<String>,
    /// What each crate adds to the host, when xbuild measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Sizes>,
}

/// The sha256 of a file in lowercase hex: how a manifest (written by xbuild) and `selftest`
/// (checking it) identify a host binary, computed in one place so they always agree.
pub(crate) fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

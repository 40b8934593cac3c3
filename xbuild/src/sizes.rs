//! What each crate adds to a host (the seed's "size-of-.so budget per host"): the linked
//! binary's symbol table, demangled, each function's and datum's bytes counted for the
//! crate its path names. The figures go into the manifest, into the host itself (the
//! section xbuild-core reserves, read by `build-info`), and are checked against
//! `--max-size` / `max_size`.

use std::collections::{HashMap, HashSet};

use goblin::elf::Elf;
use goblin::elf::section_header::SHT_NOBITS;
use goblin::elf::sym::{STT_FUNC, STT_OBJECT, STT_TLS};
use xbuild_core::build_info::{CrateSize, SIZES_SECTION, Sizes};

/// Crate names as symbols spell them (`xbuild_http`), each with its package's name
/// (`xbuild-http`): every target of every package in the host's dependency graph. A Rust
/// symbol whose crate is not among them comes from the standard library.
#[derive(Debug, Default)]
pub struct CrateNames(HashMap<String, String>);

impl CrateNames {
    pub fn from_metadata(metadata: &cargo_metadata::Metadata) -> Self {
        let mut names = HashMap::new();
        for package in &metadata.packages {
            for target in &package.targets {
                names.insert(target.name.replace('-', "_"), package.name.to_string());
            }
        }
        Self(names)
    }

    #[cfg(test)]
    fn of(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// Which crate compiled each symbol: the symbols defined in the object files of each crate's
/// `.rlib`. With it a generic function counts for the crate whose code instantiated it
/// (`tokio::task::raw::poll` for a future of `xbuild-http` is `xbuild-http`'s), as
/// `cargo bloat --crates` counts; without it (the standard library's own objects are not
/// among the build's), the demangled path decides.
#[derive(Debug, Default)]
pub struct Definers(HashMap<String, String>);

impl Definers {
    /// Reads the rlibs of a build: `(package name, path)` each. An unreadable one is
    /// left out (its symbols fall back to their paths).
    pub fn from_rlibs(rlibs: &[(String, std::path::PathBuf)]) -> Self {
        // A symbol two crates define (the same generic instance compiled in both) goes to
        // the first: in an order that does not depend on which cargo finished first, or
        // the bytes written into the host would not be reproducible.
        let mut rlibs: Vec<&(String, std::path::PathBuf)> = rlibs.iter().collect();
        rlibs.sort_by(|a, b| (&a.0, a.1.file_name()).cmp(&(&b.0, b.1.file_name())));
        let mut definers = HashMap::new();
        for (package, path) in rlibs {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let Ok(archive) = goblin::archive::Archive::parse(&bytes) else {
                continue;
            };
            for member in archive.members() {
                if !member.ends_with(".o") {
                    continue;
                }
                let Ok(object) = archive.extract(member, &bytes) else {
                    continue;
                };
                let Ok(elf) = Elf::parse(object) else {
                    continue;
                };
                for symbol in elf.syms.iter() {
                    if symbol.st_shndx == 0 || symbol.st_size == 0 {
                        continue;
                    }
                    if let Some(name) = elf.strtab.get_at(symbol.st_name) {
                        definers
                            .entry(name.to_owned())
                            .or_insert_with(|| package.clone());
                    }
                }
            }
        }
        Self(definers)
    }
}

/// Measures the ELF host `bytes`.
pub fn measure(bytes: &[u8], names: &CrateNames, definers: &Definers) -> Result<Sizes, String> {
    let elf = Elf::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))?;
    if elf.syms.is_empty() {
        return Err(
            "it has no symbol table (stripped, e.g. by `-C strip=symbols` in RUSTFLAGS)".into(),
        );
    }
    let mut seen = HashSet::new();
    let mut per_crate: HashMap<&str, u64> = HashMap::new();
    let (mut std_bytes, mut c_bytes) = (0u64, 0u64);
    for symbol in elf.syms.iter() {
        if symbol.st_size == 0 || !matches!(symbol.st_type(), STT_FUNC | STT_OBJECT | STT_TLS) {
            continue;
        }
        // Only what the file holds: `.bss` costs memory, not bytes on disk.
        let Some(section) = elf.section_headers.get(symbol.st_shndx) else {
            continue;
        };
        if section.sh_type == SHT_NOBITS {
            continue;
        }
        // Aliases (two names for one address) are counted once.
        if !seen.insert((symbol.st_shndx, symbol.st_value)) {
            continue;
        }
        let name = elf.strtab.get_at(symbol.st_name).unwrap_or_default();
        if let Some(package) = definers.0.get(name) {
            *per_crate.entry(package.as_str()).or_default() += symbol.st_size;
            continue;
        }
        match owner(name) {
            None => c_bytes += symbol.st_size,
            Some(krate) => match names.0.get(&krate) {
                Some(package) => *per_crate.entry(package.as_str()).or_default() += symbol.st_size,
                None => std_bytes += symbol.st_size,
            },
        }
    }
    let crates: Vec<CrateSize> = per_crate
        .into_iter()
        .map(|(name, bytes)| CrateSize::new(name, bytes))
        .collect();
    let symbol_table_bytes = elf
        .section_headers
        .iter()
        .filter(|h| {
            matches!(
                elf.shdr_strtab.get_at(h.sh_name),
                Some(".symtab" | ".strtab")
            )
        })
        .map(|h| h.sh_size)
        .sum::<u64>();
    let file_bytes = bytes.len() as u64;
    let attributed =
        crates.iter().map(|c| c.bytes).sum::<u64>() + std_bytes + c_bytes + symbol_table_bytes;
    Ok(Sizes::new(
        file_bytes,
        crates,
        std_bytes,
        c_bytes,
        symbol_table_bytes,
        file_bytes.saturating_sub(attributed),
    ))
}

/// The sizes xbuild wrote into the host `bytes` (`None`: it carries none).
pub fn embedded(bytes: &[u8]) -> Option<Sizes> {
    let section = crate::elf::section(bytes, SIZES_SECTION).ok()??;
    serde_json::from_str(std::str::from_utf8(section).ok()?.trim_end()).ok()
}

/// Writes `sizes` into the section xbuild-core reserves for them in the host `bytes`.
/// Returns false if the host has no such section (a core older than this xbuild).
pub fn write_into(bytes: &mut [u8], sizes: &Sizes) -> Result<bool, String> {
    let Some(range) = crate::elf::section_range(bytes, SIZES_SECTION)? else {
        return Ok(false);
    };
    let json = sizes.fitted(range.len());
    let section = &mut bytes[range];
    section.fill(b' ');
    section[..json.len()].copy_from_slice(&json);
    Ok(true)
}

/// The crate of a mangled symbol name, as its path spells it; `None` for a symbol that is
/// not Rust's (the C library's, or a `#[no_mangle]` function).
fn owner(symbol: &str) -> Option<String> {
    let demangled = rustc_demangle::try_demangle(symbol).ok()?;
    Some(crate_of_path(&format!("{demangled:#}")))
}

/// The crate a demangled path belongs to: its first segment; for `<Type as Trait>::f`, the
/// crate of `Type`, or of `Trait` when `Type` names none (a primitive or a type
/// parameter). Empty when no segment names a crate (`<[T]>::sort`: the standard library).
fn crate_of_path(path: &str) -> String {
    let Some(inner) = path.strip_prefix('<') else {
        return crate_of_type(path);
    };
    match split_as(inner) {
        Some((ty, trait_path)) => {
            let of_type = crate_of_type(ty);
            if of_type.is_empty() {
                crate_of_type(trait_path)
            } else {
                of_type
            }
        }
        None => crate_of_type(inner),
    }
}

/// `Type` and `Trait>::f` of `Type as Trait>::f`, split at the ` as ` outside any `<...>`.
fn split_as(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            // `->` in a function type is not a closing bracket.
            b'>' if i == 0 || bytes[i - 1] != b'-' => depth -= 1,
            b' ' if depth == 0 && text[i..].starts_with(" as ") => {
                return Some((&text[..i], &text[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

/// The first segment of a type or path, past references, pointers, slices and `dyn`.
fn crate_of_type(text: &str) -> String {
    let mut rest = text;
    loop {
        let trimmed = rest
            .trim_start_matches(['<', '&', '*', '[', '(', ' '])
            .trim_start_matches("mut ")
            .trim_start_matches("const ")
            .trim_start_matches("dyn ");
        if trimmed.len() == rest.len() {
            break;
        }
        rest = trimmed;
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if rest[end..].starts_with("::") {
        rest[..end].to_owned()
    } else {
        String::new()
    }
}

/// The largest contributors of `sizes`, crates and the standard library alike, largest
/// first.
pub fn largest(sizes: &Sizes, count: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = sizes
        .crates
        .iter()
        .map(|c| (c.name.clone(), c.bytes))
        .chain([
            ("the standard library".to_owned(), sizes.std_bytes),
            ("C library".to_owned(), sizes.c_bytes),
        ])
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(count);
    all
}

/// The table `-v` prints: the ten largest crates, then the rest of the file.
pub fn table(sizes: &Sizes) -> String {
    use crate::cache::human_size;
    let mut out = String::new();
    let mut row = |bytes: u64, what: &str| {
        let share = 100.0 * bytes as f64 / sizes.file_bytes.max(1) as f64;
        out.push_str(&format!(
            "{:>10} {share:>5.1}%  {what}\n",
            human_size(bytes)
        ));
    };
    for c in sizes.crates.iter().take(10) {
        row(c.bytes, &c.name);
    }
    let rest: Vec<&CrateSize> = sizes.crates.iter().skip(10).collect();
    if !rest.is_empty() || sizes.smaller_crates_bytes > 0 {
        let bytes = rest.iter().map(|c| c.bytes).sum::<u64>() + sizes.smaller_crates_bytes;
        row(bytes, &format!("{} other crates", rest.len().max(1)));
    }
    row(sizes.std_bytes, "the standard library (std, core, alloc)");
    row(sizes.c_bytes, "C library and other unmangled symbols");
    row(
        sizes.symbol_table_bytes,
        "the symbol table these figures come from (strip removes it)",
    );
    row(
        sizes.unattributed_bytes,
        "in no symbol (unwind tables, relocations, headers)",
    );
    row(sizes.file_bytes, "the host");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_their_first_segment() {
        assert_eq!(crate_of_path("xbuild_http::server::serve"), "xbuild_http");
        assert_eq!(
            crate_of_path("xbuild_http::server::serve::{{closure}}"),
            "xbuild_http"
        );
        assert_eq!(
            crate_of_path("core::ptr::drop_in_place<xbuild_http::Server>"),
            "core"
        );
        assert_eq!(crate_of_path("main"), "");
    }

    #[test]
    fn trait_impls_belong_to_the_type_unless_it_names_no_crate() {
        assert_eq!(
            crate_of_path("<xbuild_http::Config as serde::de::Deserialize>::deserialize"),
            "xbuild_http"
        );
        assert_eq!(crate_of_path("<u8 as core::fmt::Debug>::fmt"), "core");
        assert_eq!(
            crate_of_path("<&mut serde_json::de::Deserializer<R> as serde::de::Deserializer>::f"),
            "serde_json"
        );
        assert_eq!(
            crate_of_path("<alloc::vec::Vec<T> as core::ops::Drop>::drop"),
            "alloc"
        );
        assert_eq!(
            crate_of_path("<fn() -> u8 as core::ops::FnOnce<()>>::call_once"),
            "core"
        );
        assert_eq!(crate_of_path("<[T]>::sort"), "");
        assert_eq!(
            crate_of_path("<dyn xbuild_core::Module>::type_name"),
            "xbuild_core"
        );
    }

    #[test]
    fn a_symbol_that_does_not_demangle_is_c() {
        assert_eq!(owner("memcpy"), None);
        assert_eq!(
            owner("_ZN4core3fmt5write17h0123456789abcdefE").as_deref(),
            Some("core")
        );
    }

    #[test]
    fn this_test_binary_is_measured() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let names = CrateNames::of(&[("xbuild_cli", "xbuild-cli"), ("goblin", "goblin")]);
        let sizes = measure(&me, &names, &Definers::default()).unwrap();
        let of = |name: &str| {
            sizes
                .crates
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.bytes)
        };
        assert!(of("xbuild-cli").unwrap() > 0, "{sizes:?}");
        assert!(of("goblin").unwrap() > 0, "{sizes:?}");
        assert!(sizes.std_bytes > 0 && sizes.c_bytes > 0, "{sizes:?}");
        let total = sizes.crates.iter().map(|c| c.bytes).sum::<u64>()
            + sizes.std_bytes
            + sizes.c_bytes
            + sizes.symbol_table_bytes
            + sizes.unattributed_bytes;
        assert_eq!(total, me.len() as u64);
    }

    #[test]
    fn sizes_are_written_into_the_section_and_read_back() {
        let sizes = Sizes::new(100, vec![CrateSize::new("a", 60)], 30, 5, 3, 2);
        let json = sizes.fitted(1000);
        assert_eq!(serde_json::from_slice::<Sizes>(&json).unwrap(), sizes);
        // Too small a section: the smallest crates fold into one figure.
        let many = Sizes::new(
            100,
            (0..50)
                .map(|i| CrateSize::new(format!("crate{i}"), i))
                .collect(),
            0,
            0,
            0,
            0,
        );
        let fitted: Sizes = serde_json::from_slice(&many.fitted(400)).unwrap();
        assert!(fitted.crates.len() < 50 && fitted.crates[0].bytes == 49);
        let folded: u64 = many.crates[fitted.crates.len()..]
            .iter()
            .map(|c| c.bytes)
            .sum();
        assert_eq!(fitted.smaller_crates_bytes, folded);
    }
}

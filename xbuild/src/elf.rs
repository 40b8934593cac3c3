//! Proof that a host is static: an ELF with no program interpreter (`PT_INTERP`) and no
//! needed shared libraries (`DT_NEEDED`) loads nothing at run time.

use std::path::Path;

/// What makes a binary not static; empty means static.
pub fn dynamic_dependencies(path: &Path) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let elf = goblin::elf::Elf::parse(&bytes)
        .map_err(|e| format!("`{}` is not a readable ELF file: {e}", path.display()))?;
    let mut found = Vec::new();
    if let Some(interpreter) = elf.interpreter {
        found.push(format!("program interpreter {interpreter}"));
    }
    found.extend(
        elf.libraries
            .iter()
            .map(|lib| format!("shared library {lib}")),
    );
    Ok(found)
}

/// The bytes of section `name` of the ELF file `bytes`, if it has one.
pub fn section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, String> {
    Ok(section_range(bytes, name)?.map(|range| &bytes[range]))
}

/// Where in the file `bytes` section `name` lies, if the file has it.
pub fn section_range(bytes: &[u8], name: &str) -> Result<Option<std::ops::Range<usize>>, String> {
    let elf =
        goblin::elf::Elf::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))?;
    for header in &elf.section_headers {
        if elf.shdr_strtab.get_at(header.sh_name) != Some(name) {
            continue;
        }
        let range = header
            .file_range()
            .ok_or_else(|| format!("section `{name}` has no bytes in the file"))?;
        if range.end > bytes.len() {
            return Err(format!("section `{name}` runs past the end of the file"));
        }
        return Ok(Some(range));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_recognised() {
        // The test binary itself is linked the default, dynamic way.
        let me = std::env::current_exe().unwrap();
        let found = dynamic_dependencies(&me).unwrap();
        assert!(
            found.iter().any(|f| f.starts_with("program interpreter")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.contains("libc.so")), "{found:?}");
    }

    #[test]
    fn a_non_elf_file_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"#!/bin/sh\n").unwrap();
        assert!(
            dynamic_dependencies(file.path())
                .unwrap_err()
                .contains("not a readable ELF")
        );
    }
}

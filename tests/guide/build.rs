//! Turns the code blocks of docs/writing-a-module.md into Rust (OUT_DIR/guide.rs):
//! - a `rust` block becomes a module of its own, `block_LINE`, compiled with the crate; its
//!   `#[test]` functions run with `cargo test`, its registrations join the crate's registry;
//! - a `toml` block becomes a test that parses it, and provisions it through the host's own
//!   path when it is a host config (it has `[apps...]`);
//! - `sh` and `text` blocks are commands and output; the suite's module_authors and
//!   module_ecosystem tests run those commands. Any other language is refused, so no block
//!   goes unchecked by accident.

use std::fmt::Write as _;
use std::path::PathBuf;

const GUIDE: &str = "../../docs/writing-a-module.md";

fn main() {
    println!("cargo:rerun-if-changed={GUIDE}");
    let text = std::fs::read_to_string(GUIDE).expect("docs/writing-a-module.md");
    let mut out = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let start = index + 1;
        let mut block = String::new();
        for (_, inner) in lines.by_ref() {
            if inner.trim_start().starts_with("```") {
                break;
            }
            block.push_str(inner.get(indent..).unwrap_or(inner.trim_start()));
            block.push('\n');
        }
        match info.trim() {
            "rust" => writeln!(
                out,
                "/// docs/writing-a-module.md, line {start}.\n#[allow(dead_code, unused_imports)]\nmod block_{start} {{\n{block}}}\n"
            ),
            "toml" => writeln!(
                out,
                "#[test]\nfn toml_block_{start}() {{\n    crate::check_toml({start}, r####\"{block}\"####);\n}}\n"
            ),
            "sh" | "text" => Ok(()),
            other => panic!(
                "docs/writing-a-module.md line {start}: a ```{other} block; use rust, toml, sh or text so it is checked"
            ),
        }
        .expect("writing to a String");
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("guide.rs"), out).expect("write OUT_DIR/guide.rs");
}

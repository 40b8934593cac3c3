//! `xbuild list-known` and `xbuild search`: the curated index of module crates.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ListKnownArgs {
    /// One JSON document, for tools.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Words that must all appear (case-insensitive).
    #[arg(required = true, value_name = "WORD")]
    pub words: Vec<String>,
    /// One JSON array, for tools.
    #[arg(long)]
    pub json: bool,
}

pub fn list(args: &ListKnownArgs) -> i32 {
    print!("{}", crate::known::render(args.json));
    0
}

pub fn search(args: &SearchArgs) -> i32 {
    let hits = crate::known::search(crate::known::known_modules(), &args.words);
    print!("{}", crate::known::render_hits(&hits, args.json));
    if hits.is_empty() && !args.json {
        // Like `cargo search`, no match is not an error: say so on stderr.
        eprintln!(
            "note: no module in xbuild's index matches `{}`\nhelp: crates outside the index are on crates.io with the keyword `xbuild`: https://crates.io/keywords/xbuild",
            args.words.join(" ")
        );
    }
    0
}

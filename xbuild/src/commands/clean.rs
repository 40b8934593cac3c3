//! `xbuild clean [--all] [--dry-run]`: empties the xbuild cache.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Remove everything in the cache: compiled dependencies and unpacked crates too.
    #[arg(long)]
    pub all: bool,
    /// Only say how much would be removed, as `cargo clean --dry-run`.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn exec(args: &CleanArgs) -> i32 {
    let cache = match crate::cache::Cache::from_env() {
        Ok(cache) => cache,
        Err(err) => return super::fail(&err, None, None),
    };
    let _lock = match cache.lock(|| {
        eprintln!(
            "{:>12} for the lock on the xbuild cache `{}`",
            "Blocking",
            cache.root().display()
        )
    }) {
        Ok(lock) => lock,
        Err(err) => {
            let failure = crate::builder::BuildError::Io {
                what: format!("lock the xbuild cache `{}`", cache.root().display()),
                source: err,
            };
            return super::fail(&failure, None, None);
        }
    };
    let removed = match cache.clean(args.all, args.dry_run) {
        Ok(removed) => removed,
        Err(err) => return super::fail(&err, None, None),
    };
    eprintln!(
        "{:>12} {}, {} total",
        if args.dry_run { "Summary" } else { "Removed" },
        xbuild_core::error::counted(removed.files as usize, "file", "files"),
        crate::cache::human_size(removed.bytes)
    );
    if args.dry_run {
        eprintln!("warning: no files deleted due to --dry-run");
    }
    0
}

//! `xbuild clean [--all]`: empties the xbuild cache.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Remove everything in the cache: compiled dependencies and unpacked crates too.
    #[arg(long)]
    pub all: bool,
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
    let removed = cache.clean(args.all);
    eprintln!(
        "{:>12} {} files, {} total",
        "Removed",
        removed.files,
        crate::cache::human_size(removed.bytes)
    );
    0
}

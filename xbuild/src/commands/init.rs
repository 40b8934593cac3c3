//! `xbuild init [PATH]`: a commented spec file to start from.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "xbuild.toml", value_name = "PATH")]
    pub path: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn exec(args: &InitArgs) -> i32 {
    match crate::project::init(&args.path, args.force) {
        Ok(()) => {
            eprintln!("{:>12} {}", "Created", args.path.display());
            0
        }
        Err(err) => super::fail(&err, None, None),
    }
}

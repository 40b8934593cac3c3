//! `xbuild matrix`: a spec's distribution x target pairs as a CI job matrix.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct MatrixArgs {
    /// The spec file (default: ./xbuild.toml).
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Only these distributions. Repeatable.
    #[arg(long = "dist", value_name = "NAME")]
    pub dist: Vec<String>,
}

pub fn exec(args: &MatrixArgs) -> i32 {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::specfile::SPEC_FILE));
    match crate::project::matrix(&file, &args.dist) {
        Ok(matrix) => {
            println!("{matrix}");
            0
        }
        Err(err) => super::fail(&err, None, None),
    }
}

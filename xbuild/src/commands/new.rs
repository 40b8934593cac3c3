//! `xbuild new NAME`: a module crate ready to test and publish.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The crate's name.
    pub name: String,
    /// The namespace of its module IDs (default: the name, with `_` for `-`).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// What the crate holds: `module` (one module and one host command) or `handler`
    /// (an HTTP handler for xbuild-http's server).
    #[arg(long, value_enum, default_value_t)]
    pub template: crate::scaffold::Template,
    /// The directory to create it in (default: the current one).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub path: PathBuf,
}

pub fn exec(args: &NewArgs) -> i32 {
    match crate::scaffold::create(
        &args.name,
        args.namespace.as_deref(),
        args.template,
        &args.path,
    ) {
        Ok(dir) => {
            eprintln!(
                "{:>12} module crate `{}` at {}",
                "Created",
                args.name,
                dir.display()
            );
            0
        }
        Err(err) => super::fail(&err, None, None),
    }
}

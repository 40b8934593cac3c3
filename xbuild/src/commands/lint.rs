//! `xbuild lint [PATH]`: a module crate checked as a curated index would before listing it.

use std::path::PathBuf;

use clap::Args;

use crate::project::DevHost;

#[derive(Debug, Clone, Args)]
pub struct LintArgs {
    /// The module crate (default: the one around the current directory).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// 0 when every check passes, 1 naming each failure, 2 when the crate cannot be read.
pub fn exec(args: &LintArgs) -> i32 {
    let start = args.path.as_deref().unwrap_or(std::path::Path::new("."));
    let dir = match crate::project::crate_around(start) {
        Ok(dir) => dir,
        Err(err) => return super::fail(&err, None, None),
    };
    let manifest = match crate::lint::read_manifest(&dir) {
        Ok(manifest) => manifest,
        Err(err) => return super::fail(&err, None, None),
    };
    let mut findings = crate::lint::static_checks(&dir, &manifest);
    // A host with only this crate: what it registers is its own.
    let dev = DevHost {
        path: Some(dir.clone()),
        no_standard: true,
        ..DevHost::default()
    };
    match super::run::build_dev_host(&dev, false, false) {
        Ok(host) => {
            let open = match crate::lint::open_namespaces(&dir, &manifest.name) {
                Ok(open) => open,
                Err(e) => {
                    findings.push(crate::lint::failure(
                        "deps",
                        format!(
                            "cannot read the namespaces the dependencies open (cargo metadata): {e}"
                        ),
                    ));
                    Vec::new()
                }
            };
            findings.extend(crate::lint::host_checks(&host, &manifest, &open));
        }
        Err(err) => findings.push(crate::lint::failure(
            "registers",
            format!(
                "a host with the crate does not build: {}",
                crate::error::Report::new(&err).message
            ),
        )),
    }
    let text = crate::lint::render(&manifest.name, &findings);
    if findings.iter().all(|f| f.ok) {
        print!("{text}");
        0
    } else {
        eprint!("{text}");
        1
    }
}

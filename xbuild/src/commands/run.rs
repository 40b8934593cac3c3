//! `xbuild run [-- HOST-ARGS]`: a dev host with the module crate around the current
//! directory, built in the cache and run.

use std::path::PathBuf;

use clap::Args;

use crate::builder::BuildError;
use crate::cli::MessageFormat;
use crate::project::DevHost;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Another module crate to build in (`[registry:]crate[@req][=replacement]`). Repeatable.
    #[arg(long = "with", value_name = "SPEC")]
    pub with: Vec<String>,
    /// Leave out the standard modules.
    #[arg(long)]
    pub no_standard: bool,
    /// Build with the release profile (default: dev, for quick rebuilds).
    #[arg(long)]
    pub release: bool,
    /// Cargo alternative registry for the `--with` crates.
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// The module crate (default: the one around the current directory).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Also print cargo's own output.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print no progress while building (the host's own output is unchanged).
    #[arg(long, short)]
    pub quiet: bool,
    /// Arguments for the host (after `--`), e.g. `-- run --config site.toml`.
    #[arg(last = true, value_name = "HOST-ARGS")]
    pub host_args: Vec<String>,
}

impl RunArgs {
    fn dev_host(&self) -> DevHost {
        DevHost {
            path: self.path.clone(),
            with: self.with.clone(),
            no_standard: self.no_standard,
            release: self.release,
            registry: self.registry.clone(),
        }
    }
}

/// Builds, then replaces this process with the host, so signals and the exit code are the
/// host's own.
pub fn exec(args: &RunArgs) -> i32 {
    let host = match build_dev_host(&args.dev_host(), args.quiet, args.verbose) {
        Ok(host) => host,
        Err(err) => return super::fail(&err, None, None),
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&host)
        .args(&args.host_args)
        .exec();
    let failure = BuildError::Io {
        what: format!("run the host `{}`", host.display()),
        source: err,
    };
    super::fail(&failure, None, None)
}

/// The dev host of `xbuild run` and `xbuild lint`, with progress on stderr as `xbuild
/// build` shows it (a first build takes a minute or more).
pub(super) fn build_dev_host(
    dev: &DevHost,
    quiet: bool,
    verbose: bool,
) -> Result<PathBuf, BuildError> {
    let color = crate::events::use_color(None, std::io::stderr());
    let mut reporter = super::reporter_for(MessageFormat::Human, quiet, verbose, color);
    super::with_interrupt(|interrupt| {
        crate::project::build_for_run(
            dev,
            &crate::cache::Cache::from_env()?,
            &super::options(true)?,
            reporter.as_mut(),
            interrupt,
        )
    })
}

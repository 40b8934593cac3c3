//! `xbuild verify HOST [--rebuild]`: a host against its manifest.

use std::path::PathBuf;

use clap::Args;

use crate::cli::MessageFormat;

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The host binary; its manifest is `HOST.manifest.json` beside it.
    #[arg(value_name = "HOST")]
    pub host: PathBuf,
    /// Also rebuild it from the build information and lock it carries, in a temporary
    /// directory, and compare the bytes.
    #[arg(long)]
    pub rebuild: bool,
    /// The manifest to check against (default: beside the host).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// One JSON document, for tools.
    #[arg(long)]
    pub json: bool,
    /// Do not touch the network when rebuilding (passed to cargo).
    #[arg(long)]
    pub offline: bool,
}

/// 0 when everything matches, 1 naming every mismatch, 2 when the host or its manifest
/// cannot be read.
pub fn exec(args: &VerifyArgs) -> i32 {
    if let Err(err) = crate::verify::check_host_path(&args.host) {
        return super::fail(&err, None, None);
    }
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| crate::manifest::manifest_path(&args.host));
    let manifest = match crate::verify::read_manifest(&manifest_path) {
        Ok(manifest) => manifest,
        Err(err) => return super::fail(&err, None, None),
    };
    let runnable = manifest.target.starts_with(std::env::consts::ARCH)
        && manifest.target.contains(std::env::consts::OS);
    let mut findings = match crate::verify::check(&args.host, &manifest, runnable) {
        Ok(findings) => findings,
        Err(err) => return super::fail(&err, None, None),
    };
    if args.rebuild {
        let color = crate::events::use_color(None, std::io::stderr());
        let mut reporter = super::reporter_for(MessageFormat::Human, false, false, color);
        let result = super::with_interrupt(|interrupt| {
            let options = super::options(false)?;
            crate::verify::rebuild(
                &args.host,
                args.offline,
                &options,
                reporter.as_mut(),
                interrupt,
            )
        });
        match result {
            Ok(finding) => findings.push(finding),
            Err(err) => return super::fail(&err, None, None),
        }
    }
    let ok = findings.iter().all(|f| f.ok);
    if args.json {
        let document = serde_json::json!({
            "host": args.host,
            "manifest": manifest_path,
            "ok": ok,
            "checks": findings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).expect("serialises")
        );
    } else {
        let text = crate::verify::render(&args.host, &findings);
        if ok {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
    }
    if ok { 0 } else { 1 }
}

//! # xbuild
//!
//! Composes one host binary from xbuild module crates at build time. Layers, each small:
//! [`cli`] (argument definitions) → [`specfile`] (the spec value: a spec file's
//! distributions, or the flags as one) → [`plan`] (one build as plain data, checked; names
//! via [`spec`]) → [`builder`] (the steps: [`workspace`] generation, [`resolve`] checks,
//! [`cargo`] runs, the [`sbom`], [`elf`] static check, [`install`] with its [`manifest`])
//! reporting [`events`] to a reporter. [`project`] runs the builds a command asks for and
//! keeps the [`lockfile`]; [`verify`] checks a host against its manifest using what the
//! host carries ([`hostinfo`]). [`cache`] keeps compiled dependencies and built hosts,
//! [`embedded`] carries xbuild's own crates, and every failure is an [`error`] with help as
//! data.

pub mod builder;
pub mod cache;
pub mod cargo;
pub mod cli;
pub mod elf;
pub mod embedded;
pub mod error;
pub mod events;
pub mod hostinfo;
pub mod install;
pub mod known;
pub mod lint;
pub mod lockfile;
pub mod manifest;
pub mod plan;
pub mod project;
pub mod resolve;
pub mod sbom;
pub mod scaffold;
pub mod sizes;
pub mod space;
pub mod spec;
pub mod specfile;
pub mod verify;
pub mod workspace;

use clap::Parser;

use crate::cli::{Cli, ColorChoice, Command, MessageFormat, VerifyArgs};
use crate::events::{Event, HumanReporter, JsonReporter, Reporter};

/// This xbuild's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the xbuild CLI on the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            if let Some(usage) = cargo_habit(&err) {
                let color = events::use_color(None, std::io::stderr());
                eprint!("{}", error::Report::new(&usage, 2).render(color));
                return 2;
            }
            let _ = err.print();
            return err.exit_code();
        }
    };
    let args = match cli.command {
        Some(Command::Build(args)) => *args,
        Some(Command::ListKnown { json }) => {
            print!("{}", known::render(json));
            return 0;
        }
        Some(Command::Search { words, json }) => {
            let hits = known::search(known::known_modules(), &words);
            print!("{}", known::render_hits(&hits, json));
            if hits.is_empty() && !json {
                // Like `cargo search`, no match is not an error: say so on stderr.
                eprintln!(
                    "note: no module in xbuild's index matches `{}`\nhelp: crates outside the index are on crates.io with the keyword `xbuild`: https://crates.io/keywords/xbuild",
                    words.join(" ")
                );
            }
            return 0;
        }
        Some(Command::Clean { all }) => return clean(all),
        Some(Command::Init { path, force }) => {
            return match project::init(&path, force) {
                Ok(()) => {
                    eprintln!("{:>12} {}", "Created", path.display());
                    0
                }
                Err(err) => fail(&err, 2, None, None),
            };
        }
        Some(Command::Verify(args)) => return verify(&args),
        Some(Command::Matrix { file, dist }) => {
            let file = file.unwrap_or_else(|| std::path::PathBuf::from(specfile::SPEC_FILE));
            return match project::matrix(&file, &dist) {
                Ok(matrix) => {
                    println!("{matrix}");
                    0
                }
                Err(err) => fail(&err, 2, None, None),
            };
        }
        Some(Command::New {
            name,
            namespace,
            template,
            path,
        }) => {
            return match scaffold::create(&name, namespace.as_deref(), template, &path) {
                Ok(dir) => {
                    eprintln!(
                        "{:>12} module crate `{name}` at {}",
                        "Created",
                        dir.display()
                    );
                    0
                }
                Err(err) => fail(&err, 2, None, None),
            };
        }
        Some(Command::Run(args)) => return run(&args),
        Some(Command::Lint { path }) => return lint(path),
        Some(Command::Update(args)) => {
            let color = events::use_color(args.color, std::io::stderr());
            let mut reporter = reporter_for(args.message_format, false, false, color);
            let result = with_interrupt(|interrupt| {
                project::update(
                    &args,
                    &cache::Cache::from_env(),
                    reporter.as_mut(),
                    interrupt,
                )
            });
            return match result {
                Ok(()) => 0,
                Err(err) => fail(&err, err.exit_code(), Some(reporter.as_mut()), args.color),
            };
        }
        None => cli.build,
    };
    let color = events::use_color(args.color, std::io::stderr());
    let mut reporter = reporter_for(args.message_format, args.quiet, args.verbose, color);
    let result = with_interrupt(|interrupt| {
        let options = options(true)?;
        project::build(
            &args,
            &cache::Cache::from_env(),
            &options,
            reporter.as_mut(),
            interrupt,
        )
    });
    match result {
        Ok(_) => 0,
        Err(err) => fail(&err, err.exit_code(), Some(reporter.as_mut()), args.color),
    }
}

/// Runs `f` with SIGINT and SIGTERM turned into a clean stop of the cargo it runs.
fn with_interrupt<T>(
    f: impl FnOnce(&cargo::Interrupt) -> Result<T, builder::BuildError>,
) -> Result<T, builder::BuildError> {
    let interrupt = cargo::Interrupt::install().map_err(|e| builder::BuildError::Io {
        what: "install signal handlers".into(),
        source: e,
    })?;
    f(&interrupt)
}

fn reporter_for(
    format: MessageFormat,
    quiet: bool,
    verbose: bool,
    color: bool,
) -> Box<dyn Reporter> {
    match format {
        MessageFormat::Json => Box::new(JsonReporter),
        MessageFormat::Human => Box::new(HumanReporter::new(quiet, verbose, color)),
    }
}

/// Shows `err` on stderr (and as an event, when there is a reporter); returns `code`.
fn fail(
    err: &dyn error::Diagnostic,
    code: i32,
    reporter: Option<&mut dyn Reporter>,
    color: Option<ColorChoice>,
) -> i32 {
    let color = events::use_color(color, std::io::stderr());
    let report = error::Report::new(err, code);
    eprint!("{}", report.render(color));
    if let Some(reporter) = reporter {
        reporter.report(Event::Error { report });
    }
    code
}

/// `xbuild run [-- HOST-ARGS]`: builds, then replaces this process with the host, so
/// signals and the exit code are the host's own.
fn run(args: &cli::RunArgs) -> i32 {
    let host = match build_for_run(args) {
        Ok(host) => host,
        Err(err) => return fail(&err, err.exit_code(), None, None),
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&host)
        .args(&args.host_args)
        .exec();
    let failure = builder::BuildError::Io {
        what: format!("run the host `{}`", host.display()),
        source: err,
    };
    fail(&failure, 1, None, None)
}

/// The dev host of `xbuild run` and `xbuild lint`, with progress on stderr as `xbuild
/// build` shows it (a first build takes a minute or more).
fn build_for_run(args: &cli::RunArgs) -> Result<std::path::PathBuf, builder::BuildError> {
    let color = events::use_color(None, std::io::stderr());
    let mut reporter = reporter_for(MessageFormat::Human, args.quiet, args.verbose, color);
    with_interrupt(|interrupt| {
        project::build_for_run(
            args,
            &cache::Cache::from_env(),
            &options(true)?,
            reporter.as_mut(),
            interrupt,
        )
    })
}

/// Build settings from the environment; `reuse_hosts` as [`builder::Options`] says.
fn options(reuse_hosts: bool) -> Result<builder::Options, plan::UsageError> {
    Ok(builder::Options {
        cache_max: cache_max()?,
        reuse_hosts,
    })
}

/// `xbuild lint [PATH]`: 0 when every check passes, 1 naming each failure, 2 when the
/// crate cannot be read.
fn lint(path: Option<std::path::PathBuf>) -> i32 {
    let dir = match project::crate_around(path.as_deref().unwrap_or(std::path::Path::new("."))) {
        Ok(dir) => dir,
        Err(err) => return fail(&err, 2, None, None),
    };
    let manifest = match lint::read_manifest(&dir) {
        Ok(manifest) => manifest,
        Err(err) => return fail(&err, 2, None, None),
    };
    let mut findings = lint::static_checks(&dir, &manifest);
    // A host with only this crate: what it registers is its own.
    let args = cli::RunArgs {
        with: Vec::new(),
        no_standard: true,
        release: false,
        registry: None,
        path: Some(dir.clone()),
        verbose: false,
        quiet: false,
        host_args: Vec::new(),
    };
    match build_for_run(&args) {
        Ok(host) => {
            let open = match lint::open_namespaces(&dir, &manifest.name) {
                Ok(open) => open,
                Err(e) => {
                    findings.push(lint::failure(
                        "deps",
                        format!(
                            "cannot read the namespaces the dependencies open (cargo metadata): {e}"
                        ),
                    ));
                    Vec::new()
                }
            };
            findings.extend(lint::host_checks(&host, &manifest, &open));
        }
        Err(err) => findings.push(lint::failure(
            "registers",
            format!(
                "a host with the crate does not build: {}",
                error::Report::new(&err, 1).message
            ),
        )),
    }
    let text = lint::render(&manifest.name, &findings);
    if findings.iter().all(|f| f.ok) {
        print!("{text}");
        0
    } else {
        eprint!("{text}");
        1
    }
}

/// `xbuild verify HOST [--rebuild]`: 0 when everything matches, 1 naming every mismatch,
/// 2 when the host or its manifest cannot be read.
fn verify(args: &VerifyArgs) -> i32 {
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| manifest::manifest_path(&args.host));
    let manifest = match verify::read_manifest(&manifest_path) {
        Ok(manifest) => manifest,
        Err(err) => return fail(&err, 2, None, None),
    };
    let runnable = manifest.target.starts_with(std::env::consts::ARCH)
        && manifest.target.contains(std::env::consts::OS);
    let mut findings = match verify::check(&args.host, &manifest, runnable) {
        Ok(findings) => findings,
        Err(err) => return fail(&err, 2, None, None),
    };
    if args.rebuild {
        let color = events::use_color(None, std::io::stderr());
        let mut reporter = reporter_for(MessageFormat::Human, false, false, color);
        let result = with_interrupt(|interrupt| {
            let options = options(false)?;
            verify::rebuild(
                &args.host,
                args.offline,
                &options,
                reporter.as_mut(),
                interrupt,
            )
        });
        match result {
            Ok(finding) => findings.push(finding),
            Err(err) => return fail(&err, err.exit_code(), None, None),
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
        let text = verify::render(&args.host, &findings);
        if ok {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
    }
    if ok { 0 } else { 1 }
}

/// Flags cargo has and xbuild does not, answered with what to use instead (clap's own
/// suggestion is by spelling: `--release` would get `--replace`).
fn cargo_habit(err: &clap::Error) -> Option<error::UsageError> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let flag = match err.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(flag)) => flag.split('=').next()?.to_owned(),
        _ => return None,
    };
    let help = match flag.as_str() {
        "--release" | "-r" => {
            "release is the default profile; use `--profile dev` for a dev (debug) build"
        }
        "--debug" => "use `--profile dev` for a dev (debug) build; release is the default",
        "--bin" | "--package" | "-p" => {
            "xbuild builds one host; name module crates with `--with CRATE`"
        }
        "--path" => "give a local module crate as `--with CRATE=PATH`",
        _ => return None,
    };
    Some(error::UsageError::new(format!("unexpected argument `{flag}`")).help(help))
}

/// `XBUILD_CACHE_MAX`, or the default cap.
fn cache_max() -> Result<u64, plan::UsageError> {
    match std::env::var("XBUILD_CACHE_MAX") {
        Err(_) => Ok(cache::DEFAULT_MAX_BYTES),
        Ok(text) => cache::parse_size(&text).map_err(|why| {
            plan::UsageError::new(format!("invalid XBUILD_CACHE_MAX: {why}"))
                .help("give a size such as `2GiB`, `500MB` or a number of bytes")
        }),
    }
}

/// `xbuild clean [--all]`.
fn clean(all: bool) -> i32 {
    let cache = cache::Cache::from_env();
    let _lock = match cache.lock(|| {
        eprintln!(
            "{:>12} for the lock on the xbuild cache `{}`",
            "Blocking",
            cache.root().display()
        )
    }) {
        Ok(lock) => lock,
        Err(err) => {
            let failure = builder::BuildError::Io {
                what: format!("lock the xbuild cache `{}`", cache.root().display()),
                source: err,
            };
            let color = events::use_color(None, std::io::stderr());
            eprint!("{}", error::Report::new(&failure, 1).render(color));
            return 1;
        }
    };
    let removed = cache.clean(all);
    eprintln!(
        "{:>12} {} files, {} total",
        "Removed",
        removed.files,
        cache::human_size(removed.bytes)
    );
    0
}

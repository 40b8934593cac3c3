//! The host CLI every built binary has. `main` is what the generated `main.rs` calls; each
//! subcommand is a thin layer over an operation in `ops` that the core's tests call directly.

mod admin;
mod audit;
mod cli;
pub(crate) use admin::AdminError;
pub(crate) mod ops;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use crate::build_info::BuildInfo;
use crate::registry::Registry;

/// The apps of a host config, driven through their lifecycle: what `run` and `validate` do,
/// for hosts and tests that run apps in-process.
pub use crate::lifecycle::{Apps, LifecycleError};
use cli::{Cli, Command};

/// Runs the host CLI and exits the process with its exit code.
pub fn main(info: BuildInfo) -> ! {
    let code = run(info, std::env::args_os().collect());
    std::process::exit(code)
}

/// [`main`] with the build information as JSON (what the generated `main.rs` embeds, so no
/// string from the xbuild command line ever becomes Rust source).
pub fn main_json(info: &str) -> ! {
    match serde_json::from_str::<BuildInfo>(info) {
        Ok(info) => main(info),
        Err(err) => {
            eprintln!(
                "error: this host's embedded build information is unreadable: {err}\nhelp: rebuild it with xbuild"
            );
            std::process::exit(1)
        }
    }
}

/// Parses `args` (program name first) and runs the command; returns the exit code.
pub fn run(info: BuildInfo, args: Vec<std::ffi::OsString>) -> i32 {
    // `--version` is dynamic (it names the build), so it is answered here rather than by
    // clap, which would want a subcommand first.
    if matches!(
        args.get(1).and_then(|a| a.to_str()),
        Some("-V" | "--version")
    ) {
        println!("{}", ops::version_line(&info));
        return 0;
    }
    // Registrations are read before parsing so module commands show up in `--help`.
    let registry = Registry::linked();
    let mut command = Cli::command().arg(
        Arg::new("version")
            .short('V')
            .long("version")
            .action(ArgAction::SetTrue)
            .help("Print the version (as the `version` command)"),
    );
    if let Ok(registry) = &registry {
        for extra in registry.commands() {
            command = command.subcommand(
                clap::Command::new(extra.name).about(extra.about).arg(
                    Arg::new("args")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true)
                        .action(ArgAction::Append),
                ),
            );
        }
    }
    let matches = match command.try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(err) => {
            let _ = err.print();
            return err.exit_code();
        }
    };
    let wants_logs = matches!(matches.subcommand_name(), Some("run" | "validate"));
    // Dropped (flushed) before an error is printed, so the log lines written so far reach
    // stderr first and the error is the last thing printed (the logs go through a writer
    // thread of their own).
    let mut logs = Some(init_logging(if wants_logs { "info" } else { "warn" }));
    // Which module calls are timed (crate::guard::CallTiming), before any module runs.
    if let Some(text) = std::env::var_os("XBUILD_CALL_TIMING") {
        match crate::guard::CallTiming::parse(&text.to_string_lossy()) {
            Ok(timing) => crate::guard::set_call_timing(timing),
            Err(err) => {
                let bad = crate::Hinted::new(format!("XBUILD_CALL_TIMING: {err}"))
                    .help("unset it for the default (one call in 64)")
                    .code(2);
                return fail(&bad);
            }
        }
    }

    if let (Ok(registry), Some((name, sub))) = (&registry, matches.subcommand())
        && let Some(extra) = registry.command(name)
    {
        let args = sub
            .get_many::<String>("args")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        // A command is module code too: a panic becomes an error, not a crash.
        return match crate::guard::call(extra.name, "command", || Ok((extra.run)(args))) {
            Ok(code) => code,
            Err(err) => {
                logs.take();
                fail(&err)
            }
        };
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return err.exit_code();
        }
    };

    // These two describe the binary itself and work even with a broken registry.
    match &cli.command {
        Command::Version => {
            println!("{}", ops::version_line(&info));
            return 0;
        }
        Command::BuildInfo(args) => {
            print!(
                "{}",
                ops::build_info(&info, registry.as_ref().ok(), args.json)
            );
            return 0;
        }
        _ => {}
    }
    let registry = match registry {
        Ok(registry) => registry,
        Err(err) => {
            logs.take();
            return fail(&err);
        }
    };
    let result = match cli.command {
        Command::Run(args) => ops::run(&registry, &args.config.config, args.stop_timeout),
        Command::Validate(args) => ops::validate(&registry, &args.config),
        Command::Reload(args) => {
            ops::reload_command(&args.config.config, args.force, args.address.as_deref())
        }
        Command::ListModules(args) => {
            print!(
                "{}",
                ops::list_modules(&registry, args.versions, args.json, args.skip_standard)
            );
            Ok(())
        }
        Command::Selftest(args) => ops::selftest_command(&registry, &info, args.json),
        Command::Version | Command::BuildInfo(_) => unreachable!("handled above"),
    };
    logs.take();
    match result {
        Ok(()) => 0,
        Err(err) => fail(err.as_ref()),
    }
}

/// Prints `err` in cargo's shape; returns the exit code it carries.
fn fail(err: &(dyn std::error::Error + 'static)) -> i32 {
    eprintln!("error: {}", error_chain(err));
    crate::error::exit_code_of(err)
}

/// An error as the host prints it after `error: `: see [`crate::error::render`].
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::error::render(err)
}

/// Logs go to stderr through the host's log writer ([`crate::log_writer`]): formatting stays
/// on the calling thread, but the write does not, so a request's log line does not wait on
/// the terminal or pipe. Lines are never dropped. Dropping the returned guard writes out
/// what is queued, so it lives until the command returns.
fn init_logging(default_level: &str) -> FlushLogs {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    // `XBUILD_LOG`: `LEVEL` and `TARGET=LEVEL` directives (`debug`, `info,http.access=off`).
    // Targets, not EnvFilter: EnvFilter's span and field filters bring a regex engine,
    // about a tenth of a host's cold build, for a feature hosts do not need.
    let default: Targets = default_level.parse().expect("a level is a filter");
    let filter = match std::env::var("XBUILD_LOG") {
        Ok(text) => text.parse::<Targets>().unwrap_or_else(|err| {
            eprintln!(
                "warning: XBUILD_LOG `{text}` is not a log filter ({err}); logging at `{default_level}`\nhelp: give a level or TARGET=LEVEL directives, e.g. `debug` or `info,http.access=off`"
            );
            default
        }),
        Err(_) => default,
    };
    crate::log_writer::start();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(crate::log_writer::Stderr { ansi })
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if std::env::var("XBUILD_LOG_FORMAT").as_deref() == Ok("json") {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    FlushLogs
}

/// Writes out the queued log lines when dropped.
struct FlushLogs;

impl Drop for FlushLogs {
    fn drop(&mut self) {
        crate::log_writer::flush();
    }
}

//! Progress is separate from display (xcaddy's and cargo's lesson): the build emits
//! [`Event`]s, and a [`Reporter`] turns them into cargo-style status lines with an indicatif
//! bar, or into one JSON object per line for CI (`--message-format json`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::ColorChoice;
use crate::plan::BuildPlan;

/// Whether to colour what goes to `stream`: `--color` if given, else `CARGO_TERM_COLOR`
/// (as cargo), else never when `NO_COLOR` is set (no-color.org), else only for a terminal.
pub fn use_color(choice: Option<ColorChoice>, stream: impl IsTerminal) -> bool {
    color_from(
        choice,
        |name| std::env::var(name).ok(),
        stream.is_terminal(),
    )
}

fn color_from(
    choice: Option<ColorChoice>,
    env: impl Fn(&str) -> Option<String>,
    terminal: bool,
) -> bool {
    let from_env = || match env("CARGO_TERM_COLOR").as_deref() {
        Some("always") => Some(ColorChoice::Always),
        Some("never") => Some(ColorChoice::Never),
        _ if env("NO_COLOR").is_some_and(|v| !v.is_empty()) => Some(ColorChoice::Never),
        _ => None,
    };
    match choice.or_else(from_env).unwrap_or(ColorChoice::Auto) {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_flag_then_cargo_then_no_color_then_the_terminal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(color_from(None, env(&[]), true));
        assert!(!color_from(None, env(&[]), false));
        assert!(!color_from(None, env(&[("NO_COLOR", "1")]), true));
        assert!(color_from(None, env(&[("NO_COLOR", "")]), true));
        assert!(!color_from(
            None,
            env(&[("CARGO_TERM_COLOR", "never")]),
            true
        ));
        assert!(color_from(
            None,
            env(&[("CARGO_TERM_COLOR", "always")]),
            false
        ));
        assert!(color_from(
            None,
            env(&[("CARGO_TERM_COLOR", "always"), ("NO_COLOR", "1")]),
            false
        ));
        assert!(color_from(
            Some(ColorChoice::Always),
            env(&[("NO_COLOR", "1")]),
            false
        ));
        assert!(!color_from(
            Some(ColorChoice::Never),
            env(&[("CARGO_TERM_COLOR", "always")]),
            true
        ));
    }
}

/// The named steps of a build, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Another xbuild holds the cache's lock.
    Wait,
    Generate,
    Resolve,
    /// The build ID was in the result cache: no compiling.
    Fresh,
    Compile,
    CheckStatic,
    Selftest,
    Install,
    /// The cache was over its cap.
    Prune,
    /// The lock file was written (it changed).
    Lock,
}

impl Step {
    fn verb(self) -> &'static str {
        match self {
            Step::Wait => "Blocking",
            Step::Generate => "Generating",
            Step::Resolve => "Resolving",
            Step::Fresh => "Fresh",
            Step::Prune => "Pruning",
            Step::Compile => "Compiling",
            Step::CheckStatic => "Checking",
            Step::Selftest => "Testing",
            Step::Install => "Installing",
            Step::Lock => "Locked",
        }
    }
}

/// The version of the `plan` event's schema: bumped when a field changes meaning or goes
/// away (new fields may appear without a bump).
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// The `plan` event (schema version 1):
/// `{"event": "plan", "version": 1, "dist", "target", "profile", "static", "standard",
/// "selftest", "sbom", "locked", "output", "modules": [...], "replacements": [...]}`, each
/// module `{"crate", "source": "registry"|"path"|"package", "req", "path", "package",
/// "registry", "features"}` (absent fields are `null`).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub version: u32,
    /// The distribution's name (`host` for a build from flags).
    pub dist: String,
    pub target: String,
    /// `release` or `dev`.
    pub profile: &'static str,
    #[serde(rename = "static")]
    pub static_link: bool,
    pub standard: bool,
    pub selftest: bool,
    pub sbom: bool,
    /// Built from the lock's resolution with nothing allowed to change.
    pub locked: bool,
    pub output: PathBuf,
    pub modules: Vec<PlannedModule>,
    pub replacements: Vec<PlannedModule>,
}

/// A module crate (or replacement) in the `plan` event.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedModule {
    #[serde(rename = "crate")]
    pub name: String,
    pub source: &'static str,
    pub req: Option<String>,
    pub path: Option<PathBuf>,
    pub package: Option<String>,
    pub registry: Option<String>,
    pub features: Vec<String>,
}

impl PlanSummary {
    pub fn of(plan: &BuildPlan) -> Self {
        use crate::plan::Source;
        let module = |m: &crate::plan::PlannedCrate| {
            let mut planned = PlannedModule {
                name: m.name.clone(),
                source: "registry",
                req: None,
                path: None,
                package: None,
                registry: None,
                features: m.features.clone(),
            };
            match &m.source {
                Source::Registry { req, registry } => {
                    planned.req = Some(req.to_string());
                    planned.registry = registry.clone();
                }
                Source::Path { path, req } => {
                    planned.source = "path";
                    planned.path = Some(path.clone());
                    planned.req = req.as_ref().map(ToString::to_string);
                }
                Source::Renamed {
                    package,
                    req,
                    registry,
                } => {
                    planned.source = "package";
                    planned.package = Some(package.clone());
                    planned.req = Some(req.to_string());
                    planned.registry = registry.clone();
                }
            }
            planned
        };
        Self {
            version: PLAN_SCHEMA_VERSION,
            dist: plan.dist.name.clone(),
            target: plan.target.clone(),
            profile: plan.profile.cargo_name(),
            static_link: plan.static_link,
            standard: plan.standard,
            selftest: !plan.skip_selftest,
            sbom: plan.sbom,
            locked: plan.locked.is_some(),
            output: plan.output.clone(),
            modules: plan.modules.iter().map(module).collect(),
            replacements: plan.replacements.iter().map(module).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResolvedModule {
    #[serde(rename = "crate")]
    pub name: String,
    pub version: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// What one build will make, first, so a CI log says exactly what was asked for: the
    /// documented [`PlanSummary`] schema, not the internal plan.
    Plan {
        #[serde(flatten)]
        plan: Box<PlanSummary>,
    },
    Step {
        step: Step,
        message: String,
    },
    Resolved {
        packages: usize,
        modules: Vec<ResolvedModule>,
    },
    Compiling {
        done: usize,
        total: usize,
        #[serde(rename = "crate")]
        name: String,
    },
    /// A compiler message: where (`file`, `line`, `column` of its primary span, when it has
    /// one) and in which crate, the plain `message`, and rustc's `rendered` text (coloured
    /// only for a colour terminal, never in JSON).
    Diagnostic {
        #[serde(rename = "crate")]
        name: String,
        version: Option<String>,
        level: String,
        message: String,
        file: Option<String>,
        line: Option<usize>,
        column: Option<usize>,
        rendered: String,
    },
    CargoOutput {
        line: String,
    },
    Workdir {
        path: PathBuf,
    },
    /// `xbuild update`: one change to a distribution's resolution, in cargo's words
    /// (`verb` is `Updating`, `Adding` or `Removing`).
    Updated {
        dist: String,
        verb: &'static str,
        message: String,
    },
    Finished {
        output: PathBuf,
        manifest: PathBuf,
        /// The CycloneDX SBOM beside the output, when one was written.
        sbom: Option<PathBuf>,
        build_id: String,
        sha256: String,
        /// The host came from the result cache.
        cached: bool,
        /// What each crate adds to the host, as in the manifest.
        #[serde(skip_serializing_if = "Option::is_none")]
        sizes: Option<xbuild_core::build_info::Sizes>,
        seconds: f64,
    },
    /// The build failed: the message, `help` and `notes` as data, and the exit code.
    Error {
        #[serde(flatten)]
        report: crate::error::Report,
    },
}

pub trait Reporter {
    fn report(&mut self, event: Event);

    /// Whether what it shows may carry colour codes (rustc's diagnostics included).
    fn color(&self) -> bool {
        false
    }
}

/// One JSON object per line on stdout.
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&mut self, event: Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, &event);
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// Cargo-style status lines on stderr, a progress bar while compiling on a terminal.
pub struct HumanReporter {
    quiet: bool,
    verbose: bool,
    color: bool,
    bar: Option<ProgressBar>,
}

impl HumanReporter {
    pub fn new(quiet: bool, verbose: bool, color: bool) -> Self {
        Self {
            quiet,
            verbose,
            color,
            bar: None,
        }
    }

    fn status(&mut self, verb: &str, message: &str) {
        if self.quiet {
            return;
        }
        let line = if self.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m {message}")
        } else {
            format!("{verb:>12} {message}")
        };
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for HumanReporter {
    fn color(&self) -> bool {
        self.color
    }

    fn report(&mut self, event: Event) {
        match event {
            Event::Step { step, message } => {
                if step != Step::Compile {
                    self.finish_bar();
                }
                self.status(step.verb(), &message);
                if step == Step::Compile && !self.quiet && std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(0);
                    bar.set_style(
                        ProgressStyle::with_template("    Building [{bar:30}] {pos}/{len}: {msg}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                }
            }
            Event::Resolved { packages, modules } => {
                for module in &modules {
                    self.status(
                        "Module",
                        &format!("{} v{} ({})", module.name, module.version, module.source),
                    );
                }
                self.status("Resolved", &format!("{packages} packages"));
            }
            Event::Compiling { done, total, name } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(name);
                } else if self.verbose {
                    self.status("Compiled", &format!("{name} ({done}/{total})"));
                }
            }
            Event::Diagnostic { rendered, .. } => match &self.bar {
                Some(bar) => bar.suspend(|| eprint!("{rendered}")),
                None => eprint!("{rendered}"),
            },
            Event::CargoOutput { line } => {
                if self.verbose {
                    match &self.bar {
                        Some(bar) => bar.println(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
            Event::Workdir { path } => {
                self.finish_bar();
                // Always shown, even with -q: the user asked for it.
                eprintln!(
                    "{:>12} generated workspace kept at {}",
                    "Kept",
                    path.display()
                );
            }
            Event::Finished {
                output,
                build_id,
                seconds,
                sizes,
                ..
            } => {
                self.finish_bar();
                if self.verbose
                    && let Some(sizes) = sizes
                {
                    eprint!("{}", crate::sizes::table(&sizes));
                }
                self.status(
                    "Finished",
                    &format!("{} (build {build_id}) in {seconds:.1}s", output.display()),
                );
            }
            Event::Updated { verb, message, .. } => self.status(verb, &message),
            Event::Error { .. } => self.finish_bar(),
            Event::Plan { .. } => {}
        }
    }
}

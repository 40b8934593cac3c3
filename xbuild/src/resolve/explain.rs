//! Cargo's resolution failures, read into errors that say what happened and what to do:
//! cargo's text names a crate, a requirement, a yanked version or a missing feature, and a
//! [`ResolveError`] turns that into one message with `help:` lines. Parsing is pure (text
//! in, error out) and tested against cargo's own words.

use std::path::Path;

use crate::error::Diagnostic;
use crate::plan::BuildPlan;

const CORE: &str = "xbuild-core";

/// A graph xbuild refuses to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "`{name}` {version} is not an xbuild module: it does not depend on xbuild-core, so it cannot register modules"
    )]
    NotAModule { name: String, version: String },
    #[error("two versions of xbuild-core would be linked into the host:\n{}", describe_cores(.0))]
    TwoCores(Vec<(String, Vec<String>)>),
    #[error("crate `{name}` was not found{}", registry_hint(.registry))]
    NoSuchCrate {
        name: String,
        registry: Option<String>,
        /// Crates it may have meant.
        suggestions: Vec<String>,
        /// Cargo ran offline, so the crate may exist but not be downloaded.
        offline: bool,
    },
    #[error(
        "this xbuild carries no copy of its own crates, and `{name}` {version} is not in the registry"
    )]
    OwnCrateNotPublished { name: String, version: String },
    #[error("registry `{name}` is not configured for cargo")]
    NoSuchRegistry { name: String },
    #[error(
        "`{krate}` {version} needs xbuild-core `{wants}`, but this xbuild builds hosts with xbuild-core {ours}"
    )]
    CoreVersion {
        krate: String,
        version: String,
        wants: String,
        ours: String,
    },
    #[error("`{krate}` has no feature {}", quoted(.features))]
    NoSuchFeature {
        krate: String,
        features: Vec<String>,
        available: Vec<String>,
    },
    #[error(
        "the crates of this build ask for versions of `{name}` that cannot all be met; cargo says:\n{details}"
    )]
    Conflict { name: String, details: String },
    #[error("cargo resolved the host without module crate `{0}` (a bug in xbuild)")]
    Missing(String),
    #[error(
        "--locked: the resolution of `{dist}` on {target} in the lock file `{lock}` does not fit this build: cargo would change it (other modules or versions)"
    )]
    StaleLock {
        dist: String,
        target: String,
        lock: String,
    },
    #[error(
        "the resolution of `{dist}` on {target} in the lock file `{lock}` is not a Cargo.lock cargo can read (was it edited by hand?); cargo says:\n{details}"
    )]
    BadLock {
        dist: String,
        target: String,
        lock: String,
        details: String,
    },
    #[error(
        "a module crate depends on the xbuild-core at `{}` by path, but this build uses xbuild's own copy",
        .path.display()
    )]
    CoreByPath { path: std::path::PathBuf },
    #[error(
        "crate `{name}` would be in the host twice under different names (a `--with` module and a `--replace` replacement, or two replacements, name the same crate)"
    )]
    NamedTwice { name: String },
    #[error("`--replace {name}=...`: nothing in this build depends on `{name}`")]
    ReplacedUnused { name: String },
    #[error("`--replace {name}=...`: cargo did not take the replacement for `{name}` {version}")]
    ReplacementNotTaken { name: String, version: String },
    #[error("{}", no_version_message(.name, .req, .available, .yanked, .required_by))]
    NoSuchVersion {
        name: String,
        req: String,
        available: Vec<String>,
        /// Versions that would match but are yanked.
        yanked: Vec<String>,
        /// The crate asking for it, with its version, when it is not the host.
        required_by: Option<(String, String)>,
        offline: bool,
    },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_version_message(
    name: &str,
    req: &str,
    available: &[String],
    yanked: &[String],
    required_by: &Option<(String, String)>,
) -> String {
    let asker = match required_by {
        Some((krate, version)) => format!(" (asked for by `{krate}` {version})"),
        None => String::new(),
    };
    if !yanked.is_empty() {
        return format!(
            "`{name}` {} matches `{req}`{asker} but is yanked: its publisher withdrew it{}",
            yanked.join(", "),
            available_versions(available)
        );
    }
    format!(
        "no version of `{name}` matches `{req}`{asker}{}",
        available_versions(available)
    )
}

impl Diagnostic for ResolveError {
    fn help(&self) -> Vec<String> {
        match self {
            ResolveError::NotAModule { .. } => vec![
                "check the crate name, or ask its author to register its modules with `xbuild_core::register_module!`".into(),
            ],
            ResolveError::TwoCores(_) => vec![
                "modules must share one xbuild-core; upgrade the modules built for the other version, or build with `--core-path` pointing at a core they share".into(),
            ],
            ResolveError::NoSuchCrate {
                suggestions,
                offline: true,
                ..
            } if suggestions.is_empty() => vec![
                "build once without --offline, so cargo can download it; offline, only crates already in cargo's cache can be used".into(),
            ],
            ResolveError::NoSuchCrate { suggestions, offline, .. } => {
                let mut help = Vec::new();
                if *offline {
                    help.push("build once without --offline, so cargo can download it".into());
                }
                if !suggestions.is_empty() {
                    help.push(format!(
                        "did you mean {}? (`xbuild list-known` lists known module crates)",
                        suggestions
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
                help.push(
                    "check the spelling, or pass `--registry NAME` if it is published to another registry".into(),
                );
                help
            }
            ResolveError::Conflict { name, .. } => vec![format!(
                "relax a `--with` version requirement, or update the module that asks for an old `{name}`"
            )],
            ResolveError::Missing(_) => vec![
                "rerun with --keep-workdir and report it with the generated Cargo.toml".into(),
            ],
            ResolveError::StaleLock { .. } => {
                vec!["build without --locked to resolve again and refresh it".into()]
            }
            ResolveError::NamedTwice { name } => vec![format!(
                "use `{name}` once: drop the `--with {name}`, or replace with another crate"
            )],
            ResolveError::BadLock { lock, .. } => vec![format!(
                "restore `{lock}` from version control, or delete it (or run `xbuild update`) to resolve again"
            )],
            ResolveError::NoSuchVersion { yanked, offline, .. } => {
                let mut help = Vec::new();
                if *offline {
                    help.push(
                        "build once without --offline: the version may exist but not be downloaded"
                            .into(),
                    );
                }
                help.push(if yanked.is_empty() {
                    "pick one of the versions that exist".into()
                } else {
                    "pick a version that is not yanked; a lock file that already names the yanked version keeps working with --locked".into()
                });
                help
            }
            ResolveError::ReplacedUnused { name } => vec![format!(
                "check the crate name; `xbuild --keep-workdir` and `cargo tree` in the kept workspace show what depends on what (`{name}` may only be a dependency under some features)"
            )],
            ResolveError::ReplacementNotTaken { name, .. } => vec![format!(
                "the crates depending on `{name}` may ask for a version the replacement cannot stand in for; give the replacement as a path to a copy of `{name}` instead: `--replace {name}=../path`"
            )],
            ResolveError::OwnCrateNotPublished { .. } => vec![
                "install xbuild from its source tree (`cargo install --path xbuild`), which carries them, or pass `--core-path` with the `core` folder of an xbuild checkout".into(),
            ],
            ResolveError::NoSuchRegistry { name } => vec![format!(
                "declare it where cargo finds its configuration, `.cargo/config.toml` in the directory xbuild runs in or a parent, or `$CARGO_HOME/config.toml`: `[registries.{name}] index = \"...\"`"
            )],
            ResolveError::CoreVersion { krate, ours, .. } => vec![format!(
                "use a version of `{krate}` made for xbuild-core {ours}, or an xbuild whose xbuild-core it fits"
            )],
            ResolveError::NoSuchFeature { krate, available, .. } => vec![if available.is_empty() {
                format!("`{krate}` declares no features")
            } else {
                format!("`{krate}` has {}", quoted(available))
            }],
            ResolveError::CoreByPath { path } => vec![format!(
                "build against that core with `--core-path {}` (the standard modules then come from its tree too), or depend on `xbuild-core = \"0.1\"` as published crates do",
                path.display()
            )],
        }
    }
}

fn describe_cores(cores: &[(String, Vec<String>)]) -> String {
    cores
        .iter()
        .map(|(version, wanted_by)| {
            format!(
                "  - xbuild-core {version}, wanted by {}",
                wanted_by.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn registry_hint(registry: &Option<String>) -> String {
    match registry {
        Some(r) => format!(" in registry `{r}`"),
        None => String::new(),
    }
}

fn available_versions(available: &[String]) -> String {
    // Cargo names at most a few candidates and ends a longer list with `...`.
    let listed: Vec<&str> = available
        .iter()
        .map(String::as_str)
        .filter(|v| *v != "...")
        .collect();
    match (listed.is_empty(), listed.len() < available.len()) {
        (true, _) => String::new(),
        (false, false) => format!("; versions that exist: {}", listed.join(", ")),
        (false, true) => format!(
            "; versions that exist include {} and more",
            listed.join(", ")
        ),
    }
}

/// Reads cargo's resolution failure into a [`ResolveError`] when it is about a crate the
/// user named; `None` leaves cargo's message to be shown as is.
pub fn explain_cargo_failure(stderr: &str, plan: &BuildPlan) -> Option<ResolveError> {
    let lock = || {
        plan.lock_file.as_ref().map_or_else(
            || "(the host's own)".to_owned(),
            |p| p.display().to_string(),
        )
    };
    if plan.locked.is_some() && stderr.contains("--locked was passed") {
        return Some(ResolveError::StaleLock {
            dist: plan.dist.name.clone(),
            target: plan.target.clone(),
            lock: lock(),
        });
    }
    if plan.lock_file.is_some() && stderr.contains("failed to parse lock file") {
        return Some(ResolveError::BadLock {
            dist: plan.dist.name.clone(),
            target: plan.target.clone(),
            lock: lock(),
            details: stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .skip_while(|l| !l.contains("failed to parse lock file"))
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    let named = |name: &str| {
        plan.modules
            .iter()
            .chain(&plan.replacements)
            .any(|m| m.name == name)
    };
    // Two path crates named xbuild-core: ours, and one a module crate names by path (a
    // module developed in xbuild's tree, or beside another checkout of it).
    if let Some(rest) = stderr
        .split("package collision in the lockfile: packages xbuild-core v")
        .nth(1)
    {
        let ours = |p: &str| {
            plan.core.path().is_some_and(|c| Path::new(p) == c)
                || p.contains(&format!("/{}/", crate::workspace::OWN_CRATES_DIR))
        };
        let paths: Vec<&str> = rest
            .split(" (")
            .skip(1)
            .filter_map(|part| part.split(')').next())
            .take(2)
            .collect();
        if let Some(theirs) = paths.iter().find(|p| !ours(p)) {
            return Some(ResolveError::CoreByPath {
                path: theirs.into(),
            });
        }
    }
    // Cargo words a missing crate as "no matching package named `x` found" or as "no
    // matching package found" followed by "searched package name: `x`" and maybe "perhaps
    // you meant: y".
    let cargo_suggestion = stderr
        .lines()
        .find_map(|l| l.strip_prefix("perhaps you meant:"))
        .map(|s| s.trim().to_owned());
    if let Some(rest) = stderr
        .split("registry index was not found in any configuration: `")
        .nth(1)
    {
        return Some(ResolveError::NoSuchRegistry {
            name: rest.split('`').next().unwrap_or_default().to_owned(),
        });
    }
    for line in stderr.lines() {
        let missing = line
            .split("no matching package named `")
            .nth(1)
            .or_else(|| line.strip_prefix("searched package name: `"));
        if let Some(rest) = missing {
            let name = rest.split('`').next().unwrap_or_default();
            let own = std::iter::once(&plan.core)
                .chain(&plan.local_crates)
                .find(|c| c.name == name && c.origin == crate::plan::Origin::Registry);
            if let Some(own) = own {
                return Some(ResolveError::OwnCrateNotPublished {
                    name: own.name.clone(),
                    version: own.version.clone(),
                });
            }
            if named(name) {
                let mut suggestions = crate::known::suggestions(name);
                for suggestion in cargo_suggestion.iter() {
                    if !suggestions.contains(suggestion) {
                        suggestions.push(suggestion.clone());
                    }
                }
                return Some(ResolveError::NoSuchCrate {
                    name: name.to_owned(),
                    registry: plan.registry_of(name).map(str::to_owned),
                    suggestions,
                    offline: plan.offline,
                });
            }
        }
        if let Some(rest) = line
            .split("failed to select a version for the requirement `")
            .nth(1)
        {
            // `name = "^9"`
            let requirement = rest.rsplit_once('`').map_or(rest, |(r, _)| r);
            let (name, req) = requirement.split_once(" = ").unwrap_or((requirement, ""));
            let req = req.trim_matches('"').to_owned();
            let available = stderr
                .lines()
                .find_map(|l| l.strip_prefix("candidate versions found which didn't match: "))
                .map(|list| list.split(", ").map(|v| v.trim().to_owned()).collect())
                .unwrap_or_default();
            let yanked = stderr
                .lines()
                .filter_map(|l| l.trim().strip_prefix("version "))
                .filter_map(|l| l.strip_suffix(" is yanked"))
                .map(str::to_owned)
                .collect();
            // `required by package `core9-mod v1.0.0 (registry `xtest`)``
            let required_by = stderr
                .lines()
                .find_map(|l| l.strip_prefix("required by package `"))
                .and_then(|rest| {
                    let mut words = rest.split([' ', '`']);
                    let krate = words.next()?;
                    let version = words.next()?.strip_prefix('v')?;
                    Some((krate.to_owned(), version.to_owned()))
                })
                .filter(|(krate, _)| krate != crate::workspace::HOST_PACKAGE);
            if name == CORE
                && let Some((krate, version)) = &required_by
            {
                return Some(ResolveError::CoreVersion {
                    krate: krate.clone(),
                    version: version.clone(),
                    wants: req,
                    ours: plan.core.version.clone(),
                });
            }
            return Some(ResolveError::NoSuchVersion {
                name: name.to_owned(),
                req,
                available,
                yanked,
                required_by,
                offline: plan.offline,
            });
        }
    }
    // `... depends on `feat-mod` with feature `nope` but `feat-mod` does not have that
    // feature.` and then one ` package `feat-mod` does have feature `loud`` per feature.
    if let Some(line) = stderr.lines().find(|l| {
        l.contains("does not have that feature") || l.contains("does not have these features")
    }) && let Some((asked, rest)) = line.split_once(" but `")
    {
        let krate = rest.split('`').next().unwrap_or_default().to_owned();
        let features = asked
            .split_once(" with feature")
            .map(|(_, list)| backticked(list))
            .unwrap_or_default();
        let available = stderr
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix(&format!("package `{krate}` does have feature "))
            })
            .flat_map(backticked)
            .collect();
        return Some(ResolveError::NoSuchFeature {
            krate,
            features,
            available,
        });
    }
    // `--with itoa --replace ryu=itoa@1`: the host would name `itoa` under two names.
    if let Some(rest) = stderr
        .split("multiple times with different names")
        .next()
        .filter(|before| before.len() < stderr.len())
        .and_then(|before| before.rsplit("depends on crate `").next())
        .filter(|tail| !tail.contains("multiple times"))
    {
        let name = rest.split([' ', '`']).next().unwrap_or_default().to_owned();
        if !name.is_empty() {
            return Some(ResolveError::NamedTwice { name });
        }
    }
    // Checked last: the specific messages above also start with this line's words.
    if let Some(rest) = stderr.split("failed to select a version for `").nth(1) {
        let name = rest.split('`').next().unwrap_or_default().to_owned();
        let details = stderr
            .lines()
            .skip_while(|l| !l.contains("failed to select a version for `"))
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Some(ResolveError::Conflict { name, details });
    }
    None
}

/// The `quoted` names in a piece of cargo's text.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_version_errors() {
        let stderr = "error: failed to select a version for the requirement `mod-a = \"^9\"`\n\
            candidate versions found which didn't match: 2.0.0, 1.3.0, 1.2.0\n\
            location searched: `xtest` index\n";
        let plan_modules = crate::plan::tests_support::plan_with(&["mod-a"]);
        let err = explain_cargo_failure(stderr, &plan_modules).unwrap();
        assert_eq!(
            err,
            ResolveError::NoSuchVersion {
                name: "mod-a".into(),
                req: "^9".into(),
                available: vec!["2.0.0".into(), "1.3.0".into(), "1.2.0".into()],
                yanked: Vec::new(),
                required_by: None,
                offline: false,
            }
        );
        assert!(
            err.to_string()
                .contains("versions that exist: 2.0.0, 1.3.0, 1.2.0")
        );
        let missing = "error: no matching package named `mod-a` found\nlocation searched: registry `crates-io`\n";
        assert!(matches!(
            explain_cargo_failure(missing, &plan_modules),
            Some(ResolveError::NoSuchCrate { .. })
        ));
        let missing = "error: no matching package found\nsearched package name: `mod-a`\nperhaps you meant:      mod_b\n";
        let err = explain_cargo_failure(missing, &plan_modules).unwrap();
        assert!(
            matches!(&err, ResolveError::NoSuchCrate { suggestions, .. } if suggestions == &["mod_b"]),
            "{err:?}"
        );
        assert!(err.help()[0].contains("did you mean `mod_b`?"), "{err:?}");
        let conflict = "    Updating index\nerror: failed to select a version for `serde`.\n    ... required by package `a`\n";
        let err = explain_cargo_failure(conflict, &plan_modules).unwrap();
        assert!(
            matches!(&err, ResolveError::Conflict { name, .. } if name == "serde"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("Updating index"), "{err}");
        assert!(explain_cargo_failure("error: something else", &plan_modules).is_none());
        let twice = "error: the crate `xbuild-host v0.0.0 (/tmp/xbuild-x)` depends on crate `itoa v1.0.15` multiple times with different names\n";
        let err = explain_cargo_failure(twice, &plan_modules).unwrap();
        assert_eq!(
            err,
            ResolveError::NamedTwice {
                name: "itoa".into()
            }
        );
        assert!(err.help()[0].contains("--with itoa"), "{err:?}");
        // cargo 1.95's own words, from the throwaway registry.
        let yanked = "error: failed to select a version for the requirement `mod-a = \"=1.3.0\"`\n  version 1.3.0 is yanked\nlocation searched: `/tmp/scr/reg` index (which is replacing registry `xtest`)\nrequired by package `xbuild-host v0.0.0 (/tmp/xbuild-LAxT4l)`\n";
        let err = explain_cargo_failure(yanked, &plan_modules).unwrap();
        assert_eq!(
            err.to_string(),
            "`mod-a` 1.3.0 matches `=1.3.0` but is yanked: its publisher withdrew it"
        );
        let core9 = "error: failed to select a version for the requirement `xbuild-core = \"^9\"`\ncandidate versions found which didn't match: 0.1.0\nlocation searched: crates.io index\nrequired by package `core9-mod v1.0.0 (registry `xtest`)`\n    ... which satisfies dependency `core9-mod = \"*\"` of package `xbuild-host v0.0.0 (/tmp/x)`\n";
        assert_eq!(
            explain_cargo_failure(core9, &plan_modules)
                .unwrap()
                .to_string(),
            "`core9-mod` 1.0.0 needs xbuild-core `^9`, but this xbuild builds hosts with xbuild-core 0.1.0"
        );
        let feature = "error: failed to select a version for `feat-mod`.\n    ... required by package `xbuild-host v0.0.0 (/tmp/xbuild-NwOxJb)`\nversions that meet the requirements `*` are: 1.0.0\n\npackage `xbuild-host` depends on `feat-mod` with feature `nope` but `feat-mod` does not have that feature.\n package `feat-mod` does have feature `loud`\n\n\nfailed to select a version for `feat-mod` which could resolve this conflict\n";
        let err = explain_cargo_failure(feature, &plan_modules).unwrap();
        assert_eq!(err.to_string(), "`feat-mod` has no feature `nope`");
        assert_eq!(err.help(), ["`feat-mod` has `loud`"]);
        let registry = "error: failed to parse manifest at `/tmp/xbuild-iRwdEd/Cargo.toml`\n\nCaused by:\n  registry index was not found in any configuration: `nosuchreg`\n";
        assert_eq!(
            explain_cargo_failure(registry, &plan_modules),
            Some(ResolveError::NoSuchRegistry {
                name: "nosuchreg".into()
            })
        );
        let mut offline = crate::plan::tests_support::plan_with(&["xbuild-htp"]);
        offline.offline = true;
        let err = explain_cargo_failure(
            "error: no matching package named `xbuild-htp` found\nlocation searched: crates.io index\nAs a reminder, you're using offline mode (--offline)\n",
            &offline,
        )
        .unwrap();
        assert!(
            err.help()[0].contains("without --offline"),
            "{:?}",
            err.help()
        );
        assert!(
            err.help()[1].contains("did you mean `xbuild-http`?"),
            "{:?}",
            err.help()
        );
        let mut registry_mode = crate::plan::tests_support::plan_with(&["m"]);
        registry_mode.core.origin = crate::plan::Origin::Registry;
        assert!(matches!(
            explain_cargo_failure(
                "error: no matching package named `xbuild-core` found\nlocation searched: crates.io index\n",
                &registry_mode
            ),
            Some(ResolveError::OwnCrateNotPublished { .. })
        ));
        let collision = "error: package collision in the lockfile: packages xbuild-core v0.1.0 (/tmp/x/xbuild-crates/xbuild-core) and xbuild-core v0.1.0 (/work/main/core) are different, but only one can be written to lockfile unambiguously\n";
        assert_eq!(
            explain_cargo_failure(collision, &plan_modules),
            Some(ResolveError::CoreByPath {
                path: "/work/main/core".into()
            })
        );
    }
}

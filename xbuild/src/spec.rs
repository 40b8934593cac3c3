//! `--with` and `--replace` values: `crate[@version-req][=replacement]`. Parsing is pure (no
//! I/O) and strict, because these strings end up in a generated Cargo.toml: only names that
//! are valid cargo package names and requirements `semver` accepts get through.

use std::fmt;
use std::path::PathBuf;

use semver::VersionReq;

/// What a `--with` or `--replace` value replaces its crate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// A local directory holding the crate (not yet checked to exist).
    Path(PathBuf),
    /// Another crate, at a version requirement.
    Crate { name: String, req: VersionReq },
}

/// One parsed `--with` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    pub name: String,
    pub req: Option<VersionReq>,
    pub replacement: Option<Replacement>,
}

/// `text` as an error shows it: control characters (a newline in a `--with` value, an
/// escape sequence) written as escapes, so a message stays one line and a terminal shows
/// what was given instead of obeying it.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The crate that names every standard module.
pub const STANDARD_CRATE: &str = "xbuild-standard";

/// Why a spec was refused. Each names the offending text and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("empty module spec")]
    Empty,
    #[error("invalid crate name `{}` in `{}`: {why}", shown(.name), shown(.spec))]
    BadName {
        spec: String,
        name: String,
        why: &'static str,
    },
    #[error("invalid version requirement `{}` in `{}`: {why}", shown(.req), shown(.spec))]
    BadReq {
        spec: String,
        req: String,
        why: String,
    },
    #[error("empty replacement in `{}`", shown(.spec))]
    EmptyReplacement { spec: String },
    #[error("`{}` is a path, but a module spec starts with the crate's name", shown(.spec))]
    PathWithoutName { spec: String },
    #[error("ambiguous replacement `{}` in `{}`", shown(.replacement), shown(.spec))]
    AmbiguousReplacement { spec: String, replacement: String },
    #[error("`{}` has no replacement", shown(.spec))]
    MissingReplacement { spec: String },
    #[error("`{spec}` names xbuild-core, which every host already uses")]
    Core { spec: String },
    #[error("module `{name}` has both `path` and `package`")]
    PathAndPackage { name: String },
}

impl crate::error::Diagnostic for SpecError {
    fn help(&self) -> Vec<String> {
        let text = match self {
            SpecError::Empty => "write `crate`, `crate@1.2` or `crate=../path`".to_owned(),
            SpecError::BadName { .. } => "crate names are ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters".to_owned(),
            SpecError::BadReq { .. } => {
                "use cargo's syntax, e.g. `1.2`, `=1.2.3`, `~1.2` or `>=1, <2`".to_owned()
            }
            SpecError::EmptyReplacement { .. } => {
                "write `crate=../path` or `crate=other-crate@1.2`".to_owned()
            }
            SpecError::PathWithoutName { spec } => {
                format!("write `CRATE={spec}`, e.g. `my-module={spec}`")
            }
            SpecError::AmbiguousReplacement { replacement, .. } => format!(
                "write `./{replacement}` for a directory or `{replacement}@VERSION` for a crate"
            ),
            SpecError::MissingReplacement { .. } => {
                "`--replace` takes `crate=../path` or `crate=other-crate@1.2`".to_owned()
            }
            SpecError::Core { .. } => {
                "to build against another core, pass `--core-path DIR`".to_owned()
            }
            SpecError::PathAndPackage { .. } => {
                "keep `path` for a local directory, or `package` for another crate".to_owned()
            }
        };
        vec![text]
    }
}

/// Names the Rust compiler reserves: a crate with one of these names cannot be named in
/// `main.rs` with `use NAME as _;`.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
];

/// Checks a cargo package name; returns why it is refused.
pub fn check_crate_name(name: &str) -> Result<(), &'static str> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty");
    };
    if name.len() > 64 {
        return Err("it is longer than 64 characters");
    }
    if !first.is_ascii_alphabetic() {
        return Err("it does not start with a letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("it contains a character other than ASCII letters, digits, `-` and `_`");
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err("it is a Rust keyword or a built-in crate name");
    }
    Ok(())
}

/// The identifier a crate is named by in Rust code.
pub fn crate_ident(name: &str) -> String {
    name.replace('-', "_")
}

fn name(spec: &str, name: &str) -> Result<String, SpecError> {
    if (name.contains('/') || name.starts_with('.')) && !spec.contains('=') {
        return Err(SpecError::PathWithoutName {
            spec: spec.to_owned(),
        });
    }
    check_crate_name(name).map_err(|why| SpecError::BadName {
        spec: spec.to_owned(),
        name: name.to_owned(),
        why,
    })?;
    if crate_ident(name) == "xbuild_core" {
        return Err(SpecError::Core {
            spec: spec.to_owned(),
        });
    }
    Ok(name.to_owned())
}

fn req(spec: &str, text: &str) -> Result<VersionReq, SpecError> {
    let bad = |why: String| SpecError::BadReq {
        spec: spec.to_owned(),
        req: text.to_owned(),
        why,
    };
    if text.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    // semver accepts `*` and a few spellings cargo does too; anything with characters
    // outside a requirement's alphabet is refused before it can reach a manifest.
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " .,*^~=<>-+".contains(*c)))
    {
        return Err(bad(format!(
            "`{}` is not allowed in a version requirement",
            c.escape_default()
        )));
    }
    VersionReq::parse(text).map_err(|e| bad(e.to_string()))
}

/// Splits `crate@req=replacement` at the `=` that starts the replacement: an `=` that
/// follows `@`, `>`, `<` or `,` (ignoring spaces) belongs to the requirement.
fn split_replacement(rest: &str) -> (&str, Option<&str>) {
    let mut previous = None;
    for (i, c) in rest.char_indices() {
        if c == '=' && !matches!(previous, None | Some('>' | '<' | ',' | '=')) {
            return (&rest[..i], Some(&rest[i + 1..]));
        }
        if !c.is_whitespace() {
            previous = Some(c);
        }
    }
    (rest, None)
}

fn replacement(spec: &str, text: &str) -> Result<Replacement, SpecError> {
    if text.is_empty() {
        return Err(SpecError::EmptyReplacement {
            spec: spec.to_owned(),
        });
    }
    let looks_like_path =
        text.contains('/') || text.starts_with('.') || text.starts_with('~') || text.contains('\\');
    if looks_like_path {
        return Ok(Replacement::Path(PathBuf::from(text)));
    }
    match text.split_once('@') {
        Some((other, version)) => Ok(Replacement::Crate {
            name: name(spec, other)?,
            req: req(spec, version)?,
        }),
        None => Err(SpecError::AmbiguousReplacement {
            spec: spec.to_owned(),
            replacement: text.to_owned(),
        }),
    }
}

impl ModuleSpec {
    /// Parses a `--with` value.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        if spec.trim().is_empty() {
            return Err(SpecError::Empty);
        }
        let name_end = spec.find(['@', '=']).unwrap_or(spec.len());
        let crate_name = name(spec, &spec[..name_end])?;
        let rest = &spec[name_end..];
        let (version, replaced) = match rest.strip_prefix('@') {
            Some(after_at) => {
                let (version, replaced) = split_replacement(after_at);
                (Some(req(spec, version)?), replaced)
            }
            None => (None, rest.strip_prefix('=')),
        };
        Ok(Self {
            name: crate_name,
            req: version,
            replacement: replaced.map(|r| replacement(spec, r)).transpose()?,
        })
    }

    /// The same checks as [`parse`](Self::parse), for a spec file's module table
    /// (`crate`, `version`, and `path` or `package`); `shown` names it in errors.
    pub fn from_fields(
        shown: &str,
        krate: &str,
        version: Option<&str>,
        path: Option<&std::path::Path>,
        package: Option<&str>,
    ) -> Result<Self, SpecError> {
        let crate_name = name(shown, krate)?;
        let version = version.map(|v| req(shown, v)).transpose()?;
        let (req, replacement) = match (path, package) {
            (Some(_), Some(_)) => {
                return Err(SpecError::PathAndPackage {
                    name: krate.to_owned(),
                });
            }
            (Some(path), None) => (version, Some(Replacement::Path(path.to_path_buf()))),
            (None, Some(package)) => (
                None,
                Some(Replacement::Crate {
                    name: name(shown, package)?,
                    req: version.unwrap_or(VersionReq::STAR),
                }),
            ),
            (None, None) => (version, None),
        };
        Ok(Self {
            name: crate_name,
            req,
            replacement,
        })
    }

    /// Parses a `--replace` value, which must have a replacement.
    pub fn parse_replace(spec: &str) -> Result<Self, SpecError> {
        let parsed = Self::parse(spec)?;
        if parsed.replacement.is_none() {
            return Err(SpecError::MissingReplacement {
                spec: spec.to_owned(),
            });
        }
        Ok(parsed)
    }
}

impl fmt::Display for ModuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(req) = &self.req {
            write!(f, "@{req}")?;
        }
        match &self.replacement {
            Some(Replacement::Path(path)) => write!(f, "={}", path.display()),
            Some(Replacement::Crate { name, req }) => write!(f, "={name}@{req}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Diagnostic;

    fn r(text: &str) -> VersionReq {
        VersionReq::parse(text).unwrap()
    }

    #[test]
    fn parses_valid_specs() {
        let table: Vec<(&str, &str, Option<&str>, Option<Replacement>)> = vec![
            ("foo", "foo", None, None),
            ("foo-bar_2", "foo-bar_2", None, None),
            ("foo@1.2", "foo", Some("1.2"), None),
            ("foo@=1.2.3", "foo", Some("=1.2.3"), None),
            ("foo@~1.2", "foo", Some("~1.2"), None),
            ("foo@>=1, <2", "foo", Some(">=1, <2"), None),
            ("foo@>=1,<=2.5", "foo", Some(">=1,<=2.5"), None),
            ("foo@^0.3", "foo", Some("^0.3"), None),
            (
                "foo=../dir",
                "foo",
                None,
                Some(Replacement::Path("../dir".into())),
            ),
            (
                "foo=/abs/dir",
                "foo",
                None,
                Some(Replacement::Path("/abs/dir".into())),
            ),
            (
                "foo=./dir",
                "foo",
                None,
                Some(Replacement::Path("./dir".into())),
            ),
            (
                "foo@1.2=../dir",
                "foo",
                Some("1.2"),
                Some(Replacement::Path("../dir".into())),
            ),
            (
                "foo@=1.2.3=./d",
                "foo",
                Some("=1.2.3"),
                Some(Replacement::Path("./d".into())),
            ),
            (
                "foo@1=bar@2.1",
                "foo",
                Some("1"),
                Some(Replacement::Crate {
                    name: "bar".into(),
                    req: r("2.1"),
                }),
            ),
            (
                "foo=bar@=2.0.0",
                "foo",
                None,
                Some(Replacement::Crate {
                    name: "bar".into(),
                    req: r("=2.0.0"),
                }),
            ),
        ];
        for (text, name, version, replacement) in table {
            let spec = ModuleSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.name, name, "{text}");
            assert_eq!(spec.req, version.map(r), "{text}");
            assert_eq!(spec.replacement, replacement, "{text}");
        }
    }

    #[test]
    fn refuses_malformed_and_hostile_specs() {
        let table: &[(&str, &str)] = &[
            ("", "empty module spec"),
            ("@1.2", "invalid crate name ``"),
            ("1foo", "does not start with a letter"),
            ("a;b", "invalid crate name `a;b`"),
            ("foo\"]\n[patch]", "invalid crate name"),
            ("foo bar", "invalid crate name `foo bar`"),
            (
                "../foo",
                "`../foo` is a path, but a module spec starts with the crate's name",
            ),
            ("./mymod", "write `CRATE=./mymod`"),
            ("foo/bar", "`foo/bar` is a path"),
            ("a/b=./x", "invalid crate name `a/b`"),
            ("fn", "Rust keyword"),
            ("std", "built-in crate name"),
            ("xbuild-core", "names xbuild-core"),
            ("foo@", "invalid version requirement ``"),
            ("foo@1.2\"", "is not allowed in a version requirement"),
            ("foo@1.2\n", "is not allowed"),
            ("foo@banana", "invalid version requirement `banana`"),
            ("foo@1.2.3.4", "invalid version requirement"),
            ("foo=", "empty replacement"),
            ("foo=bar", "ambiguous replacement `bar`"),
            ("foo=bar@y", "invalid version requirement `y`"),
            ("foo=b;r@1", "invalid crate name `b;r`"),
            (&"a".repeat(65), "longer than 64"),
        ];
        for (text, expected) in table {
            let err = ModuleSpec::parse(text).expect_err(text);
            let err = format!("{err}\nhelp: {}", err.help().join("\nhelp: "));
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        assert!(matches!(
            ModuleSpec::parse_replace("foo@1"),
            Err(SpecError::MissingReplacement { .. })
        ));
    }

    #[test]
    fn displays_back_to_a_spec() {
        for text in ["foo", "foo@^1.2", "foo@=1.2.3=../d", "foo=bar@^2"] {
            assert_eq!(ModuleSpec::parse(text).unwrap().to_string(), text);
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Text shaped like a spec: a name, maybe a requirement, maybe a replacement, with
        /// the pieces drawn so that most parse and the rest fail in interesting places.
        fn spec_like() -> impl Strategy<Value = String> {
            let name = prop_oneof![
                4 => "[a-z][a-z0-9_-]{0,8}",
                1 => prop::sample::select(vec!["xbuild-core", "xbuild_core", "fn", "std", "", "1a"])
                    .prop_map(str::to_owned),
            ];
            let req = prop_oneof![
                "(=|\\^|~|>=|<|<=|>)?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}",
                "(>=|>)[0-9]{1,2}, ?(<|<=)[0-9]{1,2}(\\.[0-9]){0,2}",
                "[0-9]\\.[0-9]\\.[0-9]-[a-z0-9.]{1,5}",
                Just("*".to_owned()),
                "[ .,*^~=<>0-9a-z+-]{0,8}",
            ];
            let replacement = prop_oneof![
                "(\\.\\./|\\./|/|~/)[a-z0-9._=@ -]{0,8}",
                ("[a-z][a-z0-9_-]{0,6}", req.clone()).prop_map(|(n, r)| format!("{n}@{r}")),
                "[a-z@=./\\\\]{0,6}",
            ];
            (name, prop::option::of(req), prop::option::of(replacement)).prop_map(
                |(name, req, replacement)| {
                    let mut spec = name;
                    if let Some(req) = req {
                        spec.push('@');
                        spec.push_str(&req);
                    }
                    if let Some(replacement) = replacement {
                        spec.push('=');
                        spec.push_str(&replacement);
                    }
                    spec
                },
            )
        }

        /// What parsed prints back to a spec that parses to the same thing; what did not
        /// parse is refused without a panic.
        fn round_trips(text: &str) -> Result<(), TestCaseError> {
            for parse in [ModuleSpec::parse, ModuleSpec::parse_replace] {
                if let Ok(spec) = parse(text) {
                    let shown = spec.to_string();
                    prop_assert_eq!(parse(&shown), Ok(spec), "{:?} shown as {:?}", text, shown);
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn spec_like_text_round_trips(text in spec_like()) {
                round_trips(&text)?;
            }

            #[test]
            fn well_formed_specs_parse_and_round_trip(
                name in "[a-z][a-z0-9_-]{0,8}".prop_filter("a usable name", |n| {
                    check_crate_name(n).is_ok() && crate_ident(n) != "xbuild_core"
                }),
                req in prop::option::of("(=|\\^|~|>=|<=)?(0|[1-9][0-9]?)(\\.(0|[1-9][0-9]?)){0,2}"),
                path in prop::option::of("(\\.\\./|\\./|/)[a-z0-9._-]{0,8}"),
            ) {
                let mut text = name.clone();
                if let Some(req) = &req {
                    text = format!("{text}@{req}");
                }
                if let Some(path) = &path {
                    text = format!("{text}={path}");
                }
                let spec = ModuleSpec::parse(&text);
                prop_assert!(spec.is_ok(), "{:?}: {:?}", text, spec);
                prop_assert_eq!(&spec.unwrap().name, &name);
                round_trips(&text)?;
            }

            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,30}|[a-z@=.,<>^~*/ 0-9-]{0,30}") {
                round_trips(&text)?;
            }
        }
    }
}

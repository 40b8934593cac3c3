//! `xbuild new NAME [--template module|handler]`: a crate ready to test and publish. The
//! `module` template registers one module and one host command; `handler` registers an HTTP
//! handler under `http.handlers` with its config, a validation error, a metric, and tests
//! through both test kits. Each builds before xbuild's crates are on crates.io:
//! `.cargo/config.toml` patches in copies of xbuild's own crates, written into `.xbuild/`
//! (removable once they are published, as the crate's README says).

use std::path::{Path, PathBuf};

use crate::error::UsageError;
use crate::spec::check_crate_name;

const CI: &str = include_str!("../templates/new/ci.yml.tmpl");
const GITIGNORE: &str = include_str!("../templates/new/gitignore.tmpl");

/// What `xbuild new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Template {
    /// One module and one host command.
    #[default]
    Module,
    /// An HTTP handler (`http.handlers.NAME`) for xbuild-http's server.
    Handler,
}

impl Template {
    /// The template's own files, as (relative path, template text).
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Template::Module => &[
                (
                    "Cargo.toml",
                    include_str!("../templates/new/module/Cargo.toml.tmpl"),
                ),
                (
                    "src/lib.rs",
                    include_str!("../templates/new/module/lib.rs.tmpl"),
                ),
                (
                    "README.md",
                    include_str!("../templates/new/module/README.md.tmpl"),
                ),
            ],
            Template::Handler => &[
                (
                    "Cargo.toml",
                    include_str!("../templates/new/handler/Cargo.toml.tmpl"),
                ),
                (
                    "src/lib.rs",
                    include_str!("../templates/new/handler/lib.rs.tmpl"),
                ),
                (
                    "README.md",
                    include_str!("../templates/new/handler/README.md.tmpl"),
                ),
                (
                    "example.toml",
                    include_str!("../templates/new/handler/example.toml.tmpl"),
                ),
            ],
        }
    }

    /// xbuild's crates the new crate depends on: patched in until they are published.
    pub fn xbuild_crates(self) -> &'static [&'static str] {
        match self {
            Template::Module => &[crate::plan::CORE_CRATE],
            Template::Handler => &[crate::plan::CORE_CRATE, HTTP_CRATE],
        }
    }
}

const HTTP_CRATE: &str = "xbuild-http";

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// A requirement accepting `version` and what is compatible with it (`0.1`, `1`).
fn caret(version: &str) -> String {
    let version = semver::Version::parse(version).expect("xbuild's crates have semver versions");
    if version.major == 0 {
        format!("0.{}", version.minor)
    } else {
        version.major.to_string()
    }
}

/// The version of one of xbuild's crates a new crate asks for: the carried copy's, else
/// xbuild's own (all are released together).
fn own_version(name: &str) -> &'static str {
    crate::embedded::EMBEDDED
        .iter()
        .find(|c| c.name == name)
        .map_or(crate::VERSION, |c| c.version)
}

/// The files of a new crate, as (relative path, contents). `namespace` defaults to the
/// crate's name with `_` for `-`.
pub fn files(
    name: &str,
    namespace: Option<&str>,
    template: Template,
) -> Result<Vec<(PathBuf, String)>, UsageError> {
    // `cargo new ../dir/name` takes a path; here the directory is `--path`.
    if let Some((dir, last)) = name.rsplit_once('/')
        && check_crate_name(last).is_ok()
    {
        return Err(usage(format!(
            "`{}` is a path, but `xbuild new` takes the crate's name",
            name.escape_default()
        ))
        .help(format!(
            "give the directory with --path: `xbuild new {last} --path {}`",
            if dir.is_empty() { "/" } else { dir }
        )));
    }
    check_crate_name(name).map_err(|why| {
        usage(format!(
            "invalid crate name `{}`: {why}",
            name.escape_default()
        ))
        .help("crate names are ASCII letters, digits, `-` and `_`, starting with a letter")
    })?;
    let snake = crate::lint::default_namespace(name);
    let namespace = namespace.map_or_else(|| snake.clone(), str::to_owned);
    xbuild_core::id::check_registrable(&format!("{namespace}.greeting")).map_err(|e| {
        usage(format!("invalid namespace `{}`: {e}", namespace.escape_default()))
            .help("a namespace is dotted lowercase ASCII, digits and `_` (e.g. `acme` or `acme.auth`), outside `xbuild`")
    })?;
    let type_name = capitalized_words(&snake).concat();
    let header_title = capitalized_words(name).join("-");
    let render = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{namespace}}", &namespace)
            .replace("{{handler}}", &snake)
            .replace("{{type_name}}", &type_name)
            .replace("{{header_name}}", &header_title.to_ascii_lowercase())
            .replace("{{header_title}}", &header_title)
            .replace("{{command}}", name)
            .replace("{{core_req}}", &caret(own_version(crate::plan::CORE_CRATE)))
            .replace("{{http_req}}", &caret(own_version(HTTP_CRATE)))
            .replace("{{xbuild_version}}", crate::VERSION)
            .replace("{{before_published}}", &before_published(template))
    };
    let mut written: Vec<(PathBuf, String)> = template
        .files()
        .iter()
        .map(|(path, text)| (PathBuf::from(path), render(text)))
        .collect();
    written.push((".github/workflows/ci.yml".into(), render(CI)));
    written.push((".gitignore".into(), render(GITIGNORE)));
    Ok(written)
}

/// The words of a crate name (split at `-` and `_`), each with its first letter upper-case:
/// `acme-limit` gives `Acme`, `Limit` (for `AcmeLimit` and `X-Acme-Limit`).
fn capitalized_words(name: &str) -> Vec<String> {
    name.split(['-', '_'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The README's section on the patched crates.
fn before_published(template: Template) -> String {
    let patched = template
        .xbuild_crates()
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    let others: Vec<String> = crate::embedded::EMBEDDED
        .iter()
        .filter(|c| !template.xbuild_crates().contains(&c.name))
        .map(|c| format!("`{}`", c.name))
        .collect();
    let mut text = format!(
        "\n## Before xbuild's crates are on crates.io\n\n\
         `.cargo/config.toml` patches {patched} with the copies in `.xbuild/` that `xbuild new`\n\
         wrote (xbuild {}'s own), so `cargo check`, `cargo test` and rust-analyzer work.",
        crate::VERSION
    );
    if !others.is_empty() {
        text += &format!(
            " `.xbuild/`\nalso holds {}: if this crate comes to depend on one, uncomment its line there.",
            others.join(" and ")
        );
    }
    text += "\nOnce they are published, delete `.cargo/config.toml` and `.xbuild/`. Until then, publish\n\
             to a registry that has them (see xbuild's guide, docs/writing-a-module.md).\n";
    text
}

/// Writes the crate `name` as a new directory in `parent`; returns its path. Everything
/// is written beside it first and renamed into place, so a failure leaves nothing behind.
pub fn create(
    name: &str,
    namespace: Option<&str>,
    template: Template,
    parent: &Path,
) -> Result<PathBuf, UsageError> {
    let files = files(name, namespace, template)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(usage(format!("`{}` already exists", dir.display()))
            .help("choose another name, or remove it first"));
    }
    let fail = |what: &str, e: std::io::Error| {
        usage(format!("cannot {what} in `{}`: {e}", parent.display()))
            .help("create the crate in a directory you can write to")
    };
    let staging = tempfile::Builder::new()
        .prefix(".xbuild-new-")
        .tempdir_in(parent)
        .map_err(|e| fail("create a directory", e))?;
    for (path, text) in &files {
        let target = staging.path().join(path);
        std::fs::create_dir_all(target.parent().expect("relative file paths"))
            .and_then(|()| std::fs::write(&target, text))
            .map_err(|e| fail("write the new crate", e))?;
    }
    // Before xbuild's crates are published: the copies this xbuild carries, patched in.
    if !crate::embedded::EMBEDDED.is_empty() {
        let mut config = format!(
            "# Until xbuild's crates are on crates.io: the copies xbuild {} carries. Delete this\n\
             # file and .xbuild/ once they are published.\n\
             [patch.crates-io]\n",
            crate::VERSION
        );
        for krate in crate::embedded::EMBEDDED {
            let unpacked = crate::embedded::unpack(&staging.path().join(".xbuild"), krate)
                .map_err(|e| fail(&format!("unpack {}", krate.name), e))?;
            let relative = unpacked
                .strip_prefix(staging.path())
                .expect("unpacked inside the crate");
            // Cargo warns about a patch nothing uses; the others wait, commented out.
            let comment = if template.xbuild_crates().contains(&krate.name) {
                ""
            } else {
                "# "
            };
            config += &format!(
                "{comment}{} = {{ path = \"{}\" }}\n",
                krate.name,
                relative.display()
            );
        }
        std::fs::create_dir_all(staging.path().join(".cargo"))
            .and_then(|()| std::fs::write(staging.path().join(".cargo/config.toml"), config))
            .map_err(|e| fail("write .cargo/config.toml", e))?;
    }
    std::fs::rename(staging.keep(), &dir).map_err(|e| fail("move the new crate into place", e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_crate_names_its_module_in_its_namespace() {
        let written = files("acme-hello", None, Template::Module).unwrap();
        let lib = &written
            .iter()
            .find(|(p, _)| p.ends_with("lib.rs"))
            .unwrap()
            .1;
        assert!(
            lib.contains(r#"register_module!("acme_hello.greeting", Greeting)"#),
            "{lib}"
        );
        assert!(!lib.contains("{{"), "{lib}");
        let manifest = &written[0].1;
        let parsed: toml_edit::DocumentMut = manifest.parse().unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("acme-hello"));
        assert!(manifest.contains("\"xbuild\""));
        let custom = files("acme-hello", Some("acme.auth"), Template::Module).unwrap();
        assert!(custom[1].1.contains(r#""acme.auth.greeting""#));
    }

    #[test]
    fn bad_names_and_namespaces_are_refused() {
        assert!(
            files("a;b", None, Template::Module)
                .unwrap_err()
                .message
                .contains("invalid crate name")
        );
        let reserved = files("ok", Some("xbuild"), Template::Module).unwrap_err();
        assert!(
            reserved.message.contains("invalid namespace"),
            "{}",
            reserved.message
        );
        assert!(
            files("ok", Some("Bad-NS"), Template::Module)
                .unwrap_err()
                .message
                .contains("invalid namespace")
        );
    }

    #[test]
    fn a_path_given_as_the_name_points_at_path() {
        let err = files("../mods/acme-x", None, Template::Module).unwrap_err();
        assert_eq!(
            err.message,
            "`../mods/acme-x` is a path, but `xbuild new` takes the crate's name"
        );
        assert_eq!(
            err.help,
            ["give the directory with --path: `xbuild new acme-x --path ../mods`"]
        );
    }

    #[test]
    fn creates_the_crate_with_the_core_patched_in_and_never_over_a_directory() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create("acme-hello", None, Template::Module, parent.path()).unwrap();
        assert!(dir.join("src/lib.rs").is_file());
        let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
        assert!(config.contains("[patch.crates-io]"), "{config}");
        let again = create("acme-hello", None, Template::Module, parent.path()).unwrap_err();
        assert!(again.message.contains("already exists"));
        let leftovers: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".xbuild-new-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn the_handler_template_registers_under_http_handlers_and_patches_what_it_uses() {
        let written = files("acme-limit", None, Template::Handler).unwrap();
        let text = |name: &str| {
            written
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .unwrap_or_else(|| panic!("{name} written"))
                .1
                .clone()
        };
        for (path, contents) in &written {
            assert!(!contents.contains("{{"), "{}: {contents}", path.display());
        }
        let lib = text("lib.rs");
        assert!(
            lib.contains(r#"register_module!("http.handlers.acme_limit", AcmeLimit as dyn xbuild_http::Handler)"#),
            "{lib}"
        );
        let manifest: toml_edit::DocumentMut = text("Cargo.toml").parse().unwrap();
        assert_eq!(
            manifest["dependencies"]["xbuild-http"].as_str(),
            Some("0.1")
        );
        assert_eq!(
            manifest["package"]["metadata"]["xbuild"]["namespace"].as_str(),
            Some("acme_limit")
        );
        assert!(text("README.md").contains("patches `xbuild-core` and `xbuild-http`"));
        assert!(text("example.toml").contains(r#"handler = "acme_limit""#));

        let parent = tempfile::tempdir().unwrap();
        let dir = create("acme-limit", None, Template::Handler, parent.path()).unwrap();
        let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
        let active: Vec<&str> = config
            .lines()
            .filter(|l| l.starts_with("xbuild-"))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(active, ["xbuild-core", "xbuild-http"], "{config}");
        assert!(
            config.contains("# xbuild-standard = { path = \".xbuild/"),
            "{config}"
        );
    }
}

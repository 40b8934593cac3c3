//! `xbuild new NAME`: a module crate ready to test and publish. It registers one module and
//! one host command, tests them without a host, and builds before xbuild-core is on
//! crates.io: `.cargo/config.toml` patches in a copy of xbuild's own xbuild-core, written
//! into `.xbuild/` (removable once the core is published, as its README says).

use std::path::{Path, PathBuf};

use crate::error::UsageError;
use crate::spec::check_crate_name;

const CARGO_TOML: &str = include_str!("../templates/new/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../templates/new/lib.rs.tmpl");
const README: &str = include_str!("../templates/new/README.md.tmpl");
const CI: &str = include_str!("../templates/new/ci.yml.tmpl");
const GITIGNORE: &str = include_str!("../templates/new/gitignore.tmpl");

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::new(message)
}

/// The files of a new module crate, as (relative path, contents). `namespace` defaults to
/// the crate's name with `_` for `-`.
pub fn files(name: &str, namespace: Option<&str>) -> Result<Vec<(PathBuf, String)>, UsageError> {
    check_crate_name(name).map_err(|why| {
        usage(format!(
            "invalid crate name `{}`: {why}",
            name.escape_default()
        ))
        .help("crate names are ASCII letters, digits, `-` and `_`, starting with a letter")
    })?;
    let namespace = namespace.map_or_else(|| crate::lint::default_namespace(name), str::to_owned);
    xbuild_core::id::check_registrable(&format!("{namespace}.greeting")).map_err(|e| {
        usage(format!("invalid namespace `{}`: {e}", namespace.escape_default()))
            .help("a namespace is dotted lowercase ASCII, digits and `_` (e.g. `acme` or `acme.auth`), outside `xbuild`")
    })?;
    let core_req = {
        let version = semver::Version::parse(crate::VERSION).expect("xbuild's own version");
        if version.major == 0 {
            format!("0.{}", version.minor)
        } else {
            version.major.to_string()
        }
    };
    let render = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{namespace}}", &namespace)
            .replace("{{command}}", name)
            .replace("{{core_req}}", &core_req)
            .replace("{{xbuild_version}}", crate::VERSION)
    };
    Ok(vec![
        ("Cargo.toml".into(), render(CARGO_TOML)),
        ("src/lib.rs".into(), render(LIB_RS)),
        ("README.md".into(), render(README)),
        (".github/workflows/ci.yml".into(), render(CI)),
        (".gitignore".into(), render(GITIGNORE)),
    ])
}

/// Writes the crate `name` as a new directory in `parent`; returns its path. Everything
/// is written beside it first and renamed into place, so a failure leaves nothing behind.
pub fn create(name: &str, namespace: Option<&str>, parent: &Path) -> Result<PathBuf, UsageError> {
    let files = files(name, namespace)?;
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
    // Before xbuild-core is published: the copy this xbuild carries, patched in.
    if let Some(core) = crate::embedded::EMBEDDED
        .iter()
        .find(|c| c.name == crate::plan::CORE_CRATE)
    {
        let unpacked = crate::embedded::unpack(&staging.path().join(".xbuild"), core)
            .map_err(|e| fail("unpack xbuild-core", e))?;
        let relative = unpacked
            .strip_prefix(staging.path())
            .expect("unpacked inside the crate");
        let config = format!(
            "# Until xbuild-core is on crates.io: the copy xbuild {} carries. Delete this file\n\
             # and .xbuild/ once it is published.\n\
             [patch.crates-io]\n\
             xbuild-core = {{ path = \"{}\" }}\n",
            crate::VERSION,
            relative.display()
        );
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
        let written = files("acme-hello", None).unwrap();
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
        let custom = files("acme-hello", Some("acme.auth")).unwrap();
        assert!(custom[1].1.contains(r#""acme.auth.greeting""#));
    }

    #[test]
    fn bad_names_and_namespaces_are_refused() {
        assert!(
            files("a;b", None)
                .unwrap_err()
                .message
                .contains("invalid crate name")
        );
        let reserved = files("ok", Some("xbuild")).unwrap_err();
        assert!(
            reserved.message.contains("invalid namespace"),
            "{}",
            reserved.message
        );
        assert!(
            files("ok", Some("Bad-NS"))
                .unwrap_err()
                .message
                .contains("invalid namespace")
        );
    }

    #[test]
    fn creates_the_crate_with_the_core_patched_in_and_never_over_a_directory() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create("acme-hello", None, parent.path()).unwrap();
        assert!(dir.join("src/lib.rs").is_file());
        let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
        assert!(config.contains("[patch.crates-io]"), "{config}");
        let again = create("acme-hello", None, parent.path()).unwrap_err();
        assert!(again.message.contains("already exists"));
        let leftovers: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".xbuild-new-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

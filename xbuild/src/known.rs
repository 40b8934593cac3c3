//! The curated index of known modules (`registry.toml` at the repository root, embedded at
//! build time): listed by `xbuild list-known`, and used for hints when a crate is not found.

use serde::{Deserialize, Serialize};

const INDEX: &str = include_str!("../registry.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownModule {
    #[serde(rename = "crate")]
    pub name: String,
    pub description: String,
    pub ids: Vec<String>,
    #[serde(default)]
    pub standard: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    module: Vec<KnownModule>,
}

/// Every entry of the index.
pub fn known_modules() -> Vec<KnownModule> {
    toml_edit::de::from_str::<Index>(INDEX)
        .expect("registry.toml is checked by the test suite")
        .module
}

/// Known crates a mistyped or partial name may have meant, for "did you mean" hints: a
/// crate name within two edits (`xbuild-htp`), containing the word (`http`), or registering
/// a module with that ID segment (`file_server`).
pub fn suggestions(word: &str) -> Vec<String> {
    let word = word.replace('-', "_").to_ascii_lowercase();
    known_modules()
        .into_iter()
        .filter(|m| {
            let name = m.name.replace('-', "_");
            strsim::damerau_levenshtein(&name, &word) <= 2
                || name.contains(&word)
                || m.ids
                    .iter()
                    .any(|id| id.split('.').any(|part| part == word))
        })
        .map(|m| m.name)
        .collect()
}

/// `xbuild list-known`.
pub fn render(json: bool) -> String {
    let modules = known_modules();
    if json {
        return serde_json::to_string_pretty(&modules).expect("serializes") + "\n";
    }
    let mut out = String::new();
    for module in &modules {
        let standard = if module.standard { " (standard)" } else { "" };
        out.push_str(&format!(
            "{}{standard}\n  {}\n",
            module.name, module.description
        ));
        for id in &module.ids {
            out.push_str(&format!("    {id}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_parses_and_names_valid_crates_and_ids() {
        let modules = known_modules();
        assert!(!modules.is_empty());
        for module in modules {
            assert!(
                crate::spec::check_crate_name(&module.name).is_ok(),
                "{}",
                module.name
            );
            for id in &module.ids {
                assert!(xbuild_core::id::check_registrable(id).is_ok(), "{id}");
            }
        }
    }

    #[test]
    fn suggests_by_crate_name_or_id_segment() {
        assert_eq!(suggestions("file_server"), ["xbuild-http"]);
        assert_eq!(suggestions("http"), ["xbuild-http"]);
        assert_eq!(suggestions("xbuild-htp"), ["xbuild-http"]);
        assert_eq!(suggestions("xbuild_htttp"), ["xbuild-http"]);
        assert!(suggestions("no-such-thing").is_empty());
    }
}

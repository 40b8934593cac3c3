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

/// One index entry that matched a search, with what matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    #[serde(flatten)]
    pub module: KnownModule,
    /// The entry's module IDs that contain a search word (all of them if none does).
    pub matched_ids: Vec<String>,
    /// Higher is better: a word in the crate name counts most, then a module ID, then the
    /// description.
    #[serde(skip)]
    score: u32,
}

/// `xbuild search WORD...`: entries where every word (case-insensitive, `-` and `_` alike)
/// appears in the crate name, a module ID or the description; best first, then by name.
pub fn search(modules: Vec<KnownModule>, words: &[String]) -> Vec<Hit> {
    let fold = |text: &str| text.to_lowercase().replace('-', "_");
    let words: Vec<String> = words.iter().map(|w| fold(w)).collect();
    let mut hits: Vec<Hit> = modules
        .into_iter()
        .filter_map(|module| {
            let name = fold(&module.name);
            let description = fold(&module.description);
            let ids: Vec<String> = module.ids.iter().map(|id| fold(id)).collect();
            let mut score = 0;
            for word in &words {
                score += if name == *word {
                    8
                } else if name.contains(word.as_str()) {
                    4
                } else if ids.iter().any(|id| id.contains(word.as_str())) {
                    2
                } else if description.contains(word.as_str()) {
                    1
                } else {
                    return None;
                };
            }
            let matched_ids: Vec<String> = module
                .ids
                .iter()
                .zip(&ids)
                .filter(|(_, folded)| words.iter().any(|w| folded.contains(w.as_str())))
                .map(|(id, _)| id.clone())
                .collect();
            let matched_ids = if matched_ids.is_empty() {
                module.ids.clone()
            } else {
                matched_ids
            };
            Some(Hit {
                module,
                matched_ids,
                score,
            })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.module.name.cmp(&b.module.name))
    });
    hits
}

/// The search's output: `cargo search`'s shape (`name    # description`) with the matching
/// module IDs under each crate, or one JSON array.
pub fn render_hits(hits: &[Hit], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(hits).expect("serializes") + "\n";
    }
    let width = hits.iter().map(|h| h.module.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for hit in hits {
        let standard = if hit.module.standard {
            " (standard)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<width$}    # {}{standard}\n",
            hit.module.name, hit.module.description
        ));
        for id in &hit.matched_ids {
            out.push_str(&format!("{:<width$}      {id}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, description: &str, ids: &[&str]) -> KnownModule {
        KnownModule {
            name: name.into(),
            description: description.into(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
            standard: false,
            repository: None,
        }
    }

    fn names(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.module.name.as_str()).collect()
    }

    #[test]
    fn search_matches_every_word_and_ranks_the_name_first() {
        let index = vec![
            entry(
                "acme-auth",
                "JWT and basic auth for HTTP routes",
                &["http.handlers.jwt"],
            ),
            entry(
                "acme-http-cache",
                "Response cache",
                &["http.handlers.cache"],
            ),
            entry("acme-queue", "A job queue app", &["queue"]),
        ];
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&search(index.clone(), &words(&["http"]))),
            ["acme-http-cache", "acme-auth"]
        );
        assert_eq!(
            names(&search(index.clone(), &words(&["JWT"]))),
            ["acme-auth"]
        );
        assert_eq!(
            names(&search(index.clone(), &words(&["acme_queue"]))),
            ["acme-queue"]
        );
        assert!(search(index.clone(), &words(&["http", "queue"])).is_empty());
        let hits = search(index, &words(&["cache"]));
        assert_eq!(hits[0].matched_ids, ["http.handlers.cache"]);
        let text = render_hits(&hits, false);
        assert_eq!(
            text,
            "acme-http-cache    # Response cache\n                     http.handlers.cache\n"
        );
    }

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
        assert_eq!(suggestions("rustls"), ["xbuild-tls"]);
        assert_eq!(
            suggestions("http"),
            [
                "xbuild-http",
                "xbuild-http-auth",
                "xbuild-http-encode",
                "xbuild-http-ratelimit",
                "xbuild-tls"
            ]
        );
        assert_eq!(suggestions("basic_auth"), ["xbuild-http-auth"]);
        assert_eq!(suggestions("xbuild-htp"), ["xbuild-http"]);
        assert_eq!(suggestions("xbuild_htttp"), ["xbuild-http"]);
        assert!(suggestions("no-such-thing").is_empty());
    }
}

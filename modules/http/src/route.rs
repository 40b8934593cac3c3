//! Routes: which requests a route takes (host, path, method) and the handler chain it runs.
//! Matchers are compiled once at provision so matching a request allocates nothing unless
//! its path is percent-encoded.

use std::borrow::Cow;
use std::sync::Arc;

use http::Method;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use xbuild_core::{BoxError, Context, Loaded, Value};

use crate::Handler;

/// One `[[apps.http.servers.<name>.routes]]` entry as written in the config.
#[derive(Debug, Deserialize)]
pub(crate) struct RouteConfig {
    /// Label of the route in metrics and logs; defaults to its index.
    #[serde(default)]
    pub name: Option<String>,
    /// All conditions must hold; an absent condition matches everything.
    #[serde(rename = "match", default)]
    pub matcher: MatchConfig,
    /// Handler configs, each naming its module with `handler = "..."`.
    #[serde(default)]
    pub handle: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct MatchConfig {
    /// Host names (port ignored, case-insensitive); `*.example.com` matches subdomains.
    #[serde(default)]
    pub host: Vec<String>,
    /// Paths, exact, or a prefix when ending in `*` (`/api/*`).
    #[serde(default)]
    pub path: Vec<String>,
    /// Methods, e.g. `GET`.
    #[serde(default)]
    pub method: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug, PartialEq)]
enum PathPattern {
    Exact(String),
    Prefix(String),
}

/// A compiled matcher.
#[derive(Debug, Default)]
pub(crate) struct Matcher {
    hosts: Vec<HostPattern>,
    paths: Vec<PathPattern>,
    methods: Vec<Method>,
}

impl Matcher {
    pub fn compile(config: &MatchConfig) -> Result<Self, String> {
        // Through the rules requests' hosts go through (crate::host), so a pattern either
        // matches its host however a client spells it, or is refused here.
        let hosts = config
            .host
            .iter()
            .map(|h| {
                let h = crate::host::canonical_pattern(h)?;
                Ok(match h.strip_prefix('*') {
                    Some(rest) => HostPattern::Suffix(rest.to_owned()),
                    None => HostPattern::Exact(h),
                })
            })
            .collect::<Result<_, String>>()?;
        let paths = config
            .path
            .iter()
            .map(|p| {
                let refuse = |why: String| {
                    Err(format!(
                        "invalid path `{}` in `match.path`: {why}",
                        crate::access_log::visible(p)
                    ))
                };
                if !p.starts_with('/') {
                    return refuse("paths start with `/` (add `*` at the end for a prefix)".into());
                }
                let (body, prefix) = match p.strip_suffix('*') {
                    Some(body) => (body, true),
                    None => (p.as_str(), false),
                };
                // Requests are matched cleaned and decoded (crate::path): a pattern that is
                // neither could never match, and a deny route written so would deny nothing.
                if body.contains('*') {
                    return refuse("`*` is only allowed at the end, for a prefix (`/api/*`)".into());
                }
                if body.contains('%') {
                    return refuse("requests are matched decoded, so a percent-encoded pattern never matches: write the characters themselves".into());
                }
                let cleaned = crate::path::clean(body);
                if cleaned != body {
                    let star = if prefix { "*" } else { "" };
                    return refuse(format!("requests are matched with their paths cleaned (no `.`, `..` or empty segments), so this never matches: write `{cleaned}{star}`"));
                }
                let body = body.to_ascii_lowercase();
                Ok(if prefix {
                    PathPattern::Prefix(body)
                } else {
                    PathPattern::Exact(body)
                })
            })
            .collect::<Result<_, _>>()?;
        let methods = config
            .method
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    format!(
                        "invalid method `{}` in `match.method`: use e.g. `GET`",
                        crate::access_log::visible(m)
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            hosts,
            paths,
            methods,
        })
    }

    pub fn matches<B>(&self, request: &http::Request<B>) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(request.method()) {
            return false;
        }
        if !self.hosts.is_empty() {
            let Some(host) = request_host(request) else {
                return false;
            };
            let found = self.hosts.iter().any(|pattern| match pattern {
                HostPattern::Exact(exact) => *exact == host,
                HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
            });
            if !found {
                return false;
            }
        }
        if !self.paths.is_empty() {
            // The path is cleaned already (crate::path); match it decoded, so `/api%2Fx`
            // cannot slip past a `/api/*` route, and ignoring ASCII case, as Caddy does.
            let raw = request.uri().path();
            let mut path: Cow<'_, str> = if raw.contains('%') {
                percent_decode_str(raw).decode_utf8_lossy()
            } else {
                Cow::Borrowed(raw)
            };
            if path.bytes().any(|b| b.is_ascii_uppercase()) {
                path = Cow::Owned(path.to_ascii_lowercase());
            }
            let found = self.paths.iter().any(|pattern| match pattern {
                PathPattern::Exact(exact) => *exact == path,
                PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
            });
            if !found {
                return false;
            }
        }
        true
    }
}

/// The host a request is for, without port: from its `Host` header, which the server has
/// made the one canonical form of the URI's authority or the header (crate::host).
fn request_host<B>(request: &http::Request<B>) -> Option<&str> {
    let value = request.headers().get(http::header::HOST)?.to_str().ok()?;
    // Strip a port, leaving bracketed IPv6 literals whole.
    Some(match value.rfind(':') {
        Some(i) if !value[i..].contains(']') => &value[..i],
        _ => value,
    })
}

/// A provisioned route.
pub(crate) struct Route {
    pub name: Arc<str>,
    pub matcher: Matcher,
    pub handlers: Vec<Loaded<dyn Handler>>,
}

impl Route {
    /// Compiles the matcher and loads the handlers. `at` names the route in errors.
    pub fn provision(
        index: usize,
        config: RouteConfig,
        ctx: &mut Context<'_>,
        at: &str,
    ) -> Result<Route, BoxError> {
        if let Some(name) = &config.name {
            crate::observe::check_name("route", name).map_err(|e| format!("{at}: {e}"))?;
        }
        let matcher = Matcher::compile(&config.matcher).map_err(|e| format!("{at}: {e}"))?;
        let mut handlers = Vec::with_capacity(config.handle.len());
        for (i, handler) in config.handle.into_iter().enumerate() {
            // On an error the handlers already loaded are dropped, and the core cleans
            // them up.
            let loaded = ctx
                .load_inline::<dyn Handler>("http.handlers", "handler", handler)
                .map_err(|err| {
                    xbuild_core::Hinted::from_error(&err).context(format!("{at}.handle[{i}]"))
                })?;
            handlers.push(loaded);
        }
        Ok(Route {
            name: config.name.unwrap_or_else(|| index.to_string()).into(),
            matcher,
            handlers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(host: &[&str], path: &[&str], method: &[&str]) -> Matcher {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Matcher::compile(&MatchConfig {
            host: own(host),
            path: own(path),
            method: own(method),
        })
        .unwrap()
    }

    fn request(method: &str, uri: &str, host: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn matches_table() {
        let cases: &[(Matcher, http::Request<()>, bool)] = &[
            (matcher(&[], &[], &[]), request("GET", "/", None), true),
            (matcher(&[], &["/a"], &[]), request("GET", "/a", None), true),
            (
                matcher(&[], &["/a"], &[]),
                request("GET", "/a/b", None),
                false,
            ),
            (
                matcher(&[], &["/a/*"], &[]),
                request("GET", "/a/b", None),
                true,
            ),
            (
                matcher(&[], &["/a/*"], &[]),
                request("GET", "/ab", None),
                false,
            ),
            (
                matcher(&[], &["/api/*"], &[]),
                request("GET", "/%61pi/x", None),
                true,
            ),
            (
                matcher(&[], &[], &["post"]),
                request("POST", "/", None),
                true,
            ),
            (
                matcher(&[], &[], &["POST"]),
                request("GET", "/", None),
                false,
            ),
            (
                matcher(&["Example.com"], &[], &[]),
                request("GET", "/", Some("example.com:8080")),
                true,
            ),
            (
                matcher(&["example.com"], &[], &[]),
                request("GET", "/", Some("other.com")),
                false,
            ),
            (
                matcher(&["example.com"], &[], &[]),
                request("GET", "/", None),
                false,
            ),
            (
                matcher(&["*.example.com"], &[], &[]),
                request("GET", "/", Some("a.example.com")),
                true,
            ),
            (
                matcher(&["*.example.com"], &[], &[]),
                request("GET", "/", Some("example.com")),
                false,
            ),
            (
                matcher(&["[::1]"], &[], &[]),
                request("GET", "/", Some("[::1]")),
                true,
            ),
            // The server has put the URI's authority (absolute-form, HTTP/2) into Host.
            (
                matcher(&["h"], &[], &[]),
                request("GET", "/x", Some("h:1")),
                true,
            ),
        ];
        for (i, (m, r, want)) in cases.iter().enumerate() {
            assert_eq!(m.matches(r), *want, "case {i}: {m:?} {r:?}");
        }
    }

    #[test]
    fn rejects_bad_patterns_by_name() {
        let bad = |host: &[&str], path: &[&str], method: &[&str]| {
            let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
            Matcher::compile(&MatchConfig {
                host: own(host),
                path: own(path),
                method: own(method),
            })
            .unwrap_err()
        };
        assert!(bad(&[], &["api"], &[]).contains("`api`"));
        assert!(bad(&[], &[], &["G ET"]).contains("`G ET`"));
        assert!(bad(&["a/b"], &[], &[]).contains("`a/b`"));
        // Patterns no request could match are refused, each named.
        for host in ["admin.example:80", "a\u{200d}.example", "a*.example"] {
            let err = bad(&[host], &[], &[]);
            let named = host.replace('\u{200d}', "\\u{200d}");
            assert!(err.contains(&format!("`{named}`")), "{err}");
        }
        for (path, why) in [
            ("/admin%2Fx", "percent-encoded"),
            ("/a/../admin", "write `/admin`"),
            ("/a//b*", "write `/a/b*`"),
            ("/a/./b", "write `/a/b`"),
            ("/a/*/b", "only allowed at the end"),
        ] {
            let err = bad(&[], &[path], &[]);
            assert!(
                err.contains(&format!("`{path}`")) && err.contains(why),
                "{path}: {err}"
            );
        }
    }
}

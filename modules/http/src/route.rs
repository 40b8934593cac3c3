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
        let hosts = config
            .host
            .iter()
            .map(|h| {
                let h = h.to_ascii_lowercase();
                if h.is_empty() || h.contains('/') {
                    Err(format!(
                        "invalid host `{h}` in `match.host`: give a host name such as `example.com` or `*.example.com`"
                    ))
                } else if let Some(rest) = h.strip_prefix('*') {
                    Ok(HostPattern::Suffix(rest.to_owned()))
                } else {
                    Ok(HostPattern::Exact(h))
                }
            })
            .collect::<Result<_, _>>()?;
        let paths = config
            .path
            .iter()
            .map(|p| {
                if !p.starts_with('/') {
                    Err(format!(
                        "invalid path `{p}` in `match.path`: paths start with `/` (add `*` at the end for a prefix)"
                    ))
                } else if let Some(prefix) = p.strip_suffix('*') {
                    Ok(PathPattern::Prefix(prefix.to_ascii_lowercase()))
                } else {
                    Ok(PathPattern::Exact(p.to_ascii_lowercase()))
                }
            })
            .collect::<Result<_, _>>()?;
        let methods = config
            .method
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("invalid method `{m}` in `match.method`: use e.g. `GET`"))
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
            let host = host.to_ascii_lowercase();
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

/// The host a request is for, without port: the URI's authority (HTTP/2, absolute-form)
/// or the `Host` header.
fn request_host<B>(request: &http::Request<B>) -> Option<&str> {
    let host = match request.uri().host() {
        Some(host) => host,
        None => {
            let value = request.headers().get(http::header::HOST)?.to_str().ok()?;
            // Strip a port, leaving bracketed IPv6 literals whole.
            match value.rfind(':') {
                Some(i) if !value[i..].contains(']') => &value[..i],
                _ => value,
            }
        }
    };
    Some(host)
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
            crate::app::check_name("route", name).map_err(|e| format!("{at}: {e}"))?;
        }
        let matcher = Matcher::compile(&config.matcher).map_err(|e| format!("{at}: {e}"))?;
        let mut handlers = Vec::with_capacity(config.handle.len());
        for (i, handler) in config.handle.into_iter().enumerate() {
            // On an error the handlers already loaded are dropped, and the core cleans
            // them up.
            let loaded = ctx
                .load_inline::<dyn Handler>("http.handlers", "handler", handler)
                .map_err(|err| format!("{at}.handle[{i}]: {err}"))?;
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
                request("GET", "/", Some("example.COM:8080")),
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
            (
                matcher(&["h"], &[], &[]),
                request("GET", "http://h:1/x", None),
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
    }
}

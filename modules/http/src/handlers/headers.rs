//! `http.handlers.headers`: sets, adds and removes request headers before passing the
//! request on, and response headers on what comes back.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use xbuild_core::{BoxError, Context, Module, Provisioned};

use super::{header_name, header_value, settable_header_name};
use crate::{Handler, HandlerFuture, Next, Request};

#[derive(Deserialize)]
pub struct Headers {
    #[serde(default)]
    request: HeaderOps,
    #[serde(default)]
    response: HeaderOps,

    #[serde(skip)]
    compiled: Provisioned<(Compiled, Compiled)>,
}

/// One value or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
}

impl Values {
    fn as_slice(&self) -> &[String] {
        match self {
            Values::One(one) => std::slice::from_ref(one),
            Values::Many(many) => many,
        }
    }
}

/// Applied in this order: remove, set (replaces every value), add (appends).
#[derive(Default, Deserialize)]
struct HeaderOps {
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    set: BTreeMap<String, Values>,
    #[serde(default)]
    add: BTreeMap<String, Values>,
}

type Pairs = Vec<(HeaderName, Vec<HeaderValue>)>;

#[derive(Default)]
struct Compiled {
    remove: Vec<HeaderName>,
    set: Pairs,
    add: Pairs,
}

fn compile_pairs(map: &BTreeMap<String, Values>, at: &str) -> Result<Pairs, String> {
    map.iter()
        .map(|(name, values)| {
            let parsed_name = settable_header_name(name).map_err(|e| format!("{at}: {e}"))?;
            let parsed = values
                .as_slice()
                .iter()
                .map(|v| header_value(name, v).map_err(|e| format!("{at}: {e}")))
                .collect::<Result<_, _>>()?;
            Ok((parsed_name, parsed))
        })
        .collect()
}

impl HeaderOps {
    fn compile(&self, side: &str) -> Result<Compiled, String> {
        if side == "request" {
            self.check_host()?;
        }
        Ok(Compiled {
            remove: self
                .remove
                .iter()
                .map(|n| header_name(n).map_err(|e| format!("{side}.remove: {e}")))
                .collect::<Result<_, _>>()?,
            set: compile_pairs(&self.set, &format!("{side}.set"))?,
            add: compile_pairs(&self.add, &format!("{side}.add"))?,
        })
    }
}

impl HeaderOps {
    /// A request has exactly one Host, a valid `host[:port]` (crate::host): `add` would
    /// make two (which the server refuses from clients), and `set` may give one.
    fn check_host(&self) -> Result<(), String> {
        let is_host = |name: &String| name.eq_ignore_ascii_case("host");
        if self.add.keys().any(is_host) {
            return Err("request.add: `Host` cannot be added: a request has one Host (use request.set to replace it)".into());
        }
        if let Some((_, values)) = self.set.iter().find(|(name, _)| is_host(name)) {
            match values.as_slice() {
                [one] => {
                    crate::host::canonical_authority(one).map_err(|_| {
                        format!("request.set: invalid Host `{one}`: give a host name or address, with a port if needed (`example.com`, `10.0.0.1:8080`)")
                    })?;
                }
                _ => return Err("request.set: `Host` takes one value".into()),
            }
        }
        Ok(())
    }
}

impl Compiled {
    fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, values) in &self.set {
            headers.remove(name);
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, values) in &self.add {
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}

impl Module for Headers {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        self.compiled.set((
            self.request.compile("request")?,
            self.response.compile("response")?,
        ));
        Ok(())
    }
}

impl Handler for Headers {
    fn serve<'a>(&'a self, mut request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let (on_request, on_response) = &*self.compiled;
            on_request.apply(request.headers_mut());
            let mut response = next.run(request).await?;
            on_response.apply(response.headers_mut());
            Ok(response)
        })
    }
}

xbuild_core::register_module!("http.handlers.headers", Headers as dyn Handler);

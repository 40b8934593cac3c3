//! `http.handlers.static_response`: a fixed answer (status, headers, body) built once at
//! provision, for health checks, placeholders and benchmarks.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use xbuild_core::{BoxError, Context, Module, Provisioned};

use super::{header_value, settable_header_name};
use crate::{Handler, HandlerFuture, Next, Request, Response, full};

fn default_status() -> u16 {
    200
}

#[derive(Deserialize)]
pub struct StaticResponse {
    #[serde(default = "default_status")]
    status: u16,
    /// Response headers; `Content-Type` defaults to plain text when a body is given.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,

    #[serde(skip)]
    prepared: Provisioned<Prepared>,
}

struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Module for StaticResponse {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        // 1xx are interim answers (101 switches protocols); a handler's final answer is
        // 200 to 599.
        let status = StatusCode::from_u16(self.status)
            .ok()
            .filter(|_| (200..=599).contains(&self.status))
            .ok_or_else(|| {
                format!(
                    "invalid status `{}`: give a code from 200 to 599",
                    self.status
                )
            })?;
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            headers.insert(settable_header_name(name)?, header_value(name, value)?);
        }
        if !self.body.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        self.prepared.set(Prepared {
            status,
            headers,
            body: Bytes::from(std::mem::take(&mut self.body)),
        });
        Ok(())
    }
}

impl Handler for StaticResponse {
    fn serve<'a>(&'a self, _request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let prepared = &*self.prepared;
            let mut response = Response::new(full(prepared.body.clone()));
            *response.status_mut() = prepared.status;
            // Copied into a map with room for the headers the server adds (the request ID):
            // a clone has no spare room, and growing it cost more than the copy.
            let headers = response.headers_mut();
            headers.reserve(prepared.headers.len() + 2);
            for (name, value) in &prepared.headers {
                headers.append(name.clone(), value.clone());
            }
            Ok(response)
        })
    }
}

xbuild_core::register_module!(
    "http.handlers.static_response",
    StaticResponse as dyn Handler
);

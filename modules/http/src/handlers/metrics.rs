//! `http.handlers.metrics`: serves every metric of the host (the core's module-call metrics,
//! the app's per-route request metrics, and any module's own) for a Prometheus scraper.

use http::{HeaderValue, header};
use serde::Deserialize;
use xbuild_core::Module;

use crate::{Handler, HandlerFuture, Next, Request, Response, full};

/// The exposition format the core's prometheus-client writes (OpenMetrics text, which
/// Prometheus scrapes natively).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Deserialize)]
pub struct Metrics {}

impl Module for Metrics {}

impl Handler for Metrics {
    fn serve<'a>(&'a self, _request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut response = Response::new(full(xbuild_core::metrics::render()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            Ok(response)
        })
    }
}

xbuild_core::register_module!("http.handlers.metrics", Metrics as dyn Handler);

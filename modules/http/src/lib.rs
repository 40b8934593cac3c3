//! # xbuild-http
//!
//! The standard HTTP app of xbuild hosts (module `http`) and the handlers that ship with it
//! (namespace `http.handlers`). It exists so a host built with xbuild can serve HTTP from a
//! config file alone, the way Caddy's `http` app does:
//!
//! ```toml
//! [apps.http.servers.main]
//! listen = ["127.0.0.1:8080"]
//! [[apps.http.servers.main.routes]]
//! match = { path = ["/api/*"], method = ["GET"] }
//! handle = [ { handler = "static_response", body = "Hello" } ]
//! ```
//!
//! The app owns the namespace `http.handlers` and defines its interface, [`Handler`]: a
//! handler gets the request and a [`Next`] for the rest of the route's chain, and either
//! answers or passes the request on. Other crates add handlers by implementing [`Handler`]
//! and registering under `http.handlers.<name>`:
//!
//! ```
//! use serde::Deserialize;
//! use xbuild_http::{Handler, HandlerFuture, Next, Request};
//!
//! #[derive(Deserialize)]
//! struct Teapot {}
//!
//! impl xbuild_core::Module for Teapot {}
//! impl Handler for Teapot {
//!     fn serve<'a>(&'a self, _request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
//!         Box::pin(async { Ok(xbuild_http::text_response(http::StatusCode::IM_A_TEAPOT, "short and stout")) })
//!     }
//! }
//!
//! xbuild_core::register_module!("http.handlers.teapot", Teapot as dyn xbuild_http::Handler);
//! ```
//!
//! Every call into a handler goes through the core's guard, so a panicking handler answers
//! 500 for its request, is counted in `module_call_total{status="panic"}`, and the server
//! keeps serving.

mod access_log;
mod app;
mod body;
pub mod client;
mod connections;
mod h2_streams;
pub mod handlers;
mod host;
mod limits;
mod listeners;
mod observe;
pub mod path;
mod route;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use xbuild_core::{BoxError, Loaded, Module};

/// The `http` crate this crate's types come from, so handler crates use the same version.
pub use http;

pub use app::HttpApp;
pub use body::{BodyError, HttpBody};
pub use observe::{REQUEST_ID_HEADER, RequestId, RequestInfo};
pub use tls::Tls;

/// A request as handlers see it.
pub type Request = http::Request<HttpBody>;
/// A response as handlers produce it.
pub type Response = http::Response<HttpBody>;
/// What [`Handler::serve`] returns: boxed, because handlers are trait objects.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send + 'a>>;

/// The interface of namespace `http.handlers`.
pub trait Handler: Module {
    /// Answers `request`, or passes it (possibly changed) to the rest of the chain with
    /// [`Next::run`] and returns (possibly changing) what that answers. An error answers
    /// 500 and is logged.
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a>;
}

/// The rest of a route's handler chain, and what the server knows about the request
/// beyond the request itself ([`RequestInfo`]: client address, request ID). That travels
/// here rather than in the request's extensions, which would cost three allocations per
/// request.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Loaded<dyn Handler>],
    info: RequestInfo,
}

impl<'a> Next<'a> {
    pub(crate) fn new(chain: &'a [Loaded<dyn Handler>], info: RequestInfo) -> Self {
        Self { rest: chain, info }
    }

    /// The client's address and the request ID.
    pub fn info(&self) -> RequestInfo {
        self.info
    }

    /// Runs the next handler (through the core's guard). At the end of the chain nobody
    /// answered, which is a 404.
    pub fn run(
        self,
        request: Request,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'a {
        // Not an `async fn`: that would keep `request` and the guarded call side by side in
        // its state, and this future is moved at every level of every request.
        let info = self.info;
        NextCall {
            id: self.rest.first().map_or("", |first| first.id()),
            call: self.rest.split_first().map(|(first, rest)| {
                first.call_async("serve", move |h| h.serve(request, Next { rest, info }))
            }),
        }
    }

    /// [`run`](Next::run) for the server's entry into a chain: the request stays boxed
    /// until the first handler takes it, so the futures around it stay small.
    pub(crate) fn run_boxed(
        self,
        request: Box<Request>,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'a {
        let info = self.info;
        NextCall {
            id: self.rest.first().map_or("", |first| first.id()),
            call: self.rest.split_first().map(|(first, rest)| {
                first.call_async("serve", move |h| h.serve(*request, Next { rest, info }))
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The guarded call of the next handler (with its module ID), or nothing at the end of
    /// the chain.
    struct NextCall<F> {
        id: &'static str,
        #[pin]
        call: Option<F>,
    }
}

impl<F> Future for NextCall<F>
where
    F: Future<Output = Result<Response, xbuild_core::CallError>>,
{
    type Output = Result<Response, BoxError>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let id = *this.id;
        match this.call.as_pin_mut() {
            Some(call) => call.poll(cx).map(|answered| match answered {
                Ok(response) => Ok(response.map(|body| body.answered_by(id))),
                Err(err) => Err(err.into()),
            }),
            None => std::task::Poll::Ready(Ok(text_response(
                StatusCode::NOT_FOUND,
                "not found: no handler answered this request\n",
            ))),
        }
    }
}

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> HttpBody {
    HttpBody::full(bytes)
}

/// Any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> HttpBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    HttpBody::new(body)
}

/// A plain-text response.
pub fn text_response(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

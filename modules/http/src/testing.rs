//! The handler test kit (feature `testing`): a handler author tests a handler without
//! building a host. [`load_toml`] and [`load`] instantiate a handler from its config through
//! the path the http app takes (decode strictly, provision, validate); [`TestHandler::send`]
//! gives it a request as the server would (through the core's guard, with a client address
//! and a request ID) and returns the whole response; what the handler passes on reaches a
//! recording [`Next`](crate::Next), whose answer the test chooses. [`TestServer`] starts
//! the real server on an ephemeral loopback port for end-to-end tests.
//!
//! In the handler crate's Cargo.toml:
//!
//! ```toml
//! [dev-dependencies]
//! xbuild-http = { version = "0.1", features = ["testing"] }
//! ```
//!
//! Unit tests inside the crate find its handlers as they are. An integration test (in
//! `tests/`) is a crate of its own: it must name the crate under test (`use my_handlers as
//! _;`), or the linker leaves the crate's registrations out and the lookup fails with
//! "unknown module".
//!
//! ```
//! use xbuild_http::testing::{self, get};
//! use xbuild_http::http::StatusCode;
//!
//! // A handler that answers: the chain behind it is never reached.
//! let teapot = testing::load_toml("static_response", "status = 418\nbody = \"short\"")?;
//! let response = teapot.send(get("/"))?;
//! assert_eq!(response.status, StatusCode::IM_A_TEAPOT);
//! assert_eq!(response.text(), "short");
//! assert!(teapot.passed_on().is_empty());
//!
//! // A middleware handler: it changes the request and passes it on.
//! let headers = testing::load_toml("headers", "[request]\nset = { X-Tenant = \"acme\" }")?;
//! let response = headers.send(get("/a"))?;
//! assert_eq!(response.status, StatusCode::OK); // what the recording Next answers by default
//! assert_eq!(headers.passed_on()[0].headers["x-tenant"], "acme");
//!
//! // A config the handler refuses never loads.
//! let refused = testing::load_toml("static_response", "status = 99").err().unwrap();
//! assert!(refused.to_string().contains("invalid status `99`"));
//! # Ok::<(), xbuild_core::BoxError>(())
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use serde::Deserialize;
use xbuild_core::{App, BoxError, Context, Loaded, Module, Registry, Value};

use crate::observe::{RequestId, RequestInfo};
use crate::{Handler, HandlerFuture, HttpBody, Next, Request, Response};

/// The namespace handlers register in.
const NAMESPACE: &str = "http.handlers";
/// The recording end of a test chain: a handler registered by the kit itself, so it is
/// loaded and called exactly as a real next handler is.
const RECORDER: &str = "xbuild_testing_next";

/// The client address requests come from unless a test says otherwise
/// ([`TestHandler::send_from`]).
pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 50000);

/// A `GET` request for `uri` with no body.
pub fn get(uri: &str) -> Request {
    request(Method::GET, uri, Bytes::new())
}

/// A request with `method`, `uri` (a path, or an absolute URI) and `body`. Headers go on
/// with [`http::Request::headers_mut`].
pub fn request(method: Method, uri: &str, body: impl Into<Bytes>) -> Request {
    let uri: Uri = uri
        .parse()
        .unwrap_or_else(|e| panic!("invalid request URI `{uri}` in a test: {e}"));
    let mut request = http::Request::new(HttpBody::full(body.into()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request
}

/// A handler under test: loaded as the http app loads it, with a recording chain behind it.
/// Dropping it cleans the handler up, as a host does when it stops.
pub struct TestHandler {
    /// `[handler, recorder]`: the handler is called as the first of a route's chain.
    chain: Vec<Loaded<dyn Handler>>,
    recording: Arc<Recording>,
    runtime: OnceLock<tokio::runtime::Runtime>,
}

/// Loads handler `name` (`static_response`, or a full ID `http.handlers.static_response`)
/// from a JSON config, through the linked registry: decoded strictly, provisioned and
/// validated, as in a host.
pub fn load(name: &str, config: Value) -> Result<TestHandler, BoxError> {
    let name = name.strip_prefix("http.handlers.").unwrap_or(name);
    let registry = Registry::linked()?;
    let mut ctx = Context::new(&registry);
    let handler = ctx.load::<dyn Handler>(NAMESPACE, name, config)?;
    let recording = Arc::new(Recording::default());
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    lock(recordings()).insert(key, recording.clone());
    let recorder = ctx.load::<dyn Handler>(NAMESPACE, RECORDER, serde_json::json!({ "key": key }));
    lock(recordings()).remove(&key);
    Ok(TestHandler {
        chain: vec![handler, recorder?],
        recording,
        runtime: OnceLock::new(),
    })
}

/// [`load`] from a TOML snippet: the handler's table as a config file holds it in a route's
/// `handle` list, without the `handler` key.
pub fn load_toml(name: &str, toml: &str) -> Result<TestHandler, BoxError> {
    let config: Value = toml::from_str(toml)?;
    load(name, config)
}

impl TestHandler {
    /// The handler's module ID.
    pub fn id(&self) -> &'static str {
        self.chain[0].id()
    }

    /// Sends `request` from [`CLIENT`] and waits for the whole response. An `Err` is what
    /// the handler returned or a panic the guard caught; the server answers 500 for it.
    pub fn send(&self, request: Request) -> Result<TestResponse, BoxError> {
        self.send_from(CLIENT, request)
    }

    /// [`send`](Self::send) from another client address.
    pub fn send_from(
        &self,
        client: SocketAddr,
        request: Request,
    ) -> Result<TestResponse, BoxError> {
        let runtime = self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a test runtime")
        });
        runtime.block_on(self.serve_from(client, request))
    }

    /// [`send`](Self::send) for async tests (inside a tokio runtime).
    pub async fn serve(&self, request: Request) -> Result<TestResponse, BoxError> {
        self.serve_from(CLIENT, request).await
    }

    /// [`serve`](Self::serve) from another client address.
    pub async fn serve_from(
        &self,
        client: SocketAddr,
        request: Request,
    ) -> Result<TestResponse, BoxError> {
        let info = RequestInfo {
            remote: client,
            id: RequestId::next(),
        };
        let response = Next::new(&self.chain, info).run(request).await?;
        TestResponse::collect(response).await
    }

    /// The requests the handler passed on to the rest of the chain, oldest first.
    pub fn passed_on(&self) -> Vec<Passed> {
        lock(&self.recording.passed).clone()
    }

    /// Sets what the rest of the chain answers to what the handler passes on (by default
    /// `200 OK` with body `next`): `answer` gets each request as passed on.
    pub fn next_answers(&self, answer: impl Fn(&Passed) -> Response + Send + Sync + 'static) {
        *lock(&self.recording.answer) = Some(Box::new(answer));
    }

    /// The Prometheus series the host would expose for this handler's module calls (all
    /// instances of the module in this test binary: the series are process-wide).
    pub fn metrics(&self) -> String {
        let label = format!("module=\"{}\"", self.id());
        xbuild_core::metrics::render()
            .lines()
            .filter(|line| !line.starts_with('#') && line.contains(&label))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// A response as the client would receive it, its body read to the end.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    async fn collect(response: Response) -> Result<Self, BoxError> {
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Self {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request as the handler under test passed it on, its body read to the end.
#[derive(Debug, Clone)]
pub struct Passed {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type Answer = Box<dyn Fn(&Passed) -> Response + Send + Sync>;

#[derive(Default)]
struct Recording {
    passed: Mutex<Vec<Passed>>,
    answer: Mutex<Option<Answer>>,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// Recordings waiting for their recorder to be loaded, by key. A recorder is a module
/// loaded from its config, so it finds its recording here rather than being handed it.
fn recordings() -> &'static Mutex<HashMap<u64, Arc<Recording>>> {
    static RECORDINGS: OnceLock<Mutex<HashMap<u64, Arc<Recording>>>> = OnceLock::new();
    RECORDINGS.get_or_init(Default::default)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The recording end of a test chain (`http.handlers.xbuild_testing_next`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingNext {
    key: u64,
    #[serde(skip)]
    recording: Option<Arc<Recording>>,
}

impl Module for RecordingNext {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        self.recording = lock(recordings()).get(&self.key).cloned();
        match self.recording {
            Some(_) => Ok(()),
            None => Err("the recording next handler is made by xbuild_http::testing::load".into()),
        }
    }
}

impl Handler for RecordingNext {
    fn serve<'a>(&'a self, request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let recording = self.recording.as_ref().expect("provisioned");
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let passed = Passed {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            let response = match &*lock(&recording.answer) {
                Some(answer) => answer(&passed),
                None => crate::text_response(StatusCode::OK, "next"),
            };
            lock(&recording.passed).push(passed);
            Ok(response)
        })
    }
}

xbuild_core::register_module!(
    "http.handlers.xbuild_testing_next",
    RecordingNext as dyn Handler
);

/// The real server, started from an http app config (`[apps.http]`'s contents) on ephemeral
/// loopback ports, through the host's own load and start path. Dropping it stops the app
/// (with its grace period) and cleans it up.
///
/// Every `listen` address of the config is replaced by `127.0.0.1:0`; [`addr`](Self::addr)
/// says where each server listens.
pub struct TestServer {
    app: Option<Loaded<dyn App>>,
    bound: Vec<(String, SocketAddr)>,
    refresh: xbuild_core::RefreshHooks,
}

impl TestServer {
    /// Starts the http app from a TOML snippet: `[servers.main]` with its `routes`.
    pub fn start_toml(toml: &str) -> Result<Self, BoxError> {
        let config: Value = toml::from_str(toml)?;
        Self::start(config)
    }

    /// Starts the http app from its JSON config.
    pub fn start(mut config: Value) -> Result<Self, BoxError> {
        let servers = config
            .get_mut("servers")
            .and_then(|s| s.as_object_mut())
            .ok_or("the http app config has no `servers` table")?;
        for server in servers.values_mut() {
            if let Some(server) = server.as_object_mut() {
                server.insert("listen".into(), serde_json::json!(["127.0.0.1:0"]));
                if server.contains_key("redirect_from_http") {
                    server.insert(
                        "redirect_from_http".into(),
                        serde_json::json!(["127.0.0.1:0"]),
                    );
                }
            }
        }
        let registry = Registry::linked()?;
        let mut ctx = Context::new(&registry);
        let mut app = ctx.load::<dyn App>("", "http", config)?;
        BOUND.with(|b| b.borrow_mut().replace(Vec::new()));
        let started = app.call_mut("start", |app| app.start());
        let bound = BOUND.with(|b| b.borrow_mut().take()).unwrap_or_default();
        started?;
        Ok(Self {
            app: Some(app),
            bound,
            refresh: ctx.refresh_hooks(),
        })
    }

    /// What a host does on SIGHUP or `reload` when the config is unchanged: calls the
    /// [`Refresh`](xbuild_core::Refresh) hooks of the server's modules (xbuild-tls reads its
    /// certificate files again); the first error, if any.
    pub fn refresh(&self) -> Result<(), BoxError> {
        match self.refresh.refresh().into_iter().next() {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    /// Where server `name` listens.
    pub fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.bound.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Where the first server (by name) listens.
    pub fn addr(&self) -> SocketAddr {
        self.bound.first().expect("a started server listens").1
    }

    /// `http://ADDR` + `path`, for the first server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut app) = self.app.take() {
            let _ = app.call_mut("stop", |app| app.stop());
        }
    }
}

thread_local! {
    /// Set while [`TestServer::start`] starts the app on this thread: where the app's
    /// listeners bound (`listen` says port 0).
    static BOUND: std::cell::RefCell<Option<Vec<(String, SocketAddr)>>> = const { std::cell::RefCell::new(None) };
}

/// Called by the app's start for each listener it bound.
pub(crate) fn note_bound(server: &str, addr: SocketAddr) {
    BOUND.with(|b| {
        if let Some(bound) = b.borrow_mut().as_mut() {
            bound.push((server.to_owned(), addr));
        }
    });
}

//! One configured server: its listeners' accept loops, and the per-request path (request
//! ID, route selection, the guarded handler chain, metrics, access log). Connections are
//! served by hyper (HTTP/1.1, and h2c when configured, through hyper-util's auto builder),
//! each watched by a watchdog task (crate::limits) that also drains it when the server
//! stops, so stopping lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::access_log::NO_STATUS;
use crate::connections::{Admitted, Connections};
use crate::h2_streams::CountStreams;
use crate::limits::{Activity, Closed, DrainsItself, Hyper, Limits, Tracked, watch_connection};

use crate::observe::{MethodLabel, REQUEST_ID, RequestId, RequestInfo, RouteMetrics, UNMATCHED};
use crate::route::Route;
use crate::tls::{Negotiated, TcpConnection};
use crate::{HttpBody, Next, Response, text_response};

/// Which HTTP versions a server speaks: over TLS as ALPN agrees, in cleartext told apart
/// by the HTTP/2 preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocols {
    /// HTTP/1.1 only: hyper's HTTP/1 connection, nothing to detect.
    H1,
    /// HTTP/2 only (in cleartext: prior knowledge, `h2c`).
    H2,
    /// Both (in cleartext through hyper-util's auto connection).
    H1AndH2,
}

impl Protocols {
    /// From the config's `protocols` list: `h1` and `h2c` in cleartext, `h1` and `h2` over
    /// TLS.
    pub fn parse(names: &[String], tls: bool) -> Result<Self, String> {
        let (mut h1, mut h2) = (false, false);
        let listed = if tls { "`h1`, `h2`" } else { "`h1`, `h2c`" };
        for name in names {
            match (name.as_str(), tls) {
                ("h1", _) => h1 = true,
                ("h2c", false) | ("h2", true) => h2 = true,
                ("h2", false) => {
                    return Err(
                        "protocol `h2` is HTTP/2 over TLS, and this server has no `tls`: use `h2c` for HTTP/2 without TLS, or add `tls`".to_owned(),
                    );
                }
                ("h2c", true) => {
                    return Err(
                        "protocol `h2c` is HTTP/2 without TLS, and this server has `tls`: use `h2`"
                            .to_owned(),
                    );
                }
                (other, _) => {
                    return Err(format!(
                        "unknown protocol `{other}` in `protocols`: use {listed}"
                    ));
                }
            }
        }
        match (h1, h2) {
            (true, false) => Ok(Protocols::H1),
            (false, true) => Ok(Protocols::H2),
            (true, true) => Ok(Protocols::H1AndH2),
            (false, false) => Err(format!(
                "`protocols` is empty: list at least one of {listed}"
            )),
        }
    }

    /// What a TLS handshake offers through ALPN.
    fn offer(self) -> crate::tls::Offer {
        match self {
            Protocols::H1 => crate::tls::Offer::Http1,
            Protocols::H2 => crate::tls::Offer::Http2,
            Protocols::H1AndH2 => crate::tls::Offer::Http1AndHttp2,
        }
    }
}

/// A provisioned server, shared by all its connections.
pub(crate) struct Server {
    pub name: Arc<str>,
    pub listen: Vec<SocketAddr>,
    pub routes: Vec<Route>,
    pub route_metrics: Vec<RouteMetrics>,
    pub unmatched_metrics: RouteMetrics,
    /// Requests hyper refused before they reached the server (route `(rejected)`).
    pub rejected_metrics: RouteMetrics,
    pub access_log: bool,
    pub protocols: Protocols,
    pub limits: Limits,
    /// HTTPS: the module that secures each connection before HTTP is spoken over it.
    pub tls: Option<xbuild_core::Loaded<dyn crate::tls::Tls>>,
    /// Set when the app stops with requests still in flight after its grace period: those
    /// are cut by the server, not abandoned by their clients.
    pub stopped: std::sync::atomic::AtomicBool,
    /// Where a TLS server with `redirect_from_http` listens (its first address, once
    /// bound), for the server that redirects to it.
    pub https_port: Option<Arc<std::sync::atomic::AtomicU16>>,
    /// A server that answers every request with a redirect to HTTPS on this port (the
    /// `redirect_from_http` addresses of a TLS server).
    pub redirect_to_https: Option<Arc<std::sync::atomic::AtomicU16>>,
}

impl Server {
    /// Answers one request. Never fails: handler errors and panics become 500s here.
    ///
    /// The bookkeeping before the handlers run is done here, synchronously, so the future
    /// hyper stores (and moves) per request holds only what outlives the first await.
    fn handle(
        self: &Arc<Self>,
        request: http::Request<Incoming>,
        remote: SocketAddr,
        remote_text: &crate::access_log::RemoteText,
        in_flight: crate::limits::InFlight,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
        let started = Instant::now();
        let id = RequestId::next();
        let (mut parts, body) = request.into_parts();
        let info = RequestInfo { remote, id };
        let method = MethodLabel::of(&parts.method);
        // The access log line, begun with the target as the client sent it (before it is
        // cleaned); the filter (`XBUILD_LOG`) may leave lines out.
        let log = (self.access_log && crate::access_log::enabled()).then(|| {
            crate::access_log::Started::new(
                &self.name,
                id,
                remote_text,
                parts.method.as_str(),
                Some(&parts.uri),
            )
        });
        let head = parts.method == http::Method::HEAD;
        // Routes, file_server and reverse_proxy all see the cleaned path (crate::path) and
        // one Host.
        // In place: `Parts` is a few hundred bytes, and passing it by value copied it.
        let refused = if !clean_path(&mut parts) {
            Some((StatusCode::BAD_REQUEST, "bad request: unusable path\n"))
        } else {
            canonical_host(&mut parts).map(|why| (StatusCode::BAD_REQUEST, why))
        };
        let limits = &self.limits;
        // hyper stops reading a head at its buffer size, but one read can take it past
        // that, up to about twice the limit; this makes the limit exact.
        let refused = refused.or_else(|| {
            (head_size(&parts) > limits.max_header_bytes).then_some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header fields too large\n",
            ))
        });
        // Only `chunked` is decoded: a body in another transfer coding (`gzip, chunked`)
        // would reach handlers and upstreams still coded, with nothing saying so. RFC 9112
        // §6.1: 501.
        // Only a body of unknown length can be chunked: a GET's headers are not searched.
        let maybe_chunked = !http_body::Body::is_end_stream(&body)
            && http_body::Body::size_hint(&body).exact().is_none();
        let refused = refused.or_else(|| {
            (maybe_chunked && !only_chunked(&parts.headers)).then_some((
                StatusCode::NOT_IMPLEMENTED,
                "not implemented: only the chunked transfer coding is understood\n",
            ))
        });
        // A body announced larger than allowed is refused before any handler runs; one
        // that grows past the limit fails when read (crate::body::BodyError).
        let refused = refused.or_else(|| {
            let declared = http_body::Body::size_hint(&body).exact();
            declared
                .is_some_and(|len| len > limits.max_request_body)
                .then_some((StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE))
        });
        let body = HttpBody::from_client(body, limits.max_request_body, limits.read_timeout);
        // Boxed so the per-request future, which hyper and the guard move around, does not
        // carry the whole request at each level.
        let request = Box::new(http::Request::from_parts(parts, body));
        let index = if refused.is_none() {
            self.routes.iter().position(|r| r.matcher.matches(&request))
        } else {
            None
        };
        let mut answering = Answering {
            server: self.clone(),
            log,
            index,
            method,
            started,
            answered: false,
        };
        async move {
            let server = &answering.server;
            let (route_name, metrics): (&str, _) = match index {
                Some(i) => (&server.routes[i].name, &server.route_metrics[i]),
                None => (UNMATCHED, &server.unmatched_metrics),
            };
            let mut response = match index {
                Some(i) => match Next::new(&server.routes[i].handlers, info)
                    .run_boxed(request)
                    .await
                {
                    Ok(response) => response,
                    Err(err) => server.handler_failed(route_name, id, &*err),
                },
                None if let Some((status, why)) = refused => text_response(status, why),
                None if let Some(port) = &server.redirect_to_https => {
                    redirect_to_https(&request, port.load(std::sync::atomic::Ordering::Relaxed))
                }
                None => text_response(StatusCode::NOT_FOUND, "not found: no route matched\n"),
            };
            answering.answered = true;
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            metrics.record(method, status, elapsed);
            if server.access_log {
                // The ID the log line carries, so a client can quote it (even when the
                // filter leaves the line out).
                response.headers_mut().insert(REQUEST_ID, id.header_value());
            }
            if let Some(log) = answering.log.take() {
                if response.body().is_streaming() {
                    // Written when the body has been sent, so a body that fails or panics
                    // halfway says so rather than passing for a plain 200.
                    let expected = announced_length(head, &response);
                    response = response.map(|body| {
                        HttpBody::new(LoggedAtEnd {
                            body,
                            server: answering.server.clone(),
                            route: index,
                            log: Some((log, status, elapsed)),
                            expected,
                            sent: 0,
                        })
                    });
                } else {
                    log.finish(route_name, status, elapsed, None);
                }
            }
            // The connection's watchdog counts the request until its answer is ready.
            drop(in_flight);
            Ok(response)
        }
    }
}

/// The status an abandoned request is counted and logged with: nginx's "client closed
/// request", which no client ever receives.
const CLIENT_CLOSED: u16 = 499;

/// The status of a request cut off because the host stopped past its grace period (the
/// client gets its connection closed, not this status).
const SERVER_STOPPED: u16 = 503;

/// A request being answered. Dropped unanswered, the client left before its response
/// (hyper drops the request's future when the connection closes or, on HTTP/2, when the
/// client resets the stream): that is still a request the server received, so it is
/// counted and logged, as status 499 with `error=client_gone` (or, when the host stopped
/// past its grace period with the request in flight, 503 with `error=server_stopped`).
struct Answering {
    server: Arc<Server>,
    log: Option<crate::access_log::Started>,
    index: Option<usize>,
    method: MethodLabel,
    started: Instant,
    answered: bool,
}

impl Drop for Answering {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let elapsed = self.started.elapsed();
        let metrics = match self.index {
            Some(i) => &self.server.route_metrics[i],
            None => &self.server.unmatched_metrics,
        };
        let (status, why) = if self
            .server
            .stopped
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            (SERVER_STOPPED, "server_stopped")
        } else {
            (CLIENT_CLOSED, "client_gone")
        };
        metrics.record(self.method, status, elapsed);
        if let Some(log) = self.log.take() {
            log.finish(
                route_name(&self.server, self.index),
                status,
                elapsed,
                Some(why),
            );
        }
    }
}

impl Server {
    /// The answer when a route's handlers failed: the client's fault when its body broke a
    /// limit (too large, too slow) or its framing, else a 500.
    fn handler_failed(
        &self,
        route: &str,
        id: crate::RequestId,
        err: &(dyn std::error::Error + 'static),
    ) -> Response {
        if let Some(body_error) = crate::BodyError::find(err) {
            tracing::debug!(server = &*self.name, route, request_id = %id, error = %err, "request body refused");
            return body_error_response(body_error);
        }
        tracing::error!(
            server = &*self.name,
            route,
            request_id = %id,
            error = %err,
            "handler failed; answering 500"
        );
        text_response(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
    }
}

/// The answer of a `redirect_from_http` address: 308 (the method and body are kept) to the
/// same host and target over HTTPS on `port`.
fn redirect_to_https(request: &crate::Request, port: u16) -> Response {
    // The Host header has been checked and put in canonical form (`canonical_host`), so
    // it can go into a header as it is.
    let Some(host) = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "bad request: no Host to redirect to HTTPS\n",
        );
    };
    let name = match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    };
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    let location = if port == 443 {
        format!("https://{name}{target}")
    } else {
        format!("https://{name}:{port}{target}")
    };
    let mut response = text_response(
        StatusCode::PERMANENT_REDIRECT,
        "permanent redirect: this site is served over HTTPS\n",
    );
    if let Ok(location) = http::HeaderValue::try_from(location) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
}

/// Whether every `Transfer-Encoding` coding of a message is `chunked` (or there is none).
pub(crate) fn only_chunked(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .all(|value| {
            value.to_str().is_ok_and(|text| {
                text.split(',')
                    .map(str::trim)
                    .all(|coding| coding.is_empty() || coding.eq_ignore_ascii_case("chunked"))
            })
        })
}

/// About the bytes of a request's head as sent: the request line and each header line.
fn head_size(parts: &http::request::Parts) -> usize {
    let uri = &parts.uri;
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len());
    let line = parts.method.as_str().len() + target + " HTTP/1.1\r\n".len() + 1;
    parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

/// The 413's text, whether the body was announced too large or grew past the limit.
const TOO_LARGE: &str = "payload too large: the request body is larger than this server accepts\n";

/// The answer to a request whose body was refused while a handler read it.
pub(crate) fn body_error_response(err: &crate::BodyError) -> Response {
    let mut response = match err {
        crate::BodyError::TooLarge { .. } => text_response(err.status(), TOO_LARGE),
        crate::BodyError::TimedOut(_) => text_response(
            err.status(),
            "request timeout: the request body did not arrive in time\n",
        ),
        _ => text_response(
            err.status(),
            "bad request: the request body could not be read\n",
        ),
    };
    // The rest of the body is not read, so the connection cannot carry another request.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// Cleans the request's path ([`crate::path::clean`]) and keeps the raw path as a
/// [`RawPath`](crate::path::RawPath) extension; `false` when the cleaned path does not
/// form a URI again (it always should: cleaning only removes and decodes unreserved
/// characters), in which case the request is refused rather than routed uncleaned.
fn clean_path(parts: &mut http::request::Parts) -> bool {
    let raw = parts.uri.path();
    // The asterisk-form (`OPTIONS * HTTP/1.1`, about the server as a whole) is not a path:
    // it stays as it is, for OPTIONS only (RFC 9112, section 3.2.4).
    if raw == "*" {
        return parts.method == http::Method::OPTIONS && parts.uri.query().is_none();
    }
    let std::borrow::Cow::Owned(cleaned) = crate::path::clean(raw) else {
        return true;
    };
    let raw = raw.to_owned();
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{cleaned}?{query}"),
        None => cleaned,
    };
    let mut uri = parts.uri.clone().into_parts();
    uri.path_and_query = match path_and_query.parse() {
        Ok(parsed) => Some(parsed),
        Err(_) => return false,
    };
    match http::Uri::from_parts(uri) {
        Ok(uri) => {
            parts.uri = uri;
            parts.extensions.insert(crate::path::RawPath(raw));
            true
        }
        Err(_) => false,
    }
}

/// Gives the request exactly one `Host` header, in its canonical form (crate::host), the
/// host that routing uses and upstreams are told: the URI's authority when the request has
/// one (absolute-form, or HTTP/2's `:authority`; RFC 9112 says it wins over `Host`), else
/// the one `Host` header. An HTTP/1.1 request with no Host, with two, or with one that is
/// not a valid `host[:port]` is refused (RFC 9112, section 3.2): the reason for the 400 is
/// returned.
fn canonical_host(parts: &mut http::request::Parts) -> Option<&'static str> {
    // Absolute-form and HTTP/2 carry the authority in the URI; it wins over any Host
    // header (RFC 9112 §3.2.2), which is replaced with it.
    let given = match parts.uri.authority() {
        Some(authority) => {
            if authority.as_str().contains('@') {
                return Some("bad request: userinfo in the request target\n");
            }
            authority.as_str()
        }
        None => {
            let mut hosts = parts.headers.get_all(http::header::HOST).iter();
            match (hosts.next(), hosts.next()) {
                // The common case, already canonical, costs no allocation (nor a UTF-8
                // check: canonical is ASCII).
                (Some(host), None) if crate::host::is_canonical(host.as_bytes()) => return None,
                // UTF-8 rather than visible ASCII only: a client may send an
                // international name raw, which becomes its punycode form.
                (Some(host), None) => match std::str::from_utf8(host.as_bytes()) {
                    Ok(host) => host,
                    Err(_) => return Some("bad request: invalid Host\n"),
                },
                (None, _) if parts.version < http::Version::HTTP_11 => return None,
                (None, _) => return Some("bad request: no Host header\n"),
                (Some(_), Some(_)) => return Some("bad request: more than one Host header\n"),
            }
        }
    };
    match crate::host::canonical_authority(given) {
        Ok(authority) => {
            let value = http::HeaderValue::try_from(authority.header_value())
                .expect("a canonical authority is a valid header value");
            parts.headers.insert(http::header::HOST, value);
            None
        }
        Err(why) => Some(why),
    }
}

pin_project_lite::pin_project! {
    /// A streamed response body whose access log line is written when it ends, with
    /// `error=body_failed`, `body_panicked` or `client_gone` (the connection ended first)
    /// when it did not end well.
    struct LoggedAtEnd {
        #[pin]
        body: HttpBody,
        server: Arc<Server>,
        route: Option<usize>,
        // The line, with the status and the time to the response head.
        log: Option<(crate::access_log::Started, u16, Duration)>,
        // The body's length when it was announced (Content-Length), and the bytes sent:
        // hyper stops polling once it has sent an announced length, so reaching it is the
        // end of the body.
        expected: Option<u64>,
        sent: u64,
    }

    impl PinnedDrop for LoggedAtEnd {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some((log, status, duration)) = this.log.take() {
                // Dropped with all it announced sent (or nothing to send: HEAD, 304) is a
                // body delivered; dropped short of that, the connection ended first.
                let delivered = Some(*this.sent) == *this.expected;
                let why = if this.server.stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    "server_stopped"
                } else {
                    "client_gone"
                };
                let route = route_name(this.server, *this.route);
                log.finish(route, status, duration, (!delivered).then_some(why));
            }
        }
    }
}

/// The name of route `index` of `server` (the unmatched pseudo-route for `None`).
fn route_name(server: &Server, index: Option<usize>) -> &str {
    index.map_or(UNMATCHED, |i| &server.routes[i].name)
}

/// The bytes of body a response sends: its Content-Length, none for HEAD, 204 and 304;
/// `None` when not known before the end (chunked).
fn announced_length(head: bool, response: &Response) -> Option<u64> {
    let status = response.status();
    if head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Some(0);
    }
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(response.body()).exact())
}

impl http_body::Body for LoggedAtEnd {
    type Data = bytes::Bytes;
    type Error = xbuild_core::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        let error = match &polled {
            std::task::Poll::Ready(None) => None,
            std::task::Poll::Ready(Some(Ok(frame))) => {
                *this.sent += frame.data_ref().map_or(0, |data| data.len() as u64);
                if Some(*this.sent) != *this.expected {
                    return polled;
                }
                None
            }
            std::task::Poll::Ready(Some(Err(err))) => {
                Some(match err.downcast_ref::<xbuild_core::CallError>() {
                    Some(call) if call.is_panic() => "body_panicked",
                    _ => "body_failed",
                })
            }
            _ => return polled,
        };
        if let Some((log, status, duration)) = this.log.take() {
            log.finish(
                route_name(this.server, *this.route),
                status,
                duration,
                error,
            );
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Accepts connections on `listener` until `stop` changes, then waits for this listener's
/// connections to finish their in-flight requests.
/// Bytes an HTTP/2 stream may queue unsent: 64 KiB, so one connection holds at most
/// `max_concurrent_streams` × 64 KiB (6.25 MiB at the default 100 streams) of responses
/// waiting for a client.
pub(crate) const H2_SEND_BUFFER: usize = 64 << 10;

/// Bytes of request bodies an HTTP/2 client may send before the server reads them, on a
/// stream and on the whole connection.
pub(crate) const H2_RECEIVE_WINDOW: u32 = 1 << 20;

/// How long a stopping server waits for the first request of connections it accepted
/// just before it stopped.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

pub(crate) async fn serve_listener(
    listener: TcpListener,
    server: Arc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = server.limits;
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // The read buffer bounds a request's head: past it hyper answers 431. hyper's own
    // header timer is left off: it sets a timer per request, and the connection's
    // watchdog (crate::limits) enforces read_header_timeout without one.
    http1.max_buf_size(limits.max_header_bytes);
    let mut auto = auto::Builder::new(TokioExecutor::new());
    auto.http1().max_buf_size(limits.max_header_bytes);
    // Bounded explicitly rather than by whatever hyper's defaults are: streams at once,
    // header list size, and streams a client may open and reset before they are accepted
    // (the rapid-reset attack).
    auto.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        // What a client may send ahead unread: 1 MiB of request bodies on a connection,
        // however many streams (Go's server allows the same), with no growth (hyper's
        // adaptive window would follow a fast client's bandwidth-delay product).
        .initial_connection_window_size(H2_RECEIVE_WINDOW)
        .initial_stream_window_size(H2_RECEIVE_WINDOW)
        .adaptive_window(false)
        // What a stream may have queued for a client that does not read: with the stream
        // limit, a bound on what one connection can make the server hold (hyper's default,
        // 400 KiB a stream, let a client that opens 100 streams of a large file and never
        // reads cost about 40 MiB). write_timeout then closes the stalled connection.
        .max_send_buf_size(H2_SEND_BUFFER);
    // Over TLS, ALPN has said which protocol a connection speaks: no detection needed.
    let builders = Arc::new(Builders {
        http1: http1.clone(),
        http2: auto.clone().http2_only(),
    });
    if server.protocols == Protocols::H2 {
        auto = auto.http2_only();
    }
    // Tells each connection's watchdog to drain its connection once the server stops.
    let (drain, draining) = watch::channel(false);
    // TLS connections watch this one themselves (crate::limits::DrainsItself).
    let graceful = GracefulShutdown::new();
    // One permit per connection served. At `max_connections` the connection idle longest
    // is closed to make room; when none is idle, new connections wait in the listen backlog
    // until one closes, and the open ones keep being served.
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = Connections::new(limits.max_connections_per_client);
    let mut last_warning: Option<Instant> = None;
    let mut last_refusal: Option<Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                        last_warning = Some(Instant::now());
                        tracing::warn!(server = &*server.name, error = %err, "accept failed; retrying shortly");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let activity = Activity::new();
        let Some(admitted) = connections.admit(remote.ip(), &activity) else {
            // Closed unserved: the client already holds its share.
            if last_refusal.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                last_refusal = Some(Instant::now());
                tracing::warn!(
                    server = &*server.name,
                    client = %remote.ip(),
                    max_connections_per_client = limits.max_connections_per_client,
                    "a client holds max_connections_per_client; closing its new connections"
                );
            }
            continue;
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full, with someone waiting: make room by closing the connection idle
                // longest; when every connection is busy, this one waits for a place (and
                // those behind it in the listen backlog).
                let shed = connections.shed_idle();
                // Once a minute at most, not once a connection.
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        server = &*server.name,
                        max_connections = limits.max_connections,
                        "max_connections reached; {}",
                        if shed {
                            "closing the connection idle longest"
                        } else {
                            "every connection is busy, new ones wait until one closes"
                        }
                    );
                }
                // A busy connection may go idle before any closes: look again now and then.
                let waited = loop {
                    tokio::select! {
                        permit = permits.clone().acquire_owned() => break Some(permit.expect("never closed")),
                        _ = stop.changed() => break None,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {
                            connections.shed_idle();
                        }
                    }
                };
                match waited {
                    Some(permit) => permit,
                    None => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = Tracked::new(stream, activity.clone(), limits.write_timeout);
        let service_server = server.clone();
        let service_activity = activity.clone();
        let remote_text = crate::access_log::RemoteText::new(remote);
        if server.protocols == Protocols::H2 {
            activity.http2();
        }
        let service = service_fn(move |request: http::Request<Incoming>| {
            if request.version() == http::Version::HTTP_2 {
                service_activity.http2();
            }
            let in_flight = service_activity.request();
            service_server.handle(request, remote, &remote_text, in_flight)
        });
        let held = (permit, admitted);
        if server.tls.is_some() {
            let connection = secure_connection(
                TcpConnection::new(stream, remote),
                server.clone(),
                builders.clone(),
                graceful.watcher(),
                activity.clone(),
                service,
            );
            let connection = DrainsItself::new(connection);
            spawn_connection(connection, &server, remote, activity, held, &draining);
            continue;
        }
        // HTTP/1-only connections skip the protocol detection (and its per-read cost), and
        // the counting of HTTP/2 streams.
        match server.protocols {
            Protocols::H1 => spawn_connection(
                Hyper::new(http1.serve_connection(TokioIo::new(stream), service)),
                &server,
                remote,
                activity,
                held,
                &draining,
            ),
            _ => spawn_connection(
                Hyper::new(
                    auto.serve_connection(
                        TokioIo::new(CountStreams::new(stream, activity.clone())),
                        service,
                    )
                    .into_owned(),
                ),
                &server,
                remote,
                activity,
                held,
                &draining,
            ),
        }
    }
    // Refuse new connections right away (unless the next config shares the socket, after
    // a reload), then let the open ones drain.
    drop(listener);
    // A graceful shutdown closes a connection with nothing in flight at once, and hyper
    // cannot tell one that is idle between requests from one accepted a moment ago whose
    // first request is still on its way: that client connected while the server listened
    // and would see its request fail. So such connections get a moment to send it first
    // (it is then answered, with `Connection: close`).
    let waited = Instant::now();
    while connections.any_awaiting_first_request() && waited.elapsed() < FIRST_REQUEST_WAIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = drain.send(true);
    graceful.shutdown().await;
    // Every connection gives its permit back when it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// The connection builders a secured connection picks from once ALPN has spoken.
struct Builders {
    http1: hyper::server::conn::http1::Builder,
    http2: auto::Builder<TokioExecutor>,
}

/// A connection of a TLS server: the handshake (through the guard, as every call into a
/// module), then HTTP over the secured stream in the protocol ALPN agreed on.
async fn secure_connection<S>(
    connection: TcpConnection,
    server: Arc<Server>,
    builders: Arc<Builders>,
    watcher: hyper_util::server::graceful::Watcher,
    activity: Arc<Activity>,
    service: S,
) -> Result<(), xbuild_core::BoxError>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let tls = server
        .tls
        .as_ref()
        .expect("only TLS servers secure their connections");
    let offer = server.protocols.offer();
    let secured = tls
        .call_async("handshake", |tls| tls.handshake(connection, offer))
        .await?;
    match secured.protocol {
        Negotiated::Http1 => watcher
            .watch(
                builders
                    .http1
                    .serve_connection(TokioIo::new(secured.stream), service),
            )
            .await
            .map_err(Into::into),
        Negotiated::Http2 => {
            activity.http2();
            let io = TokioIo::new(CountStreams::new(secured.stream, activity));
            watcher
                .watch(builders.http2.serve_connection(io, service))
                .await
        }
    }
}

fn spawn_connection<C, E>(
    connection: C,
    server: &Arc<Server>,
    remote: SocketAddr,
    activity: Arc<Activity>,
    // Released when the connection ends: its place among max_connections and its client's.
    permit: (OwnedSemaphorePermit, Admitted),
    draining: &watch::Receiver<bool>,
) where
    C: crate::limits::Drain<Output = Result<(), E>> + Send + 'static,
    E: Into<xbuild_core::BoxError>,
{
    let server = server.clone();
    let draining = draining.clone();
    tokio::spawn(async move {
        let ended = watch_connection(connection, activity.clone(), server.limits, draining).await;
        log_refused_streams(&server, remote, activity.streams_refused());
        match ended {
            Ok(Err(err)) => {
                let err = err.into();
                let rejected = rejected(&*err);
                if let Some((status, _)) = rejected {
                    server
                        .rejected_metrics
                        .record(MethodLabel::UNPARSED, status, Duration::ZERO);
                }
                if let Some((status, why)) = rejected
                    && server.access_log
                    && crate::access_log::enabled()
                {
                    crate::access_log::log(&crate::access_log::AccessLine {
                        server: &server.name,
                        route: REJECTED,
                        request_id: crate::RequestId::next(),
                        remote: &crate::access_log::RemoteText::new(remote),
                        method: "-",
                        uri: None,
                        status,
                        duration: Duration::ZERO,
                        error: Some(why),
                    });
                }
                tracing::debug!(%remote, error = %err, "connection ended with an error")
            }
            Ok(Ok(())) => {}
            Err(Closed::Idle) => tracing::debug!(%remote, "connection closed after idle_timeout"),
            Err(Closed::SlowHead) => {
                tracing::debug!(%remote, "connection closed after read_header_timeout")
            }
            Err(Closed::Shed) => {
                tracing::debug!(%remote, "idle connection closed to make room (max_connections)")
            }
        }
        drop(permit);
    });
}

/// Gives each HTTP/2 request the h2 layer refused or reset before it reached the server
/// (crate::h2_streams) its access log line and its count, once its connection has ended:
/// status `-` (h2 answered 431 or reset the stream, and does not say which),
/// `error=refused_by_http2`.
fn log_refused_streams(server: &Server, remote: SocketAddr, refused: u64) {
    if refused == 0 {
        return;
    }
    let logged = server.access_log && crate::access_log::enabled();
    let remote_text = crate::access_log::RemoteText::new(remote);
    for _ in 0..refused {
        server
            .rejected_metrics
            .record(MethodLabel::UNPARSED, NO_STATUS, Duration::ZERO);
        if logged {
            crate::access_log::log(&crate::access_log::AccessLine {
                server: &server.name,
                route: REJECTED,
                request_id: crate::RequestId::next(),
                remote: &remote_text,
                method: "-",
                uri: None,
                status: NO_STATUS,
                duration: Duration::ZERO,
                error: Some("refused_by_http2"),
            });
        }
    }
}

/// The route label of requests hyper refused before they reached the server.
pub(crate) const REJECTED: &str = "(rejected)";

/// The status hyper answered a request it could not parse with (see its `on_error`), and
/// a word for why; `None` when the connection ended for another reason.
fn rejected(err: &(dyn std::error::Error + 'static)) -> Option<(u16, &'static str)> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(hyper_error) = err.downcast_ref::<hyper::Error>() {
            if !hyper_error.is_parse() || hyper_error.is_parse_version_h2() {
                return None;
            }
            if hyper_error.is_parse_too_large() {
                // The URI alone too long is 414, the head as a whole 431.
                return Some(if hyper_error.to_string().contains("URI") {
                    (414, "uri_too_long")
                } else {
                    (431, "head_too_large")
                });
            }
            return Some((400, "malformed_request"));
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Protocols;

    #[test]
    fn parses_protocol_lists() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let parse = |list: &[&str]| Protocols::parse(&names(list), false);
        assert_eq!(parse(&["h1"]), Ok(Protocols::H1));
        assert_eq!(parse(&["h2c"]), Ok(Protocols::H2));
        assert_eq!(parse(&["h2c", "h1"]), Ok(Protocols::H1AndH2));
        assert!(parse(&[]).unwrap_err().contains("empty"));
        assert!(parse(&["h3"]).unwrap_err().contains("`h3`"));
        assert!(parse(&["h2"]).unwrap_err().contains("use `h2c`"));
        let over_tls = |list: &[&str]| Protocols::parse(&names(list), true);
        assert_eq!(over_tls(&["h1", "h2"]), Ok(Protocols::H1AndH2));
        assert!(over_tls(&["h2c"]).unwrap_err().contains("use `h2`"));
    }
}

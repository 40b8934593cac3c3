//! `http.handlers.reverse_proxy`: forwards requests to upstream HTTP servers, taking them
//! in turn (round-robin). The client is hyper-util's pooled one. It sets the usual
//! forwarding headers, drops hop-by-hop headers both ways, tries the next upstream when
//! one cannot be connected to (if the request has no body to replay), and answers 502
//! when no upstream answers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme, Uri};
use http::{StatusCode, Version};
use http_body::Body as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use xbuild_core::{BoxError, Context, Module, Provisioned};

use crate::client::TrustedProxies;
use crate::{Handler, HandlerFuture, HttpBody, Next, Request, RequestInfo, Response};

fn default_connect_timeout() -> f64 {
    5.0
}

fn default_read_timeout() -> f64 {
    60.0
}

#[derive(Deserialize)]
pub struct ReverseProxy {
    /// `host:port` or `http://host:port`.
    upstreams: Vec<String>,
    /// Seconds to wait for a TCP connection to an upstream.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    connect_timeout: f64,
    /// Seconds to wait for an upstream's response head once the request is sent; no limit
    /// when absent. Past it the answer is 504.
    #[serde(default, deserialize_with = "xbuild_core::duration::optional_seconds")]
    response_timeout: Option<f64>,
    /// Seconds an upstream's response body may send nothing (nginx's `proxy_read_timeout`);
    /// past it the body ends as failed, and the access log says `error=body_failed`.
    #[serde(
        default = "default_read_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    read_timeout: f64,
    /// Addresses or networks (`10.0.0.0/8`) of proxies in front of this one whose
    /// forwarding headers are believed. From anyone else, `X-Forwarded-*` are replaced and
    /// `Forwarded` and `X-Real-IP` removed, so a client cannot forge what the upstream is
    /// told.
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// The `Host` the upstream is told: the request's (`keep`, the default, as Caddy) or
    /// the upstream's own address (`upstream`, for upstreams that route by their own name).
    #[serde(default)]
    host_header: HostHeader,
    /// Forward the path as the client sent it rather than cleaned (for upstreams that tell
    /// `/a//b` from `/a/b`). Routing still matched the cleaned path.
    #[serde(default)]
    raw_path: bool,

    #[serde(skip)]
    prepared: Provisioned<Prepared>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HostHeader {
    #[default]
    Keep,
    Upstream,
}

struct Prepared {
    upstreams: Vec<Authority>,
    next: AtomicUsize,
    client: Client<HttpConnector, HttpBody>,
    response_timeout: Option<Duration>,
    read_timeout: Duration,
    trusted_proxies: TrustedProxies,
    host_header: HostHeader,
    raw_path: bool,
}

pin_project_lite::pin_project! {
    /// A body that notes whether reading it failed, and how.
    struct NoteErrors {
        #[pin]
        inner: HttpBody,
        failed: Arc<std::sync::Mutex<Option<BodyFailure>>>,
    }
}

/// How reading the client's body failed.
#[derive(Debug, Clone, Copy)]
enum BodyFailure {
    /// The server's body limits (size, time): 413 or 408.
    Limit(crate::BodyError),
    /// Garbled framing and the like: 400.
    Malformed,
}

impl http_body::Body for NoteErrors {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(err))) = &polled {
            let failure = match crate::BodyError::find(&**err) {
                Some(crate::BodyError::Malformed) | None => BodyFailure::Malformed,
                Some(limit) => BodyFailure::Limit(*limit),
            };
            *this.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A positive number of seconds, or an error naming the field.
fn seconds(field: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("invalid {field} `{value}`: give a positive number of seconds"))
}

/// Parses an upstream address, naming it in the error.
fn parse_upstream(text: &str) -> Result<Authority, String> {
    let bad = |why: &str| {
        format!(
            "invalid upstream `{}`: {why}",
            crate::access_log::visible(text)
        )
    };
    let rest = match text.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "scheme `{scheme}` is not supported; use `http://` or leave the scheme out"
            )));
        }
        None => text,
    };
    let authority: Authority = rest
        .trim_end_matches('/')
        .parse()
        .map_err(|_| bad("expected host:port such as `127.0.0.1:9000`"))?;
    if authority.port_u16().is_none() || rest.trim_end_matches('/').contains('/') {
        return Err(bad("expected host:port such as `127.0.0.1:9000`"));
    }
    Ok(authority)
}

/// Headers that describe one connection, not the message; a proxy must not forward them
/// (RFC 9110 §7.6.1), nor any header the `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Sets X-Forwarded-For/-Proto/-Host from what this server saw. From a client that is not
/// a trusted proxy, the values it sent are replaced and `Forwarded` and `X-Real-IP`
/// removed, so it cannot forge its address for the upstream; a trusted proxy's
/// `X-Forwarded-For` is extended with its address, and its other headers kept.
fn set_forwarding_headers(
    headers: &mut HeaderMap,
    client: IpAddr,
    host: Option<HeaderValue>,
    trusted: bool,
) {
    let address = client.to_string();
    if trusted {
        let chain: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let extended = if chain.is_empty() {
            address
        } else {
            format!("{}, {address}", chain.join(", "))
        };
        if let Ok(value) = HeaderValue::try_from(extended) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        if !headers.contains_key(X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        if !headers.contains_key(X_FORWARDED_HOST)
            && let Some(host) = host
        {
            headers.insert(X_FORWARDED_HOST, host);
        }
        return;
    }
    let address = HeaderValue::try_from(address).expect("an IP address is a valid header value");
    headers.insert(X_FORWARDED_FOR, address);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    headers.remove(header::FORWARDED);
    headers.remove(X_REAL_IP);
}

impl Module for ReverseProxy {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        if self.upstreams.is_empty() {
            return Err(xbuild_core::Hinted::new("reverse_proxy has no upstreams")
                .help("add e.g. `upstreams = [\"127.0.0.1:9000\"]`")
                .into());
        }
        let upstreams = self
            .upstreams
            .iter()
            .map(|u| parse_upstream(u))
            .collect::<Result<Vec<_>, _>>()?;
        let connect_timeout = seconds("connect_timeout", self.connect_timeout)?;
        let response_timeout = self
            .response_timeout
            .map(|s| seconds("response_timeout", s))
            .transpose()?;
        let read_timeout = seconds("read_timeout", self.read_timeout).and_then(|d| {
            (d <= Duration::from_secs(86_400))
                .then_some(d)
                .ok_or_else(|| {
                    format!(
                        "invalid read_timeout `{}`: give a number of seconds up to 86400",
                        self.read_timeout
                    )
                })
        })?;
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        self.prepared.set(Prepared {
            upstreams,
            next: AtomicUsize::new(0),
            client,
            response_timeout,
            read_timeout,
            trusted_proxies,
            host_header: self.host_header,
            raw_path: self.raw_path,
        });
        Ok(())
    }
}

impl Handler for ReverseProxy {
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let prepared = &*self.prepared;
            Ok(prepared.forward(request, next.info()).await)
        })
    }
}

impl Prepared {
    async fn forward(&self, request: Request, info: RequestInfo) -> Response {
        let (mut parts, body) = request.into_parts();
        let host = parts.headers.get(header::HOST).cloned();
        strip_hop_by_hop(&mut parts.headers);
        let client = info.remote.ip();
        let trusted = self.trusted_proxies.contains(client);
        set_forwarding_headers(&mut parts.headers, client, host, trusted);
        // The upstream can log the same ID as this host's access log.
        parts
            .headers
            .insert(crate::observe::REQUEST_ID, info.id.header_value());
        let raw_path = self
            .raw_path
            .then(|| parts.extensions.get::<crate::path::RawPath>())
            .flatten();
        let path_and_query = match (raw_path, parts.uri.query()) {
            (Some(raw), Some(query)) => format!("{}?{query}", raw.0),
            (Some(raw), None) => raw.0.clone(),
            (None, _) => parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        };
        // A body can be sent only once; without one, a refused connection can be retried
        // on the next upstream.
        let attempts = if body.is_end_stream() {
            self.upstreams.len()
        } else {
            1
        };
        // A request body the client garbles (bad chunked framing) fails the upstream
        // request too; the flag tells that apart from an upstream failing (400, not 502).
        let client_body_failed = Arc::new(std::sync::Mutex::new(None));
        let body = if body.is_end_stream() {
            body
        } else {
            HttpBody::new(NoteErrors {
                inner: body,
                failed: client_body_failed.clone(),
            })
        };
        let mut body = Some(body);
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failures = Vec::new();
        for attempt in 0..attempts {
            let upstream = &self.upstreams[(first + attempt) % self.upstreams.len()];
            let uri = Uri::builder()
                .scheme(Scheme::HTTP)
                .authority(upstream.clone())
                .path_and_query(path_and_query.as_str())
                .build();
            let uri = match uri {
                Ok(uri) => uri,
                Err(err) => {
                    failures.push(format!("{upstream}: {err}"));
                    continue;
                }
            };
            let mut outgoing = http::Request::new(body.take().unwrap_or_default());
            *outgoing.method_mut() = parts.method.clone();
            *outgoing.uri_mut() = uri;
            // The upstream connection is HTTP/1.1 whatever the client spoke.
            *outgoing.version_mut() = Version::HTTP_11;
            *outgoing.headers_mut() = parts.headers.clone();
            if self.host_header == HostHeader::Upstream
                && let Ok(value) = HeaderValue::from_str(upstream.as_str())
            {
                outgoing.headers_mut().insert(header::HOST, value);
            }
            let sent = self.client.request(outgoing);
            let answered = match self.response_timeout {
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(answered) => answered,
                    Err(_) => {
                        // Not retried: the upstream may be acting on the request.
                        tracing::warn!(%upstream, ?limit, "reverse_proxy: upstream did not answer in time; answering 504");
                        return crate::text_response(
                            StatusCode::GATEWAY_TIMEOUT,
                            "gateway timeout: the upstream did not answer in time\n",
                        );
                    }
                },
                None => sent.await,
            };
            match answered {
                Ok(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                    // Upgrade is hop-by-hop and never forwarded, so nobody asked the upstream
                    // to switch: passing its 101 on would leave the client on a connection
                    // neither side agreed to.
                    tracing::warn!(%upstream, "reverse_proxy: the upstream switched protocols unasked; answering 502");
                    return crate::text_response(
                        StatusCode::BAD_GATEWAY,
                        "bad gateway: the upstream switched protocols\n",
                    );
                }
                Ok(response) if !crate::server::only_chunked(response.headers()) => {
                    // Its body is still in a coding (gzip, say) that hop-by-hop
                    // Transfer-Encoding would no longer tell the client about.
                    tracing::warn!(%upstream, "reverse_proxy: the upstream used a transfer coding other than chunked; answering 502");
                    return crate::text_response(
                        StatusCode::BAD_GATEWAY,
                        "bad gateway: the upstream used a transfer coding this proxy cannot pass on\n",
                    );
                }
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    // With both, the body was framed by Transfer-Encoding (RFC 9112, 6.3)
                    // and the length is stale: the client would cut the body short.
                    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
                        parts.headers.remove(header::CONTENT_LENGTH);
                    }
                    strip_hop_by_hop(&mut parts.headers);
                    return Response::from_parts(
                        parts,
                        HttpBody::from_upstream(body, self.read_timeout),
                    );
                }
                Err(_)
                    if let Some(failure) =
                        *client_body_failed.lock().unwrap_or_else(|p| p.into_inner()) =>
                {
                    return match failure {
                        BodyFailure::Limit(limit) => crate::server::body_error_response(&limit),
                        BodyFailure::Malformed => crate::text_response(
                            StatusCode::BAD_REQUEST,
                            "bad request: the request body could not be read\n",
                        ),
                    };
                }
                Err(err) => {
                    failures.push(format!("{upstream}: {err}"));
                    if !err.is_connect() {
                        break;
                    }
                }
            }
        }
        tracing::warn!(failures = ?failures, "reverse_proxy: no upstream answered; answering 502");
        crate::text_response(
            StatusCode::BAD_GATEWAY,
            "bad gateway: no upstream answered\n",
        )
    }
}

// selftest audits it with an upstream it never reaches (nothing is proxied in the audit).
xbuild_core::register_module!(
    "http.handlers.reverse_proxy",
    ReverseProxy as dyn Handler,
    selftest = config(r#"{"upstreams": ["127.0.0.1:9"]}"#)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstreams() {
        assert_eq!(
            parse_upstream("127.0.0.1:9000").unwrap().as_str(),
            "127.0.0.1:9000"
        );
        assert_eq!(
            parse_upstream("http://localhost:80/").unwrap().as_str(),
            "localhost:80"
        );
        for (bad, why) in [
            ("https://a:1", "scheme `https`"),
            ("localhost", "host:port"),
            ("a:1/path", "host:port"),
            ("", "host:port"),
        ] {
            let err = parse_upstream(bad).unwrap_err();
            assert!(
                err.contains(&format!("`{bad}`")) && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn strips_hop_by_hop_and_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn forwarding_headers_replace_client_values() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        set_forwarding_headers(
            &mut headers,
            "10.0.0.1".parse().unwrap(),
            Some(HeaderValue::from_static("example.com")),
            false,
        );
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.1");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "example.com");
    }
}

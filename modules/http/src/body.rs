//! The one body type of the handler chain. Handlers from different crates pass bodies of
//! every kind along (fixed bytes, the client's upload, a file, an upstream's stream), so
//! they need one type; the two kinds nearly every request has (fixed bytes and hyper's
//! incoming body) are stored inline, which saves an allocation per request over boxing
//! everything, and anything else is boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use xbuild_core::BoxError;

/// A request or response body as handlers see it.
pub struct HttpBody(Kind);

enum Kind {
    /// Fixed bytes, taken when polled.
    Full(Option<Bytes>),
    Incoming(ClientBody),
    /// Any other body; `module` is the handler module that answered with it, once the
    /// chain has seen it, and each poll then goes through the core's guard as that module's
    /// `body` call, so a panic while the body streams is caught and counted like one in
    /// `serve`.
    Boxed {
        body: UnsyncBoxBody<Bytes, BoxError>,
        module: Option<&'static str>,
    },
}

/// Why reading a client's request body stopped short. Handlers that read bodies find it in
/// the error's source chain ([`BodyError::find`]) and answer with [`BodyError::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    #[error("the request body is larger than the server's max_request_body ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("the client sent no more of the request body for the server's read_timeout ({0:?})")]
    TimedOut(Duration),
    /// The client's framing broke (bad chunked encoding) or it left mid-body.
    #[error("the request body could not be read: the client's framing broke or it left mid-body")]
    Malformed,
    /// An upstream's response body (reverse_proxy) broke off: its connection ended or its
    /// framing broke before the end.
    #[error("the upstream's response body broke off before its end")]
    UpstreamBroke,
    /// An upstream's response body sent nothing for reverse_proxy's `read_timeout`.
    #[error(
        "the upstream sent no more of its response body for reverse_proxy's read_timeout ({0:?})"
    )]
    UpstreamStalled(Duration),
}

impl BodyError {
    /// 413, 408 or 400 for the client's body; 502 or 504 for an upstream's.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Malformed => http::StatusCode::BAD_REQUEST,
            BodyError::UpstreamBroke => http::StatusCode::BAD_GATEWAY,
            BodyError::UpstreamStalled(_) => http::StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The body error somewhere in `err`'s source chain.
    pub fn find<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyError> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<BodyError>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

/// The client's body as hyper reads it, within the server's `max_request_body`, and (with
/// `read_timeout`) failing when the client sends nothing more for that long.
struct ClientBody {
    body: Incoming,
    /// Bytes still allowed.
    remaining: u64,
    limit: u64,
    read_timeout: Option<Duration>,
    // Set while a read waits; only a waiting read pays for a timer.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
    /// An upstream's response body rather than the client's request body: its failures are
    /// the upstream's.
    upstream: bool,
}

impl ClientBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.waiting = None;
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                match self.remaining.checked_sub(len) {
                    Some(remaining) => {
                        self.remaining = remaining;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    None => self.fail(BodyError::TooLarge { limit: self.limit }),
                }
            }
            Poll::Ready(Some(Err(_))) if self.upstream => self.fail(BodyError::UpstreamBroke),
            Poll::Ready(Some(Err(_))) => self.fail(BodyError::Malformed),
            Poll::Ready(None) => {
                self.waiting = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(limit) = self.read_timeout {
                    let timer = self
                        .waiting
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return self.fail(if self.upstream {
                            BodyError::UpstreamStalled(limit)
                        } else {
                            BodyError::TimedOut(limit)
                        });
                    }
                }
                Poll::Pending
            }
        }
    }

    fn fail(&mut self, err: BodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        self.waiting = None;
        Poll::Ready(Some(Err(err.into())))
    }
}

impl HttpBody {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Self(Kind::Full(None))
    }

    /// A body of these bytes, sent at once.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// Wraps any body whose errors convert into [`BoxError`].
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(Kind::Boxed {
            body: body.map_err(Into::into).boxed_unsync(),
            module: None,
        })
    }

    /// Whether the body streams (a file, an upstream's answer, a handler's own stream)
    /// rather than being fixed bytes: whether it can still fail or be cut short.
    pub(crate) fn is_streaming(&self) -> bool {
        match &self.0 {
            Kind::Full(_) => false,
            Kind::Incoming(client) => !client.body.is_end_stream(),
            Kind::Boxed { .. } => true,
        }
    }

    /// Marks a streaming body as `module`'s (unless an inner handler's already), so its
    /// polls run guarded.
    pub(crate) fn answered_by(mut self, id: &'static str) -> Self {
        if let Kind::Boxed {
            module: module @ None,
            ..
        } = &mut self.0
        {
            *module = Some(id);
        }
        self
    }
}

impl Default for HttpBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl HttpBody {
    /// A client's body, bounded by the server's `max_request_body` and `read_timeout`.
    pub(crate) fn from_client(body: Incoming, limit: u64, read_timeout: Option<Duration>) -> Self {
        Self(Kind::Incoming(ClientBody {
            body,
            remaining: limit,
            limit,
            read_timeout,
            waiting: None,
            failed: false,
            upstream: false,
        }))
    }

    /// An upstream's response body, failing when the upstream sends nothing more for
    /// `read_timeout`.
    pub(crate) fn from_upstream(body: Incoming, read_timeout: Duration) -> Self {
        Self(Kind::Incoming(ClientBody {
            body,
            remaining: u64::MAX,
            limit: u64::MAX,
            read_timeout: Some(read_timeout),
            waiting: None,
            failed: false,
            upstream: true,
        }))
    }
}

impl From<Incoming> for HttpBody {
    /// An incoming body (an upstream's response, say) with no limits of its own.
    fn from(body: Incoming) -> Self {
        Self::from_client(body, u64::MAX, None)
    }
}

impl std::fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Kind::Full(_) => "full",
            Kind::Incoming(_) => "incoming",
            Kind::Boxed { .. } => "boxed",
        };
        f.debug_tuple("HttpBody").field(&kind).finish()
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming(body) => body.poll_frame(cx),
            Kind::Boxed { body, module: None } => Pin::new(body).poll_frame(cx),
            Kind::Boxed {
                body,
                module: Some(module),
            } => {
                // A frame that is an error is the call's error, so it is counted as one
                // (`status="error"`), not as a successful poll.
                let polled = xbuild_core::guard::call(module, "body", || {
                    match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Ready(Some(Err(err))) => Err(err),
                        other => Ok(other),
                    }
                });
                match polled {
                    Ok(polled) => polled,
                    Err(err) => {
                        if err.is_panic() {
                            // The body's state is whatever the panic left; never poll it
                            // again.
                            this.0 = Kind::Full(None);
                        }
                        Poll::Ready(Some(Err(err.into())))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Incoming(body) => body.failed || body.body.is_end_stream(),
            Kind::Boxed { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Incoming(body) => body.body.size_hint(),
            Kind::Boxed { body, .. } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    async fn collect(body: HttpBody) -> (Bytes, bool) {
        let end_before = body.is_end_stream();
        (body.collect().await.unwrap().to_bytes(), end_before)
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn every_kind_yields_its_bytes() {
        assert_eq!(
            block_on(collect(HttpBody::full("abc"))),
            (Bytes::from("abc"), false)
        );
        assert_eq!(block_on(collect(HttpBody::full(""))), (Bytes::new(), true));
        assert_eq!(block_on(collect(HttpBody::empty())), (Bytes::new(), true));
        let boxed = HttpBody::new(Full::new(Bytes::from("xyz")));
        assert_eq!(boxed.size_hint().exact(), Some(3));
        assert_eq!(block_on(collect(boxed)), (Bytes::from("xyz"), false));
        assert_eq!(HttpBody::full("abcd").size_hint().exact(), Some(4));
    }
}

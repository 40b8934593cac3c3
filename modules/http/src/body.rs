//! The one body type of the handler chain. Handlers from different crates pass bodies of
//! every kind along (fixed bytes, the client's upload, a file, an upstream's stream), so
//! they need one type; the two kinds nearly every request has (fixed bytes and hyper's
//! incoming body) are stored inline, which saves an allocation per request over boxing
//! everything, and anything else is boxed.

use std::pin::Pin;
use std::task::{Context, Poll};

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
    Incoming(Incoming),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl HttpBody {
    pub fn empty() -> Self {
        Self(Kind::Full(None))
    }

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
        Self(Kind::Boxed(body.map_err(Into::into).boxed_unsync()))
    }
}

impl Default for HttpBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Incoming> for HttpBody {
    fn from(body: Incoming) -> Self {
        Self(Kind::Incoming(body))
    }
}

impl std::fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Kind::Full(_) => "full",
            Kind::Incoming(_) => "incoming",
            Kind::Boxed(_) => "boxed",
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
        match &mut self.get_mut().0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Incoming(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
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

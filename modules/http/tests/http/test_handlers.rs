//! Handlers that exist only in this test binary, registered like any third-party handler,
//! to drive the app into the situations the tests need.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;
use xbuild_core::{BoxError, Module};
use xbuild_http::{Handler, HandlerFuture, Next, Request, Response, full};

/// Panics on paths ending in `/boom`, passes everything else on.
#[derive(Deserialize)]
pub struct Panicky {}

impl Module for Panicky {}

impl Handler for Panicky {
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            // Panic after an await, the hard case: the panic happens inside a later poll.
            tokio::task::yield_now().await;
            if request.uri().path().ends_with("/boom") {
                panic!("test handler asked to panic");
            }
            if request.uri().path().ends_with("/stream-error") {
                // A 200 whose body fails (an error, not a panic) while streaming.
                let frames = http_body_util::StreamBody::new(futures_util_stream());
                return Ok(xbuild_http::Response::new(xbuild_http::boxed(frames)));
            }
            if request.uri().path().ends_with("/stream-boom") {
                // A 200 whose body sends one chunk, then panics while streaming.
                let frames = futures_stream(["partial "]);
                return Ok(xbuild_http::Response::new(xbuild_http::boxed(frames)));
            }
            next.run(request).await
        })
    }
}

xbuild_core::register_module!("http.handlers.test_panic", Panicky as dyn Handler);

/// Signalled when a slow handler with this `tag` has received its request; one per tag so
/// tests running at the same time do not wake each other.
pub fn slow_entered(tag: &str) -> Arc<Notify> {
    static BY_TAG: Mutex<BTreeMap<String, Arc<Notify>>> = Mutex::new(BTreeMap::new());
    BY_TAG
        .lock()
        .unwrap()
        .entry(tag.to_owned())
        .or_default()
        .clone()
}

/// Answers after `millis` milliseconds (never, when absent).
#[derive(Deserialize)]
pub struct Slow {
    tag: String,
    #[serde(default)]
    millis: Option<u64>,
}

impl Module for Slow {}

impl Handler for Slow {
    fn serve<'a>(&'a self, _request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            slow_entered(&self.tag).notify_one();
            match self.millis {
                Some(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
                None => std::future::pending::<()>().await,
            }
            Ok(Response::new(full("slow done")))
        })
    }
}

xbuild_core::register_module!("http.handlers.test_slow", Slow as dyn Handler);

/// Answers with the request headers it received, one `name: value` per line.
#[derive(Deserialize)]
pub struct EchoHeaders {}

impl Module for EchoHeaders {}

impl Handler for EchoHeaders {
    fn serve<'a>(&'a self, request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut text = String::new();
            for (name, value) in request.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str()?));
            }
            let mut response = Response::new(full(text));
            response
                .headers_mut()
                .insert("x-from-handler", http::HeaderValue::from_static("yes"));
            response
                .headers_mut()
                .append("x-multi", http::HeaderValue::from_static("one"));
            Ok(response)
        })
    }
}

xbuild_core::register_module!(
    "http.handlers.test_echo_headers",
    EchoHeaders as dyn Handler
);

/// Counts cleanups of instances whose `tag` is set, so a test can see its own.
pub static CLEANED_UP: AtomicUsize = AtomicUsize::new(0);

#[derive(Deserialize)]
pub struct CountsCleanup {
    tag: String,
}

impl Module for CountsCleanup {
    fn cleanup(&mut self) -> Result<(), BoxError> {
        if self.tag == "shutdown-test" {
            CLEANED_UP.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Handler for CountsCleanup {
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(next.run(request))
    }
}

xbuild_core::register_module!("http.handlers.test_cleanup", CountsCleanup as dyn Handler);

/// A body yielding `chunks`, then waiting once (so the server flushes what it has), then
/// panicking at the next poll.
/// One chunk, then an error.
fn futures_util_stream()
-> impl futures_core::Stream<Item = Result<http_body::Frame<bytes::Bytes>, std::io::Error>>
+ Send
+ 'static {
    struct ThenError(u8);
    impl futures_core::Stream for ThenError {
        type Item = Result<http_body::Frame<bytes::Bytes>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.0 += 1;
            std::task::Poll::Ready(match self.0 {
                1 => Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
                    b"partial ",
                )))),
                2 => Some(Err(std::io::Error::other("the test body failed"))),
                _ => None,
            })
        }
    }
    ThenError(0)
}

fn futures_stream(
    chunks: [&'static str; 1],
) -> impl http_body::Body<Data = bytes::Bytes, Error = std::convert::Infallible> + Send + 'static {
    struct ThenPanic(Vec<&'static str>, bool);
    impl http_body::Body for ThenPanic {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            if let Some(chunk) = self.0.pop() {
                return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(
                    bytes::Bytes::from(chunk),
                ))));
            }
            if !std::mem::replace(&mut self.1, true) {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            panic!("test body asked to panic while streaming")
        }
    }
    ThenPanic(chunks.to_vec(), false)
}

/// Reads the whole request body and answers with its length, as a handler that takes
/// uploads does; a body error goes back to the server.
#[derive(Deserialize)]
pub struct ReadsBody {}

impl Module for ReadsBody {}

impl Handler for ReadsBody {
    fn serve<'a>(&'a self, request: Request, _next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let body = request.into_body().collect().await?.to_bytes();
            Ok(Response::new(full(format!("read {} bytes", body.len()))))
        })
    }
}

xbuild_core::register_module!("http.handlers.test_reads_body", ReadsBody as dyn Handler);

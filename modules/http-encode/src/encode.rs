//! `http.handlers.encode`: compresses what the rest of the route answers, as it streams.

use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use async_compression::Level;
use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio_util::io::{ReaderStream, StreamReader};
use xbuild_core::{BoxError, Context, Module, Provisioned};
use xbuild_http::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, RANGE, VARY,
};
use xbuild_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use xbuild_http::{Handler, HandlerFuture, HttpBody, Next, Request, Response, boxed};

use crate::accept::{Encoding, choose};

fn default_encodings() -> Vec<String> {
    Encoding::ALL.iter().map(|e| e.token().to_owned()).collect()
}

fn default_minimum_length() -> u64 {
    512
}

/// Module `http.handlers.encode`; its fields are its config (see the crate's README).
///
/// Passes the request on and compresses the answer with the encoding the client's
/// `Accept-Encoding` prefers among `encodings`, unless the answer is one that must not or
/// need not be compressed.
#[derive(Deserialize)]
pub struct Encode {
    /// The encodings offered, in the server's order of preference.
    #[serde(default = "default_encodings")]
    encodings: Vec<String>,
    /// Bodies known to be shorter than this many bytes are sent as they are.
    #[serde(default = "default_minimum_length")]
    minimum_length: u64,
    /// Compression levels, per encoding.
    #[serde(default)]
    levels: Levels,

    #[serde(skip)]
    prepared: Provisioned<Prepared>,
}

/// `levels = { zstd = 3, br = 4, gzip = 6 }`: each optional.
#[derive(Default, Deserialize)]
struct Levels {
    zstd: Option<i32>,
    br: Option<i32>,
    gzip: Option<i32>,
}

/// Per encoding: the default level (chosen for compressing on the fly, where speed
/// matters as much as size) and the range a config may give.
const LEVELS: [(Encoding, i32, std::ops::RangeInclusive<i32>); 3] = [
    // zstd's own default; 20 to 22 need far more memory per stream.
    (Encoding::Zstd, 3, 1..=19),
    // brotli's default (11) is meant for compressing once, ahead of time: on the fly it is
    // many times slower than 4 for a few percent.
    (Encoding::Brotli, 4, 0..=11),
    // zlib's default.
    (Encoding::Gzip, 6, 1..=9),
];

/// Brotli's window, as a power of two (1 MiB): the memory each brotli stream keeps.
const BROTLI_WINDOW: i32 = 20;

struct Prepared {
    offered: Vec<Encoding>,
    minimum_length: u64,
    /// By `Encoding as usize`.
    levels: [i32; 3],
}

impl Module for Encode {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        if self.encodings.is_empty() {
            return Err("encodings is empty: give one or more of `zstd`, `br` and `gzip`, or leave the field out for all three".into());
        }
        let mut offered = Vec::with_capacity(self.encodings.len());
        for token in &self.encodings {
            let encoding = Encoding::from_config(token).ok_or_else(|| {
                format!(
                    "invalid encoding `{}` in encodings: give `zstd`, `br` or `gzip`",
                    token.escape_debug()
                )
            })?;
            if offered.contains(&encoding) {
                return Err(format!(
                    "encoding `{token}` is given twice in encodings: give each once, in the order the server prefers them"
                )
                .into());
            }
            offered.push(encoding);
        }
        let mut levels = [0; 3];
        for (encoding, default, range) in LEVELS {
            let given = match encoding {
                Encoding::Zstd => self.levels.zstd,
                Encoding::Brotli => self.levels.br,
                Encoding::Gzip => self.levels.gzip,
            };
            let level = given.unwrap_or(default);
            if !range.contains(&level) {
                return Err(format!(
                    "invalid level `{level}` in levels.{}: give {} to {} (default {default})",
                    encoding.token(),
                    range.start(),
                    range.end()
                )
                .into());
            }
            levels[encoding as usize] = level;
        }
        self.prepared.set(Prepared {
            offered,
            minimum_length: self.minimum_length,
            levels,
        });
        Ok(())
    }
}

impl Handler for Encode {
    fn serve<'a>(&'a self, request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let prepared = &*self.prepared;
            let head = request.method() == Method::HEAD;
            // A range is of the identity bytes: compressing the answer would give the
            // client a compressed slice it cannot place.
            let chosen = if request.headers().contains_key(RANGE) {
                None
            } else {
                choose(request.headers(), &prepared.offered)
            };
            let mut response = next.run(request).await?;
            if !prepared.may_compress(&response, head) {
                return Ok(response);
            }
            // The answer depends on Accept-Encoding from here on, whatever this request sent.
            add_vary(response.headers_mut());
            let Some(encoding) = chosen else {
                return Ok(response);
            };
            let headers = response.headers_mut();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.token()));
            headers.remove(CONTENT_LENGTH);
            headers.remove(ACCEPT_RANGES);
            weaken_etag(headers);
            if head {
                *response.body_mut() = HttpBody::empty();
                return Ok(response);
            }
            let level = prepared.levels[encoding as usize];
            Ok(response.map(|body| compress(body, encoding, level)))
        })
    }
}

impl Prepared {
    /// Whether `response` is one this handler compresses for a client that accepts it.
    fn may_compress(&self, response: &Response, head: bool) -> bool {
        let status = response.status();
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
        {
            return false;
        }
        let headers = response.headers();
        if headers.contains_key(CONTENT_ENCODING)
            || headers.contains_key(CONTENT_RANGE)
            || has_token(headers, &CACHE_CONTROL, "no-transform")
        {
            return false;
        }
        if let Some(content_type) = headers.get(CONTENT_TYPE)
            && !compressible_type(content_type.to_str().unwrap_or_default())
        {
            return false;
        }
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // A HEAD answer's body is empty whatever GET's would be: only a length said in
        // Content-Length, or a body the server will drop, tells the real one.
        let length = declared.or_else(|| {
            response
                .body()
                .size_hint()
                .exact()
                .filter(|&len| !head || len > 0)
        });
        match length {
            Some(0) => false,
            Some(len) => len >= self.minimum_length,
            None => true,
        }
    }
}

/// Whether a response of this `Content-Type` is worth compressing: not when its format is
/// compressed already, nor when it streams messages a compressor would hold back
/// (server-sent events, gRPC, which also carries its own compression and trailers).
fn compressible_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return true;
    };
    match kind {
        // Formats that store pixels uncompressed are worth it; the rest (png, jpeg, webp,
        // avif, gif, ...) are compressed already.
        "image" => matches!(
            subtype,
            "svg+xml" | "bmp" | "x-icon" | "vnd.microsoft.icon" | "x-ms-bmp"
        ),
        "video" | "audio" => false,
        "font" => !matches!(subtype, "woff" | "woff2"),
        "text" => subtype != "event-stream",
        "application" => {
            !(matches!(
                subtype,
                "zip"
                    | "gzip"
                    | "x-gzip"
                    | "zstd"
                    | "x-bzip2"
                    | "x-xz"
                    | "x-7z-compressed"
                    | "vnd.rar"
                    | "x-rar-compressed"
                    | "font-woff"
                    | "font-woff2"
                    | "pdf"
            ) || subtype.starts_with("grpc"))
        }
        _ => true,
    }
}

/// Whether a comma-separated header (all its lines) has `token`, in any case.
fn has_token(headers: &HeaderMap, name: &xbuild_http::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            // `no-transform` has no argument; compare the directive's name only.
            t.split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(token)
        })
}

/// Adds `Accept-Encoding` to `Vary`: one `Vary` line holding what was there and it, unless
/// it is there already (or `Vary: *` says everything varies).
fn add_vary(headers: &mut HeaderMap) {
    if has_token(headers, &VARY, "accept-encoding") || has_token(headers, &VARY, "*") {
        return;
    }
    let existing: Vec<&str> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let value = if existing.is_empty() {
        HeaderValue::from_static("Accept-Encoding")
    } else {
        match HeaderValue::from_str(&format!("{}, Accept-Encoding", existing.join(", "))) {
            Ok(value) => value,
            Err(_) => {
                headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
                return;
            }
        }
    };
    headers.insert(VARY, value);
}

/// A strong validator names exact bytes; the compressed ones are other bytes, so it
/// becomes weak (`"x"` → `W/"x"`), as a cache comparing it expects.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"\"")
        && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", etag.as_bytes()].concat())
    {
        headers.insert(ETAG, weak);
    }
}

/// `body`, compressed as it streams. Trailers, if the body had any, are dropped: the
/// types that carry them (gRPC) are never compressed.
fn compress(body: HttpBody, encoding: Encoding, level: i32) -> HttpBody {
    let reader = StreamReader::new(body.map_err(io::Error::other).into_data_stream());
    let level = Level::Precise(level);
    let stream: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> = match encoding {
        Encoding::Zstd => Box::pin(ReaderStream::new(ZstdEncoder::with_quality(reader, level))),
        Encoding::Brotli => {
            let params = async_compression::brotli::EncoderParams::default()
                .quality(level)
                .window_size(BROTLI_WINDOW);
            Box::pin(ReaderStream::new(BrotliEncoder::with_params(
                reader, params,
            )))
        }
        Encoding::Gzip => Box::pin(ReaderStream::new(GzipEncoder::with_quality(reader, level))),
    };
    boxed(Compressed(stream))
}

/// The compressor's output as a body.
struct Compressed(Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>);

impl Body for Compressed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

xbuild_core::register_module!("http.handlers.encode", Encode as dyn Handler);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_formats_and_streams_are_left_alone() {
        for (content_type, worth_it) in [
            ("text/html; charset=utf-8", true),
            ("application/json", true),
            ("application/javascript", true),
            ("image/svg+xml", true),
            ("IMAGE/SVG+XML", true),
            ("image/x-icon", true),
            ("font/ttf", true),
            ("application/octet-stream", true),
            ("nonsense", true),
            ("image/png", false),
            ("image/webp", false),
            ("video/mp4", false),
            ("audio/ogg", false),
            ("application/zip", false),
            ("application/gzip", false),
            ("application/zstd", false),
            ("font/woff2", false),
            ("text/event-stream", false),
            ("application/grpc+proto", false),
        ] {
            assert_eq!(compressible_type(content_type), worth_it, "{content_type}");
        }
    }

    #[test]
    fn vary_gets_accept_encoding_once() {
        let vary = |existing: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in existing {
                headers.append(VARY, HeaderValue::from_str(value).unwrap());
            }
            add_vary(&mut headers);
            headers
                .get_all(VARY)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(vary(&[]), ["Accept-Encoding"]);
        assert_eq!(vary(&["Origin"]), ["Origin, Accept-Encoding"]);
        assert_eq!(
            vary(&["Origin", "Cookie"]),
            ["Origin, Cookie, Accept-Encoding"]
        );
        assert_eq!(
            vary(&["origin, accept-encoding"]),
            ["origin, accept-encoding"]
        );
        assert_eq!(vary(&["*"]), ["*"]);
    }

    #[test]
    fn strong_etags_become_weak() {
        let weakened = |etag: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ETAG, HeaderValue::from_str(etag).unwrap());
            weaken_etag(&mut headers);
            headers[ETAG].to_str().unwrap().to_owned()
        };
        assert_eq!(weakened("\"abc\""), "W/\"abc\"");
        assert_eq!(weakened("W/\"abc\""), "W/\"abc\"");
    }
}

//! `http.handlers.encode` through the handler test kit: the rest of the chain answers what
//! each test sets, and the client decodes what comes back.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use xbuild_http::http::{HeaderValue, Method, StatusCode, header};
use xbuild_http::testing::{self, TestHandler, TestResponse, get};
use xbuild_http::{Request, Response, full};
// Links the crate, and with it its registration: nothing here names its items.
use xbuild_http_encode as _;

/// A body well over the default minimum_length that compresses well.
fn page() -> String {
    (0..400)
        .map(|i| format!("<li>item number {i}: the quick brown fox jumps over the lazy dog</li>\n"))
        .collect()
}

/// The handler with `config`, the rest of the chain answering `page()` as text.
fn encode_with(config: &str) -> TestHandler {
    let encode = testing::load_toml("encode", config).unwrap();
    encode.next_answers(|_| text(page()));
    encode
}

fn default_encode() -> TestHandler {
    encode_with("")
}

fn text(body: impl Into<Bytes>) -> Response {
    xbuild_http::http::Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(full(body))
        .unwrap()
}

fn accepting(accept: &str) -> Request {
    with_header(get("/page"), header::ACCEPT_ENCODING, accept)
}

fn with_header(mut request: Request, name: header::HeaderName, value: &str) -> Request {
    request
        .headers_mut()
        .append(name, HeaderValue::from_str(value).unwrap());
    request
}

fn decode(response: &TestResponse) -> Vec<u8> {
    let body = &response.body[..];
    let mut out = Vec::new();
    match response.header("content-encoding") {
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("zstd") => out = zstd::decode_all(body).unwrap(),
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        None => out = body.to_vec(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    out
}

#[test]
fn each_encoding_decodes_to_exactly_the_original() {
    let encode = default_encode();
    for encoding in ["gzip", "zstd", "br"] {
        let response = encode.send(accepting(encoding)).unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        assert_eq!(response.header("vary"), Some("Accept-Encoding"));
        assert!(response.headers.get(header::CONTENT_LENGTH).is_none());
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            response.body.len() < page().len() / 4,
            "{encoding}: {} bytes",
            response.body.len()
        );
        assert_eq!(decode(&response), page().as_bytes(), "{encoding}");
    }
    // The request is passed on as it came.
    assert_eq!(encode.passed_on()[0].headers["accept-encoding"], "gzip");
}

#[test]
fn q_values_choose_the_encoding() {
    let encode = default_encode();
    for (accept, expected) in [
        ("gzip;q=0.5, br;q=1", Some("br")),
        ("gzip;q=0", None),
        ("gzip;q=0, *", Some("zstd")),
        ("identity", None),
        ("identity;q=1, gzip;q=0.5", None),
        ("gzip, deflate, br, zstd", Some("zstd")),
        ("deflate", None),
    ] {
        let response = encode.send(accepting(accept)).unwrap();
        assert_eq!(response.header("content-encoding"), expected, "{accept}");
        assert_eq!(decode(&response), page().as_bytes(), "{accept}");
        // Whatever was chosen, the answer varies with Accept-Encoding.
        assert_eq!(response.header("vary"), Some("Accept-Encoding"), "{accept}");
    }
    let no_header = encode.send(get("/page")).unwrap();
    assert_eq!(no_header.header("content-encoding"), None);
    assert_eq!(no_header.header("vary"), Some("Accept-Encoding"));

    // The config's order breaks ties.
    let gzip_first = encode_with("encodings = [\"gzip\", \"br\"]");
    let response = gzip_first.send(accepting("br, gzip, zstd")).unwrap();
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

#[test]
fn small_bodies_stay_as_they_are_and_unknown_lengths_are_compressed() {
    let encode = default_encode();
    encode.next_answers(|_| text("short"));
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.text(), "short");

    // Content-Length counts when it is there.
    let encode = encode_with("minimum_length = 100000");
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.body, page().as_bytes());

    // A streamed body of unknown length is compressed, however short it turns out.
    let encode = default_encode();
    encode.next_answers(|_| {
        xbuild_http::http::Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(xbuild_http::boxed(Unsized(Some(Bytes::from_static(
                b"tiny",
            )))))
            .unwrap()
    });
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(decode(&response), b"tiny");
}

#[test]
fn range_requests_and_partial_answers_stay_identity() {
    let encode = default_encode();
    let request = with_header(accepting("gzip"), header::RANGE, "bytes=0-99");
    let response = encode.send(request).unwrap();
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.body, page().as_bytes());
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));

    encode.next_answers(|_| {
        xbuild_http::http::Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::CONTENT_RANGE, "bytes 0-599/9000")
            .body(full(page()[..600].to_owned()))
            .unwrap()
    });
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("content-range"), Some("bytes 0-599/9000"));
}

#[test]
fn answers_that_must_not_be_compressed_are_not_touched() {
    let encode = default_encode();
    let answers: [(&str, Answer); 5] = [
        ("already encoded", || {
            let mut r = text(page());
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            r
        }),
        ("no-transform", || {
            let mut r = text(page());
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, No-Transform"),
            );
            r
        }),
        ("a png", || {
            xbuild_http::http::Response::builder()
                .header(header::CONTENT_TYPE, "image/png")
                .body(full(page()))
                .unwrap()
        }),
        ("204", || {
            xbuild_http::http::Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(full(""))
                .unwrap()
        }),
        ("304", || {
            xbuild_http::http::Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, "\"v1\"")
                .body(full(""))
                .unwrap()
        }),
    ];
    for (what, answer) in answers {
        encode.next_answers(move |_| answer());
        let response = encode.send(accepting("gzip, br, zstd")).unwrap();
        let expected = answer();
        assert_eq!(response.status, expected.status(), "{what}");
        assert_eq!(
            response.headers,
            *expected.headers(),
            "{what}: headers untouched"
        );
        let body = if expected.status() == StatusCode::OK {
            page()
        } else {
            String::new()
        };
        assert_eq!(response.text(), body, "{what}: body untouched");
    }

    // An SVG is text: it is compressed.
    encode.next_answers(|_| {
        xbuild_http::http::Response::builder()
            .header(header::CONTENT_TYPE, "image/svg+xml")
            .body(full(page()))
            .unwrap()
    });
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

#[test]
fn compressing_fixes_up_the_headers_that_describe_the_bytes() {
    let encode = default_encode();
    encode.next_answers(|_| {
        let body = page();
        xbuild_http::http::Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, "\"abc123\"")
            .header(header::VARY, "Origin")
            .body(full(body))
            .unwrap()
    });
    let response = encode.send(accepting("gzip")).unwrap();
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("accept-ranges"), None);
    assert_eq!(response.header("etag"), Some("W/\"abc123\""));
    assert_eq!(response.header("vary"), Some("Origin, Accept-Encoding"));
    assert_eq!(decode(&response), page().as_bytes());

    // Not compressed: the validator and the length stay, Vary is still added.
    let response = encode.send(accepting("identity")).unwrap();
    assert_eq!(response.header("etag"), Some("\"abc123\""));
    assert_eq!(
        response.header("content-length"),
        Some(&*page().len().to_string())
    );
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    assert_eq!(response.header("vary"), Some("Origin, Accept-Encoding"));
}

#[test]
fn head_gets_the_headers_get_would_get_and_no_body() {
    let encode = default_encode();
    let get_response = encode.send(accepting("gzip")).unwrap();

    // The next handler answers HEAD as file_server and the proxy do: a length, no body.
    encode.next_answers(|passed| {
        assert_eq!(passed.method, Method::HEAD);
        xbuild_http::http::Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .header(header::CONTENT_LENGTH, page().len())
            .body(full(""))
            .unwrap()
    });
    let head = || {
        let mut request = accepting("gzip");
        *request.method_mut() = Method::HEAD;
        request
    };
    let response = encode.send(head()).unwrap();
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));
    assert!(response.body.is_empty());
    assert_eq!(response.headers, get_response.headers);

    // ...or with the whole body, which the server drops (static_response does).
    encode.next_answers(|_| text(page()));
    let response = encode.send(head()).unwrap();
    assert_eq!(response.headers, get_response.headers);
    assert!(response.body.is_empty());
}

#[test]
fn configs_out_of_range_are_refused_with_what_to_give() {
    for (config, expected) in [
        (
            "encodings = [\"deflate\"]",
            "invalid encoding `deflate` in encodings: give `zstd`, `br` or `gzip`",
        ),
        ("encodings = []", "encodings is empty: give one or more of"),
        (
            "encodings = [\"gzip\", \"gzip\"]",
            "encoding `gzip` is given twice in encodings",
        ),
        (
            "levels = { gzip = 10 }",
            "invalid level `10` in levels.gzip: give 1 to 9 (default 6)",
        ),
        (
            "levels = { br = -1 }",
            "invalid level `-1` in levels.br: give 0 to 11 (default 4)",
        ),
        (
            "levels = { zstd = 22 }",
            "invalid level `22` in levels.zstd: give 1 to 19 (default 3)",
        ),
        ("levels = { lz4 = 1 }", "unknown field `lz4`"),
        ("minimum_length = -1", "minimum_length"),
        ("min_length = 10", "unknown field `min_length`"),
    ] {
        let err = testing::load_toml("encode", config)
            .err()
            .unwrap_or_else(|| panic!("`{config}` loaded"))
            .to_string();
        assert!(
            err.contains(expected),
            "`{config}`:\n{err}\nwanted: {expected}"
        );
    }
    // Levels in range load, and compress.
    let encode = encode_with("levels = { gzip = 1, br = 11, zstd = 19 }");
    for encoding in ["gzip", "br", "zstd"] {
        let response = encode.send(accepting(encoding)).unwrap();
        assert_eq!(decode(&response), page().as_bytes(), "{encoding}");
    }
}

#[test]
fn a_real_server_sends_the_compressed_body_chunked() {
    let config = format!(
        "[servers.main]\n[[servers.main.routes]]\nhandle = [\n  {{ handler = \"encode\" }},\n  {{ handler = \"static_response\", body = \"{}\" }},\n]",
        page().replace('\n', "\\n")
    );
    let server = testing::TestServer::start_toml(&config).unwrap();
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-encoding: gzip"), "{head}");
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    let body = dechunk(&answer[split + 4..]);
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, page());
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

type Answer = fn() -> Response;

/// A one-chunk body that does not say its length.
struct Unsized(Option<Bytes>);

impl Body for Unsized {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

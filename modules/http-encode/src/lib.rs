//! # xbuild-http-encode
//!
//! Response compression for hosts built with xbuild: the handler `http.handlers.encode`
//! ([`Encode`]). It passes the request on, and compresses what the rest of the route
//! answers with zstd, brotli or gzip, whichever the client's `Accept-Encoding` prefers
//! (the config's order breaks ties). The codecs are `async-compression`'s; the body is
//! compressed as it streams, never buffered whole.
//!
//! ```toml
//! [[apps.http.servers.main.routes]]
//! handle = [
//!   { handler = "encode", encodings = ["zstd", "br", "gzip"], minimum_length = 512 },
//!   { handler = "file_server", root = "/srv/www" },
//! ]
//! ```
//!
//! Build it into a host with `xbuild --with xbuild-http-encode@0.1`.
//!
//! What is never compressed: a response that already has a `Content-Encoding`, a partial
//! one (206, `Content-Range`) or the answer to a request with `Range` (ranges stay on the
//! identity bytes), 1xx, 204 and 304, a response with `Cache-Control: no-transform`, content
//! types that are compressed already (most images, audio, video, archives, WOFF fonts) or
//! that stream events (`text/event-stream`, gRPC), and bodies shorter than
//! `minimum_length`. The crate's README has the rules in full.
//!
//! The handler's module ID is in namespace `http.handlers`, which the standard HTTP app
//! (`xbuild-http`) opens for other crates; this crate's own namespace is
//! `xbuild_http_encode`.

#![deny(missing_docs)]

mod accept;
mod encode;

pub use encode::Encode;

//! The extension point for secure connections: namespace `http.tls`, interface [`Tls`].
//!
//! The HTTP app speaks no TLS itself (and depends on no TLS library). A server whose config
//! has a `tls` table loads the module that table names, e.g.
//!
//! ```toml
//! [apps.http.servers.main]
//! listen = ["127.0.0.1:8443"]
//! tls = { module = "rustls", certificates = [{ certificate = "site.pem", key = "site.key" }] }
//! ```
//!
//! loads `http.tls.rustls` (from the `xbuild-tls` crate), and hands it every connection the
//! server accepts, before any byte of HTTP is read: the module does the handshake and gives
//! back the stream HTTP is then spoken over, with the protocol ALPN agreed on. Everything
//! else stays the server's: connection limits, timeouts (a handshake is part of the wait
//! for the first request's head, so `read_header_timeout` bounds it too), routes, logs.
//!
//! A module that obtains certificates some other way (ACME, say) implements the same trait
//! under its own name, and servers pick it with `module = "..."`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use xbuild_core::{BoxError, Module};

use crate::limits::Tracked;

/// The interface of namespace `http.tls`.
pub trait Tls: Module {
    /// Runs the server side of the handshake on a newly accepted connection, offering the
    /// protocols in `offer` through ALPN, and returns the stream to speak HTTP over. An
    /// error closes the connection (the server logs it at debug level: scanners and
    /// clients that give up are everyday events).
    fn handshake<'a>(&'a self, connection: TcpConnection, offer: Offer) -> HandshakeFuture<'a>;
}

/// What [`Tls::handshake`] returns.
pub type HandshakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Secured, BoxError>> + Send + 'a>>;

/// The HTTP versions a server speaks, to offer through ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offer {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only.
    Http2,
    /// Both; HTTP/2 preferred.
    Http1AndHttp2,
}

impl Offer {
    /// The ALPN protocol IDs, in the server's order of preference.
    pub fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Offer::Http1 => &[b"http/1.1"],
            Offer::Http2 => &[b"h2"],
            Offer::Http1AndHttp2 => &[b"h2", b"http/1.1"],
        }
    }

    /// The protocol to speak once the handshake agreed on `alpn` (`None`: the client
    /// offered no ALPN, so it gets HTTP/1.1 unless the server speaks only HTTP/2).
    pub fn negotiated(self, alpn: Option<&[u8]>) -> Negotiated {
        match alpn {
            Some(b"h2") => Negotiated::Http2,
            Some(_) => Negotiated::Http1,
            None if self == Offer::Http2 => Negotiated::Http2,
            None => Negotiated::Http1,
        }
    }
}

/// The HTTP version a secured connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
}

/// A stream HTTP can be spoken over.
pub trait SecureStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> SecureStream for T {}

/// A connection after its handshake.
pub struct Secured {
    /// The decrypted stream.
    pub stream: Box<dyn SecureStream>,
    /// What ALPN agreed on ([`Offer::negotiated`]).
    pub protocol: Negotiated,
}

/// An accepted TCP connection as the server hands it to a [`Tls`] module. Reads and writes
/// go through the server's accounting (its idle and write timeouts see the bytes).
pub struct TcpConnection {
    stream: Tracked<TcpStream>,
    remote: SocketAddr,
}

impl TcpConnection {
    pub(crate) fn new(stream: Tracked<TcpStream>, remote: SocketAddr) -> Self {
        Self { stream, remote }
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }
}

impl AsyncRead for TcpConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_prefers_h2_and_falls_back_to_http1() {
        assert_eq!(Offer::Http1AndHttp2.alpn(), [&b"h2"[..], b"http/1.1"]);
        assert_eq!(
            Offer::Http1AndHttp2.negotiated(Some(b"h2")),
            Negotiated::Http2
        );
        assert_eq!(
            Offer::Http1AndHttp2.negotiated(Some(b"http/1.1")),
            Negotiated::Http1
        );
        assert_eq!(Offer::Http1AndHttp2.negotiated(None), Negotiated::Http1);
        assert_eq!(Offer::Http2.negotiated(None), Negotiated::Http2);
    }
}

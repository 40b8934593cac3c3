//! Counting the HTTP/2 streams a client opens, so that the ones the h2 layer ends before
//! they reach the server still get their access log line and their count in the metrics.
//! The h2 crate answers a header list past `max_header_bytes` with 431 and resets a stream
//! over `max_concurrent_streams`, a malformed request, or one the client reset before it
//! was accepted, all on its own; hyper offers no hook that sees them. So the client's
//! bytes are read as frames, headers only (nine bytes a frame, the payload skipped): a
//! HEADERS frame on a new client stream opens a request. At the connection's end, the
//! streams opened less the requests the server was handed are the ones refused.
//!
//! The connection's first bytes decide: anything but the HTTP/2 preface (an HTTP/1
//! connection) turns the counting off, and a read then costs one comparison.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::limits::Activity;

/// What every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's length, and the HEADERS frame's type (RFC 9113, section 4.1).
const FRAME_HEAD: usize = 9;
const HEADERS: u8 = 0x1;

/// Where in the client's byte stream the reading is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frames {
    /// This many bytes of the preface have arrived.
    Preface(usize),
    /// In the frame sequence: `have` bytes of the next frame header are in `head`, after
    /// `skip` more payload bytes of the current frame.
    Frame {
        head: [u8; FRAME_HEAD],
        have: usize,
        skip: usize,
        /// The highest stream the client opened: a HEADERS frame on a lower one is a
        /// trailer section, not a new request.
        last_stream: u32,
    },
    /// Not HTTP/2.
    Off,
}

impl Frames {
    pub fn new() -> Self {
        Self::Preface(0)
    }

    /// Reads `bytes`, the next the client sent, and returns how many requests (new
    /// streams) they opened.
    pub fn scan(&mut self, mut bytes: &[u8]) -> u64 {
        let mut opened = 0;
        loop {
            match self {
                Self::Off => return opened,
                Self::Preface(have) => {
                    let want = &PREFACE[*have..];
                    let n = want.len().min(bytes.len());
                    if bytes[..n] != want[..n] {
                        *self = Self::Off;
                        return opened;
                    }
                    *have += n;
                    bytes = &bytes[n..];
                    if *have < PREFACE.len() {
                        return opened;
                    }
                    *self = Self::Frame {
                        head: [0; FRAME_HEAD],
                        have: 0,
                        skip: 0,
                        last_stream: 0,
                    };
                }
                Self::Frame {
                    head,
                    have,
                    skip,
                    last_stream,
                } => {
                    let skipped = (*skip).min(bytes.len());
                    *skip -= skipped;
                    bytes = &bytes[skipped..];
                    if bytes.is_empty() {
                        return opened;
                    }
                    let n = (FRAME_HEAD - *have).min(bytes.len());
                    head[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have < FRAME_HEAD {
                        return opened;
                    }
                    *have = 0;
                    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]);
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    // Clients open odd-numbered streams, each higher than the last.
                    if head[3] == HEADERS && stream % 2 == 1 && stream > *last_stream {
                        *last_stream = stream;
                        opened += 1;
                    }
                    *skip = length as usize;
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection's stream, counting the HTTP/2 requests the client opens into its
    /// [`Activity`].
    pub(crate) struct CountStreams<S> {
        #[pin]
        stream: S,
        frames: Frames,
        activity: Arc<Activity>,
    }
}

impl<S> CountStreams<S> {
    pub fn new(stream: S, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            frames: Frames::new(),
            activity,
        }
    }
}

impl<S: AsyncRead> AsyncRead for CountStreams<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.stream.poll_read(cx, buf);
        if *this.frames != Frames::Off {
            let opened = this.frames.scan(&buf.filled()[before..]);
            if opened > 0 {
                this.activity.streams_opened(opened);
            }
        }
        result
    }
}

impl<S: AsyncWrite> AsyncWrite for CountStreams<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: usize) -> Vec<u8> {
        let mut out = (payload as u32).to_be_bytes()[1..].to_vec();
        out.extend([kind, 0x4]);
        out.extend(stream.to_be_bytes());
        out.extend(std::iter::repeat_n(0xAB, payload));
        out
    }

    fn connection() -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, 12)); // SETTINGS
        bytes.extend(frame(HEADERS, 1, 40));
        bytes.extend(frame(0x0, 1, 100)); // DATA
        bytes.extend(frame(HEADERS, 1, 10)); // trailers: not a new request
        bytes.extend(frame(0x6, 0, 8)); // PING
        bytes.extend(frame(HEADERS, 3, 9));
        bytes.extend(frame(0x3, 3, 4)); // RST_STREAM
        // A payload holding what looks like a HEADERS frame header is skipped.
        let mut disguised = frame(0x0, 3, 0);
        disguised[2] = 9;
        disguised.extend(&frame(HEADERS, 9, 0)[..9]);
        bytes.extend(disguised);
        bytes.extend(frame(HEADERS, 5, 0));
        bytes.extend(frame(HEADERS, 2, 5)); // an even stream is the server's: ignored
        bytes
    }

    #[test]
    fn counts_new_client_streams_however_the_bytes_are_split() {
        let bytes = connection();
        let mut whole = Frames::new();
        assert_eq!(whole.scan(&bytes), 3);
        for size in [1, 2, 7, 9, 10, 23, 24, 25, 64] {
            let mut frames = Frames::new();
            let opened: u64 = bytes.chunks(size).map(|chunk| frames.scan(chunk)).sum();
            assert_eq!(opened, 3, "read in pieces of {size}");
        }
    }

    #[test]
    fn http1_turns_the_counting_off() {
        let mut frames = Frames::new();
        assert_eq!(frames.scan(b"GET / HTTP/1.1\r\n"), 0);
        assert_eq!(frames, Frames::Off);
        let mut frames = Frames::new();
        assert_eq!(frames.scan(b"PRI * HTTP/1.1\r\n"), 0);
        assert_eq!(frames, Frames::Off);
    }
}

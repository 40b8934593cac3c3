//! Per-server limits for a server on the open internet, on by default as in Caddy and
//! nginx: how long a client may take to send a request's headers, how long a connection
//! may sit idle, how many connections are served at once, how large a request's headers
//! and body may be, and how many HTTP/2 streams a connection may open. Stalled body reads
//! and response writes can be bounded too (off by default, as in Caddy). Each is a config
//! key of the server, checked against a range when the config is provisioned (so
//! `validate` refuses what is out of range).
//!
//! hyper's header timer also runs while an HTTP/1 connection waits for its next request, so
//! an idle HTTP/1 connection is closed after the smaller of `read_header_timeout` and
//! `idle_timeout`; the idle watchdog here covers HTTP/2 too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The limits as written in a server's config (fields of `ServerConfig`).
#[derive(Debug)]
pub(crate) struct LimitsConfig {
    /// Seconds a client has to send a request's headers.
    pub read_header_timeout: f64,
    /// Seconds a connection may stay open with no request in flight and nothing sent
    /// either way.
    pub idle_timeout: f64,
    /// Connections served at once; beyond it new ones wait to be accepted.
    pub max_connections: usize,
    /// Seconds a request body read may wait for the client's next bytes; no limit when
    /// absent.
    pub read_timeout: Option<f64>,
    /// Seconds a write to the client may wait without progress; no limit when absent.
    pub write_timeout: Option<f64>,
    /// Bytes of a request's head (request line and headers).
    pub max_header_bytes: usize,
    /// Bytes of a request's body.
    pub max_request_body: u64,
    /// HTTP/2 streams a connection may have open at once.
    pub max_concurrent_streams: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            read_header_timeout: default_read_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            read_timeout: None,
            write_timeout: None,
            max_header_bytes: default_max_header_bytes(),
            max_request_body: default_max_request_body(),
            max_concurrent_streams: default_max_concurrent_streams(),
        }
    }
}

pub(crate) fn default_read_header_timeout() -> f64 {
    10.0
}

pub(crate) fn default_idle_timeout() -> f64 {
    300.0
}

pub(crate) fn default_max_connections() -> usize {
    1000
}

/// 64 KiB: nginx takes 32 KiB at most by default, Go 1 MiB.
pub(crate) fn default_max_header_bytes() -> usize {
    64 << 10
}

/// 100 MiB: nginx's 1 MiB default breaks ordinary uploads behind a proxy, and none at all
/// lets one client fill a disk or an upstream.
pub(crate) fn default_max_request_body() -> u64 {
    100 << 20
}

/// Between nginx's 128 and Go's 250.
pub(crate) fn default_max_concurrent_streams() -> u32 {
    100
}

/// hyper's smallest read buffer (it panics below it), which bounds a request's head.
const MIN_HEADER_BYTES: usize = 8192;
const MAX_HEADER_BYTES: usize = 16 << 20;
const MAX_REQUEST_BODY: u64 = 1 << 40;
const MAX_CONCURRENT_STREAMS: u32 = 10_000;

/// Checked limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub max_header_bytes: usize,
    pub max_request_body: u64,
    pub max_concurrent_streams: u32,
}

/// A number of seconds as the config would write it: `10`, `0.5`, `1e300`.
pub(crate) fn show_seconds(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:?}")
    }
}

/// A duration in seconds within `(0, max]`, or an error naming the field and the range.
fn seconds(field: &str, value: f64, max: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "invalid {field} `{}`: give a number of seconds above 0 and at most {max}",
            show_seconds(value)
        ))
    }
}

impl LimitsConfig {
    pub fn check(&self) -> Result<Limits, String> {
        const MAX_CONNECTIONS: usize = 1_000_000;
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(format!(
                "invalid max_connections `{}`: give a number from 1 to {MAX_CONNECTIONS}",
                self.max_connections
            ));
        }
        let in_range = |field: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "invalid {field} `{value}`: give a number from {min} to {max}"
                ))
            }
        };
        in_range(
            "max_header_bytes (bytes)",
            self.max_header_bytes as u64,
            MIN_HEADER_BYTES as u64,
            MAX_HEADER_BYTES as u64,
        )?;
        in_range(
            "max_request_body (bytes)",
            self.max_request_body,
            1,
            MAX_REQUEST_BODY,
        )?;
        in_range(
            "max_concurrent_streams",
            self.max_concurrent_streams.into(),
            1,
            MAX_CONCURRENT_STREAMS.into(),
        )?;
        Ok(Limits {
            read_header_timeout: seconds("read_header_timeout", self.read_header_timeout, 3600.0)?,
            idle_timeout: seconds("idle_timeout", self.idle_timeout, 86400.0)?,
            max_connections: self.max_connections,
            read_timeout: self
                .read_timeout
                .map(|value| seconds("read_timeout", value, 86400.0))
                .transpose()?,
            write_timeout: self
                .write_timeout
                .map(|value| seconds("write_timeout", value, 86400.0))
                .transpose()?,
            max_header_bytes: self.max_header_bytes,
            max_request_body: self.max_request_body,
            max_concurrent_streams: self.max_concurrent_streams,
        })
    }
}

/// What a connection is doing, shared by its IO (bytes moved), its service (requests in
/// flight) and its idle watchdog. Counters rather than timestamps: this is touched on every
/// read and write, and a clock read each time showed in profiles; the watchdog samples the
/// counters instead.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Bumped whenever bytes move or a request starts or ends.
    moves: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn touch(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// A sample of the counters: busy (a request in flight) or the number of moves so far.
    fn sample(&self) -> Option<u64> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            None
        } else {
            Some(self.moves.load(Ordering::Relaxed))
        }
    }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

pin_project_lite::pin_project! {
    /// A connection's stream, noting when bytes move, and failing a write that has waited
    /// `write_timeout` without progress (a client that stopped reading).
    pub(crate) struct Tracked<S> {
        #[pin]
        stream: S,
        activity: Arc<Activity>,
        write_timeout: Option<Duration>,
        // Set while a write waits; only a stalled write pays for a timer.
        stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<S> Tracked<S> {
    pub fn new(stream: S, activity: Arc<Activity>, write_timeout: Option<Duration>) -> Self {
        Self {
            stream,
            activity,
            write_timeout,
            stalled: None,
        }
    }
}

/// What a write that made no progress for `limit` fails with.
fn write_timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client read nothing for write_timeout ({limit:?})"),
    )
}

/// After a poll of a write: clears the stall timer on progress, and starts or checks it
/// while the write waits.
fn check_stall<T>(
    result: Poll<io::Result<T>>,
    progressed: bool,
    limit: Option<Duration>,
    stalled: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    activity: &Activity,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match (&result, limit) {
        (Poll::Pending, Some(limit)) => {
            let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(write_timed_out(limit)));
            }
        }
        (Poll::Ready(_), _) => {
            if progressed {
                activity.touch();
            }
            *stalled = None;
        }
        (Poll::Pending, None) => {}
    }
    result
}

impl<S: AsyncRead> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.stream.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.stream.poll_write(cx, data);
        let progressed = matches!(result, Poll::Ready(Ok(n)) if n > 0);
        let limit = *this.write_timeout;
        check_stall(result, progressed, limit, this.stalled, this.activity, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.stream.poll_write_vectored(cx, bufs);
        let progressed = matches!(result, Poll::Ready(Ok(n)) if n > 0);
        let limit = *this.write_timeout;
        check_stall(result, progressed, limit, this.stalled, this.activity, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let result = this.stream.poll_flush(cx);
        let limit = *this.write_timeout;
        check_stall(result, false, limit, this.stalled, this.activity, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}

/// Runs `connection` until it ends or has been idle for `limit`; an idle connection is
/// dropped, which closes it. The counters are sampled four times per `limit` by a task of
/// its own, so the close comes between one and one and a quarter `limit`s after the last
/// activity, and the connection's own polls pay only for a oneshot check, not a timer.
pub(crate) async fn close_when_idle<C: std::future::Future>(
    connection: C,
    activity: Arc<Activity>,
    limit: Duration,
) -> Option<C::Output> {
    let (idle, mut closing) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(watch_idle(idle, activity, limit));
    tokio::pin!(connection);
    tokio::select! {
        biased;
        done = &mut connection => Some(done),
        _ = &mut closing => None,
    }
}

/// Samples `activity` every quarter of `limit`; says so on `idle` once nothing moved and
/// nothing was in flight for `limit`. Ends when the connection ends (the receiver drops).
async fn watch_idle(
    mut idle: tokio::sync::oneshot::Sender<()>,
    activity: Arc<Activity>,
    limit: Duration,
) {
    let step = limit / 4;
    let mut last = activity.sample();
    let mut quiet = Duration::ZERO;
    loop {
        tokio::select! {
            _ = idle.closed() => return,
            _ = tokio::time::sleep(step) => {}
        }
        let now = activity.sample();
        if now.is_some() && now == last {
            quiet += step;
            if quiet >= limit {
                let _ = idle.send(());
                return;
            }
        } else {
            quiet = Duration::ZERO;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_ranges_are_named() {
        let limits = LimitsConfig::default().check().unwrap();
        assert_eq!(limits.read_header_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(300));
        assert_eq!(limits.max_connections, 1000);
        let bad = |edit: fn(&mut LimitsConfig)| {
            let mut config = LimitsConfig::default();
            edit(&mut config);
            config.check().unwrap_err()
        };
        assert!(bad(|c| c.read_header_timeout = 0.0).contains("read_header_timeout `0`"));
        assert!(bad(|c| c.idle_timeout = 1e300).contains("at most 86400"));
        assert!(bad(|c| c.idle_timeout = f64::NAN).contains("idle_timeout"));
        assert!(bad(|c| c.max_connections = 0).contains("from 1 to 1000000"));
        assert!(bad(|c| c.max_header_bytes = 100).contains("max_header_bytes (bytes) `100`"));
        assert!(bad(|c| c.max_request_body = 0).contains("max_request_body"));
        assert!(bad(|c| c.max_concurrent_streams = 0).contains("from 1 to 10000"));
        assert!(bad(|c| c.read_timeout = Some(-1.0)).contains("read_timeout `-1`"));
        assert!(bad(|c| c.write_timeout = Some(1e9)).contains("at most 86400"));
        assert_eq!(limits.read_timeout, None, "off by default, as in Caddy");
        assert_eq!(limits.write_timeout, None);
    }

    #[test]
    fn a_connection_is_idle_only_with_nothing_in_flight_and_nothing_moving() {
        let activity = Activity::new();
        let quiet = activity.sample();
        assert_eq!(activity.sample(), quiet, "nothing happened");
        let request = activity.request();
        assert_eq!(activity.sample(), None, "a request is in flight");
        drop(request);
        assert_ne!(activity.sample(), quiet, "the request counted as activity");
    }

    #[test]
    fn the_watchdog_closes_a_quiet_connection_and_spares_a_busy_one() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let limit = Duration::from_secs(300);
            let quiet = Activity::new();
            let never = std::future::pending::<()>();
            assert!(close_when_idle(never, quiet, limit).await.is_none());
            let busy = Activity::new();
            let _request = busy.request();
            let finishes = tokio::time::sleep(limit * 3);
            assert!(close_when_idle(finishes, busy, limit).await.is_some());
        });
    }
}

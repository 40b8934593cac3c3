//! Per-server limits for a server on the open internet, on by default as in Caddy and
//! nginx: how long a client may take to send a request's headers, how long a connection
//! may sit idle, how many connections are served at once, how large a request's headers
//! and body may be, and how many HTTP/2 streams a connection may open. Stalled body reads
//! and response writes can be bounded too (off by default, as in Caddy). Each is a config
//! key of the server, checked against a range when the config is provisioned (so
//! `validate` refuses what is out of range).
//!
//! Both time limits on a connection's requests are enforced by one watchdog task per
//! connection that samples counters (bytes read and written, requests started and in
//! flight), not by timers set per request: `read_header_timeout` runs while a head is
//! awaited (from the connection's start, or from the first byte after a request), and
//! `idle_timeout` while nothing moves at all (an idle keep-alive connection).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Connections served at once; beyond it the one idle longest is closed, or, when none
    /// is idle, new ones wait to be accepted.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once; more are closed.
    /// Default: 256, or `max_connections` when that is lower.
    pub max_connections_per_client: Option<usize>,
    /// Seconds a request body read may wait for the client's next bytes.
    pub read_timeout: f64,
    /// Seconds a write to the client may wait without progress.
    pub write_timeout: f64,
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
            max_connections_per_client: None,
            read_timeout: default_read_timeout(),
            write_timeout: default_write_timeout(),
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

/// A quarter of the default `max_connections`: one address (an office behind NAT, say)
/// gets plenty, and a single attacker cannot hold the server.
const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;

/// nginx's `client_body_timeout` and `send_timeout`: a client that stops sending a body,
/// or stops reading a response, for a minute is given up on.
pub(crate) fn default_read_timeout() -> f64 {
    60.0
}

pub(crate) fn default_write_timeout() -> f64 {
    60.0
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
    pub max_connections_per_client: usize,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub max_header_bytes: usize,
    pub max_request_body: u64,
    pub max_concurrent_streams: u32,
}

/// Files the host keeps open besides client connections: listeners, logs, files being
/// served, upstream connections beyond one per client. A margin, not a measurement.
const FILES_BESIDES_CONNECTIONS: u64 = 64;

/// Whether `connections` (every server's max_connections) fit under the process's
/// open-file limit, which the host may raise its soft limit up to (its hard limit):
/// `Err` says what to do when not, since at the cap `accept` would fail instead.
pub(crate) fn check_open_file_limit(connections: u64) -> Result<(), xbuild_core::Hinted> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let Some(hard) = limit.maximum else {
        return Ok(()); // unlimited
    };
    let needed = connections.saturating_add(FILES_BESIDES_CONNECTIONS);
    if needed <= hard {
        return Ok(());
    }
    Err(xbuild_core::Hinted::new(format!(
        "max_connections of the http servers ({connections} in all) plus {FILES_BESIDES_CONNECTIONS} files of the host's own need {needed} open files, past this process's limit of {hard}"
    ))
    .help("lower max_connections, or raise the limit (`ulimit -n`, or LimitNOFILE= for a systemd service)"))
}

/// Raises the soft open-file limit to what `connections` need, up to the hard limit, as
/// Go's runtime does at start; the soft limit (often 1024) is a default, not a decision.
pub(crate) fn raise_open_file_limit(connections: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let needed = connections.saturating_add(FILES_BESIDES_CONNECTIONS);
    if limit.current.is_none_or(|soft| soft >= needed) {
        return;
    }
    let raised = Rlimit {
        current: limit
            .maximum
            .map(|hard| hard.min(needed.max(limit.current.unwrap_or(0)))),
        maximum: limit.maximum,
    };
    if let Err(err) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!(error = %err, needed, "cannot raise the open-file limit");
    }
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
        let max_connections_per_client = self
            .max_connections_per_client
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_CLIENT.min(self.max_connections));
        if !(1..=self.max_connections).contains(&max_connections_per_client) {
            return Err(format!(
                "invalid max_connections_per_client `{max_connections_per_client}`: give a number from 1 to max_connections ({})",
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
            max_connections_per_client,
            read_timeout: Some(seconds("read_timeout", self.read_timeout, 86400.0)?),
            write_timeout: Some(seconds("write_timeout", self.write_timeout, 86400.0)?),
            max_header_bytes: self.max_header_bytes,
            max_request_body: self.max_request_body,
            max_concurrent_streams: self.max_concurrent_streams,
        })
    }
}

/// What a connection is doing, shared by its IO (bytes read and written), its service
/// (requests started and in flight) and its watchdog. Counters rather than timestamps:
/// they are touched on every read and write, and a clock read each time showed in
/// profiles; the watchdog samples them instead.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    reads: AtomicU64,
    writes: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// `reads` when a request last started or ended: bytes read since then, with no
    /// request in flight, are the head of the next one (or what is left of the last).
    reads_at_request: AtomicU64,
    /// The connection speaks HTTP/2, where frames between requests (pings, window
    /// updates) are not a head in the making, nor activity that keeps it open.
    http2: AtomicBool,
    /// How long the watchdog last saw the connection idle, in milliseconds: which idle
    /// connection to shed first when the server is full (crate::connections).
    idle_ms: AtomicU64,
    /// The server shed the connection; `shed_now` wakes the connection's watchdog to close it.
    shed: AtomicBool,
    shed_now: tokio::sync::Notify,
    /// HTTP/2 requests (streams) the client opened (crate::h2_streams), and requests the
    /// server was handed (`requests` counts both starts and ends, as activity).
    streams_opened: AtomicU64,
    served: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    reads: u64,
    writes: u64,
    requests: u64,
    in_flight: usize,
    reads_at_request: u64,
    http2: bool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Notes that the connection speaks HTTP/2.
    pub fn http2(&self) {
        self.http2.store(true, Ordering::Relaxed);
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        self.mark_reads();
        InFlight(self.clone())
    }

    /// Notes HTTP/2 requests the client opened, whether or not they reach the server.
    pub fn streams_opened(&self, n: u64) {
        self.streams_opened.fetch_add(n, Ordering::Relaxed);
    }

    /// HTTP/2 requests the client opened that never reached the server: the h2 layer
    /// refused or reset them (crate::h2_streams). Meant for when the connection has ended.
    pub fn streams_refused(&self) -> u64 {
        let opened = self.streams_opened.load(Ordering::Relaxed);
        opened.saturating_sub(self.served.load(Ordering::Relaxed))
    }

    /// Whether the connection has had a request yet.
    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }

    /// Nothing in flight (an idle keep-alive connection), and not being shed already.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && !self.shed.load(Ordering::Relaxed)
    }

    /// How long the watchdog last saw the connection idle.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(self.idle_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn note_idle_for(&self, idle: Duration) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        self.idle_ms.store(ms, Ordering::Relaxed);
    }

    /// Closes the connection (it is idle: nothing in flight is cut).
    pub fn shed(&self) {
        self.shed.store(true, Ordering::Relaxed);
        self.shed_now.notify_one();
    }

    #[cfg(test)]
    pub fn is_shed(&self) -> bool {
        self.shed.load(Ordering::Relaxed)
    }

    fn mark_reads(&self) {
        self.reads_at_request
            .store(self.reads.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    fn sample(&self) -> Sample {
        Sample {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            reads_at_request: self.reads_at_request.load(Ordering::Relaxed),
            http2: self.http2.load(Ordering::Relaxed),
        }
    }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The request's own body was read while it was in flight; only what comes after
        // counts as the next head.
        self.0.mark_reads();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.requests.fetch_add(1, Ordering::Relaxed);
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
                activity.wrote();
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
            this.activity.read();
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

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Nothing in flight and nothing moving for `idle_timeout`.
    Idle,
    /// No complete request head for `read_header_timeout`: a new connection that sent
    /// nothing or part of a head, or bytes after a request that never became one.
    SlowHead,
    /// Idle while the server was full: closed to make room (crate::connections).
    Shed,
}

/// A connection the watchdog can ask to drain: finish the requests in flight, take no
/// more, and close (hyper's graceful shutdown).
pub(crate) trait Drain: Future {
    fn drain(self: Pin<&mut Self>);
}

pin_project_lite::pin_project! {
    /// A hyper connection, drained through hyper's graceful shutdown.
    pub(crate) struct Hyper<C> {
        #[pin]
        connection: C,
    }
}

impl<C> Hyper<C> {
    pub fn new(connection: C) -> Self {
        Self { connection }
    }
}

impl<C: hyper_util::server::graceful::GracefulConnection> Future for Hyper<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().connection.poll(cx)
    }
}

impl<C: hyper_util::server::graceful::GracefulConnection> Drain for Hyper<C> {
    fn drain(self: Pin<&mut Self>) {
        self.project().connection.graceful_shutdown();
    }
}

pin_project_lite::pin_project! {
    /// A connection that drains on a signal of its own (a TLS connection, whose HTTP
    /// connection exists only after its handshake, watches hyper-util's shutdown signal).
    pub(crate) struct DrainsItself<F> {
        #[pin]
        connection: F,
    }
}

impl<F> DrainsItself<F> {
    pub fn new(connection: F) -> Self {
        Self { connection }
    }
}

impl<F: Future> Future for DrainsItself<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().connection.poll(cx)
    }
}

impl<F: Future> Drain for DrainsItself<F> {
    fn drain(self: Pin<&mut Self>) {}
}

/// What the watchdog tells its connection.
enum Order {
    Close(Closed),
    Drain,
}

/// Runs `connection` until it ends or the watchdog closes it (by dropping it) for one of
/// the reasons in [`Closed`]. The counters are sampled four times per smaller limit by a
/// task of its own, so the close comes between one and one and a quarter limits after it
/// is due, and the connection's own polls pay only for a oneshot check: no timer is set
/// per request (hyper's header timer was about 1,500 instructions a request).
///
/// When `drain` turns true (the server stops), the watchdog tells the connection to drain
/// and the connection runs to its end; the app's grace period bounds that. The signal
/// goes through the watchdog for the same reason as the limits: hyper-util's shutdown
/// watcher, polled beside the connection, cost about 200 instructions a request.
pub(crate) async fn watch_connection<C: Drain>(
    connection: C,
    activity: Arc<Activity>,
    limits: Limits,
    drain: tokio::sync::watch::Receiver<bool>,
) -> Result<C::Output, Closed> {
    let (closing, mut closed) = tokio::sync::oneshot::channel::<Order>();
    tokio::spawn(watchdog(closing, activity.clone(), limits, drain));
    tokio::pin!(connection);
    let order = tokio::select! {
        biased;
        done = &mut connection => return Ok(done),
        order = &mut closed => order,
    };
    match order {
        Ok(Order::Drain) => {
            connection.as_mut().drain();
            Ok(connection.await)
        }
        Ok(Order::Close(why)) => Err(why),
        // The watchdog ends without a word only when this side is gone.
        Err(_) => Err(Closed::Idle),
    }
}

/// Samples `activity` every quarter of the smaller limit and says on `closing` why the
/// connection must close, once it must. Ends when the connection ends (the receiver drops).
async fn watchdog(
    mut closing: tokio::sync::oneshot::Sender<Order>,
    activity: Arc<Activity>,
    limits: Limits,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    let step = limits.idle_timeout.min(limits.read_header_timeout) / 4;
    let mut last = activity.sample();
    let (mut idle, mut head) = (Duration::ZERO, Duration::ZERO);
    loop {
        // Shedding is told here rather than to the connection's own select, which polls
        // each branch on every wake-up (a `Notified` there cost about 200 instructions a
        // request).
        tokio::select! {
            _ = closing.closed() => return,
            _ = tokio::time::sleep(step) => {}
            () = activity.shed_now.notified() => {
                let _ = closing.send(Order::Close(Closed::Shed));
                return;
            }
            // A closed channel (the listener's task gone) drains too.
            _ = drain.wait_for(|drain| *drain) => {
                let _ = closing.send(Order::Drain);
                return;
            }
        }
        let now = activity.sample();
        // On HTTP/2 only requests count: PINGs, window updates and SETTINGS keep a
        // connection busy on the wire while it serves nothing (and a client could send
        // them forever to hold its place).
        let quiet = now.in_flight == 0
            && now.requests == last.requests
            && (now.http2 || now.writes == last.writes);
        idle = if quiet && (now.http2 || now.reads == last.reads) {
            idle + step
        } else {
            Duration::ZERO
        };
        activity.note_idle_for(idle);
        // Waiting for a head: before the first request, or (HTTP/1) with bytes read since
        // the last one ended. Trickling bytes do not reset it; a request starting does.
        let waiting_for_head =
            quiet && (now.requests == 0 || !now.http2 && now.reads > now.reads_at_request);
        head = if waiting_for_head {
            head + step
        } else {
            Duration::ZERO
        };
        let why = if head >= limits.read_header_timeout {
            Closed::SlowHead
        } else if idle >= limits.idle_timeout {
            Closed::Idle
        } else {
            last = now;
            continue;
        };
        let _ = closing.send(Order::Close(why));
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_must_fit_under_the_open_file_limit() {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert!(check_open_file_limit(100).is_ok());
        if let Some(hard) = hard {
            let err = check_open_file_limit(hard).unwrap_err();
            assert!(
                err.to_string().contains(&format!("limit of {hard}")),
                "{err}"
            );
            assert!(err.helps()[0].contains("ulimit -n"), "{err:?}");
        }
    }

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
        assert!(bad(|c| c.read_timeout = -1.0).contains("read_timeout `-1`"));
        assert!(bad(|c| c.write_timeout = 1e9).contains("at most 86400"));
        assert!(bad(|c| c.max_connections_per_client = Some(1001)).contains(
            "max_connections_per_client `1001`: give a number from 1 to max_connections (1000)"
        ));
        assert_eq!(
            limits.read_timeout,
            Some(Duration::from_secs(60)),
            "on by default, as nginx's"
        );
        assert_eq!(limits.write_timeout, Some(Duration::from_secs(60)));
        assert_eq!(limits.max_connections_per_client, 256);
        let small = LimitsConfig {
            max_connections: 10,
            ..LimitsConfig::default()
        };
        assert_eq!(small.check().unwrap().max_connections_per_client, 10);
    }

    fn limits(read_header_timeout: u64, idle_timeout: u64) -> Limits {
        let mut limits = LimitsConfig::default().check().unwrap();
        limits.read_header_timeout = Duration::from_secs(read_header_timeout);
        limits.idle_timeout = Duration::from_secs(idle_timeout);
        limits
    }

    /// The connection `watch_connection` of a server that never stops.
    async fn watch_connection<C: Future>(
        connection: C,
        activity: Arc<Activity>,
        limits: Limits,
    ) -> Result<C::Output, Closed> {
        let (_drain, draining) = tokio::sync::watch::channel(false);
        let connection = DrainsItself::new(connection);
        super::watch_connection(connection, activity, limits, draining).await
    }

    /// A connection that ends once asked to drain (and never on its own).
    #[derive(Default)]
    struct EndsWhenDrained {
        drained: bool,
    }

    impl Future for EndsWhenDrained {
        type Output = &'static str;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            if self.drained {
                Poll::Ready("drained")
            } else {
                Poll::Pending
            }
        }
    }

    impl Drain for EndsWhenDrained {
        fn drain(self: Pin<&mut Self>) {
            self.get_mut().drained = true;
        }
    }

    #[test]
    fn a_stopping_server_drains_its_connections_through_their_watchdogs() {
        paused(async {
            let (drain, draining) = tokio::sync::watch::channel(false);
            let activity = Activity::new();
            // Busy, so neither limit would close it.
            let _request = activity.request();
            let watched = tokio::spawn(super::watch_connection(
                EndsWhenDrained::default(),
                activity,
                limits(10, 300),
                draining,
            ));
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert!(!watched.is_finished(), "ended before the server stopped");
            drain.send(true).unwrap();
            let started = tokio::time::Instant::now();
            assert_eq!(watched.await.unwrap(), Ok("drained"));
            // At once: the watchdog waits on the signal, not on its next sample.
            assert_eq!(started.elapsed(), Duration::ZERO);
        });
    }

    /// Runs `scenario` on a runtime with a paused clock (sleeps advance it at once).
    fn paused(scenario: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(scenario);
    }

    #[test]
    fn a_silent_new_connection_is_closed_after_read_header_timeout() {
        paused(async {
            let started = tokio::time::Instant::now();
            let never = std::future::pending::<()>();
            let closed = watch_connection(never, Activity::new(), limits(10, 300)).await;
            assert_eq!(closed, Err(Closed::SlowHead));
            let took = started.elapsed();
            assert!(
                took >= Duration::from_secs(10) && took <= Duration::from_millis(12_500),
                "{took:?}"
            );
        });
    }

    #[test]
    fn trickling_a_head_does_not_keep_a_connection_open() {
        paused(async {
            let activity = Activity::new();
            let reader = activity.clone();
            // A byte a second, never a whole head.
            tokio::spawn(async move {
                loop {
                    reader.read();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let never = std::future::pending::<()>();
            let closed = watch_connection(never, activity, limits(10, 300)).await;
            assert_eq!(closed, Err(Closed::SlowHead));
        });
    }

    #[test]
    fn a_kept_alive_connection_waits_idle_timeout_and_a_busy_one_is_spared() {
        paused(async {
            // One request came and went, its body read while in flight; then nothing.
            let activity = Activity::new();
            let request = activity.request();
            activity.read();
            activity.wrote();
            drop(request);
            let started = tokio::time::Instant::now();
            let never = std::future::pending::<()>();
            let closed = watch_connection(never, activity, limits(10, 300)).await;
            assert_eq!(closed, Err(Closed::Idle));
            assert!(started.elapsed() >= Duration::from_secs(300));

            // A request in flight for longer than both limits: left alone.
            let busy = Activity::new();
            let _request = busy.request();
            let finishes = tokio::time::sleep(Duration::from_secs(900));
            assert_eq!(
                watch_connection(finishes, busy, limits(10, 300)).await,
                Ok(())
            );
        });
    }

    #[test]
    fn http2_frames_between_requests_are_not_a_slow_head() {
        paused(async {
            let activity = Activity::new();
            activity.http2();
            drop(activity.request());
            // A ping now and then, no new stream: idle, not a slow head.
            activity.read();
            let started = tokio::time::Instant::now();
            let never = std::future::pending::<()>();
            let closed = watch_connection(never, activity, limits(10, 300)).await;
            assert_eq!(closed, Err(Closed::Idle));
            assert!(started.elapsed() >= Duration::from_secs(300));
        });
    }

    #[test]
    fn bytes_after_a_request_that_never_become_a_head_are_cut_off() {
        paused(async {
            let activity = Activity::new();
            drop(activity.request());
            // Half of the next head, then nothing.
            activity.read();
            let never = std::future::pending::<()>();
            let closed = watch_connection(never, activity, limits(10, 300)).await;
            assert_eq!(closed, Err(Closed::SlowHead));
        });
    }
}

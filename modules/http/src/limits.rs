//! Per-server limits for a server on the open internet, on by default as in Caddy and
//! nginx: how long a client may take to send a request's headers, how long a connection
//! may sit idle, and how many connections are served at once. Each is a config key of the
//! server, checked against a range when the config is provisioned (so `validate` refuses
//! what is out of range).
//!
//! hyper's header timer also runs while an HTTP/1 connection waits for its next request, so
//! an idle HTTP/1 connection is closed after the smaller of `read_header_timeout` and
//! `idle_timeout`; the idle watchdog here covers HTTP/2 too.

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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            read_header_timeout: default_read_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
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

/// Checked limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
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
        Ok(Limits {
            read_header_timeout: seconds("read_header_timeout", self.read_header_timeout, 3600.0)?,
            idle_timeout: seconds("idle_timeout", self.idle_timeout, 86400.0)?,
            max_connections: self.max_connections,
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
    /// A connection's stream, noting when bytes move.
    pub(crate) struct Tracked<S> {
        #[pin]
        stream: S,
        activity: Arc<Activity>,
    }
}

impl<S> Tracked<S> {
    pub fn new(stream: S, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }
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
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.stream.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
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

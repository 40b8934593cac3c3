//! Call-site safety: the one wrapper every call from the host into a module goes through.
//! It catches a panic (the module is marked failed, the caller gets an error, the host keeps
//! running; the seed's "recover at the call site") and records the call in the metrics.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::task::Poll;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::metrics::{self, CallLabel, CallStatus, DurationHistogram, ModuleLabel, ModuleStatus};
use crate::module::BoxError;

/// How a call into a module went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The module returned an error; it is still usable.
    #[error("module `{module}` failed in {method}: {source}")]
    Failed {
        /// ID of the module called.
        module: &'static str,
        /// The method name the caller gave (`serve`, `provision`, ...).
        method: &'static str,
        /// The module's error.
        #[source]
        source: BoxError,
    },
    /// The module panicked. It is marked failed (`module_failed` is 1) and its state may be
    /// inconsistent, but the host keeps running.
    #[error("module `{module}` panicked in {method}: {message}")]
    Panicked {
        /// ID of the module called.
        module: &'static str,
        /// The method name the caller gave.
        method: &'static str,
        /// The panic message and, when known, where it panicked (`(at src/lib.rs:12)`).
        message: String,
    },
}

impl CallError {
    /// Whether the module panicked rather than returning an error.
    pub fn is_panic(&self) -> bool {
        matches!(self, CallError::Panicked { .. })
    }

    /// ID of the module the failed call went into.
    pub fn module(&self) -> &'static str {
        match self {
            CallError::Failed { module, .. } | CallError::Panicked { module, .. } => module,
        }
    }

    /// The method the failed call ran (`serve`, `provision`, `cleanup`, ...).
    pub fn method(&self) -> &'static str {
        match self {
            CallError::Failed { method, .. } | CallError::Panicked { method, .. } => method,
        }
    }
}

/// Which calls the guard times for `module_call_duration_seconds`. Every call is counted
/// (`module_call_total`) and every panic caught whatever this says; only the clock reads
/// are sampled, as they cost more than the rest of the guard (two reads of the clock took
/// about 48 ns on the machines this was measured on, the rest about 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTiming {
    /// Time every call.
    Every,
    /// Time one call in `n` on each thread (the first of every `n`).
    OneIn(u32),
    /// Time no call: `module_call_duration_seconds` stays empty.
    Off,
}

impl CallTiming {
    /// The default: one call in 64, which keeps thousands of samples a second on a busy
    /// host while the clock costs under a nanosecond a call on average.
    pub const DEFAULT: CallTiming = CallTiming::OneIn(64);

    /// From `every`, `off` or a number `N` (one call in N; 1 is every call), as the
    /// `XBUILD_CALL_TIMING` variable takes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "every" => Ok(CallTiming::Every),
            "off" => Ok(CallTiming::Off),
            number => match number.parse::<u32>() {
                Ok(1) => Ok(CallTiming::Every),
                Ok(n) if n > 1 => Ok(CallTiming::OneIn(n)),
                _ => Err(format!(
                    "invalid call timing `{text}`: use `every`, `off`, or a number N from 1 up to time one call in N"
                )),
            },
        }
    }

    const fn encoded(self) -> u32 {
        match self {
            CallTiming::Every | CallTiming::OneIn(0) => 1,
            CallTiming::OneIn(n) => n,
            CallTiming::Off => 0,
        }
    }
}

/// [`CallTiming`] as a number: 0 off, 1 every call, N one in N.
static TIMING: AtomicU32 = AtomicU32::new(CallTiming::DEFAULT.encoded());

/// Sets which calls are timed, for the whole process.
pub fn set_call_timing(timing: CallTiming) {
    TIMING.store(timing.encoded(), Ordering::Relaxed);
}

/// Which calls are timed now.
pub fn call_timing() -> CallTiming {
    match TIMING.load(Ordering::Relaxed) {
        0 => CallTiming::Off,
        1 => CallTiming::Every,
        n => CallTiming::OneIn(n),
    }
}

/// The start of a call, when this call is one of those timed.
#[inline]
fn start_timing() -> Option<std::time::Instant> {
    let every = TIMING.load(Ordering::Relaxed);
    let timed = match every {
        0 => false,
        1 => true,
        _ => UNTIMED_LEFT.with(|left| {
            // A countdown rather than a modulo: a division costs more than the rest.
            match left.get() {
                0 => {
                    left.set(every - 1);
                    true
                }
                n => {
                    left.set(n - 1);
                    false
                }
            }
        }),
    };
    timed.then(std::time::Instant::now)
}

thread_local! {
    /// Calls this thread makes before it times the next one.
    static UNTIMED_LEFT: Cell<u32> = const { Cell::new(0) };
    /// Non-zero while this thread runs module code inside the wrapper.
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last guarded panic happened, set by the panic hook.
    static PANIC_LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Replaces the default panic output for guarded calls (which would print a raw message and,
/// with `RUST_BACKTRACE`, a backtrace) with a structured log line from the wrapper. Panics
/// outside module calls still reach the previous hook.
#[inline]
fn install_panic_hook() {
    // Checked on every call: a relaxed load, with the `Once` behind it only until then.
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.load(Ordering::Relaxed) {
        install_panic_hook_now();
        INSTALLED.store(true, Ordering::Release);
    }
}

#[cold]
fn install_panic_hook_now() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARD_DEPTH.with(Cell::get) > 0 {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_LOCATION.with(|cell| cell.set(location));
            } else {
                previous(info);
            }
        }));
    });
}

#[inline]
fn enter<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get() - 1));
    result
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    match PANIC_LOCATION.with(Cell::take) {
        Some(location) => format!("{text} (at {location})"),
        None => text,
    }
}

fn status_of<R>(outcome: &std::thread::Result<Result<R, BoxError>>) -> &'static str {
    match outcome {
        Ok(Ok(_)) => "ok",
        Ok(Err(_)) => "error",
        Err(_) => "panic",
    }
}

#[inline]
fn conclude<R>(
    module: &'static str,
    method: &'static str,
    outcome: std::thread::Result<Result<R, BoxError>>,
) -> Result<R, CallError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(CallError::Failed {
            module,
            method,
            source,
        }),
        Err(payload) => Err(panicked(module, method, payload)),
    }
}

/// The panic half of [`conclude`], out of line: the common path stays small enough to
/// inline into every call site.
#[cold]
#[inline(never)]
fn panicked(
    module: &'static str,
    method: &'static str,
    payload: Box<dyn std::any::Any + Send>,
) -> CallError {
    let message = panic_message(payload);
    metrics::core()
        .failed
        .get_or_create(&ModuleLabel { module })
        .set(1);
    tracing::error!(module, method, panic = %message, "module panicked; marked failed, host keeps running");
    CallError::Panicked {
        module,
        method,
        message,
    }
}

/// The metric series of one (module, method): finding a series in its family hashes the
/// label strings under a lock, which costs more than the call it measures for small calls,
/// so callers keep these handles. Handles share the series, so keeping them changes no value.
#[derive(Debug)]
pub(crate) struct CallSeries {
    method: &'static str,
    /// Made on first use, so a series for `error` or `panic` appears only once one happened.
    by_status: [OnceLock<Counter>; 3],
    seconds: DurationHistogram,
}

const STATUSES: [&str; 3] = ["ok", "error", "panic"];

impl CallSeries {
    fn new(module: &'static str, method: &'static str) -> Self {
        Self {
            method,
            by_status: Default::default(),
            seconds: metrics::core()
                .call_seconds
                .get_or_create(&CallLabel { module, method })
                .clone(),
        }
    }

    #[inline]
    fn record(&self, module: &'static str, status: usize, elapsed: Option<Duration>) {
        match self.by_status[status].get() {
            Some(counter) => counter.inc(),
            None => self.counter(module, status).inc(),
        };
        if let Some(elapsed) = elapsed {
            self.seconds.observe(elapsed);
        }
    }

    /// The counter of one status, made on its first call.
    #[cold]
    #[inline(never)]
    fn counter(&self, module: &'static str, status: usize) -> &Counter {
        self.by_status[status].get_or_init(|| {
            metrics::core()
                .call_total
                .get_or_create(&CallStatus {
                    module,
                    method: self.method,
                    status: STATUSES[status],
                })
                .clone()
        })
    }
}

/// The series of the methods called on one loaded module, found by a few pointer compares
/// and no lock: a [`Loaded`](crate::Loaded) is called from every worker thread at once.
/// A module with more methods than slots has the rest looked up per thread instead.
#[derive(Debug, Default)]
pub(crate) struct MethodSeries {
    slots: [MethodSlot; 4],
}

#[derive(Debug, Default)]
struct MethodSlot {
    /// The address of the method name that claimed the slot; 0 while free.
    method: AtomicUsize,
    series: OnceLock<CallSeries>,
}

impl MethodSeries {
    /// The series of `method`: on the fast path (the method already has a slot, as after
    /// its first call) a load and two compares per slot, inlined into the guard.
    #[inline]
    fn find(&self, module: &'static str, method: &'static str) -> Option<&CallSeries> {
        let key = method.as_ptr() as usize;
        for slot in &self.slots {
            if slot.method.load(Ordering::Acquire) == key
                && let Some(series) = slot.series.get()
                && std::ptr::eq(series.method, method)
            {
                return Some(series);
            }
        }
        self.claim(module, method)
    }

    /// [`find`](Self::find) for a method without a slot yet: claims a free one.
    #[cold]
    #[inline(never)]
    fn claim(&self, module: &'static str, method: &'static str) -> Option<&CallSeries> {
        let key = method.as_ptr() as usize;
        for slot in &self.slots {
            let claimed = match slot.method.load(Ordering::Acquire) {
                0 => match slot
                    .method
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => key,
                    Err(other) => other,
                },
                other => other,
            };
            if claimed == key {
                let series = slot.series.get_or_init(|| CallSeries::new(module, method));
                // Same address, other length: a name that is a prefix of another.
                if std::ptr::eq(series.method, method) {
                    return Some(series);
                }
            }
        }
        None
    }
}

type CallKey = (usize, usize, usize, usize);

/// The keys are addresses, not attacker-chosen: a multiply-rotate hash is enough, and
/// several times cheaper than the default SipHash on this hot path.
#[derive(Default, Clone, Copy)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type AddressMap<V> = HashMap<CallKey, V, std::hash::BuildHasherDefault<AddressHasher>>;

thread_local! {
    /// Series of calls made without a [`MethodSeries`] (plain [`call`]), per thread.
    static CALL_SERIES: RefCell<AddressMap<CallSeries>> = RefCell::new(AddressMap::default());
}

/// Counts a call (and times it if `started`): the generic part, which only finds the status.
#[inline]
fn record_call<R>(
    module: &'static str,
    method: &'static str,
    known: Option<&MethodSeries>,
    started: Option<std::time::Instant>,
    outcome: &std::thread::Result<Result<R, BoxError>>,
) {
    let status = match outcome {
        Ok(Ok(_)) => 0,
        Ok(Err(_)) => 1,
        Err(_) => 2,
    };
    record_status(module, method, known, started, status);
}

/// [`record_call`] past the status: one copy for every result type.
fn record_status(
    module: &'static str,
    method: &'static str,
    known: Option<&MethodSeries>,
    started: Option<std::time::Instant>,
    status: usize,
) {
    let elapsed = started.map(|started| started.elapsed());
    if let Some(series) = known.and_then(|known| known.find(module, method)) {
        series.record(module, status, elapsed);
        return;
    }
    // IDs and method names are `&'static str`: their address and length identify them.
    let key = (
        module.as_ptr() as usize,
        module.len(),
        method.as_ptr() as usize,
        method.len(),
    );
    CALL_SERIES.with(|cache| {
        cache
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| CallSeries::new(module, method))
            .record(module, status, elapsed);
    });
}

/// Runs `f`, module code, as `module`'s `method`: panics become [`CallError::Panicked`],
/// and every call is counted and timed.
pub fn call<R>(
    module: &'static str,
    method: &'static str,
    f: impl FnOnce() -> Result<R, BoxError>,
) -> Result<R, CallError> {
    call_with(module, method, None, f)
}

/// [`call`] with the series a [`Loaded`](crate::Loaded) keeps for its methods.
pub(crate) fn call_with<R>(
    module: &'static str,
    method: &'static str,
    known: Option<&MethodSeries>,
    f: impl FnOnce() -> Result<R, BoxError>,
) -> Result<R, CallError> {
    install_panic_hook();
    // One call in 64 by default reads the clock (two reads, tens of nanoseconds under some
    // hypervisors), so the cost per call is a fraction of a nanosecond.
    let started = start_timing();
    let outcome = enter(f);
    record_call(module, method, known, started, &outcome);
    conclude(module, method, outcome)
}

/// [`call`] for async module code: each poll of `future` is guarded, so a panic in any
/// await step is caught and counted, and the duration covers the whole future.
pub fn call_async<R>(
    module: &'static str,
    method: &'static str,
    future: impl Future<Output = Result<R, BoxError>>,
) -> impl Future<Output = Result<R, CallError>> {
    call_async_with(module, method, None, future)
}

/// [`call_async`] with the series a [`Loaded`](crate::Loaded) keeps for its methods.
pub(crate) fn call_async_with<'k, R, F>(
    module: &'static str,
    method: &'static str,
    known: Option<&'k MethodSeries>,
    future: F,
) -> Guarded<'k, F>
where
    F: Future<Output = Result<R, BoxError>>,
{
    Guarded {
        module,
        method,
        known,
        started: None,
        future,
    }
}

pin_project_lite::pin_project! {
    /// A guarded async call. Written out rather than an `async fn`, whose state kept the
    /// module's future twice (as its argument and pinned): the futures of an HTTP request
    /// hold one of these per handler and are moved several times a request.
    pub(crate) struct Guarded<'k, F> {
        module: &'static str,
        method: &'static str,
        known: Option<&'k MethodSeries>,
        // Set at the first poll, when the call starts: whether it is timed, and from when.
        started: Option<Option<std::time::Instant>>,
        #[pin]
        future: F,
    }
}

impl<R, F> Future for Guarded<'_, F>
where
    F: Future<Output = Result<R, BoxError>>,
{
    type Output = Result<R, CallError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let started = *this.started.get_or_insert_with(|| {
            install_panic_hook();
            start_timing()
        });
        let future = this.future;
        let outcome = match enter(|| future.poll(cx)) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => Ok(result),
            Err(payload) => Err(payload),
        };
        record_call(this.module, this.method, *this.known, started, &outcome);
        Poll::Ready(conclude(this.module, this.method, outcome))
    }
}

/// [`call`] for provisioning, which has metrics of its own.
pub(crate) fn provision(
    module: &'static str,
    f: impl FnOnce() -> Result<(), BoxError>,
) -> Result<(), CallError> {
    install_panic_hook();
    let started = std::time::Instant::now();
    let outcome = enter(f);
    let m = metrics::core();
    m.provision_total
        .get_or_create(&ModuleStatus {
            module,
            status: status_of(&outcome),
        })
        .inc();
    m.provision_seconds
        .get_or_create(&ModuleLabel { module })
        .observe(started.elapsed());
    conclude(module, "provision", outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[test]
    fn call_timing_parses_every_off_and_one_in_n() {
        assert_eq!(CallTiming::parse("every"), Ok(CallTiming::Every));
        assert_eq!(CallTiming::parse("1"), Ok(CallTiming::Every));
        assert_eq!(CallTiming::parse("off"), Ok(CallTiming::Off));
        assert_eq!(CallTiming::parse("100"), Ok(CallTiming::OneIn(100)));
        for bad in ["0", "-3", "often", ""] {
            let err = CallTiming::parse(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn one_call_in_n_is_timed_and_every_call_counted() {
        // On a thread of its own: the countdown is per thread.
        std::thread::spawn(|| {
            set_call_timing(CallTiming::OneIn(4));
            for _ in 0..8 {
                call("test.guard.sampled", "m", || Ok(())).unwrap();
            }
            set_call_timing(CallTiming::DEFAULT);
        })
        .join()
        .unwrap();
        let rendered = metrics::render();
        assert!(
            rendered.contains(
                r#"module_call_total{module="test.guard.sampled",method="m",status="ok"} 8"#
            ),
            "{rendered}"
        );
        assert!(
            rendered.contains(
                r#"module_call_duration_seconds_count{module="test.guard.sampled",method="m"} 2"#
            ),
            "{rendered}"
        );
    }

    #[test]
    fn passes_results_through() {
        assert_eq!(call("test.guard.ok", "m", || Ok(5)).unwrap(), 5);
        let err = call::<()>("test.guard.err", "m", || Err("nope".into())).unwrap_err();
        assert!(matches!(err, CallError::Failed { .. }));
        assert_eq!(err.to_string(), "module `test.guard.err` failed in m: nope");
    }

    #[test]
    fn captures_panics_and_counts_them() {
        let err = call::<()>("test.guard.panic", "serve", || panic!("boom {}", 7)).unwrap_err();
        let text = err.to_string();
        assert!(err.is_panic());
        assert!(
            text.starts_with("module `test.guard.panic` panicked in serve: boom 7 (at "),
            "{text}"
        );
        // The host keeps working: the next call through the wrapper succeeds.
        assert_eq!(call("test.guard.panic", "serve", || Ok(1)).unwrap(), 1);
        let rendered = metrics::render();
        assert!(
            rendered.contains(
                r#"module_call_total{module="test.guard.panic",method="serve",status="panic"} 1"#
            ),
            "{rendered}"
        );
        assert!(
            rendered.contains(r#"module_failed{module="test.guard.panic"} 1"#),
            "{rendered}"
        );
    }

    #[test]
    fn captures_panics_in_async_code() {
        let future = call_async::<()>("test.guard.async", "serve", async {
            std::future::ready(()).await;
            panic!("async boom")
        });
        let err = block_on(future).unwrap_err();
        assert!(err.to_string().contains("async boom"), "{err}");
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}

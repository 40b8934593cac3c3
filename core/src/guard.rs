//! Call-site safety: the one wrapper every call from the host into a module goes through.
//! It catches a panic (the module is marked failed, the caller gets an error, the host keeps
//! running; the seed's "recover at the call site") and records the call in the metrics.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Once;
use std::task::Poll;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{self, CallLabel, CallStatus, ModuleLabel, ModuleStatus};
use crate::module::BoxError;

/// How a call into a module went wrong.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("module `{module}` failed in {method}: {source}")]
    Failed {
        module: &'static str,
        method: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("module `{module}` panicked in {method}: {message}")]
    Panicked {
        module: &'static str,
        method: &'static str,
        message: String,
    },
}

impl CallError {
    pub fn is_panic(&self) -> bool {
        matches!(self, CallError::Panicked { .. })
    }

    pub fn module(&self) -> &'static str {
        match self {
            CallError::Failed { module, .. } | CallError::Panicked { module, .. } => module,
        }
    }
}

thread_local! {
    /// Non-zero while this thread runs module code inside the wrapper.
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last guarded panic happened, set by the panic hook.
    static PANIC_LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Replaces the default panic output for guarded calls (which would print a raw message and,
/// with `RUST_BACKTRACE`, a backtrace) with a structured log line from the wrapper. Panics
/// outside module calls still reach the previous hook.
fn install_panic_hook() {
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
        Err(payload) => {
            let message = panic_message(payload);
            metrics::core()
                .failed
                .get_or_create(&ModuleLabel { module })
                .set(1);
            tracing::error!(module, method, panic = %message, "module panicked; marked failed, host keeps running");
            Err(CallError::Panicked {
                module,
                method,
                message,
            })
        }
    }
}

/// A thread's handles on the metric series of one (module, method): looking a series up in
/// its family hashes the label strings under a lock, which costs more than the call it
/// measures for small calls. Handles share the series, so the cache changes no value.
struct CallHandles {
    by_status: [Option<Counter>; 3],
    seconds: Histogram,
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
    static CALL_HANDLES: RefCell<AddressMap<CallHandles>> = RefCell::new(AddressMap::default());
}

const STATUSES: [&str; 3] = ["ok", "error", "panic"];

fn record_call<R>(
    module: &'static str,
    method: &'static str,
    started: Instant,
    outcome: &std::thread::Result<Result<R, BoxError>>,
) {
    let status = match outcome {
        Ok(Ok(_)) => 0,
        Ok(Err(_)) => 1,
        Err(_) => 2,
    };
    // IDs and method names are `&'static str`: their address and length identify them.
    let key = (
        module.as_ptr() as usize,
        module.len(),
        method.as_ptr() as usize,
        method.len(),
    );
    CALL_HANDLES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let handles = cache.entry(key).or_insert_with(|| CallHandles {
            by_status: [None, None, None],
            seconds: metrics::core()
                .call_seconds
                .get_or_create(&CallLabel { module, method })
                .clone(),
        });
        handles.by_status[status]
            .get_or_insert_with(|| {
                metrics::core()
                    .call_total
                    .get_or_create(&CallStatus {
                        module,
                        method,
                        status: STATUSES[status],
                    })
                    .clone()
            })
            .inc();
        handles.seconds.observe(started.elapsed().as_secs_f64());
    });
}

/// Runs `f`, module code, as `module`'s `method`: panics become [`CallError::Panicked`],
/// and every call is counted and timed.
pub fn call<R>(
    module: &'static str,
    method: &'static str,
    f: impl FnOnce() -> Result<R, BoxError>,
) -> Result<R, CallError> {
    install_panic_hook();
    let started = Instant::now();
    let outcome = enter(f);
    record_call(module, method, started, &outcome);
    conclude(module, method, outcome)
}

/// [`call`] for async module code: each poll of `future` is guarded, so a panic in any
/// await step is caught and counted, and the duration covers the whole future.
pub async fn call_async<R>(
    module: &'static str,
    method: &'static str,
    future: impl Future<Output = Result<R, BoxError>>,
) -> Result<R, CallError> {
    install_panic_hook();
    let started = Instant::now();
    let mut future = pin!(future);
    let outcome = poll_fn(|cx| match enter(|| future.as_mut().poll(cx)) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
        Err(payload) => Poll::Ready(Err(payload)),
    })
    .await;
    record_call(module, method, started, &outcome);
    conclude(module, method, outcome)
}

/// [`call`] for provisioning, which has metrics of its own.
pub(crate) fn provision(
    module: &'static str,
    f: impl FnOnce() -> Result<(), BoxError>,
) -> Result<(), CallError> {
    install_panic_hook();
    let started = Instant::now();
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
        .observe(started.elapsed().as_secs_f64());
    conclude(module, "provision", outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

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

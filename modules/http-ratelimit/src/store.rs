//! The limiter's state: one GCRA state per client, for at most `max_clients` clients, and
//! one shared overflow state for the clients that find no room.
//!
//! Governor's keyed store (a `DashMap`) grows with every new key, so a client that sends
//! from ever new addresses would grow it without end. This store wraps it and admits a new
//! key only while fewer than `max_clients` are held, under a lock only new keys take; a
//! client without a place of its own is measured against the overflow state instead. The
//! map never holds more than `max_clients` entries.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};

/// The store a handler's limiter holds; the handler keeps a clone to see how full it is.
#[derive(Clone)]
pub(crate) struct BoundedStore(Arc<Clients>);

struct Clients {
    map: DashMapStateStore<IpAddr>,
    /// The state new clients share while the map is full.
    overflow: InMemoryState,
    max: usize,
    /// Taken to admit a new key, so two admissions cannot both take the last place.
    admitting: Mutex<()>,
    /// Set when a new client found the map full; cleared by a sweep that made room.
    full: AtomicBool,
    /// When the last sweep ran (milliseconds since `epoch`), `u64::MAX` before the first.
    last_sweep: AtomicU64,
    epoch: Instant,
    /// The least time between two sweeps.
    sweep_every: Duration,
}

impl BoundedStore {
    pub(crate) fn new(max: usize) -> Self {
        Self(Arc::new(Clients {
            map: DashMapStateStore::default(),
            overflow: InMemoryState::default(),
            max,
            admitting: Mutex::new(()),
            full: AtomicBool::new(false),
            last_sweep: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            // A sweep visits every entry: about 1 ms per 100,000. Every second at least,
            // and no more than 1% of one thread's time for larger stores.
            sweep_every: Duration::from_secs((max / 100_000).max(1) as u64),
        }))
    }

    /// Whether `key` would find no place of its own now: the map is full (as of the last
    /// admission) and `key` is not in it.
    pub(crate) fn turns_away(&self, key: &IpAddr) -> bool {
        self.0.full.load(Ordering::Relaxed) && !self.0.map.contains_key(key)
    }

    /// Claims the next sweep, if one is due; the caller then sweeps (with the limiter's
    /// `retain_recent`, which knows what "idle" means) and calls [`swept`](Self::swept).
    pub(crate) fn sweep_due(&self) -> bool {
        let clients = &*self.0;
        let now = clients.epoch.elapsed().as_millis() as u64;
        let last = clients.last_sweep.load(Ordering::Relaxed);
        let due =
            last == u64::MAX || now.saturating_sub(last) >= clients.sweep_every.as_millis() as u64;
        due && clients
            .last_sweep
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// After a sweep: new clients get places of their own again if it made room.
    pub(crate) fn swept(&self) {
        if self.0.map.len() < self.0.max {
            self.0.full.store(false, Ordering::Relaxed);
        }
    }
}

impl StateStore for BoundedStore {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let clients = &*self.0;
        // Known clients, nearly every request: no lock beyond the map's shard.
        if let Some(state) = clients.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        let _admitting = clients
            .admitting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if clients.map.len() < clients.max || clients.map.contains_key(key) {
            return clients.map.measure_and_replace(key, f);
        }
        clients.full.store(true, Ordering::Relaxed);
        clients.overflow.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl ShrinkableKeyedStateStore<IpAddr> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.map.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        self.0.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.map.len()
    }

    fn is_empty(&self) -> bool {
        self.0.map.is_empty()
    }
}

//! Who holds a server's connections, so one client cannot keep the others out: a limit on
//! the connections one client address holds at once (`max_connections_per_client`, on by
//! default), and, when the server is full (`max_connections`), the connection idle longest
//! is closed to make room, as Go's and nginx's servers shed idle keep-alive connections.
//!
//! A client is its IP address; IPv6 clients by their /64, the block a single host is
//! usually given (it can use any address in it), and IPv4-mapped IPv6 addresses as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use crate::limits::Activity;

/// The connections of one listener.
pub(crate) struct Connections {
    max_per_client: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    per_client: HashMap<IpAddr, usize>,
    open: HashMap<u64, Arc<Activity>>,
    next_id: u64,
}

/// A connection counted against its client; uncounted when dropped (the connection ended).
pub(crate) struct Admitted {
    connections: Arc<Connections>,
    client: IpAddr,
    id: u64,
}

/// The key a client's connections are counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    }
}

impl Connections {
    pub fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_client,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, or `None` when that client already holds
    /// `max_connections_per_client` (the connection is then closed unserved).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, activity: &Arc<Activity>) -> Option<Admitted> {
        let client = client_key(ip);
        let mut state = self.lock();
        let held = state.per_client.entry(client).or_insert(0);
        if *held >= self.max_per_client {
            return None;
        }
        *held += 1;
        let id = state.next_id;
        state.next_id += 1;
        state.open.insert(id, activity.clone());
        Some(Admitted {
            connections: self.clone(),
            client,
            id,
        })
    }

    /// Asks the connection that has been idle longest (nothing in flight) to close, to make
    /// room for a new one; `false` when every connection is busy. Among connections idle
    /// equally long (the watchdog measures in steps), the oldest goes first.
    pub fn shed_idle(&self) -> bool {
        let state = self.lock();
        let oldest_idle = state
            .open
            .iter()
            .filter(|(_, activity)| activity.is_idle())
            .max_by_key(|(id, activity)| (activity.idle_for(), std::cmp::Reverse(**id)));
        match oldest_idle {
            Some((_, activity)) => {
                activity.shed();
                true
            }
            None => false,
        }
    }

    /// Whether a connection is open that has not had its first request yet.
    pub fn any_awaiting_first_request(&self) -> bool {
        self.lock()
            .open
            .values()
            .any(|activity| !activity.has_served())
    }

    #[cfg(test)]
    fn held_by(&self, ip: IpAddr) -> usize {
        self.lock()
            .per_client
            .get(&client_key(ip))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self.connections.lock();
        state.open.remove(&self.id);
        if let Some(held) = state.per_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                // Bounded by connections open, not by clients ever seen.
                state.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back_as_connections_end() {
        let connections = Connections::new(2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let activity = Activity::new();
        let first = connections.admit(ip("10.0.0.1"), &activity).unwrap();
        let _second = connections.admit(ip("10.0.0.1"), &activity).unwrap();
        assert!(connections.admit(ip("10.0.0.1"), &activity).is_none());
        // The same client through a dual-stack socket.
        assert!(
            connections
                .admit(ip("::ffff:10.0.0.1"), &activity)
                .is_none()
        );
        // Another client is counted on its own.
        let _other = connections.admit(ip("10.0.0.2"), &activity).unwrap();
        drop(first);
        assert_eq!(connections.held_by(ip("10.0.0.1")), 1);
        assert!(connections.admit(ip("10.0.0.1"), &activity).is_some());
        // IPv6 addresses of one /64 are one client.
        let _a = connections.admit(ip("2001:db8::1"), &activity).unwrap();
        let _b = connections
            .admit(ip("2001:db8::ffff:2"), &activity)
            .unwrap();
        assert!(connections.admit(ip("2001:db8::3"), &activity).is_none());
        assert!(
            connections
                .admit(ip("2001:db8:0:1::1"), &activity)
                .is_some()
        );
    }

    #[test]
    fn the_connection_idle_longest_is_shed_and_busy_ones_never() {
        let connections = Connections::new(10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (older, newer, busy) = (Activity::new(), Activity::new(), Activity::new());
        let _guards = [&older, &newer, &busy].map(|a| connections.admit(ip, a).unwrap());
        let _in_flight = busy.request();
        assert!(connections.shed_idle());
        assert!(older.is_shed() && !newer.is_shed() && !busy.is_shed());
        // Idle longer wins over older.
        newer.note_idle_for(std::time::Duration::from_secs(5));
        assert!(connections.shed_idle());
        assert!(newer.is_shed());
        let only_busy = Connections::new(10);
        let _guard = only_busy.admit(ip, &busy).unwrap();
        assert!(!only_busy.shed_idle());
    }
}

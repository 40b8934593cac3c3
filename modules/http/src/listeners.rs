//! Listening sockets shared by the configs of one host, so a reload hands them over: the
//! new config's servers take the sockets the running config listens on at the same
//! addresses, both accept on them while the new config starts, and a socket closes only
//! when no config holds it any more. No connection is refused and none waits on a closed
//! port during the switch; open connections finish on the config they started on. An
//! address the new config no longer has closes when the old config stops, after the new
//! addresses are bound. (Caddy shares its listeners between configs the same way.)
//!
//! An address with port 0 is never shared: each start asks the system for a fresh port.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError, Weak};

static OPEN: Mutex<Vec<(SocketAddr, Weak<TcpListener>)>> = Mutex::new(Vec::new());

/// A listening socket for `addr`, non-blocking: the one already open for it if a running
/// config holds one, else a new one.
pub(crate) fn listen(addr: SocketAddr) -> io::Result<Arc<TcpListener>> {
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|(_, socket)| socket.strong_count() > 0);
    if addr.port() != 0
        && let Some(socket) = open
            .iter()
            .filter(|(at, _)| *at == addr)
            .find_map(|(_, socket)| socket.upgrade())
    {
        return Ok(socket);
    }
    let socket = TcpListener::bind(addr)?;
    socket.set_nonblocking(true)?;
    let socket = Arc::new(socket);
    open.push((addr, Arc::downgrade(&socket)));
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_shared_while_held_and_closes_with_its_last_holder() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let first = listen(addr).unwrap();
        let second = listen(addr).unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the open socket is shared");
        drop(first);
        // Still open: a client connects.
        std::net::TcpStream::connect(addr).unwrap();
        drop(second);
        // Closed with its last holder: connections are refused.
        assert!(std::net::TcpStream::connect(addr).is_err());
        // Port 0 is never shared.
        let a = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
    }
}

//! Idle upstream connections per replica, for both HTTP/1.1 clients (the fast one's sockets,
//! hyper's senders): last in, first out, at most [`MAX_IDLE_PER_REPLICA`] per replica, none older
//! than the idle timeout, and none that [`Pooled::is_usable`] refuses at checkout. It knows nothing
//! of HTTP: a client gives a connection back when its response ended cleanly.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::fasthash::FastMap;

/// Idle connections kept per replica.
pub const MAX_IDLE_PER_REPLICA: usize = 256;
/// Idle connections older than this are closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection the pool can keep.
pub trait Pooled {
    /// Whether the connection may carry another request (a cheap check, without waiting: the
    /// upstream did not close it or send anything unasked while it was idle).
    fn is_usable(&self) -> bool;
}

/// The idle connections of every replica.
pub struct IdlePool<C> {
    idle: Mutex<FastMap<SocketAddr, Vec<(C, Instant)>>>,
    max_per_replica: usize,
    timeout: Duration,
}

impl<C: Pooled> IdlePool<C> {
    /// A pool keeping at most `max_per_replica` connections per replica for at most `timeout`.
    pub fn new(max_per_replica: usize, timeout: Duration) -> IdlePool<C> {
        IdlePool {
            idle: Mutex::new(FastMap::default()),
            max_per_replica,
            timeout,
        }
    }

    /// The most recently returned usable connection to `address`; older or unusable ones met on
    /// the way are dropped (closed).
    pub fn checkout(&self, address: SocketAddr) -> Option<C> {
        loop {
            let (connection, since) = {
                let mut idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                idle.get_mut(&address)?.pop()?
            };
            if since.elapsed() <= self.timeout && connection.is_usable() {
                return Some(connection);
            }
        }
    }

    /// Keeps `connection` for a later request to `address`, unless the replica already has as
    /// many idle connections as allowed. Usability is checked at checkout, not here (for the fast
    /// client that check is a system call, paid once per reuse).
    pub fn give_back(&self, address: SocketAddr, connection: C) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let list = idle.entry(address).or_default();
        if list.len() < self.max_per_replica {
            list.push((connection, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A connection numbered for the tests, usable until its flag is cleared.
    struct Fake(u32, Arc<AtomicBool>);

    impl Pooled for Fake {
        fn is_usable(&self) -> bool {
            self.1.load(Ordering::Relaxed)
        }
    }

    fn fake(number: u32) -> Fake {
        Fake(number, Arc::new(AtomicBool::new(true)))
    }

    const A: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);
    const B: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 2);

    #[test]
    fn the_last_returned_comes_out_first_per_replica() {
        let pool = IdlePool::new(8, IDLE_TIMEOUT);
        pool.give_back(A, fake(1));
        pool.give_back(A, fake(2));
        pool.give_back(B, fake(3));
        assert_eq!(pool.checkout(A).map(|c| c.0), Some(2));
        assert_eq!(pool.checkout(A).map(|c| c.0), Some(1));
        assert!(pool.checkout(A).is_none());
        assert_eq!(pool.checkout(B).map(|c| c.0), Some(3));
    }

    #[test]
    fn unusable_connections_are_skipped_and_dropped() {
        let pool = IdlePool::new(8, IDLE_TIMEOUT);
        let (good, stale) = (fake(1), fake(2));
        let flag = stale.1.clone();
        pool.give_back(A, good);
        pool.give_back(A, stale);
        flag.store(false, Ordering::Relaxed);
        assert_eq!(pool.checkout(A).map(|c| c.0), Some(1));
        assert!(pool.checkout(A).is_none(), "the stale one is gone");
    }

    #[test]
    fn old_connections_expire_and_the_cap_holds() {
        let pool = IdlePool::new(2, Duration::ZERO);
        pool.give_back(A, fake(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(pool.checkout(A).is_none(), "older than the timeout");
        let pool = IdlePool::new(2, IDLE_TIMEOUT);
        for number in 1..=3 {
            pool.give_back(A, fake(number));
        }
        assert_eq!(pool.checkout(A).map(|c| c.0), Some(2));
        assert_eq!(pool.checkout(A).map(|c| c.0), Some(1));
        assert!(pool.checkout(A).is_none(), "the third was over the cap");
    }
}

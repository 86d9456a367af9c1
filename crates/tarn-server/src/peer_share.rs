//! Connections counted per peer address: one address may hold at most a quarter of the
//! connection slots (rounded up), so a single client cannot take every slot. The peer's
//! address also travels with each request ([`PeerIp`]) for the anonymous parse pool's
//! per-address share (`budget`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The peer address of a request's connection (a request extension set by the listener;
/// absent for requests handled in process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerIp(pub(crate) IpAddr);

/// Open connections per peer address (only addresses with at least one are kept).
#[derive(Debug, Clone)]
pub(crate) struct PeerShares {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    share: usize,
}

/// One connection of a peer, counted while alive.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PeerShares {
    /// Shares of `cap` connection slots.
    pub(crate) fn new(cap: usize) -> PeerShares {
        PeerShares {
            open: Arc::default(),
            share: Self::share_of(cap),
        }
    }

    /// The connections one address may hold out of `cap`.
    pub(crate) fn share_of(cap: usize) -> usize {
        cap.max(1).div_ceil(4)
    }

    /// Counts a new connection from `ip`, or `None` when `ip` already holds its share.
    pub(crate) fn try_enter(&self, ip: IpAddr) -> Option<PeerSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.share {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            open: self.open.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back() {
        let shares = PeerShares::new(8);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..2).map(|_| shares.try_enter(a).unwrap()).collect();
        assert!(shares.try_enter(a).is_none());
        assert!(shares.try_enter(b).is_some());
        drop(held);
        assert!(shares.try_enter(a).is_some());
        assert!(shares.open.lock().unwrap().is_empty());
    }
}

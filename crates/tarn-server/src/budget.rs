//! Memory for request bodies held and parsed in memory (batch and Reservoir bulk requests,
//! revision files) and for the replies built from them (issue 18, item 2).
//!
//! Two pools, counted in KiB: `parse_budget_bytes` for requests whose signature has been
//! verified and for the server's own work, `anonymous_parse_budget_bytes` for everyone else,
//! so anonymous clients can never take what uploads need. A [`Share`] grows as a body's
//! bytes arrive: nothing is reserved for bytes not yet read, so a client announcing a large
//! body and trickling it holds only what it has sent. Requests that each hold part of a full
//! pool would wait for one another forever, so only the oldest request still receiving its
//! body waits for room as long as it takes; any other whose share cannot grow within
//! [`BUDGET_WAIT`] ends with `503 SlowDown` (clients retry), returning what it held. The
//! oldest therefore always completes, and the pool never deadlocks. So that bodies under
//! way are not crowded out by new ones, a request starts taking bytes from a pool only
//! while a quarter of it is free, waiting its turn (holding nothing) for at most
//! [`ADMISSION_WAIT`] otherwise (`503`). A request that could never fit its pool is `413`.
//! In the anonymous pool one peer address holds at most half of the pool across its
//! requests (a request that would take it past that waits [`BUDGET_WAIT`] for its own
//! address's other requests, then `503`), so one address trickling many bodies always
//! leaves room for others to be admitted.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::error::S3Error;

/// The longest a share waits to grow before its request is answered `503`.
pub(crate) const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// Which pool a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Requests with a verified signature, and the server's own work.
    Signed,
    /// Requests without one.
    Anonymous,
}

/// The longest a request waits, holding nothing, for a pool to have room for a new body.
pub(crate) const ADMISSION_WAIT: Duration = Duration::from_secs(10);

/// How often a waiting share checks whether it has become the oldest.
const POLL: Duration = Duration::from_millis(100);

/// The two pools.
pub(crate) struct Budget {
    signed: Arc<Semaphore>,
    signed_kib: u64,
    anonymous: Arc<Semaphore>,
    anonymous_kib: u64,
    receiving: Arc<Receiving>,
    admission: Arc<tokio::sync::Mutex<()>>,
    peers: Arc<PeerKib>,
}

/// KiB of the anonymous pool held per peer address (only addresses holding some).
#[derive(Debug, Default)]
struct PeerKib {
    held: Mutex<HashMap<IpAddr, u64>>,
}

impl PeerKib {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `kib` to `ip` if that keeps it within `cap`.
    fn try_add(&self, ip: IpAddr, kib: u64, cap: u64) -> bool {
        let mut held = self.lock();
        let n = held.entry(ip).or_insert(0);
        if *n + kib > cap {
            if *n == 0 {
                held.remove(&ip);
            }
            return false;
        }
        *n += kib;
        true
    }

    fn remove(&self, ip: IpAddr, kib: u64) {
        let mut held = self.lock();
        if let Some(n) = held.get_mut(&ip) {
            *n = n.saturating_sub(kib);
            if *n == 0 {
                held.remove(&ip);
            }
        }
    }
}

/// The shares still receiving their bodies, in the order their requests began.
#[derive(Debug, Default)]
struct Receiving {
    next: AtomicU64,
    tickets: Mutex<BTreeSet<u64>>,
}

impl Receiving {
    fn enter(&self) -> u64 {
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(t);
        t
    }

    fn leave(&self, ticket: u64) {
        self.lock().remove(&ticket);
    }

    fn is_oldest(&self, ticket: u64) -> bool {
        self.lock().first() == Some(&ticket)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// KiB permits for `bytes` (at least 1, at most what a semaphore can count).
fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64 >> 4)
}

impl Budget {
    /// The pools of `cfg`.
    pub(crate) fn new(cfg: &ServerConfig) -> Budget {
        let signed_kib = kib(cfg.parse_budget_bytes);
        let anonymous_kib = kib(cfg.anonymous_parse_budget_bytes);
        Budget {
            signed: Arc::new(Semaphore::new(signed_kib as usize)),
            signed_kib,
            anonymous: Arc::new(Semaphore::new(anonymous_kib as usize)),
            anonymous_kib,
            receiving: Arc::default(),
            admission: Arc::default(),
            peers: Arc::default(),
        }
    }

    /// An empty share of `pool` for a request from `peer` (counted against the peer's
    /// half of the anonymous pool; `None` for requests without a connection).
    pub(crate) fn share(&self, pool: Pool, peer: Option<IpAddr>) -> Share {
        let (sem, total_kib) = match pool {
            Pool::Signed => (&self.signed, self.signed_kib),
            Pool::Anonymous => (&self.anonymous, self.anonymous_kib),
        };
        Share {
            pool,
            sem: sem.clone(),
            total_kib,
            permit: None,
            bytes: 0,
            ticket: Some(self.receiving.enter()),
            receiving: self.receiving.clone(),
            admission: self.admission.clone(),
            peer: peer.filter(|_| pool == Pool::Anonymous),
            peers: self.peers.clone(),
        }
    }

    /// Waits (without a time limit) for `bytes` of the signed pool, at most the whole pool:
    /// the server's own work and signed uploads already received.
    pub(crate) async fn signed_share(&self, bytes: u64) -> Share {
        let mut share = self.share(Pool::Signed, None);
        let want = kib(bytes).min(self.signed_kib);
        let permit = self
            .signed
            .clone()
            .acquire_many_owned(want as u32)
            .await
            .expect("the budget is never closed");
        share.permit = Some(permit);
        share.bytes = want * 1024;
        share.received();
        share
    }

    /// KiB of `pool` free now (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn free_kib(&self, pool: Pool) -> usize {
        match pool {
            Pool::Signed => self.signed.available_permits(),
            Pool::Anonymous => self.anonymous.available_permits(),
        }
    }
}

/// Bytes of one request accounted in a pool; returned when dropped (it may travel with a
/// reply body until the last piece has been handed to the connection).
#[derive(Debug)]
pub(crate) struct Share {
    pool: Pool,
    sem: Arc<Semaphore>,
    total_kib: u64,
    permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
    /// Its place among the shares still receiving (`None` once received).
    ticket: Option<u64>,
    receiving: Arc<Receiving>,
    admission: Arc<tokio::sync::Mutex<()>>,
    /// The address whose half of the anonymous pool this share counts against.
    peer: Option<IpAddr>,
    peers: Arc<PeerKib>,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.received();
        if let Some(ip) = self.peer {
            self.peers.remove(ip, self.held_kib());
        }
    }
}

impl Share {
    /// Accounts `n` more bytes, waiting at most [`BUDGET_WAIT`] for them; returns how long
    /// it waited (a body's pace clock does not run meanwhile).
    pub(crate) async fn grow(&mut self, n: u64) -> Result<Duration, S3Error> {
        let held = self.held_kib();
        let need = kib(self.bytes + n);
        if need <= held {
            self.bytes += n;
            return Ok(Duration::ZERO);
        }
        if need > self.total_kib {
            return Err(S3Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EntityTooLarge",
                format!(
                    "the request needs more memory than the server's {} ({} KiB)",
                    self.setting(),
                    self.total_kib
                ),
            ));
        }
        let more = (need - held) as u32;
        let start = Instant::now();
        if let Some(ip) = self.peer {
            let cap = self.peer_cap_kib();
            if need > cap {
                return Err(S3Error::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "EntityTooLarge",
                    format!(
                        "the request needs more memory than one address may hold of the server's {} (half: {cap} KiB)",
                        self.setting()
                    ),
                ));
            }
            // The address's other requests must leave room; they are its own to finish.
            while !self.peers.try_add(ip, more as u64, cap) {
                if start.elapsed() >= BUDGET_WAIT {
                    tracing::debug!(
                        "{ip} holds its half of the {}: answering 503",
                        self.setting()
                    );
                    return Err(self.busy());
                }
                tokio::time::sleep(POLL).await;
            }
        }
        let got = self.take(more, held, start).await;
        if let (Err(_), Some(ip)) = (&got, self.peer) {
            self.peers.remove(ip, more as u64);
        }
        let waited = got?;
        self.bytes += n;
        Ok(waited)
    }

    /// Takes `more` KiB from the pool (admitted first if it holds nothing yet).
    async fn take(&mut self, more: u32, held: u64, start: Instant) -> Result<Duration, S3Error> {
        if held == 0 {
            self.admit().await?;
        }
        let (got, waited) = match self.sem.clone().try_acquire_many_owned(more) {
            Ok(p) => (p, Duration::ZERO),
            Err(_) => loop {
                if let Ok(p) =
                    tokio::time::timeout(POLL, self.sem.clone().acquire_many_owned(more)).await
                {
                    break (p.expect("the budget is never closed"), start.elapsed());
                }
                let oldest = self.ticket.is_some_and(|t| self.receiving.is_oldest(t));
                if !oldest && start.elapsed() >= BUDGET_WAIT {
                    tracing::debug!(
                        "the {} is in use: answering 503 after {BUDGET_WAIT:?}",
                        self.setting(),
                    );
                    return Err(self.busy());
                }
            },
        };
        match &mut self.permit {
            Some(p) => p.merge(got),
            None => self.permit = Some(got),
        }
        Ok(waited)
    }

    /// The most one address may hold of the anonymous pool: half of it.
    fn peer_cap_kib(&self) -> u64 {
        (self.total_kib / 2).max(1)
    }

    /// Waits its turn (holding nothing) until a quarter of the pool is free.
    async fn admit(&self) -> Result<(), S3Error> {
        let room = (self.total_kib / 4).max(1) as usize;
        if self.sem.available_permits() >= room {
            return Ok(());
        }
        let start = Instant::now();
        let wait = async {
            let _turn = self.admission.lock().await;
            while self.sem.available_permits() < room {
                tokio::time::sleep(POLL / 2).await;
            }
        };
        if tokio::time::timeout(ADMISSION_WAIT, wait).await.is_err() {
            tracing::debug!(
                "the {} has no room for another body after {:?}: answering 503",
                self.setting(),
                start.elapsed()
            );
            return Err(self.busy());
        }
        Ok(())
    }

    fn busy(&self) -> S3Error {
        S3Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            format!(
                "the server's {} is in use by other requests; retry later",
                self.setting()
            ),
        )
    }

    /// Keeps only `bytes` accounted, returning the rest to the pool.
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        let keep = if bytes == 0 { 0 } else { kib(bytes) };
        if let Some(p) = &mut self.permit {
            let extra = (p.num_permits() as u64).saturating_sub(keep);
            if extra > 0 {
                drop(p.split(extra as usize));
                if let Some(ip) = self.peer {
                    self.peers.remove(ip, extra);
                }
            }
        }
        self.bytes = self.bytes.min(bytes);
    }

    /// The body has been received: the share no longer counts among those receiving.
    pub(crate) fn received(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.receiving.leave(t);
        }
    }

    fn held_kib(&self) -> u64 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    fn setting(&self) -> &'static str {
        match self.pool {
            Pool::Signed => "parse_budget_bytes",
            Pool::Anonymous => "anonymous_parse_budget_bytes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(signed: u64, anonymous: u64) -> Budget {
        Budget::new(&ServerConfig {
            parse_budget_bytes: signed,
            anonymous_parse_budget_bytes: anonymous,
            ..ServerConfig::default()
        })
    }

    #[tokio::test]
    async fn a_share_grows_with_its_bytes_and_gives_them_back() {
        let b = budget(64 << 10, 16 << 10);
        let mut s = b.share(Pool::Anonymous, None);
        assert_eq!(b.free_kib(Pool::Anonymous), 16);
        s.grow(100).await.unwrap();
        assert_eq!(b.free_kib(Pool::Anonymous), 15);
        s.grow(3000).await.unwrap();
        assert_eq!(b.free_kib(Pool::Anonymous), 12);
        s.shrink_to(1024);
        assert_eq!(b.free_kib(Pool::Anonymous), 15);
        // The signed pool is untouched by anonymous shares.
        assert_eq!(b.free_kib(Pool::Signed), 64);
        drop(s);
        assert_eq!(b.free_kib(Pool::Anonymous), 16);
    }

    #[tokio::test]
    async fn a_full_pool_is_503_after_the_wait_and_too_much_is_413() {
        let b = budget(64 << 10, 16 << 10);
        let mut hog = b.share(Pool::Anonymous, None);
        hog.grow(16 << 10).await.unwrap();
        hog.received();
        let mut oldest = b.share(Pool::Anonymous, None);
        let mut younger = b.share(Pool::Anonymous, None);
        // The oldest share still receiving waits as long as it takes; a younger one is
        // answered 503 after the wait.
        assert!(tokio::time::timeout(BUDGET_WAIT * 2, oldest.grow(1))
            .await
            .is_err());
        let t = Instant::now();
        let e = younger.grow(1).await.unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            e.message.contains("anonymous_parse_budget_bytes"),
            "{}",
            e.message
        );
        assert!(t.elapsed() >= BUDGET_WAIT - Duration::from_millis(100));
        // The signed pool still serves at once.
        let mut signed = b.share(Pool::Signed, None);
        assert_eq!(signed.grow(32 << 10).await.unwrap(), Duration::ZERO);
        let e = b
            .share(Pool::Anonymous, None)
            .grow(17 << 10)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Freed bytes wake a waiter.
        let waiter = tokio::spawn(async move {
            let mut s = b.share(Pool::Anonymous, None);
            s.grow(1024).await.map(|_| ())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(hog);
        waiter.await.unwrap().unwrap();
    }
}

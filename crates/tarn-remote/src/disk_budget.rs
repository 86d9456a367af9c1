//! The bound on the disk one `tarn get` may fill: bytes of artifacts it keeps and of temp
//! files still being written count together, so a service listing endless valid artifacts,
//! or many endless bodies at once, stops at the bound (RELIABILITY.md, `docs/remote.md`).
//!
//! Bytes are reserved as they arrive, before they are written; a temp file that is
//! abandoned (a failed attempt, a hash mismatch, an artifact already present) gives its
//! bytes back. Once a reservation fails the budget stays spent: no further artifact is
//! started, so the `get` ends promptly with every remaining artifact named as failed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How many bytes one `get` may write, and where that figure came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskBound {
    /// The bound in bytes.
    pub bytes: u64,
    /// Where it comes from, for the error: `TARN_MAX_GET_BYTES` or the free space it was
    /// derived from.
    pub source: String,
}

/// The shared account of one `get`'s disk writes.
#[derive(Debug)]
pub(crate) struct DiskBudget {
    bound: Option<DiskBound>,
    used: AtomicU64,
    spent: AtomicBool,
}

impl DiskBudget {
    /// A budget of `bound` (`None`: unbounded).
    pub(crate) fn new(bound: Option<DiskBound>) -> DiskBudget {
        DiskBudget {
            bound,
            used: AtomicU64::new(0),
            spent: AtomicBool::new(false),
        }
    }

    /// The bound, once a reservation has failed (no further artifact should start).
    pub(crate) fn spent(&self) -> Option<&DiskBound> {
        self.spent
            .load(Ordering::Relaxed)
            .then_some(self.bound.as_ref())
            .flatten()
    }

    /// Reserves `n` more bytes for `held`; the bound when that would pass it (nothing is
    /// reserved then, and the budget is spent).
    pub(crate) fn reserve(&self, held: &mut Reservation<'_>, n: u64) -> Result<(), &DiskBound> {
        let Some(bound) = &self.bound else {
            return Ok(());
        };
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > bound.bytes {
            self.used.fetch_sub(n, Ordering::Relaxed);
            self.spent.store(true, Ordering::Relaxed);
            return Err(bound);
        }
        held.bytes += n;
        Ok(())
    }

    /// An empty reservation, given back when dropped unless kept.
    pub(crate) fn reservation(&self) -> Reservation<'_> {
        Reservation {
            budget: self,
            bytes: 0,
        }
    }

    /// Bytes reserved now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes reserved for one temp file: given back when dropped (the file was abandoned),
/// unless [`Reservation::keep`] says they stay on disk.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a DiskBudget,
    bytes: u64,
}

impl Reservation<'_> {
    /// The bytes stay on disk (the artifact was published): they stay counted.
    pub(crate) fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_until_given_back_and_a_refusal_spends_the_budget() {
        let b = DiskBudget::new(Some(DiskBound {
            bytes: 100,
            source: "TEST".into(),
        }));
        let mut kept = b.reservation();
        b.reserve(&mut kept, 60).unwrap();
        kept.keep();
        {
            let mut abandoned = b.reservation();
            b.reserve(&mut abandoned, 30).unwrap();
            assert_eq!(b.used(), 90);
        }
        assert_eq!(b.used(), 60);
        assert!(b.spent().is_none());
        let mut over = b.reservation();
        b.reserve(&mut over, 30).unwrap();
        assert_eq!(b.reserve(&mut over, 11).unwrap_err().bytes, 100);
        assert_eq!(b.spent().map(|d| d.source.as_str()), Some("TEST"));
        drop(over);
        assert_eq!(b.used(), 60);
        let unbounded = DiskBudget::new(None);
        let mut r = unbounded.reservation();
        unbounded.reserve(&mut r, u64::MAX).unwrap();
        assert!(unbounded.spent().is_none());
    }
}

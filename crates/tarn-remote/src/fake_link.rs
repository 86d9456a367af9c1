//! What the engines' fake transports share (tests only): a failed request with a status, a
//! count of transfers in flight, and a runtime to drive an engine.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::transport::{Failed, TransferError};

/// The final failure of a request answered with `status`.
pub(crate) fn status_failure(method: &str, url: &str, status: u16) -> Failed {
    Failed {
        method: method.into(),
        url: url.into(),
        error: TransferError::Status {
            status,
            detail: String::new(),
            retry_after: None,
        },
        attempts: 1,
    }
}

/// Transfers in flight now and at most.
#[derive(Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    /// One transfer: counted in flight for a moment long enough for others to start.
    pub(crate) async fn transfer(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// The most transfers that were in flight at once.
    pub(crate) fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

/// Runs an engine call to completion on a fresh single-threaded runtime.
pub(crate) fn block_on<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
        .block_on(work)
}

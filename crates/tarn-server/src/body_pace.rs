//! How fast a request body must arrive (issue 9): a client that sends its headers and then
//! trickles the body would otherwise hold its connection, an upload slot (and a spool file)
//! or a share of the parse budget for as long as it likes.
//!
//! Two bounds, both from the configuration: no pause between body bytes longer than
//! `body_read_timeout_secs`, and once the body has been arriving for that long, an average
//! of at least `min_body_rate_bytes` per second. Either one broken is `408 RequestTimeout`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::budget::Share;
use crate::config::ServerConfig;
use crate::error::S3Error;

/// The pace of one request body, from its first read.
#[derive(Debug, Clone)]
pub(crate) struct BodyPace {
    start: Instant,
    last: Instant,
    got: u64,
    stall: Duration,
    min_rate: u64,
}

impl BodyPace {
    /// Starts the clock now, with the bounds of `cfg`.
    pub(crate) fn new(cfg: &ServerConfig) -> BodyPace {
        let now = Instant::now();
        BodyPace {
            start: now,
            last: now,
            got: 0,
            stall: Duration::from_secs(cfg.body_read_timeout_secs.max(1)),
            min_rate: cfg.min_body_rate_bytes,
        }
    }

    /// The instant by which more bytes must have arrived.
    fn deadline(&self) -> Instant {
        let stalled = self.last + self.stall;
        if self.min_rate == 0 {
            return stalled;
        }
        // The average falls below the minimum once `got / elapsed < min_rate`; it is
        // checked from `stall` on.
        let earned = Duration::from_secs_f64(self.got as f64 / self.min_rate as f64);
        stalled.min(self.start + self.stall.max(earned))
    }

    /// The next item of `stream`, or `408` if it does not come in time.
    pub(crate) async fn next<S, T, E>(
        &mut self,
        stream: &mut S,
    ) -> Result<Option<Result<T, E>>, S3Error>
    where
        S: Stream<Item = Result<T, E>> + Unpin,
        T: AsRef<[u8]>,
    {
        let deadline = tokio::time::Instant::from_std(self.deadline());
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(item) => {
                if let Some(Ok(chunk)) = &item {
                    let n = chunk.as_ref().len() as u64;
                    if n > 0 {
                        self.got += n;
                        self.last = Instant::now();
                    }
                }
                Ok(item)
            }
            Err(_) => Err(self.timeout()),
        }
    }

    /// Stops the clock for `d` (the server, not the client, made the body wait).
    pub(crate) fn pause(&mut self, d: Duration) {
        self.start += d;
        self.last += d;
    }

    fn timeout(&self) -> S3Error {
        let secs = self.start.elapsed().as_secs_f64();
        tracing::debug!(
            "request body too slow: {} bytes in {secs:.1} s; answering 408",
            self.got
        );
        S3Error::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!(
                "the request body arrived too slowly ({} bytes in {secs:.0} s): it must not pause for more than {} s (body_read_timeout_secs) and must average at least {} bytes/s (min_body_rate_bytes)",
                self.got,
                self.stall.as_secs(),
                self.min_rate
            ),
        )
    }
}

/// Why [`collect`] stopped.
#[derive(Debug)]
pub(crate) enum CollectError {
    /// More than the limit.
    TooLarge,
    /// The body broke off.
    Cut(String),
    /// The body came too slowly (`408`), or its bytes found no room in the budget.
    Slow(S3Error),
}

/// Reads a whole (small) body into memory: at most `limit` bytes, at the pace of `cfg`,
/// each piece accounted in `share` as it arrives (time spent waiting for the budget does
/// not count against the client's pace).
pub(crate) async fn collect(
    body: Body,
    limit: usize,
    cfg: &ServerConfig,
    share: &mut Share,
) -> Result<Bytes, CollectError> {
    let mut pace = BodyPace::new(cfg);
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = pace.next(&mut stream).await.map_err(CollectError::Slow)? {
        let chunk = chunk.map_err(|e| CollectError::Cut(e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(CollectError::TooLarge);
        }
        let waited = share
            .grow(chunk.len() as u64)
            .await
            .map_err(CollectError::Slow)?;
        pace.pause(waited);
        out.extend_from_slice(&chunk);
    }
    share.received();
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(stall: u64, rate: u64) -> BodyPace {
        let cfg = ServerConfig {
            body_read_timeout_secs: stall,
            min_body_rate_bytes: rate,
            ..ServerConfig::default()
        };
        BodyPace::new(&cfg)
    }

    #[test]
    fn the_deadline_follows_the_stall_and_the_average_rate() {
        let mut p = pace(10, 100);
        assert_eq!(p.deadline(), p.start + Duration::from_secs(10));
        // 5,000 bytes earn 50 s at 100 B/s, but a pause still ends at 10 s.
        p.got = 5000;
        p.last = p.start + Duration::from_secs(3);
        assert_eq!(p.deadline(), p.start + Duration::from_secs(13));
        // A byte every few seconds: the average decides.
        p.got = 1500;
        p.last = p.start + Duration::from_secs(12);
        assert_eq!(p.deadline(), p.start + Duration::from_secs(15));
        // No minimum rate: only pauses count.
        let mut q = pace(10, 0);
        q.last = q.start + Duration::from_secs(100);
        assert_eq!(q.deadline(), q.start + Duration::from_secs(110));
    }
}

//! One bounded reader of HTTP bodies, shared by the client transport and the server's S3
//! backend: a body must keep arriving (no wait for the next chunk longer than the stall
//! timeout), must average a minimum rate once it has been arriving for a grace period, and
//! may have an overall deadline; [`read_capped`] reads one into memory no further than a
//! limit. Failures are a typed [`BodyError`]; each caller words them for its own settings.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

/// Which time the minimum rate is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClock {
    /// Wall time since the body started (the client: the whole attempt counts).
    Wall,
    /// Only the time spent waiting for the sender (the server's bucket reads: a slow
    /// client downstream that pauses reading does not make the bucket slow).
    Waiting,
}

/// The time bounds of one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyBounds {
    /// Longest wait for the next chunk.
    pub stall: Duration,
    /// Slowest average rate in bytes per second, once `grace` has passed.
    pub min_rate: u64,
    /// How long the body may arrive before its average rate counts.
    pub grace: Duration,
    /// The longest the whole body may take (wall time), if bounded.
    pub deadline: Option<Duration>,
    /// Which time the rate is measured over.
    pub clock: RateClock,
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// No chunk arrived within the stall timeout.
    #[error("no byte for {0:?}")]
    Stalled(Duration),
    /// Chunks kept coming, but slower than the minimum average rate.
    #[error("too slow: {got} bytes in {secs:.0} s, below the minimum of {min_rate} bytes/s")]
    TooSlow {
        /// Bytes received.
        got: u64,
        /// Seconds counted.
        secs: f64,
        /// The minimum rate.
        min_rate: u64,
    },
    /// The body ran past its deadline.
    #[error("not complete within {0:?}")]
    Deadline(Duration),
    /// The connection failed.
    #[error("{0}")]
    Network(#[source] reqwest::Error),
}

/// A body streamed under [`BodyBounds`]; after its first error it ends.
pub struct BoundedBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    bounds: BodyBounds,
    /// The announced length, if any.
    pub content_length: Option<u64>,
    start: Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting_since: Option<Instant>,
    waited: Duration,
    bytes: u64,
    done: bool,
}

impl BoundedBody {
    /// The body of `resp`, bounded from now.
    pub fn new(resp: reqwest::Response, bounds: BodyBounds) -> BoundedBody {
        let content_length = resp.content_length();
        BoundedBody::from_stream(resp.bytes_stream(), content_length, bounds)
    }

    /// Any chunk stream (a response body), bounded from now.
    pub fn from_stream(
        inner: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        content_length: Option<u64>,
        bounds: BodyBounds,
    ) -> BoundedBody {
        BoundedBody {
            inner: Box::pin(inner),
            bounds,
            content_length,
            start: Instant::now(),
            sleep: None,
            waiting_since: None,
            waited: Duration::ZERO,
            bytes: 0,
            done: false,
        }
    }

    /// Checks the deadline and the rate after a chunk arrived.
    fn check(&self) -> Result<(), BodyError> {
        let b = &self.bounds;
        let wall = self.start.elapsed();
        if let Some(deadline) = b.deadline {
            if wall > deadline {
                return Err(BodyError::Deadline(deadline));
            }
        }
        let counted = match b.clock {
            RateClock::Wall => wall,
            RateClock::Waiting => self.waited,
        };
        let secs = counted.as_secs_f64();
        if counted > b.grace && (self.bytes as f64) < b.min_rate as f64 * secs {
            return Err(BodyError::TooSlow {
                got: self.bytes,
                secs,
                min_rate: b.min_rate,
            });
        }
        Ok(())
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Bytes, BodyError>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for BoundedBody {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let stall = this.bounds.stall;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.waited += since.elapsed();
                this.waiting_since = None;
                this.sleep = None;
                this.bytes += chunk.len() as u64;
                match this.check() {
                    Ok(()) => Poll::Ready(Some(Ok(chunk))),
                    Err(e) => this.fail(e),
                }
            }
            Poll::Ready(Some(Err(e))) => this.fail(BodyError::Network(e)),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.fail(BodyError::Stalled(stall));
                }
                Poll::Pending
            }
        }
    }
}

/// A body read into memory up to a limit.
#[derive(Debug, PartialEq, Eq)]
pub enum Capped {
    /// The whole body (at most the limit).
    Whole(Vec<u8>),
    /// The first `limit` bytes of a longer body, or nothing when its announced length was
    /// already longer (the rest was not read).
    Cut(Vec<u8>),
}

/// Reads `body`, never holding more than `limit` bytes: a body announcing more is not read
/// at all, a longer one is abandoned at the limit.
pub async fn read_capped(mut body: BoundedBody, limit: u64) -> Result<Capped, BodyError> {
    if body.content_length.is_some_and(|n| n > limit) {
        return Ok(Capped::Cut(Vec::new()));
    }
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await.transpose()? {
        let room = limit as usize - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(out));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of `chunks`, each after its delay.
    fn paced(chunks: Vec<(u64, &'static [u8])>) -> impl Stream<Item = reqwest::Result<Bytes>> {
        futures_util::stream::iter(chunks).then(|(ms, bytes)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Bytes::from_static(bytes))
        })
    }

    fn bounds(clock: RateClock) -> BodyBounds {
        BodyBounds {
            stall: Duration::from_millis(400),
            min_rate: 1000,
            grace: Duration::from_millis(400),
            deadline: None,
            clock,
        }
    }

    async fn collect(mut body: BoundedBody) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        while let Some(c) = body.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    fn run<T>(work: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(work)
    }

    #[test]
    fn a_body_that_keeps_coming_fast_enough_is_read_whole() {
        let got = run(collect(BoundedBody::from_stream(
            paced(vec![(50, b"abc"), (100, b"def")]),
            None,
            bounds(RateClock::Wall),
        )));
        assert_eq!(got.unwrap(), b"abcdef");
    }

    #[test]
    fn a_pause_past_the_stall_timeout_ends_it() {
        let got = run(collect(BoundedBody::from_stream(
            paced(vec![(10, b"abc"), (1500, b"def")]),
            None,
            bounds(RateClock::Wall),
        )));
        assert!(matches!(got, Err(BodyError::Stalled(d)) if d == Duration::from_millis(400)));
    }

    #[test]
    fn a_trickle_below_the_minimum_rate_ends_it_after_the_grace_period() {
        // 1 byte per 250 ms never stalls, but averages under 1000 bytes/s.
        let trickle = vec![(250, &b"x"[..]); 10];
        let got = run(collect(BoundedBody::from_stream(
            paced(trickle),
            None,
            bounds(RateClock::Wall),
        )));
        match got {
            Err(BodyError::TooSlow { got, min_rate, .. }) => {
                assert!(
                    (1..=2).contains(&got) && min_rate == 1000,
                    "{got} {min_rate}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_waiting_clock_does_not_count_a_reader_that_pauses() {
        // The sender is quick; the reader sleeps 600 ms between chunks. On the wall clock
        // that is too slow; on the waiting clock it is not.
        for (clock, slow) in [(RateClock::Wall, true), (RateClock::Waiting, false)] {
            let got = run(async move {
                let mut body = BoundedBody::from_stream(
                    paced(vec![(1, b"a"), (1, b"b"), (1, b"c")]),
                    None,
                    bounds(clock),
                );
                let mut n = 0;
                while let Some(c) = body.next().await {
                    c?;
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                Ok::<_, BodyError>(n)
            });
            assert_eq!(
                matches!(got, Err(BodyError::TooSlow { .. })),
                slow,
                "{clock:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_body_past_its_deadline_ends_it() {
        let mut b = bounds(RateClock::Wall);
        b.min_rate = 0;
        b.deadline = Some(Duration::from_millis(500));
        let chunks = vec![(150, &b"x"[..]); 10];
        let got = run(collect(BoundedBody::from_stream(paced(chunks), None, b)));
        assert!(matches!(got, Err(BodyError::Deadline(_))), "{got:?}");
    }

    #[test]
    fn read_capped_keeps_at_most_the_limit() {
        let read = |chunks: Vec<(u64, &'static [u8])>, announced, limit| {
            run(read_capped(
                BoundedBody::from_stream(paced(chunks), announced, bounds(RateClock::Waiting)),
                limit,
            ))
            .unwrap()
        };
        assert_eq!(
            read(vec![(1, b"abc")], None, 3),
            Capped::Whole(b"abc".to_vec())
        );
        assert_eq!(
            read(vec![(1, b"ab"), (1, b"cd")], None, 3),
            Capped::Cut(b"abc".to_vec())
        );
        assert_eq!(
            read(vec![(1, b"abcd")], Some(4), 3),
            Capped::Cut(Vec::new())
        );
    }
}

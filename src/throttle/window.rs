//! The throttle's sliding window: requests and accepts over the last ten buckets of time, each
//! bucket one atomic word, so that recording and reading take no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Buckets in a window: the window slides by a tenth of its length.
const BUCKETS: u64 = 10;

// A bucket's word: the tick it counts (32 bits: at the shortest bucket, 100 ms, a stamp comes
// round again after 13 years, and a bucket left untouched for half that, 6.8 years, is still
// told apart from a later one), requests (16 bits) and accepts (16 bits), each saturating at
// 65 535 per bucket.
const COUNT_BITS: u32 = 16;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const TICK_MASK: u64 = (1 << 32) - 1;

/// Requests and accepts over a sliding window.
pub(crate) struct Window {
    origin: Instant,
    bucket_us: u64,
    buckets: [AtomicU64; BUCKETS as usize],
}

/// What a window counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) accepts: u64,
}

impl Window {
    /// A window of `length` (`Throttle` keeps it at a second or more), starting now.
    pub(crate) fn new(length: Duration) -> Self {
        let bucket_us = (length.as_micros() as u64 / BUCKETS).max(1);
        Window {
            origin: Instant::now(),
            bucket_us,
            buckets: Default::default(),
        }
    }

    /// The tick `now` falls in.
    #[inline]
    pub(crate) fn tick(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_micros() as u64 / self.bucket_us
    }

    /// Counts one request made at `tick`, and one accept if `accepted`. An outcome that comes
    /// after its bucket was taken by a later tick is older than the window: it is not counted.
    #[inline]
    pub(crate) fn record(&self, tick: u64, accepted: bool) {
        let bucket = &self.buckets[(tick % BUCKETS) as usize];
        let stamp = tick & TICK_MASK;
        let _ = bucket.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            let (requests, accepts) = match unpack(word) {
                (at, requests, accepts) if at == stamp => (requests, accepts),
                (at, ..) if is_later(at, stamp) => return None,
                // The bucket held an older tick: it starts again.
                _ => (0, 0),
            };
            let requests = (requests + 1).min(COUNT_MAX);
            let accepts = (accepts + u64::from(accepted)).min(COUNT_MAX);
            Some(stamp << (2 * COUNT_BITS) | requests << COUNT_BITS | accepts)
        });
    }

    /// What the buckets of the window ending at `tick` counted.
    #[inline]
    pub(crate) fn tally(&self, tick: u64) -> Tally {
        let mut tally = Tally::default();
        for bucket in &self.buckets {
            let (at, requests, accepts) = unpack(bucket.load(Ordering::Relaxed));
            // A bucket counts if its tick is one of the window's ten (modulo the stamp's bits).
            if (tick.wrapping_sub(at) & TICK_MASK) < BUCKETS {
                tally.requests += requests;
                tally.accepts += accepts;
            }
        }
        tally
    }
}

/// Whether stamp `a` is later than stamp `b` (modulo the stamp's bits, half of them ahead).
fn is_later(a: u64, b: u64) -> bool {
    let ahead = a.wrapping_sub(b) & TICK_MASK;
    ahead != 0 && ahead <= TICK_MASK / 2
}

fn unpack(word: u64) -> (u64, u64, u64) {
    (
        word >> (2 * COUNT_BITS),
        (word >> COUNT_BITS) & COUNT_MAX,
        word & COUNT_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_the_last_ten_buckets_only() {
        let window = Window::new(Duration::from_secs(10));
        let at = |secs: u64| window.tick(window.origin + Duration::from_secs(secs));
        window.record(at(0), true);
        window.record(at(0), false);
        window.record(at(5), false);
        assert_eq!(
            window.tally(at(9)),
            Tally {
                requests: 3,
                accepts: 1
            }
        );
        // Second 0 has left the window at second 10; second 5 leaves it at 15.
        assert_eq!(
            window.tally(at(10)),
            Tally {
                requests: 1,
                accepts: 0
            }
        );
        assert_eq!(window.tally(at(15)), Tally::default());
        // A bucket reused by a later tick starts from nothing.
        window.record(at(20), true);
        let one_accepted = Tally {
            requests: 1,
            accepts: 1,
        };
        assert_eq!(window.tally(at(20)), one_accepted);
        // The outcome of a request made at second 10 comes after second 20 took its bucket:
        // it is older than the window, and spoils nothing.
        window.record(at(10), false);
        assert_eq!(window.tally(at(20)), one_accepted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_bucket_does_not_count() {
        let window = Window::new(Duration::from_secs(1));
        window.record(0, true);
        // Later ticks, some past the stamp's 28 bits, do not see it.
        for tick in [10, 1_000_000, TICK_MASK, 3 * (TICK_MASK + 1) + 20] {
            assert_eq!(window.tally(tick), Tally::default(), "tick {tick}");
        }
        // Counts saturate rather than spill into the stamp.
        let window = Window::new(Duration::from_secs(1));
        for _ in 0..COUNT_MAX + 10 {
            window.record(7, true);
        }
        let tally = window.tally(7);
        assert_eq!((tally.requests, tally.accepts), (COUNT_MAX, COUNT_MAX));
    }
}

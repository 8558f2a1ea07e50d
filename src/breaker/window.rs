//! The sliding window of a circuit: calls, failures and slow calls counted in buckets of time.
//!
//! The window is `buckets` buckets of `window / buckets` each, counted from the moment the
//! circuit was made; a count is the sum of the buckets that the last `window` touches, the
//! current one included, so an outcome leaves the window a whole bucket at a time. Each count is
//! one atomic word per bucket that holds the bucket's number (its stamp) beside the count: an
//! outcome that finds a stale stamp starts the bucket afresh with one compare-and-swap, and one
//! that finds a newer stamp is older than the window and is not counted. No lock, and no
//! allocation after the window is made.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a bucket's number kept in its words: 2^28 buckets wrap after 8.5 years of 1 s ones.
const STAMP_BITS: u32 = 28;
const COUNT_BITS: u32 = 64 - STAMP_BITS;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

/// What a window counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls whose outcome was recorded.
    pub calls: u64,
    /// Those that failed.
    pub failures: u64,
    /// Those slower than the slow-call threshold (failed or not).
    pub slow: u64,
}

#[derive(Default)]
struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

pub(crate) struct Window {
    width_us: u64,
    buckets: Box<[Bucket]>,
}

impl Window {
    /// A window of `buckets` buckets of `width_us` microseconds (both at least 1).
    pub(crate) fn new(width_us: u64, buckets: usize) -> Self {
        Window {
            width_us: width_us.max(1),
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Counts one outcome at `now_us` (microseconds since the circuit was made).
    pub(crate) fn record(&self, now_us: u64, failure: bool, slow: bool) {
        let number = now_us / self.width_us;
        let bucket = &self.buckets[(number % self.len()) as usize];
        let stamp = number & STAMP_MASK;
        add(&bucket.calls, stamp);
        if failure {
            add(&bucket.failures, stamp);
        }
        if slow {
            add(&bucket.slow, stamp);
        }
    }

    /// The counts of the window that ends at `now_us`.
    pub(crate) fn counts(&self, now_us: u64) -> Counts {
        let stamp = (now_us / self.width_us) & STAMP_MASK;
        let live = |word: &AtomicU64| {
            let word = word.load(Ordering::Relaxed);
            let age = stamp.wrapping_sub(word >> COUNT_BITS) & STAMP_MASK;
            if age < self.len() {
                word & COUNT_MAX
            } else {
                0
            }
        };
        let mut counts = Counts::default();
        for bucket in &*self.buckets {
            counts.calls += live(&bucket.calls);
            counts.failures += live(&bucket.failures);
            counts.slow += live(&bucket.slow);
        }
        counts
    }

    /// Forgets every outcome.
    pub(crate) fn clear(&self) {
        for bucket in &*self.buckets {
            for word in [&bucket.calls, &bucket.failures, &bucket.slow] {
                word.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Adds one to the count in `word` for bucket `stamp`.
fn add(word: &AtomicU64, stamp: u64) {
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let (old, count) = (current >> COUNT_BITS, current & COUNT_MAX);
        let next = if old == stamp {
            (stamp << COUNT_BITS) | (count + 1).min(COUNT_MAX)
        } else if stamp.wrapping_sub(old) & STAMP_MASK < 1 << (STAMP_BITS - 1) {
            (stamp << COUNT_BITS) | 1
        } else {
            // A later bucket took the slot: this outcome is older than the window.
            return;
        };
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_leave_the_window_a_bucket_at_a_time() {
        // 3 buckets of 10 µs: a window of 30 µs.
        let window = Window::new(10, 3);
        window.record(0, false, false);
        window.record(9, true, false);
        window.record(15, true, true);
        let at = |now| window.counts(now);
        assert_eq!(
            at(29),
            Counts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        // At 30 the first bucket (0..10) is reused for 30..40: its two outcomes are gone.
        assert_eq!(
            at(30),
            Counts {
                calls: 1,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(at(40), Counts::default());
    }

    #[test]
    fn a_late_outcome_older_than_the_window_is_not_counted() {
        let window = Window::new(10, 2);
        window.record(25, false, false);
        // Bucket 0 shares bucket 2's slot, which is newer.
        window.record(5, true, false);
        assert_eq!(
            window.counts(25),
            Counts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn clear_forgets_everything() {
        let window = Window::new(10, 2);
        window.record(3, true, false);
        window.clear();
        assert_eq!(window.counts(3), Counts::default());
    }
}

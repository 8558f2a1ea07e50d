//! The sliding window of a circuit: calls, failures and slow calls counted in buckets of time.
//!
//! The window is `buckets` buckets of `window / buckets` each, counted from the moment the
//! circuit was made; a count is the sum of the buckets that the last `window` touches, the
//! current one included, so an outcome leaves the window a whole bucket at a time. Each count is
//! one atomic word per bucket that holds the bucket's number (its stamp) beside the count: an
//! outcome that finds an older stamp starts the bucket afresh with one compare-and-swap, and one
//! that finds a newer stamp is older than the window and is not counted. No lock, and no
//! allocation after the window is made.
//!
//! A stamp is never read for another bucket's: stamps are compared with the whole bucket number,
//! and the word keeps as much of it as the count leaves room for. The count gets room for 1024
//! outcomes per microsecond of its bucket (more than its word can take: each is a
//! compare-and-swap on it), and the stamp the rest, which covers at least 2^53 µs, 285 years,
//! whatever the width. Past that, the stamps kept no longer equal any bucket number: no bucket is
//! live, and nothing old is counted.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The low bits of a bucket's words that hold its count; the stamp has the rest.
    count_bits: u32,
    buckets: Box<[Bucket]>,
}

/// Bits for the count of a bucket `width_us` wide: 1024 outcomes a microsecond, and at least 20
/// bits left for the stamp (so that 2^20 buckets, and at least 2^53 µs, pass before it wraps).
fn count_bits(width_us: u64) -> u32 {
    (u64::BITS - width_us.leading_zeros() + 10).min(44)
}

impl Window {
    /// A window of `buckets` buckets of `width_us` microseconds (both at least 1).
    pub(crate) fn new(width_us: u64, buckets: usize) -> Self {
        let width_us = width_us.max(1);
        Window {
            width_us,
            count_bits: count_bits(width_us),
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn count_max(&self) -> u64 {
        (1 << self.count_bits) - 1
    }

    /// Counts one outcome at `now_us` (microseconds since the circuit was made).
    pub(crate) fn record(&self, now_us: u64, failure: bool, slow: bool) {
        let number = now_us / self.width_us;
        let bucket = &self.buckets[(number % self.len()) as usize];
        // A failure or a slow call is counted only as one of the calls, so that neither ratio
        // can pass 1 (were the calls' count ever full).
        if !self.add(&bucket.calls, number) {
            return;
        }
        if failure {
            self.add(&bucket.failures, number);
        }
        if slow {
            self.add(&bucket.slow, number);
        }
    }

    /// The counts of the window that ends at `now_us`.
    pub(crate) fn counts(&self, now_us: u64) -> Counts {
        let number = now_us / self.width_us;
        let live = |word: &AtomicU64| {
            let word = word.load(Ordering::Relaxed);
            // A stamp newer than `number` wraps to an age past the window.
            let age = number.wrapping_sub(word >> self.count_bits);
            if age < self.len() {
                word & self.count_max()
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

    /// Adds one to the count in `word` for bucket `number`: false if the outcome is older than
    /// the window (a later bucket took the slot) or the count is full.
    fn add(&self, word: &AtomicU64, number: u64) -> bool {
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let (stamp, count) = (current >> self.count_bits, current & self.count_max());
            let count = if stamp == number {
                if count == self.count_max() {
                    return false;
                }
                count + 1
            } else if stamp < number {
                1
            } else {
                return false;
            };
            let next = (number << self.count_bits) | count;
            match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
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

    #[test]
    fn a_full_count_takes_no_more_calls_and_no_failure_beyond_them() {
        // A 1 µs bucket has room for 2047 outcomes: more than one microsecond brings.
        let window = Window::new(1, 1);
        for _ in 0..2047 {
            window.record(0, false, false);
        }
        window.record(0, true, true);
        assert_eq!(window.counts(0).calls, 2047);
        assert_eq!(window.counts(0).failures, 0);
        assert_eq!(window.counts(0).slow, 0);
        window.record(1, true, true);
        assert_eq!(
            window.counts(1),
            Counts {
                calls: 1,
                failures: 1,
                slow: 1
            }
        );
    }

    #[test]
    fn counts_have_room_for_1024_outcomes_a_microsecond() {
        assert_eq!(count_bits(1), 11);
        assert_eq!(count_bits(1000), 20);
        assert_eq!(count_bits(1024), 21);
        assert_eq!(count_bits(1 << 33), 44);
        assert_eq!(count_bits(u64::MAX), 44);
    }

    /// The outcomes of a window at any width are those of its last `buckets` buckets, however
    /// long the gaps between them: a multiple of 2^28 buckets (where 28-bit stamps wrapped)
    /// or any other, up to 2^53 µs in all.
    mod wraps {
        use super::*;
        use proptest::prelude::*;

        fn gap(width: u64) -> impl Strategy<Value = u64> {
            prop_oneof![
                0..3 * width,
                (1u64..4).prop_map(move |k| (k << 28) * width),
                Just((1 << (63 - count_bits(width))) * width),
                0..1u64 << 48,
            ]
        }

        fn script() -> impl Strategy<Value = (u64, usize, Vec<(u64, bool)>)> {
            (0u32..34, 1usize..=1000).prop_flat_map(|(bits, buckets)| {
                let width = (1u64 << bits) + u64::from(bits);
                let events = proptest::collection::vec((gap(width), any::<bool>()), 1..24);
                (Just(width), Just(buckets), events)
            })
        }

        proptest! {
            #[test]
            fn only_the_last_buckets_count((width, buckets, events) in script()) {
                let window = Window::new(width, buckets);
                let (mut now, mut seen) = (0u64, Vec::new());
                for (gap, failed) in events {
                    now += gap;
                    if now >= 1 << 53 {
                        break;
                    }
                    window.record(now, failed, false);
                    seen.push((now / width, failed));
                    let live = seen.iter().filter(|(n, _)| now / width - n < buckets as u64);
                    let failures = live.clone().filter(|(_, failed)| *failed).count() as u64;
                    let counts = window.counts(now);
                    prop_assert_eq!((counts.calls, counts.failures), (live.count() as u64, failures));
                }
            }
        }
    }
}

//! gRPC's retry throttling (gRFC A6) as a budget: a token bucket per server name.
//!
//! The bucket starts full, at `max_tokens`. Every failed attempt whose failure would be
//! retried (a retryable status, whatever the attempts left) takes one token; every successful
//! call gives back `token_ratio` of one, never past the top. While the bucket holds no more
//! than half of `max_tokens`, nothing is retried and no hedge is sent: the first attempt of a
//! call always goes. A6 counts in thousandths of a token, so that a ratio is kept to three
//! decimals (`0.5466` is `0.546`) and the arithmetic is exact: here too, in one atomic word.

use std::sync::atomic::{AtomicU64, Ordering};

/// Thousandths of a token per failed attempt.
const TOKEN: u64 = 1000;

/// The bucket, in thousandths of a token.
pub(super) struct Tokens {
    max: u64,
    ratio: u64,
    left: AtomicU64,
}

impl Tokens {
    /// A full bucket of `max_tokens`, earning `ratio` thousandths of a token per success.
    pub(super) fn new(max_tokens: u32, ratio: u64) -> Self {
        let max = u64::from(max_tokens) * TOKEN;
        Tokens {
            max,
            // A success never earns more than a full bucket.
            ratio: ratio.min(max),
            left: AtomicU64::new(max),
        }
    }

    pub(super) fn fresh(&self) -> Self {
        Tokens {
            max: self.max,
            ratio: self.ratio,
            left: AtomicU64::new(self.max),
        }
    }

    pub(super) fn same_settings(&self, other: &Tokens) -> bool {
        (self.max, self.ratio) == (other.max, other.ratio)
    }

    /// A6's threshold: retries are allowed only above it.
    fn threshold(&self) -> u64 {
        self.max / 2
    }

    /// A failed attempt that qualifies: one token less, never below zero.
    pub(super) fn failed(&self) {
        let _ = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(TOKEN))
            });
    }

    /// A successful call: `ratio` more, never past the top. A plain load when full.
    pub(super) fn succeeded(&self) {
        // `RetryBudget::tokens` refuses a ratio of zero thousandths, so a success always adds.
        if self.left.load(Ordering::Relaxed) >= self.max {
            return;
        }
        let _ = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some((left + self.ratio).min(self.max))
            });
    }

    /// Whether a retry or a hedge may be sent now: the bucket is above the threshold (the
    /// failure that asks was already counted).
    pub(super) fn allows(&self) -> bool {
        self.left.load(Ordering::Acquire) > self.threshold()
    }

    /// Failures in a row that may each still be followed by a retry.
    pub(super) fn retries_left(&self) -> u64 {
        let above = self
            .left
            .load(Ordering::Relaxed)
            .saturating_sub(self.threshold());
        above.saturating_sub(1) / TOKEN
    }

    /// Tokens left, in thousandths.
    pub(super) fn thousandths(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }

    pub(super) fn max_tokens(&self) -> u64 {
        self.max / TOKEN
    }

    pub(super) fn ratio(&self) -> f64 {
        self.ratio as f64 / TOKEN as f64
    }
}

/// `ratio` in thousandths, digits past the third dropped (A6: "0.5466 is treated as 0.546").
pub(super) fn thousandths(ratio: f64) -> u64 {
    // A ratio written with three decimals is a whole number of thousandths that `f64` holds a
    // hair off: nudged before the cut, so that 0.1 is 100, not 99.
    (ratio * TOKEN as f64 + 1e-6).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_keep_three_decimals() {
        assert_eq!(thousandths(0.5466), 546);
        assert_eq!(thousandths(0.1), 100);
        assert_eq!(thousandths(0.001), 1);
        assert_eq!(thousandths(0.0004), 0);
        assert_eq!(thousandths(1.0), 1000);
    }

    /// A6's arithmetic, with `maxTokens` 10 and `tokenRatio` 0.5: the threshold is 5 tokens.
    #[test]
    fn the_bucket_counts_as_a6_does() {
        let tokens = Tokens::new(10, thousandths(0.5));
        assert_eq!(tokens.retries_left(), 4);
        for left in [9000, 8000, 7000, 6000] {
            tokens.failed();
            assert!(tokens.allows(), "{left}");
            assert_eq!(tokens.thousandths(), left);
        }
        tokens.failed();
        assert_eq!(tokens.thousandths(), 5000);
        assert!(!tokens.allows(), "at the threshold, no retry");
        tokens.succeeded();
        assert_eq!(tokens.thousandths(), 5500);
        assert!(tokens.allows());
        for _ in 0..20 {
            tokens.succeeded();
        }
        assert_eq!(tokens.thousandths(), 10_000, "never past the top");
        for _ in 0..20 {
            tokens.failed();
        }
        assert_eq!(tokens.thousandths(), 0, "never below zero");
    }
}

//! The throttle's decision: the formula a layer's windows share, and whether a window admits a
//! request; whether an outcome was an accept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Throttle;
use super::window::{K_FRACTION, Tally, Window};
use crate::classify::{Classification, Reason};

/// The formula's inputs that every window of a layer shares: `K` (in 1/65 536ths, rounded
/// down, for the tests in integers: the window's headroom, and the whole window's test past it)
/// and the highest rejection probability, which
/// [`ThrottleLayer::reload`](super::ThrottleLayer::reload) changes in place, and the sequence
/// of draws.
pub(super) struct Formula {
    k_fixed: AtomicU64,
    max_rejection: AtomicU64,
    draws: AtomicU64,
}

impl Formula {
    pub(super) fn new(throttle: &Throttle) -> Self {
        let formula = Formula {
            k_fixed: AtomicU64::new(0),
            max_rejection: AtomicU64::new(0),
            draws: AtomicU64::new(throttle.seed.unwrap_or_else(|| fastrand::u64(..))),
        };
        formula.set(throttle);
        formula
    }

    /// Takes `throttle`'s `K` and cap (not its seed: the draws go on).
    pub(super) fn set(&self, throttle: &Throttle) {
        // `as` saturates: a `K` too large for 48 bits admits everything, as it would anyway.
        let k_fixed = (throttle.k * f64::from(1u32 << K_FRACTION)) as u64;
        self.k_fixed.store(k_fixed, Ordering::Relaxed);
        let max = throttle.max_rejection.to_bits();
        self.max_rejection.store(max, Ordering::Relaxed);
    }

    /// `K` in 1/65 536ths, rounded down.
    pub(super) fn k_fixed(&self) -> u64 {
        self.k_fixed.load(Ordering::Relaxed)
    }

    /// Whether a new request is to be rejected, and if so `window`'s tally: the whole window's
    /// test, for a slice past its headroom ([`Window::has_headroom`]).
    pub(super) fn admit(&self, window: &Window) -> Result<(), Tally> {
        let tally = window.tally();
        if tally.rejects_nothing(self.k_fixed()) {
            return Ok(());
        }
        self.draw(tally)
    }

    /// The formula's draw, for a window with more requests than `K` × accepts; with the same
    /// `K`, rounded down, as the tests in integers.
    #[cold]
    fn draw(&self, tally: Tally) -> Result<(), Tally> {
        let k = self.k_fixed() as f64 / f64::from(1u32 << K_FRACTION);
        let excess = tally.requests as f64 - k * tally.accepts as f64;
        let max_rejection = f64::from_bits(self.max_rejection.load(Ordering::Relaxed));
        let p = (excess / (tally.requests + 1) as f64).min(max_rejection);
        if draw(&self.draws) < p {
            Err(tally)
        } else {
            Ok(())
        }
    }
}

/// One window's state, and the classifier that counts into it.
pub(crate) struct Throttler<C> {
    pub(super) window: Window,
    pub(super) classifier: Arc<C>,
}

/// A uniform draw in `[0, 1)` from the layer's sequence (SplitMix64): lock-free, and the same
/// sequence for the same seed.
fn draw(state: &AtomicU64) -> f64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
}

/// Whether the dependency accepted an outcome: see [the module](super).
pub(super) fn accepted(classification: Classification) -> bool {
    match classification {
        Classification::Success => true,
        Classification::Retryable { .. } => false,
        Classification::Fatal { reason } => {
            !matches!(reason, Reason::Timeout(_) | Reason::NeverSent(_))
        }
    }
}

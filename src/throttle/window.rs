//! The throttle's sliding window: requests and accepts over the last ten slices of the window.
//!
//! A call reads the window (three words) and counts its outcome (one atomic add), and reads no
//! clock: the window is slid by the layer's ticker ([`super::ticker`]), once a slice, not by
//! the calls. So a call only ever touches the slice being filled, and what it adds is never
//! lost or split: the ticker takes the slice whole with one swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Slices in a window: the window slides by a tenth of its length.
pub(crate) const SLICES: u32 = 10;

/// The slice being filled, as one word: requests in the high half, accepts in the low. A slice
/// lasts at most a tenth of an hour ([`Throttle::window`](super::Throttle::window)'s cap), and
/// a half overflows after 2³² outcomes in one slice: twelve million a second, for one key.
const REQUEST: u64 = 1 << 32;
const ACCEPTS: u64 = REQUEST - 1;

/// Requests and accepts over a sliding window.
pub(crate) struct Window {
    /// The slice being filled.
    current: AtomicU64,
    /// The nine slices before it, summed, for the calls to read.
    past_requests: AtomicU64,
    past_accepts: AtomicU64,
    /// The nine slices before the current one, oldest first: the ticker's alone.
    past: Mutex<[u64; SLICES as usize - 1]>,
}

/// What a window counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) accepts: u64,
}

impl Window {
    /// An empty window.
    pub(crate) fn new() -> Self {
        Window {
            current: AtomicU64::new(0),
            past_requests: AtomicU64::new(0),
            past_accepts: AtomicU64::new(0),
            past: Mutex::new([0; SLICES as usize - 1]),
        }
    }

    /// Counts one request, and one accept if `accepted`, in the slice being filled.
    #[inline]
    pub(crate) fn record(&self, accepted: bool) {
        self.current
            .fetch_add(REQUEST | u64::from(accepted), Ordering::Relaxed);
    }

    /// What the window counted: the slice being filled and the nine before it.
    ///
    /// A read in the instant the ticker slides may miss the slice being moved (the next read
    /// sees it): the past is read first, and the ticker takes the slice from `current` before it
    /// publishes the past that holds it. On a processor that may reorder the loads (ARM, not
    /// x86) such a read may also count that slice twice. Acquire loads would rule that out, but
    /// they cost every call 18 instructions (callgrind) against an error of one slice in ten
    /// for a few nanoseconds a slice, which can only turn one more call away in that instant.
    #[inline]
    pub(crate) fn tally(&self) -> Tally {
        let past_requests = self.past_requests.load(Ordering::Relaxed);
        let past_accepts = self.past_accepts.load(Ordering::Relaxed);
        let current = self.current.load(Ordering::Relaxed);
        Tally {
            requests: (current >> 32) + past_requests,
            accepts: (current & ACCEPTS) + past_accepts,
        }
    }

    /// Ends the slice being filled: it joins the past, and the oldest slice leaves the window.
    /// The ticker's job, once a slice.
    pub(crate) fn slide(&self) {
        let mut past = self.past.lock().unwrap_or_else(PoisonError::into_inner);
        past.rotate_left(1);
        past[SLICES as usize - 2] = self.current.swap(0, Ordering::Relaxed);
        let (requests, accepts) = past.iter().fold((0, 0), |(requests, accepts), slice| {
            (requests + (slice >> 32), accepts + (slice & ACCEPTS))
        });
        self.past_requests.store(requests, Ordering::Relaxed);
        self.past_accepts.store(accepts, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(requests: u64, accepts: u64) -> Tally {
        Tally { requests, accepts }
    }

    #[test]
    fn counts_the_last_ten_slices_only() {
        let window = Window::new();
        window.record(true);
        window.record(false);
        for _ in 0..5 {
            window.slide();
        }
        window.record(false);
        assert_eq!(window.tally(), tally(3, 1));
        // The first slice is nine back after four more slides, and gone after the fifth.
        for _ in 0..4 {
            window.slide();
        }
        assert_eq!(window.tally(), tally(3, 1));
        window.slide();
        assert_eq!(window.tally(), tally(1, 0));
        // The second leaves five slides later.
        for _ in 0..4 {
            window.slide();
        }
        assert_eq!(window.tally(), tally(1, 0));
        window.slide();
        assert_eq!(window.tally(), Tally::default());
    }

    #[test]
    fn a_full_slice_keeps_its_halves_apart() {
        // Accepts never carry into requests: a slice can hold as many accepts as requests.
        let window = Window::new();
        window
            .current
            .store((ACCEPTS - 1) << 32 | (ACCEPTS - 1), Ordering::Relaxed);
        window.record(true);
        assert_eq!(window.tally(), tally(ACCEPTS, ACCEPTS));
        // Nine full slices sum beyond 32 bits without saturating.
        for _ in 0..9 {
            window
                .current
                .store(ACCEPTS << 32 | ACCEPTS, Ordering::Relaxed);
            window.slide();
        }
        assert_eq!(window.tally(), tally(9 * ACCEPTS, 9 * ACCEPTS));
    }
}

//! The throttle's sliding window: requests and accepts over the last ten slices of the window.
//!
//! A call reads the window and counts its outcome (one atomic add), and reads no clock: the
//! window is slid by the layer's ticker ([`super::ticker`]), once a slice, not by the calls. So
//! a call only ever touches the slice being filled, and what it adds is never lost or split: the
//! ticker takes the slice whole with one swap.
//!
//! When it slides the window, the ticker also works out its *headroom*: how many outcomes the
//! new slice can count, none of them accepted, before the formula could turn a request away.
//! While the slice holds fewer, a call is admitted on two loads and a compare
//! ([`Window::has_headroom`]); only past it (a dependency failing, a window no ticker has slid
//! yet, a new key) does it read the whole window and test it against `K`. The headroom is a
//! bound from below: with it, a call is only admitted where the whole window's test admits it
//! too, except in the instant of a slide (see [`Window::has_headroom`]), as with
//! [`Window::tally`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Slices in a window: the window slides by a tenth of its length.
pub(crate) const SLICES: u32 = 10;

/// The slice being filled, as one word: requests in the high half, accepts in the low. A slice
/// lasts at most a tenth of an hour ([`Throttle::window`](super::Throttle::window)'s cap), and
/// a half overflows after 2³² outcomes in one slice: twelve million a second, for one key.
const REQUEST: u64 = 1 << 32;
const ACCEPTS: u64 = REQUEST - 1;

/// `K`'s fraction bits in its fixed-point form.
pub(crate) const K_FRACTION: u32 = 16;

/// Requests and accepts over a sliding window.
pub(crate) struct Window {
    /// The slice being filled.
    current: AtomicU64,
    /// Outcomes the slice being filled can count, all of them failures, while the window
    /// surely admits every request: 0 until a ticker first slides the window, while it is being
    /// slid, and once its ticker has stopped. (A ticker whose runtime is not being driven leaves
    /// it in place, and it still holds: the past it was worked out from has not changed, and
    /// the slice only grows.)
    headroom: AtomicU64,
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

impl Tally {
    /// Whether the formula rejects nothing at this tally: no more requests than `K` × accepts,
    /// with `K` in 1/65 536ths, rounded down, so that this is never looser than the formula. A
    /// window's requests stay below 2³⁶ (ten slices of 2³²), so the shift cannot overflow.
    #[inline]
    pub(crate) fn rejects_nothing(self, k_fixed: u64) -> bool {
        self.requests << K_FRACTION <= self.accepts.saturating_mul(k_fixed)
    }
}

impl Window {
    /// An empty window.
    pub(crate) fn new() -> Self {
        Window {
            current: AtomicU64::new(0),
            headroom: AtomicU64::new(0),
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
    /// they cost 18 instructions (callgrind, when every call read the tally) against an error of
    /// one slice in ten for a few nanoseconds a slice, which can only turn one more call away in
    /// that instant.
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

    /// Whether the slice being filled has counted fewer outcomes than the headroom the ticker
    /// left it: then the window admits a new request, whatever those outcomes were.
    ///
    /// Relaxed, like [`tally`](Self::tally): a call in the instant the ticker slides mostly reads
    /// a headroom of 0, as the ticker clears it before it moves the slice. But relaxed stores
    /// and loads may be seen out of order (the compiler may reorder them, and so may a processor
    /// such as ARM), so a call may pair the new slice with the old headroom: the few calls of
    /// that instant may be admitted where the whole window's test would have drawn.
    #[inline]
    pub(crate) fn has_headroom(&self) -> bool {
        (self.current.load(Ordering::Relaxed) >> 32) < self.headroom.load(Ordering::Relaxed)
    }

    /// Ends the slice being filled: it joins the past, and the oldest slice leaves the window.
    /// The ticker's job, once a slice. `k_fixed` gives `K` in 1/65 536ths, rounded down: read
    /// under the window's lock, so that a slide cannot publish a headroom for the `K` before a
    /// reload's after the reload has set it ([`set_k`](Self::set_k)).
    pub(crate) fn slide(&self, k_fixed: impl FnOnce() -> u64) {
        let mut past = self.past.lock().unwrap_or_else(PoisonError::into_inner);
        // No call is admitted on the old slice's headroom once that slice is gone.
        self.headroom.store(0, Ordering::Relaxed);
        past.rotate_left(1);
        past[SLICES as usize - 2] = self.current.swap(0, Ordering::Relaxed);
        let (requests, accepts) = past.iter().fold((0, 0), |(requests, accepts), slice| {
            (requests + (slice >> 32), accepts + (slice & ACCEPTS))
        });
        self.past_requests.store(requests, Ordering::Relaxed);
        self.past_accepts.store(accepts, Ordering::Relaxed);
        let headroom = headroom(requests, accepts, k_fixed());
        self.headroom.store(headroom, Ordering::Relaxed);
    }

    /// Works the headroom out again for the rest of the slice, after a reload changed `K`
    /// (`k_fixed`, read under the lock like [`slide`](Self::slide)'s, so that of two reloads at
    /// once the last to take the lock sees the `K` that stays). A window with none keeps none:
    /// one that no ticker slides must not gain any, and one that had none for the old `K` is
    /// tested whole anyway, with the new one.
    pub(crate) fn set_k(&self, k_fixed: impl FnOnce() -> u64) {
        let _past = self.past.lock().unwrap_or_else(PoisonError::into_inner);
        if self.headroom.load(Ordering::Relaxed) == 0 {
            return;
        }
        let requests = self.past_requests.load(Ordering::Relaxed);
        let accepts = self.past_accepts.load(Ordering::Relaxed);
        self.headroom
            .store(headroom(requests, accepts, k_fixed()), Ordering::Relaxed);
    }

    /// Takes the headroom away, so that every call reads the whole window (and looks for a
    /// ticker): the ticker's last act when it stops, as its window no longer slides.
    pub(crate) fn unslid(&self) {
        let _past = self.past.lock().unwrap_or_else(PoisonError::into_inner);
        self.headroom.store(0, Ordering::Relaxed);
    }
}

/// The headroom of a slice whose past holds `requests` and `accepts`: one more than the largest
/// `r` with `requests + r ≤ K × accepts`, the formula's condition for rejecting nothing, which
/// accepts in the slice only make easier to meet; 0 if there is no such `r`.
fn headroom(requests: u64, accepts: u64, k_fixed: u64) -> u64 {
    let allowed = u128::from(accepts) * u128::from(k_fixed);
    let used = u128::from(requests) << K_FRACTION;
    match allowed.checked_sub(used) {
        Some(spare) => u64::try_from((spare >> K_FRACTION) + 1).unwrap_or(u64::MAX),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `K = 2` in 1/65 536ths.
    const K2: u64 = 2 << K_FRACTION;

    fn tally(requests: u64, accepts: u64) -> Tally {
        Tally { requests, accepts }
    }

    /// A window slid once, with `requests` outcomes of which `accepts` accepted in its past.
    fn with_past(requests: u64, accepts: u64, k_fixed: u64) -> Window {
        let window = Window::new();
        window
            .current
            .store(requests << 32 | accepts, Ordering::Relaxed);
        window.slide(|| k_fixed);
        window
    }

    proptest::proptest! {
        /// While the slice being filled is within the headroom, the whole window rejects
        /// nothing, whatever the slice holds; one failure more, and it could.
        #[test]
        fn the_headroom_admits_only_what_the_window_admits(
            requests in 0u64..1 << 32,
            accepted_share in 0.0f64..=1.0,
            // K from 1 to 20, or any larger, up to one too large for the headroom's 64 bits.
            k_fixed in proptest::prop_oneof![
                (1u64 << K_FRACTION)..(20 << K_FRACTION),
                (20u64 << K_FRACTION)..=u64::MAX,
            ],
            in_slice in 0u64..1 << 20,
        ) {
            let accepts = (requests as f64 * accepted_share) as u64;
            let window = with_past(requests, accepts, k_fixed);
            // The slice's outcomes, none accepted: the worst the headroom allows for.
            window.current.store(in_slice << 32, Ordering::Relaxed);
            if window.has_headroom() {
                proptest::prop_assert!(window.tally().rejects_nothing(k_fixed));
            }
            // At its edge, where a window can count that many: the last failure it allows for
            // leaves nothing rejected, and one more could.
            let headroom = window.headroom.load(Ordering::Relaxed);
            if headroom > 0 && headroom <= (1 << 36) - requests {
                let last = tally(requests + headroom - 1, accepts);
                proptest::prop_assert!(last.rejects_nothing(k_fixed));
                let past_it = tally(requests + headroom, accepts);
                proptest::prop_assert!(!past_it.rejects_nothing(k_fixed));
            }
        }
    }

    #[test]
    fn a_window_has_headroom_once_slid_and_none_when_left_unslid() {
        assert!(!Window::new().has_headroom(), "none before its first slide");
        // 10 requests, 8 accepted, K = 2: with up to 6 failures in the slice, the window
        // rejects nothing, so the calls that find 0 to 6 there are admitted on the headroom.
        let window = with_past(10, 8, K2);
        for _ in 0..=6 {
            assert!(window.has_headroom());
            assert!(window.tally().rejects_nothing(K2));
            window.record(false);
        }
        assert!(!window.has_headroom());
        assert!(!window.tally().rejects_nothing(K2));
        // A new K takes effect in the slice being filled.
        window.set_k(|| 3 << K_FRACTION);
        assert!(window.has_headroom(), "K = 3: up to 14 failures");
        window.unslid();
        assert!(
            !window.has_headroom(),
            "a window no ticker slides has no headroom"
        );
        window.set_k(|| 2 << K_FRACTION);
        assert!(!window.has_headroom(), "nor does a new K give it any");
    }

    #[test]
    fn counts_the_last_ten_slices_only() {
        let window = Window::new();
        window.record(true);
        window.record(false);
        for _ in 0..5 {
            window.slide(|| K2);
        }
        window.record(false);
        assert_eq!(window.tally(), tally(3, 1));
        // The first slice is nine back after four more slides, and gone after the fifth.
        for _ in 0..4 {
            window.slide(|| K2);
        }
        assert_eq!(window.tally(), tally(3, 1));
        window.slide(|| K2);
        assert_eq!(window.tally(), tally(1, 0));
        // The second leaves five slides later.
        for _ in 0..4 {
            window.slide(|| K2);
        }
        assert_eq!(window.tally(), tally(1, 0));
        window.slide(|| K2);
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
            window.slide(|| K2);
        }
        assert_eq!(window.tally(), tally(9 * ACCEPTS, 9 * ACCEPTS));
    }
}

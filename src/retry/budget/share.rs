//! The default budget's count: retries as a share of recent requests, plus a floor (see
//! [the module](super) for why, and for the bound it keeps).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::Taken;

/// Billionths of a token per retry: deposits are fractions of a token, kept as integers.
pub(super) const TOKEN: i64 = 1_000_000_000;

/// Windows drawing on the floor with no success since, after which the floor pauses.
const PAUSE_AFTER: u64 = 2;

/// The floor's word: retries left in this window's floor in the low 32 bits (a floor is a
/// `u32`), the strikes in the next two, and whether a call succeeded since the window rolled
/// in the bit after them.
const LEFT: u64 = 0xFFFF_FFFF;
const STRIKES_AT: u32 = 32;
const SUCCEEDED: u64 = 1 << 34;

/// Earned tokens are capped at the deposits of this many requests (or one whole token, if that
/// is more).
const SAVED_REQUESTS: i64 = 1000;

pub(super) struct State {
    pub(super) deposit: i64,
    /// The most nano-tokens that can be saved up.
    pub(super) cap: i64,
    pub(super) floor: u64,
    pub(super) window: Duration,
    pub(super) origin: Instant,
    /// Nano-tokens earned by requests and not yet spent.
    pub(super) earned: AtomicI64,
    /// The floor's word (see `LEFT`): retries left from this window's floor, the windows that
    /// drew on it with no call succeeding since (at `PAUSE_AFTER` the floor is paused), and
    /// whether a call succeeded since the window rolled.
    pub(super) floor_word: AtomicU64,
    /// The window (counted from `origin`) that the floor's word belongs to.
    pub(super) current_window: AtomicU64,
}

impl State {
    /// Records one request. Called by the retry layer for each call, not for each attempt.
    ///
    /// A budget that is already full (the deposits of the last 1000 requests, unspent) takes
    /// no more, and finding that out is a plain load: the success path of a healthy service
    /// pays no atomic read-modify-write for its budget.
    #[inline]
    pub(super) fn deposit(&self) {
        let state = self;
        if state.earned.load(Ordering::Relaxed) < state.cap {
            state.earned.fetch_add(state.deposit, Ordering::Relaxed);
        }
    }

    /// Records that a call succeeded: the floor, if paused, comes back at the next window.
    /// The retry layer calls it for every success; code that uses a budget by hand (`deposit`,
    /// `withdraw`) should too, or its floor pauses after two windows of retries. A plain load
    /// once the window has seen a success.
    #[inline]
    pub(super) fn succeeded(&self) {
        let word = &self.floor_word;
        if word.load(Ordering::Relaxed) & SUCCEEDED == 0 {
            word.fetch_or(SUCCEEDED, Ordering::AcqRel);
        }
    }

    /// One retry, earned tokens first, then the floor, saying which store it came from.
    pub(super) fn take_at(&self, now: Instant) -> Option<Taken> {
        let state = self;
        state.roll_window(now);
        if take(&state.earned, TOKEN) {
            Some(Taken::Earned)
        } else if take_floor(&state.floor_word) {
            Some(Taken::Floor)
        } else {
            None
        }
    }

    /// Gives back a retry that put no load on the dependency (a hedge that an open circuit
    /// turned away), to the store it came from and never past that store's cap.
    pub(super) fn give_back(&self, taken: Taken) {
        let state = self;
        // The closures always return Some, so these cannot fail.
        match taken {
            Taken::Earned => {
                let _ = state
                    .earned
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                        Some(left.saturating_add(TOKEN).min(state.cap.max(left)))
                    });
            }
            Taken::Floor => {
                let _ =
                    state
                        .floor_word
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                            // A floor's word never holds more than the floor.
                            let left = word & LEFT;
                            Some(word - left + (left + 1).min(state.floor))
                        });
            }
        }
    }

    /// Whole retries available now, ignoring the decay that the next withdrawal may apply.
    pub(super) fn retries_left(&self) -> u64 {
        let earned = self.earned.load(Ordering::Relaxed).max(0) / TOKEN;
        let floor = self.floor_word.load(Ordering::Relaxed) & LEFT;
        earned as u64 + floor
    }

    /// Starts a new window when `now` is past the current one: refills the floor (unless it is
    /// paused) and halves the earned tokens once per window that passed.
    pub(super) fn roll_window(&self, now: Instant) {
        let state = self;
        let elapsed = now.saturating_duration_since(state.origin).as_nanos();
        let window = u64::try_from(elapsed / state.window.as_nanos()).unwrap_or(u64::MAX);
        let mut seen = state.current_window.load(Ordering::Acquire);
        // Each move of the window is one thread's: it rolls the floor once (windows skipped on
        // the way were quiet) and halves the earnings once per window it moved over. A thread
        // that lost the race to a nearer window still moves it to its own.
        loop {
            if window <= seen {
                return;
            }
            match state.current_window.compare_exchange_weak(
                seen,
                window,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(current) => seen = current,
            }
        }
        // The closures always return Some, so these cannot fail.
        let _ = state
            .floor_word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                Some(rolled(word, state.floor))
            });
        let halvings = u32::try_from(window - seen).unwrap_or(u32::MAX).min(63);
        let _ = state
            .earned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |earned| {
                Some(earned >> halvings)
            });
    }
}

/// The floor's word at the start of a new window, given the word that ends the last one: a full
/// floor, or none once `PAUSE_AFTER` windows drew on it with no call succeeding since.
fn rolled(word: u64, floor: u64) -> u64 {
    let strikes = if word & SUCCEEDED != 0 {
        0
    } else {
        let drawn = word & LEFT < floor;
        ((word >> STRIKES_AT) + u64::from(drawn)).min(PAUSE_AFTER)
    };
    let left = if strikes >= PAUSE_AFTER { 0 } else { floor };
    (strikes << STRIKES_AT) + left
}

/// The most nano-tokens a budget saves: the deposits of the last `SAVED_REQUESTS` requests, or
/// one whole retry if that is less (a ratio under 1/1000 would otherwise never earn one).
pub(super) fn saving_cap(deposit: i64) -> i64 {
    if deposit == 0 {
        0
    } else {
        deposit.saturating_mul(SAVED_REQUESTS).max(TOKEN)
    }
}

/// The nano-tokens one request deposits: `ratio` of a token, never more. A ratio written with at
/// most nine decimals (`0.0015`) is a whole number of nano-tokens that `f64` holds a hair off;
/// it is rounded to it. Any finer ratio is rounded down, so that the documented bound holds.
pub(super) fn deposit_for(ratio: f64) -> i64 {
    let scaled = ratio * TOKEN as f64;
    let nearest = scaled.round();
    // Within 1/1000 of a nano-token: far above f64's error for ratios up to 1000 (1e-4 at most),
    // far below anything that could add up to a retry.
    if (scaled - nearest).abs() < 1e-3 {
        nearest as i64
    } else {
        scaled.floor() as i64
    }
}

/// Subtracts `amount` from `counter` if it holds at least that much.
fn take(counter: &AtomicI64, amount: i64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            (left >= amount).then_some(left - amount)
        })
        .is_ok()
}

/// Takes one retry from the floor's word if it has one left.
fn take_floor(word: &AtomicU64) -> bool {
    word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
        (word & LEFT > 0).then(|| word - 1)
    })
    .is_ok()
}

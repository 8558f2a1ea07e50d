//! A retry budget: retries as a share of recent requests, plus a small floor.
//!
//! Per-request limits (attempts, elapsed time) bound what one caller does, but not what a fleet
//! of callers does to a server that is already failing: with three attempts each, every client
//! triples its load exactly when the server can least take it, and the retries themselves keep
//! the server down. A budget bounds retries across *all* requests that share it, so that during
//! an outage the extra load is a fixed fraction (`ratio`) of the real traffic, as in Finagle's
//! retry budget and gRPC's retry throttling (gRFC A6).
//!
//! Every request deposits `ratio` of a token; every retry withdraws one whole token. Tokens are
//! counted in billionths, so a ratio written with up to nine decimals is kept exactly, and one
//! with more is rounded down: the bound below holds for every ratio, never rounded up. A floor of
//! `floor` retries per `window` lets a service with little traffic still retry the odd failure.
//! Tokens are "recent" in two ways: at most the deposits of the last 1000 requests are saved
//! (or one retry's worth, for a ratio under 1/1000), and they halve for every window that
//! passes. The decay is applied only when a retry asks, and a full budget takes no deposit, so
//! the success path of a healthy service reads one word and never the clock. Everything is
//! atomics: clones share one budget, with no lock.
//!
//! The floor pauses while it is spent on a dependency that never answers: once two windows
//! have drawn on it with no call succeeding since, the next windows have none, until a call
//! succeeds. A floor is per budget, so a fleet of a thousand small clients would otherwise add a
//! thousand floors of retries to an outage, and an overloaded server fed that much never
//! recovers (`examples/fleet` shows it). A quiet service keeps its floor, and so does one
//! unlucky request whose attempts fail slowly across two windows: only a failure that lasts
//! pauses it.
//!
//! The floor, the count of windows that drew on it and whether a call succeeded are one word,
//! and each change to it (a draw, a success, a window's roll) is one atomic read-modify-write of
//! that word. A roll therefore counts every draw made before it and wipes out none made after
//! it, however threads interleave; a draw that comes between the window's move and the floor's
//! roll is taken from the old window's floor, and counted there. (Kept in separate atomics, a
//! draw could land between the roll's reading of the floor and its refill, unseen, and the
//! bound below failed under contention.)

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ConfigError, ConfigProblem};

/// Billionths of a token per retry: deposits are fractions of a token, kept as integers.
const TOKEN: i64 = 1_000_000_000;

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

/// Retries allowed as a share of recent requests plus a floor, shared by every clone.
///
/// Under a sustained 100% failure the inner service sees at most
/// `(1 + ratio) × requests + 3 × floor` calls, however many attempts each request may make:
/// the floor of the window in which the failure began and of the next two, then none until a
/// call succeeds. The bound is exact, however many threads share the budget: a ratio is kept to
/// the billionth (rounded down past that), so `0.0015` allows 15 retries per 10 000 requests,
/// not one more.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::retry::{RetryBudget, RetryLayer};
///
/// // At most 10% extra load, and 5 retries a second whatever the traffic.
/// let budget = RetryBudget::new(0.1, 5, Duration::from_secs(1)).unwrap();
/// let layer = RetryLayer::builder().budget(budget.clone()).build().unwrap();
/// # let _ = layer;
/// assert_eq!(budget.retries_left(), 5);
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    state: Arc<State>,
}

struct State {
    deposit: i64,
    /// The most nano-tokens that can be saved up.
    cap: i64,
    floor: u64,
    window: Duration,
    origin: Instant,
    /// Nano-tokens earned by requests and not yet spent.
    earned: AtomicI64,
    /// The floor's word (see `LEFT`): retries left from this window's floor, the windows that
    /// drew on it with no call succeeding since (at `PAUSE_AFTER` the floor is paused), and
    /// whether a call succeeded since the window rolled.
    floor_word: AtomicU64,
    /// The window (counted from `origin`) that the floor's word belongs to.
    current_window: AtomicU64,
}

impl Default for RetryBudget {
    /// 20% of recent requests plus 10 retries a second.
    fn default() -> Self {
        RetryBudget::build(0.2, 10, Duration::from_secs(1))
    }
}

impl RetryBudget {
    /// A budget of `ratio` retries per request (`0.0..=1000.0`) plus `floor` retries per
    /// `window` (which must be longer than zero).
    pub fn new(ratio: f64, floor: u32, window: Duration) -> Result<Self, ConfigError> {
        if !ratio.is_finite() {
            return Err(ConfigError::new(
                "budget.ratio",
                ConfigProblem::NotFinite(ratio),
            ));
        }
        if !(0.0..=1000.0).contains(&ratio) {
            return Err(ConfigError::new(
                "budget.ratio",
                ConfigProblem::OutOfRange {
                    value: ratio,
                    min: 0.0,
                    max: 1000.0,
                },
            ));
        }
        if window.is_zero() {
            return Err(ConfigError::new(
                "budget.window",
                ConfigProblem::ZeroDuration,
            ));
        }
        Ok(RetryBudget::build(ratio, floor, window))
    }

    /// A budget with this one's settings and nothing earned or spent: the model of a budget
    /// per key.
    /// Whether `other` earns, saves and floors retries as this budget does.
    pub(crate) fn same_settings(&self, other: &RetryBudget) -> bool {
        let (a, b) = (&*self.state, &*other.state);
        (a.deposit, a.cap, a.floor, a.window) == (b.deposit, b.cap, b.floor, b.window)
    }

    pub(crate) fn fresh(&self) -> Self {
        let state = &*self.state;
        RetryBudget {
            state: Arc::new(State {
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_word: AtomicU64::new(state.floor),
                current_window: AtomicU64::new(0),
                ..*state
            }),
        }
    }

    fn build(ratio: f64, floor: u32, window: Duration) -> Self {
        let deposit = deposit_for(ratio);
        RetryBudget {
            state: Arc::new(State {
                deposit,
                cap: saving_cap(deposit),
                floor: u64::from(floor),
                window,
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_word: AtomicU64::new(u64::from(floor)),
                current_window: AtomicU64::new(0),
            }),
        }
    }

    /// Records one request. Called by the retry layer for each call, not for each attempt.
    ///
    /// A budget that is already full (the deposits of the last 1000 requests, unspent) takes
    /// no more, and finding that out is a plain load: the success path of a healthy service
    /// pays no atomic read-modify-write for its budget.
    #[inline]
    pub fn deposit(&self) {
        let state = &*self.state;
        if state.earned.load(Ordering::Relaxed) < state.cap {
            state.earned.fetch_add(state.deposit, Ordering::Relaxed);
        }
    }

    /// Records that a call succeeded: the floor, if paused, comes back at the next window.
    /// The retry layer calls it for every success; code that uses a budget by hand (`deposit`,
    /// `withdraw`) should too, or its floor pauses after two windows of retries. A plain load
    /// once the window has seen a success.
    #[inline]
    pub fn succeeded(&self) {
        let word = &self.state.floor_word;
        if word.load(Ordering::Relaxed) & SUCCEEDED == 0 {
            word.fetch_or(SUCCEEDED, Ordering::AcqRel);
        }
    }

    /// Takes one retry from the budget, earned tokens first; `false` when there is none left.
    /// Reads the clock, to apply the decay of the windows that passed.
    pub fn withdraw(&self) -> bool {
        self.withdraw_at(Instant::now())
    }

    /// [`withdraw`](Self::withdraw) with the clock already read.
    pub(crate) fn withdraw_at(&self, now: Instant) -> bool {
        self.take_at(now).is_some()
    }

    /// [`withdraw_at`](Self::withdraw_at), saying which store the retry came from.
    pub(crate) fn take_at(&self, now: Instant) -> Option<Taken> {
        let state = &*self.state;
        self.roll_window(now);
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
    pub(crate) fn give_back(&self, taken: Taken) {
        let state = &*self.state;
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
    pub fn retries_left(&self) -> u64 {
        let earned = self.state.earned.load(Ordering::Relaxed).max(0) / TOKEN;
        let floor = self.state.floor_word.load(Ordering::Relaxed) & LEFT;
        earned as u64 + floor
    }

    /// Starts a new window when `now` is past the current one: refills the floor (unless it is
    /// paused) and halves the earned tokens once per window that passed.
    fn roll_window(&self, now: Instant) {
        let state = &*self.state;
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
fn saving_cap(deposit: i64) -> i64 {
    if deposit == 0 {
        0
    } else {
        deposit.saturating_mul(SAVED_REQUESTS).max(TOKEN)
    }
}

/// The nano-tokens one request deposits: `ratio` of a token, never more. A ratio written with at
/// most nine decimals (`0.0015`) is a whole number of nano-tokens that `f64` holds a hair off;
/// it is rounded to it. Any finer ratio is rounded down, so that the documented bound holds.
fn deposit_for(ratio: f64) -> i64 {
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

/// Which store of a budget a retry was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Earned,
    Floor,
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

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &(self.state.deposit as f64 / TOKEN as f64))
            .field("floor", &self.state.floor)
            .field("window", &self.state.window)
            .field("retries_left", &self.retries_left())
            .finish()
    }
}

#[cfg(test)]
mod tests;

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

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ConfigError, ConfigProblem};

/// Billionths of a token per retry: deposits are fractions of a token, kept as integers.
const TOKEN: i64 = 1_000_000_000;

/// Windows drawing on the floor with no success since, after which the floor pauses.
const PAUSE_AFTER: u32 = 2;

/// Earned tokens are capped at the deposits of this many requests (or one whole token, if that
/// is more).
const SAVED_REQUESTS: i64 = 1000;

/// Retries allowed as a share of recent requests plus a floor, shared by every clone.
///
/// Under a sustained 100% failure the inner service sees at most
/// `(1 + ratio) × requests + 3 × floor` calls, however many attempts each request may make:
/// the floor of the window in which the failure began and of the next two, then none until a
/// call succeeds. The bound is exact: a ratio is kept to the billionth (rounded down past that), so
/// `0.0015` allows 15 retries per 10 000 requests, not one more.
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
    floor: i64,
    window: Duration,
    origin: Instant,
    /// Nano-tokens earned by requests and not yet spent.
    earned: AtomicI64,
    /// Retries left from this window's floor.
    floor_left: AtomicI64,
    /// The window (counted from `origin`) that `floor_left` belongs to.
    current_window: AtomicU64,
    /// A call succeeded since the window last rolled.
    succeeded: AtomicBool,
    /// Windows that drew on the floor with no call succeeding since; at `PAUSE_AFTER` the
    /// floor is paused.
    strikes: AtomicU32,
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
    pub(crate) fn fresh(&self) -> Self {
        let state = &*self.state;
        RetryBudget {
            state: Arc::new(State {
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_left: AtomicI64::new(state.floor),
                current_window: AtomicU64::new(0),
                succeeded: AtomicBool::new(false),
                strikes: AtomicU32::new(0),
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
                floor: i64::from(floor),
                window,
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_left: AtomicI64::new(i64::from(floor)),
                current_window: AtomicU64::new(0),
                succeeded: AtomicBool::new(false),
                strikes: AtomicU32::new(0),
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
        let flag = &self.state.succeeded;
        if !flag.load(Ordering::Relaxed) {
            flag.store(true, Ordering::Relaxed);
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
        } else if take(&state.floor_left, 1) {
            Some(Taken::Floor)
        } else {
            None
        }
    }

    /// Gives back a retry that put no load on the dependency (a hedge that an open circuit
    /// turned away), to the store it came from and never past that store's cap.
    pub(crate) fn give_back(&self, taken: Taken) {
        let state = &*self.state;
        let (counter, amount, cap) = match taken {
            Taken::Earned => (&state.earned, TOKEN, state.cap),
            Taken::Floor => (&state.floor_left, 1, state.floor),
        };
        // The closure always returns Some, so this cannot fail.
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            Some(left.saturating_add(amount).min(cap.max(left)))
        });
    }

    /// Whole retries available now, ignoring the decay that the next withdrawal may apply.
    pub fn retries_left(&self) -> u64 {
        let earned = self.state.earned.load(Ordering::Relaxed).max(0) / TOKEN;
        let floor = self.state.floor_left.load(Ordering::Relaxed).max(0);
        (earned + floor) as u64
    }

    /// Starts a new window when `now` is past the current one: refills the floor (unless it is
    /// paused) and halves the earned tokens once per window that passed.
    fn roll_window(&self, now: Instant) {
        let state = &*self.state;
        let elapsed = now.saturating_duration_since(state.origin).as_nanos();
        let window = u64::try_from(elapsed / state.window.as_nanos()).unwrap_or(u64::MAX);
        let seen = state.current_window.load(Ordering::Acquire);
        if window <= seen
            || state
                .current_window
                .compare_exchange(seen, window, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        // Only the thread that moved the window gets here, so the flags are its alone to update.
        let drawn = state.floor_left.load(Ordering::Acquire) < state.floor;
        let strikes = if state.succeeded.swap(false, Ordering::AcqRel) {
            0
        } else {
            let strikes = state.strikes.load(Ordering::Acquire);
            strikes + u32::from(drawn && strikes < PAUSE_AFTER)
        };
        state.strikes.store(strikes, Ordering::Release);
        let floor = if strikes >= PAUSE_AFTER {
            0
        } else {
            state.floor
        };
        state.floor_left.store(floor, Ordering::Release);
        let halvings = u32::try_from(window - seen).unwrap_or(u32::MAX).min(63);
        // The closure always returns Some, so this cannot fail.
        let _ = state
            .earned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |earned| {
                Some(earned >> halvings)
            });
    }
}

/// The nano-tokens one request deposits: `ratio` of a token, never more. A ratio written with at
/// most nine decimals (`0.0015`) is a whole number of nano-tokens that `f64` holds a hair off;
/// it is rounded to it. Any finer ratio is rounded down, so that the documented bound holds.
/// The most nano-tokens a budget saves: the deposits of the last `SAVED_REQUESTS` requests, or
/// one whole retry if that is less (a ratio under 1/1000 would otherwise never earn one).
fn saving_cap(deposit: i64) -> i64 {
    if deposit == 0 {
        0
    } else {
        deposit.saturating_mul(SAVED_REQUESTS).max(TOKEN)
    }
}

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

/// Subtracts `amount` from `counter` if it holds at least that much.
/// Which store of a budget a retry was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Earned,
    Floor,
}

fn take(counter: &AtomicI64, amount: i64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            (left >= amount).then_some(left - amount)
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
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_plus_the_floor() {
        let budget = RetryBudget::new(0.5, 2, Duration::from_secs(3600)).unwrap();
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(budget.retries_left(), 7);
        let granted = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 7);
        assert_eq!(budget.retries_left(), 0);
    }

    #[test]
    fn a_zero_ratio_leaves_only_the_floor() {
        let budget = RetryBudget::new(0.0, 1, Duration::from_secs(3600)).unwrap();
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_refills_and_earnings_decay_per_window() {
        let budget = RetryBudget::new(1.0, 1, Duration::from_secs(1)).unwrap();
        for _ in 0..8 {
            budget.deposit();
        }
        // Spend the floor's retry last: earned tokens go first.
        assert_eq!((0..9).filter(|_| budget.withdraw()).count(), 9);
        assert!(!budget.withdraw());
        budget.succeeded();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(budget.withdraw(), "a new window brings the floor back");
        assert!(!budget.withdraw());
        for _ in 0..8 {
            budget.deposit();
        }
        budget.succeeded();
        tokio::time::advance(Duration::from_secs(2)).await;
        // Two windows later the 8 earned tokens are down to 2, plus the floor.
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_floor_spent_without_a_success_pauses_until_one() {
        let second = Duration::from_secs(1);
        let budget = RetryBudget::new(0.0, 2, second).unwrap();
        // A quiet service keeps its floor, window after window.
        tokio::time::advance(second * 3).await;
        assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
        // One window drew on the floor and nothing succeeded: the floor is still there.
        tokio::time::advance(second).await;
        assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
        // Two did: no floor in the next ones.
        for _ in 0..3 {
            tokio::time::advance(second).await;
            assert!(!budget.withdraw());
        }
        budget.succeeded();
        tokio::time::advance(second).await;
        assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
        // Spent beside a success, the floor comes back.
        budget.succeeded();
        tokio::time::advance(second).await;
        assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = RetryBudget::new(f64::NAN, 1, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.field(), "budget.ratio");
        let err = RetryBudget::new(-0.1, 1, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.field(), "budget.ratio");
        let err = RetryBudget::new(0.1, 1, Duration::ZERO).unwrap_err();
        assert_eq!(err.field(), "budget.window");
    }
}

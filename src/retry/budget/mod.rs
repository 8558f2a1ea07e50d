//! A retry budget, of one of two kinds: retries as a share of recent requests, plus a small
//! floor ([`RetryBudget::new`], what this page describes and the presets use), or gRFC A6's
//! token bucket ([`RetryBudget::tokens`], which a gRPC service config's `retryThrottling`
//! asks for; its doc says how it counts).
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
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ConfigError, ConfigProblem};

mod share;
mod tokens;

use self::share::{State, TOKEN, deposit_for, saving_cap};
use self::tokens::Tokens;

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
    kind: Arc<Kind>,
}

/// What a budget counts: retries as a share of requests (this module's), or gRPC's token
/// bucket ([`tokens`]). Behind one `Arc`, so that a budget is a pointer, as the success path
/// that copies it wants.
enum Kind {
    Share(State),
    Tokens(Tokens),
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

    /// gRPC's retry throttling (gRFC A6) as a budget: a bucket of `max_tokens` (`1..=1000`)
    /// that each failed attempt with a retryable outcome empties by one token and each
    /// successful call fills by `token_ratio` (above zero; digits past the third decimal are
    /// dropped, as A6 says), never past the top. Nothing is retried, and no hedge is sent,
    /// while it holds half of `max_tokens` or less. Counted in thousandths, in one atomic word.
    /// The gRPC preset keeps one per server name, as A6 does, when a service config's
    /// `retryThrottling` asks for it.
    ///
    /// ```
    /// use tower_tenacity::retry::RetryBudget;
    ///
    /// let budget = RetryBudget::tokens(10, 0.1).unwrap();
    /// assert_eq!(budget.retries_left(), 4); // 10 → 6 tokens, each above the threshold of 5
    /// assert_eq!(RetryBudget::tokens(0, 0.1).unwrap_err().field(), "budget.max_tokens");
    /// assert!(RetryBudget::tokens(10, 0.0004).is_err()); // 0 thousandths
    /// ```
    pub fn tokens(max_tokens: u32, token_ratio: f64) -> Result<Self, ConfigError> {
        if max_tokens == 0 || max_tokens > 1000 {
            let problem = ConfigProblem::OutOfRange {
                value: f64::from(max_tokens),
                min: 1.0,
                max: 1000.0,
            };
            return Err(ConfigError::new("budget.max_tokens", problem));
        }
        if !token_ratio.is_finite() {
            let problem = ConfigProblem::NotFinite(token_ratio);
            return Err(ConfigError::new("budget.token_ratio", problem));
        }
        let ratio = tokens::thousandths(token_ratio.max(0.0));
        if ratio == 0 {
            let problem = ConfigProblem::OutOfRange {
                value: token_ratio,
                min: 0.001,
                max: f64::INFINITY,
            };
            return Err(ConfigError::new("budget.token_ratio", problem));
        }
        let bucket = Tokens::new(max_tokens, ratio);
        Ok(RetryBudget {
            kind: Arc::new(Kind::Tokens(bucket)),
        })
    }

    /// Whether `other` counts retries as this budget does (the same kind and settings).
    pub(crate) fn same_settings(&self, other: &RetryBudget) -> bool {
        match (&*self.kind, &*other.kind) {
            (Kind::Share(a), Kind::Share(b)) => {
                (a.deposit, a.cap, a.floor, a.window) == (b.deposit, b.cap, b.floor, b.window)
            }
            (Kind::Tokens(a), Kind::Tokens(b)) => a.same_settings(b),
            _ => false,
        }
    }

    /// A budget with this one's settings and nothing earned or spent: the model of a budget
    /// per key.
    pub(crate) fn fresh(&self) -> Self {
        let kind = match &*self.kind {
            Kind::Share(state) => Kind::Share(State {
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_word: AtomicU64::new(state.floor),
                current_window: AtomicU64::new(0),
                ..*state
            }),
            Kind::Tokens(bucket) => Kind::Tokens(bucket.fresh()),
        };
        RetryBudget {
            kind: Arc::new(kind),
        }
    }

    fn build(ratio: f64, floor: u32, window: Duration) -> Self {
        let deposit = deposit_for(ratio);
        RetryBudget {
            kind: Arc::new(Kind::Share(State {
                deposit,
                cap: saving_cap(deposit),
                floor: u64::from(floor),
                window,
                origin: Instant::now(),
                earned: AtomicI64::new(0),
                floor_word: AtomicU64::new(u64::from(floor)),
                current_window: AtomicU64::new(0),
            })),
        }
    }

    /// Records one request. Called by the retry layer for each call, not for each attempt.
    ///
    /// A budget that is already full (the deposits of the last 1000 requests, unspent) takes
    /// no more, and finding that out is a plain load: the success path of a healthy service
    /// pays no atomic read-modify-write for its budget. A token bucket takes nothing per
    /// request.
    #[inline]
    pub fn deposit(&self) {
        if let Kind::Share(state) = &*self.kind {
            state.deposit();
        }
    }

    /// Records that a call succeeded: the floor, if paused, comes back at the next window; a
    /// token bucket gains its ratio. The retry layer calls it for every success; code that uses
    /// a budget by hand (`deposit`, `withdraw`) should too, or its floor pauses after two
    /// windows of retries. A plain load once the window has seen a success (or the bucket is
    /// full).
    #[inline]
    pub fn succeeded(&self) {
        match &*self.kind {
            Kind::Share(state) => state.succeeded(),
            Kind::Tokens(bucket) => bucket.succeeded(),
        }
    }

    /// Records an attempt that failed with an outcome that would be retried, whether or not it
    /// is: a token bucket loses a token (gRFC A6 counts every such failure); a share of
    /// requests counts only the retries it gives. The retry layer calls it for every such
    /// attempt the dependency answered; code that uses a token bucket by hand should too.
    pub fn failed(&self) {
        if let Kind::Tokens(bucket) = &*self.kind {
            bucket.failed();
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

    /// [`withdraw_at`](Self::withdraw_at), saying which store the retry came from (a token
    /// bucket's failures were counted already: it only says whether it is above its threshold).
    pub(crate) fn take_at(&self, now: Instant) -> Option<Taken> {
        match &*self.kind {
            Kind::Share(state) => state.take_at(now),
            Kind::Tokens(bucket) => bucket.allows().then_some(Taken::Earned),
        }
    }

    /// Gives back a retry that put no load on the dependency (a hedge that an open circuit
    /// turned away), to the store it came from and never past that store's cap.
    pub(crate) fn give_back(&self, taken: Taken) {
        if let Kind::Share(state) = &*self.kind {
            state.give_back(taken);
        }
    }

    /// Whole retries available now, ignoring the decay that the next withdrawal may apply; for
    /// a token bucket, the failures in a row that may each still be retried.
    pub fn retries_left(&self) -> u64 {
        match &*self.kind {
            Kind::Share(state) => state.retries_left(),
            Kind::Tokens(bucket) => bucket.retries_left(),
        }
    }
}

/// Which store of a budget a retry was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Earned,
    Floor,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::Share(state) => f
                .debug_struct("RetryBudget")
                .field("ratio", &(state.deposit as f64 / TOKEN as f64))
                .field("floor", &state.floor)
                .field("window", &state.window)
                .field("retries_left", &self.retries_left())
                .finish(),
            Kind::Tokens(bucket) => f
                .debug_struct("RetryBudget")
                .field("max_tokens", &bucket.max_tokens())
                .field("token_ratio", &bucket.ratio())
                .field("thousandths_left", &bucket.thousandths())
                .finish(),
        }
    }
}

#[cfg(test)]
impl RetryBudget {
    /// The share-of-requests count of a budget made by `new`, for the tests.
    fn share(&self) -> &State {
        match &*self.kind {
            Kind::Share(state) => state,
            Kind::Tokens(_) => panic!("a token bucket"),
        }
    }
}

#[cfg(test)]
mod tests;

//! How a [`Deadline`](super::Deadline) tells the layers inside it how much time is left.
//!
//! The deadline is carried beside the request rather than in it, so that it works for any
//! request type: while a `Deadline` future polls (or calls) the service inside it, a thread-local
//! slot holds the current budget, and a retry layer underneath reads it synchronously. It is the
//! same idea as a tokio task-local, kept to a `Copy` value in a `Cell` so that entering the scope
//! costs two small copies and no allocation, and so that the inside can write back the attempt it
//! is on, which the deadline's error then reports.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Attempt;

/// What the innermost enclosing deadline knows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Budget {
    /// The earliest deadline already fixed in time.
    pub(crate) fixed: Option<Instant>,
    /// A budget whose clock has not started yet: its deadline is "now + this" at whatever moment
    /// it is asked. A deadline starts its clock only once its inner future is pending, so that
    /// a call that completes at once costs no clock read.
    pub(crate) unstarted: Option<Duration>,
    /// The attempt a retry layer inside is on.
    pub(crate) attempt: Option<Attempt>,
}

impl Budget {
    fn within(self, outer: Budget) -> Budget {
        fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Budget {
            fixed: earliest(self.fixed, outer.fixed),
            unstarted: earliest(self.unstarted, outer.unstarted),
            attempt: self.attempt.or(outer.attempt),
        }
    }

    fn deadline(&self, now: Instant) -> Option<Instant> {
        let unstarted = self.unstarted.map(|budget| now + budget);
        match (self.fixed, unstarted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// Runs `f` with `budget` as the current one (tightened by any enclosing one) and returns what
/// `f` returned with the budget as `f` left it, which carries the attempt a retry recorded.
pub(crate) fn enter<R>(budget: Budget, f: impl FnOnce() -> R) -> (R, Budget) {
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let inner = CURRENT.get();
            // The outer deadline learns the attempt too; the rest of it is as it was.
            let outer = self.0.map(|outer| Budget {
                attempt: inner.and_then(|b| b.attempt).or(outer.attempt),
                ..outer
            });
            CURRENT.set(outer);
        }
    }
    let outer = CURRENT.get();
    let current = match outer {
        Some(outer) => budget.within(outer),
        None => budget,
    };
    CURRENT.set(Some(current));
    let restore = Restore(outer);
    let out = f();
    let after = CURRENT.get().unwrap_or(current);
    drop(restore);
    (out, after)
}

/// Records the attempt that a retry layer is on, for the enclosing deadline's error.
pub(crate) fn record_attempt(attempt: Attempt) {
    CURRENT.with(|slot| {
        if let Some(mut budget) = slot.get() {
            budget.attempt = Some(attempt);
            slot.set(Some(budget));
        }
    });
}

/// The deadline of the enclosing [`Deadline`](super::Deadline) layers, if there is one.
///
/// Call it from a service's `call` or a future's `poll` that runs inside a `Deadline`; anywhere
/// else it returns `None`. A deadline whose clock has not started yet (its future has not been
/// pending) counts from `now`.
pub fn current_deadline(now: Instant) -> Option<Instant> {
    CURRENT.get().and_then(|budget| budget.deadline(now))
}

/// The time left before the enclosing deadline, if there is one; zero once it has passed.
///
/// Reads the clock. Layers that forward the budget to a server (a `grpc-timeout` header, say)
/// call this when they send each attempt.
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::timeout::{remaining, DeadlineLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(remaining()) });
/// let mut svc = DeadlineLayer::new(Duration::from_secs(5)).layer(svc);
/// let left = svc.ready().await.unwrap().call(()).await.unwrap();
/// assert!(left.is_some_and(|left| left <= Duration::from_secs(5)));
/// # }
/// ```
pub fn remaining() -> Option<Duration> {
    let now = Instant::now();
    current_deadline(now).map(|deadline| deadline.saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_budgets_take_the_tighter_and_restore_the_outer() {
        let now = Instant::now();
        let outer = Budget {
            fixed: Some(now + Duration::from_secs(10)),
            ..Budget::default()
        };
        let inner = Budget {
            unstarted: Some(Duration::from_secs(3)),
            ..Budget::default()
        };
        let ((), seen) = enter(outer, || {
            assert_eq!(current_deadline(now), Some(now + Duration::from_secs(10)));
            let ((), inner_seen) = enter(inner, || {
                assert_eq!(current_deadline(now), Some(now + Duration::from_secs(3)));
                record_attempt(Attempt { number: 2, max: 3 });
            });
            assert_eq!(inner_seen.attempt, Some(Attempt { number: 2, max: 3 }));
            assert_eq!(current_deadline(now), Some(now + Duration::from_secs(10)));
        });
        assert_eq!(seen.attempt, Some(Attempt { number: 2, max: 3 }));
        assert_eq!(current_deadline(now), None);
    }

    #[test]
    fn a_panic_inside_restores_the_outer_budget() {
        let budget = Budget {
            unstarted: Some(Duration::from_secs(1)),
            ..Budget::default()
        };
        let caught = std::panic::catch_unwind(|| enter(budget, || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(current_deadline(Instant::now()), None);
    }
}

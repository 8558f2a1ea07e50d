//! The call context: what the owners of a call's values tell the layers below them, and
//! nothing else. A [`DeadlineLayer`](crate::deadline::DeadlineLayer)'s service (or a preset's
//! edge, or a server's timeout layer) owns the call's deadline, a retry layer owns the attempt
//! it is on (and a server layer that reads the caller's attempt, the handler's); each enters a
//! scope with its value while it calls (or polls) the service inside, and layers below read it:
//! the attempt timeout caps itself at the deadline, a `grpc-timeout` header carries what is
//! left, an attempt header says which attempt this is, and your own code asks for the time left
//! with [`remaining`] (and for the attempt with [`attempt`]). Nothing is written back up: what a
//! layer below learns reaches the layers above only in the response or the error it returns.
//!
//! It is a tokio task-local in shape, cut down to two thread-local `Cell`s of plain words (the
//! deadlines in force, the attempt) so that entering it on every poll costs a few moves and no
//! allocation. It is seen in the task that calls and polls, not across `tokio::spawn` or from a
//! `Buffer`'s worker: put a `Buffer` outside the deadline's owner, not between it and the
//! layers that read it.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Attempt;

/// The bound a deadline puts on what runs inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    /// A budget whose clock has not started: the deadline is "now + this" whenever it is asked.
    /// A deadline starts its clock only once its inner future is pending, so that a call that
    /// completes at once costs no clock read.
    Unstarted(Duration),
    /// A deadline fixed in time, and the budget it was fixed from (for the error that says it
    /// passed).
    Fixed(Instant, Duration),
}

/// `Bounds::unstarted` when no deadline without a start is in force.
const NO_BUDGET: u64 = u64::MAX;

/// The deadlines in force for the code running now.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// The tightest unstarted budget, in nanoseconds.
    unstarted: u64,
    /// The earliest fixed deadline, and its budget.
    fixed: Option<(Instant, Duration)>,
}

// Two cells, one per owner, each read and written whole: a retry entering its attempt on every
// call touches one word.
thread_local! {
    static BOUNDS: Cell<Bounds> = const { Cell::new(Bounds { unstarted: NO_BUDGET, fixed: None }) };
    /// The attempt being sent, packed as `number << 32 | max`; 0 for none.
    static ATTEMPT: Cell<u64> = const { Cell::new(0) };
}

/// Puts the enclosing bounds back, even if what ran inside panicked.
struct RestoreBounds(Bounds);

impl Drop for RestoreBounds {
    #[inline]
    fn drop(&mut self) {
        BOUNDS.set(self.0);
    }
}

/// Puts the enclosing attempt back when dropped, even if what ran inside panicked.
#[must_use = "the attempt is in scope only until this is dropped"]
pub(crate) struct RestoreAttempt(u64);

impl Drop for RestoreAttempt {
    #[inline]
    fn drop(&mut self) {
        ATTEMPT.set(self.0);
    }
}

/// Runs `f` under `bound`, tightened by any enclosing one: for a deadline's owner, while it
/// calls or polls what is inside it.
#[inline]
pub(crate) fn enter<R>(bound: Bound, f: impl FnOnce() -> R) -> R {
    let outer = BOUNDS.get();
    let mut bounds = outer;
    match bound {
        Bound::Unstarted(budget) => {
            let nanos = u64::try_from(budget.as_nanos()).unwrap_or(NO_BUDGET - 1);
            bounds.unstarted = bounds.unstarted.min(nanos);
        }
        Bound::Fixed(at, budget) => {
            if bounds.fixed.is_none_or(|(outer, _)| at < outer) {
                bounds.fixed = Some((at, budget));
            }
        }
    }
    BOUNDS.set(bounds);
    let _restore = RestoreBounds(outer);
    f()
}

/// Makes `attempt` the attempt being sent until the returned guard is dropped: for a retry
/// layer, while it calls the service inside. A guard rather than a closure, so that the call
/// it scopes is inlined with the rest of the retry's `call`, and its future built in place.
#[inline(always)]
pub(crate) fn enter_attempt(attempt: Attempt) -> RestoreAttempt {
    let packed = (u64::from(attempt.number) << 32) | u64::from(attempt.max);
    RestoreAttempt(ATTEMPT.replace(packed))
}

/// `now + budget`, or an instant too far off to matter when that overflows.
#[inline]
pub(crate) fn after(now: Instant, budget: Duration) -> Instant {
    now.checked_add(budget)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

/// The attempt a retry layer around this call is sending, read from a layer inside it (to tell
/// the server, in a header, which attempt this is).
#[inline]
pub(crate) fn current_attempt() -> Option<Attempt> {
    let packed = ATTEMPT.get();
    (packed != 0).then_some(Attempt {
        number: (packed >> 32) as u32,
        max: packed as u32,
    })
}

/// The deadline in force and the budget it came from, if there is one; a deadline whose clock
/// has not started yet counts from `now`.
#[inline]
pub(crate) fn current_bound(now: Instant) -> Option<(Instant, Duration)> {
    let scope = BOUNDS.get();
    let unstarted = match scope.unstarted {
        NO_BUDGET => None,
        nanos => {
            let budget = Duration::from_nanos(nanos);
            Some((after(now, budget), budget))
        }
    };
    match (scope.fixed, unstarted) {
        (Some(fixed), Some(unstarted)) if unstarted.0 < fixed.0 => Some(unstarted),
        (Some(fixed), _) => Some(fixed),
        (None, unstarted) => unstarted,
    }
}

/// The deadline of the enclosing deadlines, if there is one: `None` outside them. A deadline
/// whose clock has not started yet (its future has not been pending) counts from `now`.
pub(crate) fn current_deadline(now: Instant) -> Option<Instant> {
    current_bound(now).map(|(at, _)| at)
}

/// Whether the enclosing deadline has passed, so that nothing may start under it: a retry asks
/// just before it sends an attempt. Reads the clock only under a deadline whose clock has
/// started.
#[inline]
pub(crate) fn deadline_passed() -> bool {
    let scope = BOUNDS.get();
    scope.unstarted == 0
        || scope
            .fixed
            .is_some_and(|(deadline, _)| Instant::now() >= deadline)
}

/// The attempt the code running now is for, counting from 1. In the layers a retry layer calls,
/// while it calls them (their `call`, not the polls of their futures), the attempt it is sending.
/// In a server's handler, while it is called and polled, the attempt its caller said this
/// request is, as `ServerTimeoutLayer::attempt_header` (HTTP) or `GrpcDeadlineLayer`
/// (`grpc-previous-rpc-attempts`) read it: so a future polled in a handler sees the handler's
/// attempt, not that of a retry layer it goes through. `None` where nobody said: a first
/// attempt, from a caller that sends the number on retries only (this crate's presets do).
pub fn attempt() -> Option<u32> {
    current_attempt().map(|attempt| attempt.number)
}

/// Enters a caller's attempt number, read from a request by a server layer, for the handler:
/// the caller does not say how many it may make.
#[cfg(feature = "http")]
pub(crate) fn enter_callers_attempt(number: Option<u32>) -> Option<RestoreAttempt> {
    number.map(|number| enter_attempt(Attempt { number, max: 0 }))
}

/// The time left before the enclosing deadline, if there is one; zero once it has passed.
///
/// Reads the clock. Layers that forward the budget to a server (a `grpc-timeout` header, say)
/// call this when they send each attempt.
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::context::remaining;
/// use tower_tenacity::deadline::DeadlineLayer;
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
    fn nested_bounds_take_the_tighter_and_restore_the_outer() {
        let now = Instant::now();
        let ten = Duration::from_secs(10);
        let outer = Bound::Fixed(now + ten, ten);
        enter(outer, || {
            assert_eq!(current_bound(now), Some((now + ten, ten)));
            let three = Duration::from_secs(3);
            enter(Bound::Unstarted(three), || {
                assert_eq!(current_bound(now), Some((now + three, three)));
            });
            assert_eq!(current_deadline(now), Some(now + ten));
            let looser = Bound::Fixed(now + 2 * ten, 2 * ten);
            enter(looser, || {
                assert_eq!(current_deadline(now), Some(now + ten));
            });
        });
        assert_eq!(current_deadline(now), None);
    }

    #[test]
    fn an_attempt_is_seen_inside_and_not_after() {
        let second = Attempt { number: 2, max: 3 };
        {
            let _attempt = enter_attempt(second);
            assert_eq!(current_attempt(), Some(second));
            let bound = Bound::Unstarted(Duration::from_secs(1));
            enter(bound, || assert_eq!(current_attempt(), Some(second)));
        }
        assert_eq!(current_attempt(), None, "nothing flows back up");
        let caught = std::panic::catch_unwind(|| {
            let _attempt = enter_attempt(second);
            panic!("boom");
        });
        assert!(caught.is_err());
        assert_eq!(current_attempt(), None, "nor after a panic");
    }

    #[test]
    fn a_panic_inside_restores_the_outer_scope() {
        let bound = Bound::Unstarted(Duration::from_secs(1));
        let caught = std::panic::catch_unwind(|| enter(bound, || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(current_deadline(Instant::now()), None);
    }
}

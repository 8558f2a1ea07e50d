//! The call context: what a [`Deadline`](crate::deadline::Deadline) tells the layers below it
//! (its bound, and through it the time left), and what a retry layer tells the layers around it
//! (the attempt it is on).
//!
//! It is carried beside the request rather than in it, so that it works for any request type:
//! while a deadline's future polls (or calls) the service inside it, a few thread-local cells
//! hold the bound, and a layer underneath reads them synchronously. It is the idea of a tokio
//! task-local, cut down to word-sized `Cell`s so that entering it on every poll costs a handful
//! of moves and no allocation, and so that the inside can write back the attempt it is on, which
//! the deadline's error then reports. It is seen in the task that calls and polls, not across
//! `tokio::spawn` or from a `Buffer`'s worker (see
//! [`CarryDeadlineLayer`](crate::http::CarryDeadlineLayer) for `http::Request`s).
//!
//! It also lets timers share: a deadline needs no timer of its own while a timer inside it
//! (an attempt timeout, a backoff) will wake the task first. A `Timer` says so each time it is
//! found pending, and takes it back when it is dropped armed; nothing else has to remember to.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::error::Attempt;

/// The bound a deadline puts on what runs inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    /// A budget whose clock has not started: the deadline is "now + this" whenever it is asked.
    /// A deadline starts its clock only once its inner future is pending, so that a call that
    /// completes at once costs no clock read.
    Unstarted(Duration),
    /// A deadline fixed in time.
    Fixed(Instant),
}

/// `UNSTARTED` when no deadline without a start is in force.
const NO_BUDGET: u64 = u64::MAX;

// One cell per field, each read and written whole: entering a scope on the hot path is a few
// plain moves of one word, and touches only the cell that its bound changes.
thread_local! {
    /// The tightest unstarted budget in force, in nanoseconds.
    static UNSTARTED: Cell<u64> = const { Cell::new(NO_BUDGET) };
    /// The earliest fixed deadline in force.
    static FIXED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The attempt a retry layer recorded last, packed as `number << 32 | max`; 0 for none.
    /// It is set on entering a scope and never restored: an enclosing deadline reads it after
    /// the inner one returns, and so learns the attempt too.
    static ATTEMPT: Cell<u64> = const { Cell::new(0) };
    /// What the timers below a deadline promise, gathered during one poll of its inner future.
    static COVER: Cell<Cover> = const { Cell::new(Cover::Nothing) };
    /// The clock, as something below a deadline read it during one poll of its inner future.
    static READ: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether something inside a deadline will wake its task before the deadline does.
///
/// A deadline needs no timer of its own while an attempt timeout or a backoff sleep inside it
/// ends earlier: that timer wakes the task first, and the deadline looks again then. Saving
/// the second timer saves a clock read, a timer-wheel insertion and its removal on every call
/// that is pending. Each timer that is pending at the end of a poll says when it ends
/// ([`cover`]); each one that is dropped while armed takes every promise of this poll back
/// ([`uncover`]), so that a layer in between that polls a timer and then drops it makes the
/// deadline arm its own timer rather than sleep through.
#[derive(Debug, Clone, Copy)]
enum Cover {
    /// No timer has said anything during this poll.
    Nothing,
    /// A timer that may have promised was dropped: trust nothing said before.
    Lost,
    /// A timer that is still armed will wake the task at this instant or before.
    At(Instant),
}

/// Tells an enclosing deadline that a timer armed by the caller, still pending, wakes the task
/// at `at`. Call it after polling the timer, when the caller returns `Pending`.
#[inline]
pub(crate) fn cover(at: Instant) {
    COVER.set(match COVER.get() {
        Cover::At(earlier) => Cover::At(earlier.min(at)),
        Cover::Nothing | Cover::Lost => Cover::At(at),
    });
}

/// Takes back the promises of this poll: a timer that may have called [`cover`] is dropped.
#[inline]
pub(crate) fn uncover() {
    COVER.set(Cover::Lost);
}

/// Tells an enclosing deadline that the clock read `now` during this poll (an attempt timer was
/// armed, say), so that a deadline that starts its clock in the same poll need not read it
/// again: the two instants are a few instructions apart.
#[inline]
pub(crate) fn clock_read(now: Instant) {
    READ.set(Some(now));
}

/// What a deadline learns from one poll of its inner future.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watched {
    /// When a timer inside promised to wake the task, if one did and none was dropped after it.
    pub(crate) covered: Option<Instant>,
    /// The clock, if something inside read it during the poll.
    pub(crate) read: Option<Instant>,
}

/// Runs `f` (a poll) and returns what the timers inside it said; what an enclosing deadline was
/// told is kept for it. A clock read is left for the enclosing deadline too, as it is as fresh
/// for that one's poll as for this one's.
#[inline]
pub(crate) fn watch<R>(f: impl FnOnce() -> R) -> (R, Watched) {
    let outer = COVER.replace(Cover::Nothing);
    READ.set(None);
    let out = f();
    let inner = COVER.replace(outer);
    let covered = match inner {
        Cover::At(at) => Some(at),
        Cover::Nothing | Cover::Lost => None,
    };
    (
        out,
        Watched {
            covered,
            read: READ.get(),
        },
    )
}

/// `now + budget`, or an instant too far off to matter when that overflows.
#[inline]
pub(crate) fn after(now: Instant, budget: Duration) -> Instant {
    now.checked_add(budget)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

#[inline]
fn pack(attempt: Option<Attempt>) -> u64 {
    attempt.map_or(0, |a| (u64::from(a.number) << 32) | u64::from(a.max))
}

#[inline]
fn unpack(packed: u64) -> Option<Attempt> {
    (packed != 0).then_some(Attempt {
        number: (packed >> 32) as u32,
        max: packed as u32,
    })
}

/// Runs `f` under `bound` (tightened by any enclosing one) with `attempt` as the attempt known
/// so far, and leaves in `attempt` what a retry layer inside moved it on to. (An out-parameter
/// rather than a tuple, so that `f`'s large future is not copied once more on the way out.)
#[inline]
pub(crate) fn enter<R>(bound: Bound, attempt: &mut Option<Attempt>, f: impl FnOnce() -> R) -> R {
    /// Puts the enclosing bound back, even if `f` panics.
    enum Restore {
        Unstarted(u64),
        Fixed(Option<Instant>),
    }
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            match *self {
                Restore::Unstarted(nanos) => UNSTARTED.set(nanos),
                Restore::Fixed(at) => FIXED.set(at),
            }
        }
    }
    let (restore, enclosed) = match bound {
        Bound::Unstarted(budget) => {
            let nanos = u64::try_from(budget.as_nanos()).unwrap_or(NO_BUDGET - 1);
            let outer = UNSTARTED.get();
            UNSTARTED.set(outer.min(nanos));
            let enclosed = attempt.is_none() && (outer != NO_BUDGET || FIXED.get().is_some());
            (Restore::Unstarted(outer), enclosed)
        }
        Bound::Fixed(at) => {
            let outer = FIXED.get();
            FIXED.set(Some(outer.map_or(at, |outer| outer.min(at))));
            let enclosed = attempt.is_none() && (outer.is_some() || UNSTARTED.get() != NO_BUDGET);
            (Restore::Fixed(outer), enclosed)
        }
    };
    // A deadline that knows no attempt yet inherits the enclosing one's; at the top, whatever
    // another task left in the cell is cleared.
    if !enclosed {
        ATTEMPT.set(pack(*attempt));
    }
    let out = f();
    drop(restore);
    *attempt = unpack(ATTEMPT.get());
    out
}

/// Runs `f` and leaves in `attempt` the attempt a retry layer inside it recorded last, if any
/// (else `attempt` is left as it was): for a layer outside retry that reports the attempt count
/// (on a response, in an error). An out-parameter, like [`enter`]'s, so that `f`'s large output
/// is not copied once more on the way out.
#[inline]
pub(crate) fn observe_attempt<R>(attempt: &mut Option<Attempt>, f: impl FnOnce() -> R) -> R {
    let outer = ATTEMPT.replace(0);
    let out = f();
    if let Some(seen) = unpack(ATTEMPT.replace(outer)) {
        *attempt = Some(seen);
    }
    out
}

/// The attempt a retry layer around this call is sending, read from a layer inside it (to tell
/// the server, in a header, which attempt this is).
#[inline]
pub fn current_attempt() -> Option<Attempt> {
    unpack(ATTEMPT.get())
}

/// Records the attempt that a retry layer is on, for the enclosing deadline's error. Outside a
/// deadline nobody reads it, and the next deadline entered overwrites it.
#[inline]
pub(crate) fn record_attempt(attempt: Attempt) {
    ATTEMPT.set(pack(Some(attempt)));
}

/// The deadline of the enclosing [`Deadline`](crate::deadline::Deadline) layers, if there is
/// one.
///
/// Call it from a service's `call` or a future's `poll` that runs inside a `Deadline`; anywhere
/// else it returns `None`. A deadline whose clock has not started yet (its future has not been
/// pending) counts from `now`.
pub fn current_deadline(now: Instant) -> Option<Instant> {
    let unstarted = match UNSTARTED.get() {
        NO_BUDGET => None,
        nanos => now.checked_add(Duration::from_nanos(nanos)),
    };
    match (FIXED.get(), unstarted) {
        (Some(fixed), Some(unstarted)) => Some(fixed.min(unstarted)),
        (fixed, unstarted) => fixed.or(unstarted),
    }
}

/// Whether the enclosing deadline has passed, so that nothing may start under it: a retry asks
/// just before it sends an attempt. A backoff that was to end before the deadline can wake at
/// it (timers fire on whole milliseconds), as can a service that turns ready late. Reads the
/// clock only under a deadline whose clock has started.
#[inline]
pub(crate) fn deadline_passed() -> bool {
    UNSTARTED.get() == 0
        || FIXED
            .get()
            .is_some_and(|deadline| Instant::now() >= deadline)
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

pin_project! {
    /// A timer that an enclosing deadline can count on: each time it is found pending it says
    /// when it will wake the task (so that the deadline arms no timer of its own while this one
    /// ends first), and when it is dropped armed it takes that back.
    #[derive(Debug)]
    pub(crate) struct Timer {
        #[pin]
        sleep: Sleep,
    }

    impl PinnedDrop for Timer {
        fn drop(_this: Pin<&mut Self>) {
            uncover();
        }
    }
}

impl Timer {
    /// A timer that fires at `deadline`.
    #[inline]
    pub(crate) fn at(deadline: Instant) -> Self {
        Timer {
            sleep: tokio::time::sleep_until(deadline),
        }
    }

    /// Ready once the timer has fired; while it has not, an enclosing deadline is told when it
    /// will.
    #[inline]
    pub(crate) fn poll_fired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.project().sleep;
        let deadline = sleep.deadline();
        match sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                cover(deadline);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_bounds_take_the_tighter_and_restore_the_outer() {
        let now = Instant::now();
        let first = Attempt { number: 1, max: 3 };
        let second = Attempt { number: 2, max: 3 };
        let outer = Bound::Fixed(now + Duration::from_secs(10));
        let mut seen = Some(first);
        enter(outer, &mut seen, || {
            assert_eq!(current_deadline(now), Some(now + Duration::from_secs(10)));
            let inner = Bound::Unstarted(Duration::from_secs(3));
            let mut inner_seen = None;
            enter(inner, &mut inner_seen, || {
                assert_eq!(current_deadline(now), Some(now + Duration::from_secs(3)));
                record_attempt(second);
            });
            assert_eq!(inner_seen, Some(second));
            assert_eq!(current_deadline(now), Some(now + Duration::from_secs(10)));
            let looser = Bound::Fixed(now + Duration::from_secs(20));
            enter(looser, &mut None, || {
                assert_eq!(current_deadline(now), Some(now + Duration::from_secs(10)));
            });
        });
        assert_eq!(seen, Some(second), "the outer deadline learns the attempt");
        assert_eq!(current_deadline(now), None);
    }

    #[test]
    fn a_clock_read_reaches_the_watches_around_it_and_no_later_one() {
        let now = Instant::now();
        let ((), outer) = watch(|| {
            let ((), inner) = watch(|| clock_read(now));
            assert_eq!(inner.read, Some(now));
        });
        assert_eq!(
            outer.read,
            Some(now),
            "as fresh for the enclosing deadline's poll"
        );
        let ((), later) = watch(|| ());
        assert_eq!(
            later.read, None,
            "a reading of an earlier poll is not taken for this one"
        );
    }

    #[test]
    fn a_panic_inside_restores_the_outer_bound() {
        let bound = Bound::Unstarted(Duration::from_secs(1));
        let caught = std::panic::catch_unwind(|| enter(bound, &mut None, || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(current_deadline(Instant::now()), None);
    }
}

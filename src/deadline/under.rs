//! The one piece every deadline-shaped future shares: run an inner future under a budget that
//! starts when it is first pending, with the budget in scope for what runs inside.
//!
//! [`DeadlineFuture`](super::DeadlineFuture) answers its expiry with an error; the server-side
//! layers ([`ServerTimeoutLayer`](crate::http::ServerTimeoutLayer), `GrpcDeadlineLayer`) answer
//! with a response. All of them are this, plus what they answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::context::{Bound, after, clock_read, cover, enter, observe_attempt, uncover, watch};
use crate::error::{Attempt, BoxError, Error, TimeoutScope};

pin_project! {
    /// `inner` under a budget; `None` runs it as it is.
    #[derive(Debug)]
    pub(crate) struct UnderDeadline<F> {
        #[pin]
        inner: F,
        budget: Option<Duration>,
        // Fixed on the first poll that finds `inner` pending.
        deadline: Option<Instant>,
        // Armed on the first pending poll where nothing inside will wake the task before the
        // deadline. Boxed: most calls never need it.
        sleep: Option<Pin<Box<Sleep>>>,
    }

    impl<F> PinnedDrop for UnderDeadline<F> {
        fn drop(this: Pin<&mut Self>) {
            // It may have told an enclosing deadline that it would wake the task.
            if this.deadline.is_some() {
                uncover();
            }
        }
    }
}

impl<F> UnderDeadline<F> {
    /// Calls `call` (which makes `inner`) with the budget in scope, so that a layer inside sees
    /// it from its own `call` on; `attempt` is left as a retry inside recorded it.
    #[inline]
    pub(crate) fn call(
        budget: Option<Duration>,
        attempt: &mut Option<Attempt>,
        call: impl FnOnce() -> F,
    ) -> Self {
        let inner = match budget {
            Some(budget) => enter(Bound::Unstarted(budget), attempt, call),
            None => observe_attempt(attempt, call),
        };
        UnderDeadline {
            inner,
            budget,
            deadline: None,
            sleep: None,
        }
    }

    /// The deadline and the budget it came from, if there is a budget: fixed when the inner
    /// future was first pending, or (for a call that was ready at once) counted from now.
    #[cfg(feature = "http")]
    pub(crate) fn deadline(&self) -> Option<(Instant, Duration)> {
        let budget = self.budget?;
        let at = self
            .deadline
            .unwrap_or_else(|| after(Instant::now(), budget));
        Some((at, budget))
    }
}

/// What a poll of a [`UnderDeadline`] came to.
pub(crate) enum Polled<T> {
    /// `inner` finished.
    Ready(T),
    /// The budget ran out first.
    Expired,
    /// Neither yet; something will wake the task before the deadline passes.
    Pending,
}

impl<F: Future> UnderDeadline<F> {
    /// Polls `inner` with the budget in scope (`attempt` as for [`call`](Self::call)) and, while
    /// it is pending, the budget. The first pending poll fixes the deadline (and so starts the
    /// clock); the timer is armed the first time nothing inside promises to wake the task
    /// before the deadline.
    #[inline]
    pub(crate) fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        attempt: &mut Option<Attempt>,
    ) -> Polled<F::Output> {
        let this = self.project();
        let (bound, budget) = match (*this.deadline, *this.budget) {
            // No deadline: the attempt a retry inside is on is still learned.
            (_, None) => {
                let inner = this.inner;
                return match observe_attempt(attempt, || inner.poll(cx)) {
                    Poll::Ready(out) => Polled::Ready(out),
                    Poll::Pending => Polled::Pending,
                };
            }
            (Some(deadline), Some(budget)) => (Bound::Fixed(deadline), budget),
            (None, Some(budget)) => (Bound::Unstarted(budget), budget),
        };
        let inner = this.inner;
        let (polled, watched) = enter(bound, attempt, || watch(|| inner.poll(cx)));
        if let Poll::Ready(out) = polled {
            return Polled::Ready(out);
        }
        let deadline = *this.deadline.get_or_insert_with(|| {
            let now = watched.read.unwrap_or_else(|| {
                let now = Instant::now();
                clock_read(now);
                now
            });
            after(now, budget)
        });
        let covered = watched.covered.filter(|&at| at < deadline);
        let wake = match covered {
            Some(covered) if this.sleep.is_none() => covered,
            _ => {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Polled::Expired;
                }
                covered.unwrap_or(deadline)
            }
        };
        // An enclosing deadline may count on this one's timers in turn.
        cover(wake);
        Polled::Pending
    }

    /// After `inner` finished: whether the budget ran out too (in the same timer tick, or
    /// while something inside was failing), without arming a timer that was never needed.
    pub(crate) fn expired_too(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        match (this.sleep.as_mut(), *this.deadline) {
            (Some(sleep), _) => sleep.as_mut().poll(cx).is_ready(),
            (None, Some(deadline)) => Instant::now() >= deadline,
            (None, None) => false,
        }
    }
}

impl<F, T, E> UnderDeadline<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    /// Polls as a [`Deadline`](super::Deadline) does: the outcome, or the deadline's error.
    #[inline]
    pub(crate) fn poll_deadline(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        attempt: &mut Option<Attempt>,
    ) -> Poll<Result<T, BoxError>> {
        let budget = self.budget.unwrap_or_default();
        let expired = |attempt| Error::timeout(TimeoutScope::Total, budget).with_attempt(attempt);
        match self.as_mut().poll(cx, attempt) {
            Polled::Ready(Ok(out)) => Poll::Ready(Ok(out)),
            // Something inside that enforces the propagated deadline itself (a gRPC channel
            // honouring grpc-timeout, say) may fail in the same timer tick as this one: the
            // caller should still hear that the deadline passed.
            Polled::Ready(Err(err)) if self.as_mut().expired_too(cx) => {
                Poll::Ready(Err(expired(*attempt).with_source(err.into()).into()))
            }
            Polled::Ready(Err(err)) => Poll::Ready(Err(err.into())),
            Polled::Expired => Poll::Ready(Err(expired(*attempt).into())),
            Polled::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;
    use std::pin::pin;
    use std::task::Waker;

    use super::*;
    use crate::error::BoxError;
    use crate::timeout::future::ResponseFuture;

    /// Polls a deadline of `budget` over an attempt timeout of `attempt` on a call that never
    /// ends, once: whether the deadline armed a timer of its own.
    fn arms_a_timer(budget: Duration, attempt: Duration) -> bool {
        let call = || ResponseFuture::new(pending::<Result<(), BoxError>>(), attempt);
        let mut deadline = pin!(UnderDeadline::call(Some(budget), &mut None, call));
        let mut cx = Context::from_waker(Waker::noop());
        let polled = deadline.as_mut().poll(&mut cx, &mut None);
        assert!(matches!(polled, Polled::Pending));
        deadline.sleep.is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_arms_a_timer_only_when_nothing_inside_ends_first() {
        let second = Duration::from_secs(1);
        assert!(
            !arms_a_timer(10 * second, second),
            "the attempt timeout wakes first"
        );
        assert!(
            arms_a_timer(second, 10 * second),
            "the attempt timeout would be too late"
        );
    }
}

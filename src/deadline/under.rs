//! The one piece every deadline-shaped future shares: run an inner future under a budget that
//! starts when it is first pending, with the budget in scope for what runs inside.
//!
//! [`DeadlineFuture`](super::DeadlineFuture) answers its expiry with an error; the server-side
//! layers ([`ServerTimeoutLayer`](crate::http::ServerTimeoutLayer), `GrpcDeadlineLayer`) answer
//! with a response. All of them are this, plus what they answer.
//!
//! Who wakes the task at the deadline is settled when the future is made, not promised at run
//! time: a deadline of its own arms its own timer (as tower's `Timeout` does); a preset's, whose
//! stack is built so that the layers inside end the call at the deadline (each attempt's
//! timeout is capped at it, a retry sends nothing past it and waits for nothing beyond it),
//! arms none.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::context::{Bound, after, enter};
use crate::error::{BoxError, Error, TimeoutScope};

/// Who ends a call at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enforcer {
    /// The deadline itself, with a timer armed when the call is first pending.
    Timer,
    /// The layers inside, by how the stack is built: a preset's attempt timeout and retry.
    Inside,
}

pin_project! {
    /// `inner` under a budget; `None` runs it as it is.
    #[derive(Debug)]
    pub(crate) struct UnderDeadline<F> {
        #[pin]
        inner: F,
        budget: Option<Duration>,
        enforcer: Enforcer,
        // Fixed on the first poll that finds `inner` pending.
        deadline: Option<Instant>,
        // Armed on the first pending poll, by an `Enforcer::Timer` only. Boxed: most calls
        // never need it.
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<F> UnderDeadline<F> {
    /// Calls `call` (which makes `inner`) with the budget in scope, so that a layer inside sees
    /// it from its own `call` on.
    #[inline]
    pub(crate) fn call(
        budget: Option<Duration>,
        enforcer: Enforcer,
        call: impl FnOnce() -> F,
    ) -> Self {
        let inner = match budget {
            Some(budget) => enter(Bound::Unstarted(budget), call),
            None => call(),
        };
        UnderDeadline {
            inner,
            budget,
            enforcer,
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
    /// Neither yet.
    Pending,
}

impl<F: Future> UnderDeadline<F> {
    /// Polls `inner` with the budget in scope and, while it is pending, the budget. The first
    /// pending poll fixes the deadline (and so starts the clock) and arms the timer, if this
    /// deadline has one.
    #[inline]
    pub(crate) fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<F::Output> {
        let this = self.project();
        let (bound, budget) = match (*this.deadline, *this.budget) {
            (_, None) => {
                return match this.inner.poll(cx) {
                    Poll::Ready(out) => Polled::Ready(out),
                    Poll::Pending => Polled::Pending,
                };
            }
            (Some(deadline), Some(budget)) => (Bound::Fixed(deadline, budget), budget),
            (None, Some(budget)) => (Bound::Unstarted(budget), budget),
        };
        let inner = this.inner;
        if let Poll::Ready(out) = enter(bound, || inner.poll(cx)) {
            return Polled::Ready(out);
        }
        let deadline = *this
            .deadline
            .get_or_insert_with(|| after(Instant::now(), budget));
        if *this.enforcer == Enforcer::Inside {
            return Polled::Pending;
        }
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Polled::Expired,
            Poll::Pending => Polled::Pending,
        }
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
    ) -> Poll<Result<T, BoxError>> {
        let budget = self.budget.unwrap_or_default();
        let expired = || Error::timeout(TimeoutScope::Total, budget);
        match self.as_mut().poll(cx) {
            Polled::Ready(Ok(out)) => Poll::Ready(Ok(out)),
            Polled::Ready(Err(err)) => {
                let err = err.into();
                // The deadline's own error, from an attempt timeout capped at it and passed on
                // by a retry that added the attempt it cut: as it is.
                if is_total_timeout(&err) {
                    return Poll::Ready(Err(err));
                }
                // Something inside that enforces the propagated deadline itself (a gRPC
                // channel honouring grpc-timeout, say) may fail in the same timer tick as this
                // one: the caller should still hear that the deadline passed.
                if self.as_mut().expired_too(cx) {
                    return Poll::Ready(Err(expired().with_source(err).into()));
                }
                Poll::Ready(Err(err))
            }
            Polled::Expired => Poll::Ready(Err(expired().into())),
            Polled::Pending => Poll::Pending,
        }
    }
}

/// Whether `err` is this crate's error for a total deadline that passed.
pub(crate) fn is_total_timeout(err: &BoxError) -> bool {
    err.downcast_ref::<Error>()
        .is_some_and(|ours| ours.timeout_scope() == Some(TimeoutScope::Total))
}

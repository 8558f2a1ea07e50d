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
use tokio::time::Sleep;

use super::scope::{Bound, enter};
use crate::error::Attempt;

pin_project! {
    /// `inner` under a budget; `None` runs it as it is.
    #[derive(Debug)]
    pub(crate) struct Budgeted<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds `inner` pending; its deadline is the call's.
        #[pin]
        sleep: Option<Sleep>,
        budget: Option<Duration>,
    }
}

impl<F> Budgeted<F> {
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
            None => call(),
        };
        Budgeted {
            inner,
            sleep: None,
            budget,
        }
    }

    /// The budget this runs under.
    pub(crate) fn budget(&self) -> Option<Duration> {
        self.budget
    }
}

impl<F: Future> Budgeted<F> {
    /// Polls `inner` with the budget in scope; `attempt` as for [`call`](Self::call).
    #[inline]
    pub(crate) fn poll_inner(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        attempt: &mut Option<Attempt>,
    ) -> Poll<F::Output> {
        let this = self.project();
        let bound = match (this.sleep.as_ref().as_pin_ref(), *this.budget) {
            (Some(sleep), _) => Bound::Fixed(sleep.deadline()),
            (None, Some(budget)) => Bound::Unstarted(budget),
            (None, None) => return this.inner.poll(cx),
        };
        enter(bound, attempt, || this.inner.poll(cx))
    }

    /// After `inner` was found pending: whether the budget has run out, arming its timer the
    /// first time (and so starting its clock).
    #[inline]
    pub(crate) fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let mut this = self.project();
        let Some(budget) = *this.budget else {
            return false;
        };
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(budget)));
        }
        this.sleep
            .as_pin_mut()
            .is_some_and(|sleep| sleep.poll(cx).is_ready())
    }

    /// After `inner` finished: whether the budget ran out in the same timer tick, without
    /// arming a timer that was never needed.
    pub(crate) fn expired_too(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.project()
            .sleep
            .as_pin_mut()
            .is_some_and(|sleep| sleep.poll(cx).is_ready())
    }
}

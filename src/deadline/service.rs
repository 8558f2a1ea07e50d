//! [`Deadline`], the service a [`DeadlineLayer`](super::DeadlineLayer) makes.

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::Enforcer;
use super::UnderDeadline;
use super::future::DeadlineFuture;
use crate::error::BoxError;

/// Bounds a whole call, everything inside it included, by one budget; see [`DeadlineLayer`](super::DeadlineLayer).
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    // `None`: no deadline (a preset configured without one).
    budget: Option<Duration>,
    enforcer: Enforcer,
}

impl<S> Deadline<S> {
    /// Wraps `inner` so that each call, with all that happens inside it, fails after `budget`.
    pub fn new(inner: S, budget: Duration) -> Self {
        Deadline {
            inner,
            budget: Some(budget),
            enforcer: Enforcer::Timer,
        }
    }

    /// A preset's deadline of `budget`, or none: the stack inside ends the call at it (every
    /// attempt has a timeout, which caps itself at the deadline), so it arms no timer.
    pub(crate) fn enforced_inside(inner: S, budget: Option<Duration>) -> Self {
        Deadline {
            inner,
            budget,
            enforcer: Enforcer::Inside,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Deadline<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = DeadlineFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let future = UnderDeadline::call(self.budget, self.enforcer, || self.inner.call(req));
        DeadlineFuture::new(future)
    }
}

//! Time limits: [`TimeoutLayer`] bounds one attempt, [`DeadlineLayer`] bounds the whole call.
//!
//! Put the deadline outside a retry layer and the per-attempt timeout inside it:
//!
//! ```text
//! DeadlineLayer (10s for everything) → RetryLayer → TimeoutLayer (2s per attempt) → service
//! ```
//!
//! An attempt that runs out of its time fails with an [`Error`](crate::Error) whose kind is
//! [`Timeout`](crate::ErrorKind::Timeout) with scope [`Attempt`](crate::TimeoutScope::Attempt),
//! which the default classifier calls retryable. When the deadline fires it cancels whatever is
//! in flight, attempt or backoff, and answers with scope [`Total`](crate::TimeoutScope::Total).
//! A retry layer inside a deadline reads the time left (see [`remaining`]) and never starts a
//! backoff that would end past it.
//!
//! # Where the deadline is seen
//!
//! A deadline is found by the layers below it in the same task, while it calls or polls them
//! (see [`remaining`]): no request type has to carry it. Two things leave that task:
//!
//! * `tokio::spawn`: a future spawned from inside the call runs in a task of its own. It does
//!   not see the deadline, and the deadline cannot cancel it (dropping the call does not stop a
//!   spawned task). Read [`remaining`] before spawning and put a `DeadlineLayer` of that budget
//!   inside the spawned work.
//! * tower's `Buffer`: it calls the service behind it from its worker task, and hands the future
//!   back to be polled by the caller. A retry layer behind a `Buffer` still sees the deadline
//!   when it decides on a retry (that happens while the caller polls), but nothing behind it sees
//!   the deadline during the *first* `call`: not a `grpc-timeout` layer, not a service reading
//!   [`remaining`]. For `http::Request`s,
//!   [`CarryDeadlineLayer`](crate::http::CarryDeadlineLayer) on both sides of the `Buffer`
//!   carries the deadline across in a request extension.
//!
//! Both timers are armed only when the inner future is pending on its first poll: a call that
//! is ready at once costs neither a timer nor a clock read. A deadline goes further: while a
//! timer of this crate inside it (an attempt timeout, a backoff sleep, a tighter deadline) will
//! wake the task before the deadline, it keeps no timer of its own and looks again when woken,
//! so that the usual stack arms one timer per attempt, not two.

mod budgeted;
mod future;
mod layer;
mod scope;

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use crate::error::BoxError;

pub(crate) use self::budgeted::Budgeted;
#[cfg(feature = "http")]
pub(crate) use self::budgeted::Polled;
pub use self::future::{DeadlineFuture, ResponseFuture};
pub use self::layer::{DeadlineLayer, TimeoutLayer};
#[cfg(feature = "http")]
pub(crate) use self::scope::observe_attempt;
pub(crate) use self::scope::{after, cover, deadline_passed, record_attempt, uncover};
pub use self::scope::{current_attempt, current_deadline, remaining};

/// Bounds each call of the inner service by a timeout; see [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// Wraps `inner` so that each call fails after `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Timeout { inner, timeout }
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

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture::new(self.inner.call(req), self.timeout)
    }
}

/// Bounds a whole call, everything inside it included, by one budget; see [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    // `None`: no deadline (a preset configured without one).
    budget: Option<Duration>,
}

impl<S> Deadline<S> {
    /// Wraps `inner` so that each call, with all that happens inside it, fails after `budget`.
    pub fn new(inner: S, budget: Duration) -> Self {
        Deadline {
            inner,
            budget: Some(budget),
        }
    }

    /// Wraps `inner` with a deadline of `budget`, or none.
    pub(crate) fn optional(inner: S, budget: Option<Duration>) -> Self {
        Deadline { inner, budget }
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
        let mut attempt = None;
        let future = Budgeted::call(self.budget, &mut attempt, || self.inner.call(req));
        DeadlineFuture::new(future, attempt)
    }
}

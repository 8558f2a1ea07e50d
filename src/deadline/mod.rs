//! The total deadline: [`DeadlineLayer`] bounds a whole call, attempts and backoff included.
//!
//! Put it outside a retry layer, and the per-attempt [`TimeoutLayer`](crate::timeout::TimeoutLayer)
//! inside:
//!
//! ```text
//! DeadlineLayer (10s for everything) → RetryLayer → TimeoutLayer (2s per attempt) → service
//! ```
//!
//! When it fires it cancels whatever is in flight, attempt or backoff, and answers with an
//! [`Error`](crate::Error) of kind [`Timeout`](crate::ErrorKind::Timeout) with scope
//! [`Total`](crate::TimeoutScope::Total). The layers inside see it through the
//! [call context](crate::context): a retry layer never starts a backoff that would end past it
//! nor sends an attempt at or after it, and a gRPC client tells the server the time left.
//!
//! Its timer is armed only when the inner future is pending on its first poll. An attempt
//! timeout inside caps itself at the deadline and reports the deadline's error when that is
//! what it hit (with the attempt a retry in between was on); the presets build their stacks so
//! that this is always so, and their deadline arms no timer at all: one timer per pending
//! attempt.
//!
//! # Where the deadline is seen
//!
//! A deadline is found by the layers below it in the same task, while it calls or polls them
//! (see [`remaining`](crate::context::remaining)): no request type has to carry it. Two things
//! leave that task:
//!
//! * `tokio::spawn`: a future spawned from inside the call runs in a task of its own. It does
//!   not see the deadline, and the deadline cannot cancel it (dropping the call does not stop a
//!   spawned task). Read `remaining()` before spawning and put a `DeadlineLayer` of that budget
//!   inside the spawned work.
//! * tower's `Buffer`: it calls the service behind it from its worker task, and hands the future
//!   back to be polled by the caller. A retry layer behind a `Buffer` still sees the deadline
//!   when it decides on a retry (that happens while the caller polls), but nothing behind it sees
//!   the deadline during the *first* `call`: not a `grpc-timeout` layer, not a service reading
//!   `remaining()`. For `http::Request`s, `CarryDeadlineLayer` (in the `http` module) on both
//!   sides of the `Buffer` carries the deadline across in a request extension.

pub(crate) mod future;
mod layer;
mod under;

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use crate::error::BoxError;

use self::future::DeadlineFuture;
pub use self::layer::DeadlineLayer;
#[cfg(feature = "http")]
pub(crate) use self::under::Polled;
pub(crate) use self::under::{Enforcer, UnderDeadline, is_total_timeout};

/// Bounds a whole call, everything inside it included, by one budget; see [`DeadlineLayer`].
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

//! The per-attempt timeout: [`TimeoutLayer`] bounds one call of the service it wraps.
//!
//! Put it inside a [`RetryLayer`](crate::retry::RetryLayer), with the total
//! [`DeadlineLayer`](crate::deadline::DeadlineLayer) outside:
//!
//! ```text
//! DeadlineLayer (10s for everything) → RetryLayer → TimeoutLayer (2s per attempt) → service
//! ```
//!
//! An attempt that runs out of its time fails with an [`Error`](crate::Error) whose kind is
//! [`Timeout`](crate::ErrorKind::Timeout) with scope [`Attempt`](crate::TimeoutScope::Attempt),
//! which the default classifier calls retryable. Its timer is armed only when the inner future
//! is pending on its first poll: a call that is ready at once costs neither a timer nor a clock
//! read. Under an enclosing deadline that ends sooner it ends there instead, with the
//! deadline's error (scope [`Total`](crate::TimeoutScope::Total)): an attempt never outlives
//! the call it belongs to, and the presets need no second timer for the deadline.

pub(crate) mod future;
mod layer;

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use crate::error::BoxError;

use self::future::ResponseFuture;
pub use self::layer::TimeoutLayer;

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

//! The throttle's service and future: admit or reject each request, count its outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Throttler, accepted, tick_now};
use crate::classify::ClassifyOutcome;
use crate::error::{BoxError, Error, ErrorKind};
use crate::scope::{ScopeKey, Scopes, Slot};

/// Throttles the calls to `S`; see [`ThrottleLayer`](super::ThrottleLayer).
pub struct Throttled<S, C, K> {
    inner: S,
    windows: Arc<Scopes<Throttler<C>>>,
    scope: K,
}

impl<S, C, K> Throttled<S, C, K> {
    pub(super) fn new(inner: S, windows: Arc<Scopes<Throttler<C>>>, scope: K) -> Self {
        Throttled {
            inner,
            windows,
            scope,
        }
    }
}

impl<S: Clone, C, K: Clone> Clone for Throttled<S, C, K> {
    fn clone(&self) -> Self {
        Throttled {
            inner: self.inner.clone(),
            windows: self.windows.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<S: std::fmt::Debug, C, K: std::fmt::Debug> std::fmt::Debug for Throttled<S, C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled")
            .field("inner", &self.inner)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<S, C, K, Req> Service<Req> for Throttled<S, C, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: ClassifyOutcome<S::Response>,
    K: ScopeKey<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let slot = self.windows.get(&self.scope, &request);
        let tick = tick_now(&slot);
        match slot.admit(tick) {
            Ok(()) => ResponseFuture {
                state: State::Called {
                    future: self.inner.call(request),
                    counted: Some((slot, tick)),
                },
            },
            Err(tally) => {
                // A rejected request is a request all the same.
                slot.window.record(tick, false);
                #[cfg(feature = "metrics")]
                crate::metrics::rejected("throttle", slot.name());
                let kind = ErrorKind::Throttled {
                    requests: tally.requests,
                    accepts: tally.accepts,
                };
                ResponseFuture {
                    state: State::Rejected {
                        error: Some(Error::new(kind).into()),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The future of a throttled call: the inner call, whose outcome the window counts, or a
    /// rejection, ready at once.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called { #[pin] future: F, counted: Option<(Arc<Slot<Throttler<C>>>, u64)> },
        Rejected { error: Option<BoxError> },
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: ClassifyOutcome<Res>,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future, counted } => {
                let outcome = ready!(future.poll(cx)).map_err(Into::into);
                // Counted at the tick it was made, as the window's tally was read then.
                if let Some((slot, tick)) = counted.take() {
                    let accepted = accepted(slot.classifier.classify_outcome(outcome.as_ref()));
                    slot.window.record(tick, accepted);
                }
                Poll::Ready(outcome)
            }
            StateProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
        }
    }
}

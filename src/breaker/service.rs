//! [`CircuitBreaker`], the service a [`CircuitBreakerLayer`](super::CircuitBreakerLayer) makes.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::{ResponseFuture, Ticket};
use super::{BreakerHandle, Circuits, Counted};
use crate::classify::{ClassifyOutcome, DefaultClassifier};
use crate::error::{BoxError, Error, ErrorKind};
use crate::scope::{ScopeKey, Slot, Unscoped};

/// Rejects calls while its circuit is open; see [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// In a preset with no breaker configured it is switched off, and passes calls through.
pub struct CircuitBreaker<S, C = DefaultClassifier, K = Unscoped> {
    pub(super) inner: S,
    pub(super) circuits: Option<Arc<Circuits<C>>>,
    pub(super) scope: K,
}

impl<S, C: Send + Sync + 'static, K> CircuitBreaker<S, C, K> {
    /// The handle to this breaker's circuits (shared with the layer and every clone).
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle::new(self.circuits.clone())
    }
}

impl<S, C, K> CircuitBreaker<S, C, K> {
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

impl<S: Clone, C, K: Clone> Clone for CircuitBreaker<S, C, K> {
    fn clone(&self) -> Self {
        CircuitBreaker {
            inner: self.inner.clone(),
            circuits: self.circuits.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug, K: fmt::Debug> fmt::Debug for CircuitBreaker<S, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("scope", &self.scope)
            .field("circuits", &self.circuits)
            .finish()
    }
}

impl<S, C, K, Req> Service<Req> for CircuitBreaker<S, C, K>
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
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline(always)]
    fn call(&mut self, request: Req) -> Self::Future {
        match &self.circuits {
            None => ResponseFuture::admitted(self.inner.call(request), None),
            Some(circuits) => {
                let circuit = circuits.scopes.get(&self.scope, &request);
                self.call_through(circuit, request)
            }
        }
    }
}

impl<S, C, K> CircuitBreaker<S, C, K> {
    /// A call through a circuit that is switched on: let through, or rejected.
    #[inline(always)]
    fn call_through<Req>(
        &mut self,
        circuit: Arc<Slot<Counted<C>>>,
        request: Req,
    ) -> ResponseFuture<S::Future, C>
    where
        S: Service<Req>,
    {
        match circuit.admit(circuit.name()) {
            Ok(pass) => {
                let started_us = circuit
                    .settings()
                    .slow_calls
                    .is_some()
                    .then(|| circuit.now_us());
                let ticket = Ticket::new(circuit, pass, started_us);
                ResponseFuture::admitted(self.inner.call(request), Some(ticket))
            }
            Err(rejection) => {
                #[cfg(feature = "metrics")]
                crate::metrics::rejected("breaker", circuit.name());
                let kind = ErrorKind::CircuitOpen {
                    remaining: rejection.remaining,
                    held: rejection.held,
                };
                ResponseFuture::rejected(Error::new(kind).into())
            }
        }
    }
}

//! The circuit breaker: fail fast while a dependency is down, probe when the break ends.
//!
//! Retries and a budget protect a healthy dependency from a blip; they do not stop a service
//! from spending its sockets and its deadlines on one that is down. A [`CircuitBreakerLayer`]
//! counts the outcomes of the calls it lets through, as its classifier sees them (retryable
//! ones are failures; fatal ones, a 404 or `INVALID_ARGUMENT`, mean the dependency answered and
//! are not, unless [`count_fatal`](BreakerConfig::count_fatal)), and opens the circuit when
//!
//! * the failure ratio of a sliding window reaches its threshold, once the window holds enough
//!   calls (Polly's defaults: 10% of at least 100 calls in 30 s), or
//! * a number of failures come in a row ([`consecutive_failures`](BreakerConfig::consecutive_failures)), or
//! * the ratio of slow calls reaches its threshold ([`slow_calls`](BreakerConfig::slow_calls)).
//!
//! While it is open, calls are rejected at once, without touching the inner service, with an
//! [`Error`] of kind [`CircuitOpen`](crate::ErrorKind::CircuitOpen) that says how
//! long the break still lasts. The first call after the break makes the circuit half-open: the
//! configured number of probe calls pass (exactly that many, however many calls race for them)
//! and the rest are rejected; the probes' outcomes close the circuit or open it again, for a
//! longer break. A probe that is dropped before it has an outcome gives its place back.
//!
//! # Where it goes
//!
//! Inside retry, outside the attempt timeout (Polly's standard order): deadline → retry →
//! breaker → attempt timeout. Then every attempt is counted, an attempt that times out is a
//! failure, and a rejection is classified like any outcome: retryable, with the rest of the
//! break as its hint, so that retry waits the break out only if its cap and the deadline
//! allow, and otherwise fails at once. A rejection is never sent, so it is retried whatever the
//! request is, and it spends no retry budget. The presets put it there:
//! [`ResilienceBuilder::circuit_breaker`](crate::ResilienceBuilder::circuit_breaker).
//!
//! # Cost
//!
//! No call allocates, and none through a closed circuit takes a lock: it loads the circuit's
//! state word and the breaker's hold; its outcome loads the word again, and is one
//! compare-and-swap in the window and a clock read (none without a failure ratio or slow-call
//! threshold). A rejection while the break lasts reads the word, the break's end and the clock.
//! Changes of state, and the probes of a half-open circuit, take the circuit's lock: a few
//! calls per break. `poll_ready` is the inner service's: a breaker keeps no readiness of its
//! own, and a rejected call leaves the readiness it was given unused.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer, CircuitState};
//! use tower::BoxError;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! tokio::time::pause();
//! let layer = CircuitBreakerLayer::new(
//!     BreakerConfig::new()
//!         .failure_ratio(0.5)
//!         .min_calls(4)
//!         .break_duration(Duration::from_secs(1))
//!         .break_jitter(0.0),
//! )
//! .unwrap();
//! let handle = layer.handle();
//! let mut svc = layer.layer(service_fn(|up: bool| async move {
//!     if up { Ok(()) } else { Err::<(), BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()) }
//! }));
//! for up in [true, true, false, false] {
//!     let _ = svc.ready().await.unwrap().call(up).await;
//! }
//! assert_eq!(handle.snapshot().state, CircuitState::Open);
//! tokio::time::advance(Duration::from_secs(1)).await;
//! // The break is over: the next call probes, and its success closes the circuit.
//! svc.ready().await.unwrap().call(true).await.unwrap();
//! assert_eq!(handle.snapshot().state, CircuitState::Closed);
//! # }
//! ```

mod circuit;
mod config;
mod events;
pub(crate) mod future;
mod handle;
mod layer;
mod settings;
mod slot;
mod window;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use crate::classify::{ClassifyOutcome, DefaultClassifier};
use crate::error::{BoxError, Error, ErrorKind};
use crate::scope::{ScopeKey, Scopes, Slot, Unscoped};

use self::circuit::{Circuit, Shared};
pub use self::config::BreakerConfig;
pub use self::events::{Cause, CircuitState, Observer, Snapshot, Transition};
use self::future::{ResponseFuture, Ticket};
pub use self::handle::BreakerHandle;
pub use self::layer::CircuitBreakerLayer;
pub use self::slot::BreakerPlan;
pub(crate) use self::slot::{BreakerSlot, NoBreaker};
pub use self::window::Counts;

/// Rejects calls while its circuit is open; see [`CircuitBreakerLayer`].
///
/// In a preset with no breaker configured it is switched off, and passes calls through.
pub struct CircuitBreaker<S, C = DefaultClassifier, K = Unscoped> {
    inner: S,
    circuits: Option<Arc<Circuits<C>>>,
    scope: K,
}

/// A breaker's circuits (one, or one per key) and what they share, the operator's hold among
/// it: what the layer, its services and its handle reach.
pub(crate) struct Circuits<C> {
    scopes: Scopes<Counted<C>>,
    shared: Arc<Shared>,
}

impl<C> fmt::Debug for Circuits<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.scopes.fmt(f)
    }
}

/// A circuit with the classifier that decides what it counts: what a call's future holds, so
/// that one reference reaches both.
pub(crate) struct Counted<C> {
    circuit: Circuit,
    classifier: Arc<C>,
}

impl<C> Counted<C> {
    pub(crate) fn new(circuit: Circuit, classifier: Arc<C>) -> Self {
        Counted {
            circuit,
            classifier,
        }
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C> std::ops::Deref for Counted<C> {
    type Target = Circuit;

    fn deref(&self) -> &Circuit {
        &self.circuit
    }
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

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match &self.circuits {
            None => ResponseFuture::passed(self.inner.call(request)),
            Some(circuits) => {
                let circuit = circuits.scopes.get(&self.scope, &request);
                self.call_through(circuit, request)
            }
        }
    }
}

impl<S, C, K> CircuitBreaker<S, C, K> {
    /// A call through a circuit that is switched on: let through, or rejected.
    #[inline]
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
                ResponseFuture::called(self.inner.call(request), ticket)
            }
            Err(rejection) => {
                let kind = ErrorKind::CircuitOpen {
                    remaining: rejection.remaining,
                    held: rejection.held,
                };
                ResponseFuture::rejected(Error::new(kind).into())
            }
        }
    }
}

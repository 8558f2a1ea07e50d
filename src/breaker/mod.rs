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
//! [`Error`](crate::Error) of kind [`CircuitOpen`](crate::ErrorKind::CircuitOpen) that says how
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
mod service;
mod settings;
mod slot;
mod window;

use std::fmt;
use std::sync::Arc;

use crate::scope::Scopes;

use self::circuit::{Circuit, Shared};
pub use self::config::BreakerConfig;
pub use self::events::{CircuitState, Observer, Transition};
pub use self::handle::BreakerHandle;
pub use self::layer::CircuitBreakerLayer;
// What a transition and a snapshot carry (read through their fields and `Display`), the builder's
// plan for a breaker, and the service the layer makes: the crate's own, reached through the
// values, methods and `Service` types that hold them.
pub(crate) use self::events::Snapshot;
pub(crate) use self::service::CircuitBreaker;
pub(crate) use self::slot::{BreakerPlan, BreakerSlot, NoBreaker};
pub(crate) use self::window::Counts;

/// A breaker's circuits (one, or one per key) and what they share, the operator's hold among
/// it: what the layer, its services and its handle reach.
pub(crate) struct Circuits<C> {
    scopes: Scopes<Counted<C>>,
    shared: Arc<Shared>,
}

impl<C> fmt::Debug for Circuits<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Circuits")
            .field("settings", &self.shared.settings)
            .field("keys", &self.scopes)
            .finish()
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

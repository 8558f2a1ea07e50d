//! Fault injection, to test your own stack against failures (feature `testing`).
//!
//! A [`FaultLayer`] wraps any service and, for each request, may inject one fault instead of (or
//! before) calling it: an I/O error, a response of your choosing (an HTTP status with
//! `Retry-After`: [`http_status`], a gRPC status with pushback: `grpc_status` with the `grpc`
//! feature), added latency, or a stall that never answers. Each fault has a rate, and may be
//! limited to a window of time (an outage from `t1` to `t2` at rate 1.0, a brown-out at a lower
//! rate). Which request gets which fault is drawn from a seed, per request in the order they
//! are called, so a run on a paused clock is the same every time; all time is `tokio::time`.
//! The layer counts what it let through and what it injected, per kind
//! ([`FaultLayer::counts`]). With the `http` feature, [`ResetBodyLayer`] cuts response bodies
//! short, as a server that dies mid-response does.
//!
//! ```
//! use std::io;
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::testing::FaultLayer;
//! use tower::BoxError;
//! use tower_tenacity::ResilienceLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! tokio::time::pause();
//! // Half of the calls reset; and from 10 s to 20 s the service is down altogether.
//! let faults = FaultLayer::<u32>::builder()
//!     .seed(7)
//!     .error(0.5, io::ErrorKind::ConnectionReset)
//!     .error(1.0, io::ErrorKind::ConnectionRefused)
//!     .during(Duration::from_secs(10), Duration::from_secs(20))
//!     .build()?;
//! let counts = faults.clone();
//! let service = faults.layer(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
//! let mut svc = ResilienceLayer::default().layer(service);
//! let mut answered = 0;
//! for n in 0..20 {
//!     // With three attempts, most calls get through a 50% failure rate.
//!     answered += u64::from(svc.ready().await?.call(n).await.is_ok());
//! }
//! let seen = counts.counts();
//! assert_eq!(seen.passed, answered, "every answer came from the service: {seen:?}");
//! assert_eq!(seen.requests(), seen.passed + seen.errors);
//! assert!(answered > 10 && seen.errors > 0);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tower_layer::Layer;

#[cfg(feature = "http")]
mod cut_body;
mod harness;
#[cfg(feature = "http")]
mod http;
mod plan;
mod service;

pub use self::harness::run;
pub use self::plan::FaultBuilder;
use self::plan::{FaultCounts, Plan};
// The service the layer makes: reached as the layer's `Service` type, not by path.
use self::service::FaultService;

#[cfg(feature = "http")]
pub use self::cut_body::ResetBodyLayer;
#[cfg(feature = "grpc")]
pub use self::http::grpc_status;
#[cfg(feature = "http")]
pub use self::http::http_status;

/// Injects faults into the service it wraps; see the [module](self). Clones share the plan,
/// the draws and the counts.
pub struct FaultLayer<Res> {
    plan: Arc<Plan<Res>>,
}

impl<Res> Clone for FaultLayer<Res> {
    fn clone(&self) -> Self {
        FaultLayer {
            plan: self.plan.clone(),
        }
    }
}

impl<Res> fmt::Debug for FaultLayer<Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultLayer")
            .field("rules", &self.plan.rules)
            .field("counts", &self.counts())
            .finish()
    }
}

impl<Res> FaultLayer<Res> {
    /// Starts a plan with no faults.
    pub fn builder() -> FaultBuilder<Res> {
        FaultBuilder::new()
    }

    /// What the layer (and every service it made) let through and injected so far, one count
    /// per kind: `passed` (requests that reached the service, delayed ones included), `errors`
    /// (failed with an I/O error), `responses` (answered with a made response), `delayed` and
    /// `stalled` (never answered); `given_up()` is the requests the service never saw, and
    /// `requests()` all of them.
    pub fn counts(&self) -> FaultCounts {
        let c = &self.plan.counts;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        FaultCounts {
            passed: get(&c.passed),
            errors: get(&c.errors),
            responses: get(&c.responses),
            delayed: get(&c.delayed),
            stalled: get(&c.stalled),
        }
    }
}

impl<S, Res> Layer<S> for FaultLayer<Res> {
    type Service = FaultService<S, Res>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService::new(inner, self.plan.clone())
    }
}

//! Server-side admission: an adaptive concurrency limit that turns work away at once rather
//! than queueing what nobody will wait for.
//!
//! An overloaded server that queues every request serves, once its queue is longer than its
//! callers' patience, only calls whose callers have gone: its goodput falls to nothing while it
//! works at full capacity (a metastable failure). [`AdmissionLayer`] keeps the work in flight
//! under a limit and answers the rest at once, cheaply (an atomic increment that fails, and a
//! response made with no allocation for HTTP), so that what it admits is answered in time.
//!
//! The limit is Netflix concurrency-limits' **AIMD** (`AIMDLimit`): every admitted call that
//! ends within the latency target while the server was at least half busy raises the limit by
//! one; a call that took longer, failed, or was dropped by its caller before it ended, cuts it
//! by the backoff ratio (0.9). It is the simplest of the published algorithms, needs no estimate
//! of the no-load latency (Vegas and Gradient2 do, and mistake a queue that never drains for
//! the baseline), and reacts within a few calls; its one setting that matters, the latency
//! target, is one a service owner knows: how long a caller will wait.
//!
//! What a turned-away request gets:
//!
//! * through [`AdmissionLayer::new`], any tower service: an [`Error`](crate::Error) of kind
//!   [`Overloaded`](crate::ErrorKind::Overloaded), which the classifiers call fatal (never
//!   sent): a caller in the same process fails fast rather than add to the load being shed;
//!   in the fleet simulation, retrying it raised the peak load from 1.00× to 1.12×;
//! * through [`AdmissionLayer::http`], an HTTP server (an axum `Router`, a tonic `Server`):
//!   the same answer over the wire, each protocol's way of telling a client not to send the
//!   request again. `503 Service Unavailable` with `x-envoy-overloaded: true` (Envoy's mark on
//!   the 503s it sheds, which this crate's HTTP classifier does not retry) and `Retry-After: 1`
//!   for clients that know only that; for a gRPC request (`content-type: application/grpc…`),
//!   a Trailers-Only `UNAVAILABLE` with `grpc-retry-pushback-ms: -1` (gRFC A6's "do not
//!   retry"). Still failures to the caller's breaker and throttle, which count them. Not
//!   retrying is right for one server, as in the fleet simulation; a server that is one of
//!   several replicas behind a balancer may ask for the retry that could reach another, with
//!   [`AdmissionLayer::retry_after`].
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
//!
//! # fn main() -> Result<(), tower_tenacity::ConfigError> {
//! let admission = AdmissionLayer::http(AdaptiveLimit::aimd(Duration::from_millis(250)))?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(admission);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

mod service;

pub use self::service::{AdmissionLayer, Http, Plain};

/// The settings of an adaptive concurrency limit; see [the module](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveLimit {
    initial: u32,
    min: u32,
    max: u32,
    backoff: f64,
    latency: Duration,
}

impl AdaptiveLimit {
    /// AIMD with `latency` as the target a call must end within: starts at 20 in flight, never
    /// under 1 nor over 1 000, cut by 0.9 at a slow, failed or dropped call.
    pub const fn aimd(latency: Duration) -> Self {
        AdaptiveLimit {
            initial: 20,
            min: 1,
            max: 1000,
            backoff: 0.9,
            latency,
        }
    }

    /// The limit to start from (default 20).
    pub const fn initial(mut self, initial: u32) -> Self {
        self.initial = initial;
        self
    }

    /// The bounds the limit stays within (default 1 to 1 000).
    pub const fn bounds(mut self, min: u32, max: u32) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// What the limit is multiplied by at a slow, failed or dropped call (default 0.9).
    pub const fn backoff(mut self, backoff: f64) -> Self {
        self.backoff = backoff;
        self
    }

    fn check(&self) -> Result<(), crate::ConfigError> {
        use crate::error::ConfigProblem;
        let err = |field, problem| Err(crate::ConfigError::new(field, problem));
        if self.min == 0 {
            return err("admission.min", ConfigProblem::Zero);
        }
        if self.max < self.min {
            let problem = ConfigProblem::OutOfRange {
                value: f64::from(self.max),
                min: f64::from(self.min),
                max: f64::INFINITY,
            };
            return err("admission.max", problem);
        }
        if !(self.min..=self.max).contains(&self.initial) {
            let problem = ConfigProblem::OutOfRange {
                value: f64::from(self.initial),
                min: f64::from(self.min),
                max: f64::from(self.max),
            };
            return err("admission.initial", problem);
        }
        if !(self.backoff > 0.0 && self.backoff < 1.0) {
            let problem = ConfigProblem::OutOfRange {
                value: self.backoff,
                min: 0.0,
                max: 1.0,
            };
            return err("admission.backoff", problem);
        }
        if self.latency.is_zero() {
            return err("admission.latency", ConfigProblem::ZeroDuration);
        }
        Ok(())
    }
}

/// The limit and what is in flight, shared by a layer's services.
pub(crate) struct Limiter {
    settings: AdaptiveLimit,
    // The limit as an `f64`'s bits: it moves by fractions (×0.9) and by ones.
    limit: AtomicU64,
    in_flight: AtomicU64,
}

impl Limiter {
    fn new(settings: AdaptiveLimit) -> Self {
        Limiter {
            settings,
            limit: AtomicU64::new(f64::from(settings.initial).to_bits()),
            in_flight: AtomicU64::new(0),
        }
    }

    /// The limit now, in whole calls.
    pub(crate) fn limit(&self) -> u64 {
        f64::from_bits(self.limit.load(Ordering::Relaxed)) as u64
    }

    /// Admits a call if fewer than the limit are in flight.
    #[inline]
    fn admit(self: &Arc<Self>) -> Option<Permit> {
        let limit = self.limit();
        let before = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Permit {
            limiter: self.clone(),
            started: Instant::now(),
            in_flight: before + 1,
            ended: false,
        })
    }

    fn adjust(&self, f: impl Fn(f64) -> f64) {
        let (min, max) = (f64::from(self.settings.min), f64::from(self.settings.max));
        let _ = self
            .limit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).clamp(min, max).to_bits())
            });
    }
}

/// An admitted call's place in flight: given back when it ends, with what its end says of the
/// limit (a call dropped before it ended says the server was too slow for its caller).
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    started: Instant,
    in_flight: u64,
    ended: bool,
}

impl Permit {
    /// The call ended, well or not.
    pub(crate) fn end(mut self, ok: bool) {
        self.ended = true;
        let limiter = &self.limiter;
        let slow = self.started.elapsed() > limiter.settings.latency;
        if ok && !slow {
            // Additive increase, only while the limit was in use: an idle server learns
            // nothing about its capacity.
            if self.in_flight * 2 >= limiter.limit() {
                limiter.adjust(|limit| limit + 1.0);
            }
        } else {
            limiter.adjust(|limit| limit * limiter.settings.backoff);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.ended {
            let backoff = self.limiter.settings.backoff;
            self.limiter.adjust(|limit| limit * backoff);
        }
        self.limiter.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;

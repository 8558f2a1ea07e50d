//! Fault injection, to test your own stack against failures (feature `testing`).
//!
//! A [`FaultLayer`] wraps any service and, for each request, may inject one fault instead of (or
//! before) calling it: an I/O error, a response of your choosing (an HTTP status with
//! `Retry-After`: [`http_status`], a gRPC status with pushback: `grpc_status` with the `grpc`
//! feature), added latency, or a stall that never answers. Each fault has a rate, and may be
//! limited to a window of time (an outage from `t1` to `t2` at rate 1.0, a brown-out at a lower
//! rate). Which request gets which fault is drawn from a seed, per request in the order they
//! are called, so a run on a paused clock is the same every time; all time is `tokio::time`.
//! The layer counts what it let through and what it injected, per kind ([`FaultCounts`]).
//!
//! ```
//! use std::io;
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::testing::FaultLayer;
//! use tower_tenacity::{BoxError, ResilienceLayer};
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
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, ConfigError, ConfigProblem};

mod harness;
#[cfg(feature = "http")]
mod http;

pub use self::harness::{Report, run};

#[cfg(feature = "grpc")]
pub use self::http::grpc_status;
#[cfg(feature = "http")]
pub use self::http::{CutBody, ResetBody, ResetBodyLayer, http_status};

/// A fault one request may get.
enum Fault<Res> {
    Error(io::ErrorKind),
    Respond(Arc<dyn Fn() -> Res + Send + Sync>),
    Latency(Duration, Duration),
    Stall,
}

impl<Res> Clone for Fault<Res> {
    fn clone(&self) -> Self {
        match self {
            Fault::Error(kind) => Fault::Error(*kind),
            Fault::Respond(make) => Fault::Respond(make.clone()),
            Fault::Latency(min, max) => Fault::Latency(*min, *max),
            Fault::Stall => Fault::Stall,
        }
    }
}

impl<Res> fmt::Debug for Fault<Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Error(kind) => write!(f, "Error({kind:?})"),
            Fault::Respond(_) => f.write_str("Respond"),
            Fault::Latency(min, max) => write!(f, "Latency({min:?}..={max:?})"),
            Fault::Stall => f.write_str("Stall"),
        }
    }
}

/// A fault with the share of requests it hits, and when.
#[derive(Clone)]
struct Rule<Res> {
    fault: Fault<Res>,
    rate: f64,
    during: Option<(Duration, Duration)>,
}

impl<Res> fmt::Debug for Rule<Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("fault", &self.fault)
            .field("rate", &self.rate)
            .field("during", &self.during)
            .finish()
    }
}

/// Builds a [`FaultLayer`]: the faults in order, each with its rate (and window), checked by
/// [`build`](Self::build).
#[must_use = "a builder does nothing until `.build()` makes the layer"]
pub struct FaultBuilder<Res> {
    rules: Vec<Rule<Res>>,
    seed: u64,
}

impl<Res> fmt::Debug for FaultBuilder<Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultBuilder")
            .field("rules", &self.rules)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<Res> FaultBuilder<Res> {
    fn rule(mut self, rate: f64, fault: Fault<Res>) -> Self {
        self.rules.push(Rule {
            fault,
            rate,
            during: None,
        });
        self
    }

    /// Seeds the draws (default 0): the same seed and the same calls give the same faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fails a share `rate` of the requests with an I/O error of `kind`, without calling the
    /// service.
    pub fn error(self, rate: f64, kind: io::ErrorKind) -> Self {
        self.rule(rate, Fault::Error(kind))
    }

    /// Answers a share `rate` of the requests with what `respond` makes, without calling the
    /// service: an HTTP status ([`http_status`]), a gRPC status, any response of yours.
    pub fn respond(self, rate: f64, respond: impl Fn() -> Res + Send + Sync + 'static) -> Self {
        self.rule(rate, Fault::Respond(Arc::new(respond)))
    }

    /// Delays a share `rate` of the requests by `delay` before calling the service.
    pub fn latency(self, rate: f64, delay: Duration) -> Self {
        self.rule(rate, Fault::Latency(delay, delay))
    }

    /// Delays a share `rate` of the requests by a uniformly drawn time in `min..=max` before
    /// calling the service.
    pub fn latency_between(self, rate: f64, min: Duration, max: Duration) -> Self {
        self.rule(rate, Fault::Latency(min, max))
    }

    /// Never answers a share `rate` of the requests (the service is not called).
    pub fn stall(self, rate: f64) -> Self {
        self.rule(rate, Fault::Stall)
    }

    /// Limits the fault added last to the requests made from `from` to `to` after the layer
    /// was built: an outage (at rate 1.0) or a brown-out (below it).
    pub fn during(mut self, from: Duration, to: Duration) -> Self {
        if let Some(rule) = self.rules.last_mut() {
            rule.during = Some((from, to));
        }
        self
    }

    /// Checks the rates (each in `0.0..=1.0`; the faults that hit at all times share each
    /// request, so their rates add up to at most 1.0, and one with a window takes its share of
    /// what the earlier ones leave) and the windows, and makes the layer.
    pub fn build(self) -> Result<FaultLayer<Res>, ConfigError> {
        for rule in &self.rules {
            if !(0.0..=1.0).contains(&rule.rate) {
                return Err(ConfigError::new(
                    "fault.rate",
                    ConfigProblem::OutOfRange {
                        value: rule.rate,
                        min: 0.0,
                        max: 1.0,
                    },
                ));
            }
            if let Fault::Latency(min, max) = rule.fault {
                in_order("fault.latency", min, max)?;
            }
            if let Some((from, to)) = rule.during {
                in_order("fault.during", from, to)?;
            }
        }
        let total: f64 = (self.rules.iter())
            .filter(|rule| rule.during.is_none())
            .map(|rule| rule.rate)
            .sum();
        if total > 1.0 + 1e-9 {
            return Err(ConfigError::new(
                "fault.rate",
                ConfigProblem::OutOfRange {
                    value: total,
                    min: 0.0,
                    max: 1.0,
                },
            ));
        }
        Ok(FaultLayer {
            plan: Arc::new(Plan {
                rules: self.rules,
                seed: self.seed,
                start: Instant::now(),
                drawn: AtomicU64::new(0),
                counts: Counters::default(),
            }),
        })
    }
}

/// `start..=end` must not run backwards.
fn in_order(field: &'static str, start: Duration, end: Duration) -> Result<(), ConfigError> {
    if start > end {
        return Err(ConfigError::new(
            field,
            ConfigProblem::Exceeds {
                value: start,
                bound: "its end",
                limit: end,
            },
        ));
    }
    Ok(())
}

/// What a [`FaultLayer`] let through and injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests that reached the service (delayed ones included).
    pub passed: u64,
    /// Requests failed with an I/O error.
    pub errors: u64,
    /// Requests answered with a made response.
    pub responses: u64,
    /// Requests delayed before they reached the service.
    pub delayed: u64,
    /// Requests that never got an answer.
    pub stalled: u64,
}

impl FaultCounts {
    /// Requests the service never saw: failed, answered or stalled by the layer.
    pub fn given_up(&self) -> u64 {
        self.errors + self.responses + self.stalled
    }

    /// Every request the layer was given.
    pub fn requests(&self) -> u64 {
        self.passed + self.given_up()
    }
}

#[derive(Default)]
struct Counters {
    passed: AtomicU64,
    errors: AtomicU64,
    responses: AtomicU64,
    delayed: AtomicU64,
    stalled: AtomicU64,
}

struct Plan<Res> {
    rules: Vec<Rule<Res>>,
    seed: u64,
    start: Instant,
    drawn: AtomicU64,
    counts: Counters,
}

impl<Res> Plan<Res> {
    /// The fault of the next request, if any: one draw, and the rules active now share it in
    /// order, each its rate's slice.
    fn draw(&self) -> (Option<Fault<Res>>, f64) {
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        let mut rng = fastrand::Rng::with_seed(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (draw, spread) = (rng.f64(), rng.f64());
        let elapsed = self.start.elapsed();
        let mut floor = 0.0;
        for rule in &self.rules {
            if rule
                .during
                .is_some_and(|(from, to)| elapsed < from || elapsed >= to)
            {
                continue;
            }
            floor += rule.rate;
            if draw < floor {
                return (Some(rule.fault.clone()), spread);
            }
        }
        (None, spread)
    }
}

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
        FaultBuilder {
            rules: Vec::new(),
            seed: 0,
        }
    }

    /// What the layer (and every service it made) let through and injected so far.
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
        FaultService {
            inner,
            plan: self.plan.clone(),
        }
    }
}

/// A service with faults injected; see [`FaultLayer`].
pub struct FaultService<S, Res> {
    inner: S,
    plan: Arc<Plan<Res>>,
}

impl<S: Clone, Res> Clone for FaultService<S, Res> {
    fn clone(&self) -> Self {
        FaultService {
            inner: self.inner.clone(),
            plan: self.plan.clone(),
        }
    }
}

impl<S: fmt::Debug, Res> fmt::Debug for FaultService<S, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Req, Res> Service<Req> for FaultService<S, Res>
where
    S: Service<Req, Response = Res> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    Req: Send + 'static,
    Res: Send + 'static,
{
    type Response = Res;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Res, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let plan = self.plan.clone();
        let counts = &plan.counts;
        let count = |n: &AtomicU64| {
            n.fetch_add(1, Ordering::Relaxed);
        };
        match plan.draw() {
            (Some(Fault::Error(kind)), _) => {
                count(&counts.errors);
                Box::pin(std::future::ready(Err(io::Error::from(kind).into())))
            }
            (Some(Fault::Respond(make)), _) => {
                count(&counts.responses);
                Box::pin(std::future::ready(Ok(make())))
            }
            (Some(Fault::Stall), _) => {
                count(&counts.stalled);
                Box::pin(std::future::pending())
            }
            (Some(Fault::Latency(min, max)), spread) => {
                count(&counts.delayed);
                count(&counts.passed);
                let delay = min + (max - min).mul_f64(spread);
                // The service was made ready for this call: the delayed call uses a clone
                // readied when its delay is over.
                let mut inner = self.inner.clone();
                std::mem::swap(&mut inner, &mut self.inner);
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    inner.call(request).await.map_err(Into::into)
                })
            }
            (None, _) => {
                count(&counts.passed);
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }
    }
}

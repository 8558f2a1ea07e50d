//! The plan of a [`FaultLayer`](super::FaultLayer): which faults, at which rates, when; what it
//! counted.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::FaultLayer;
use crate::error::{ConfigError, ConfigProblem};

/// A fault one request may get.
pub(super) enum Fault<Res> {
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
pub(super) struct Rule<Res> {
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

/// Builds a [`FaultLayer`](super::FaultLayer): the faults in order, each with its rate (and window), checked by
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
    pub(super) fn new() -> Self {
        FaultBuilder {
            rules: Vec::new(),
            seed: 0,
        }
    }

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
    /// service: an HTTP status (`http_status`), a gRPC status, any response of yours.
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

/// What a [`FaultLayer`](super::FaultLayer) let through and injected.
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
pub(super) struct Counters {
    pub(super) passed: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) responses: AtomicU64,
    pub(super) delayed: AtomicU64,
    pub(super) stalled: AtomicU64,
}

pub(super) struct Plan<Res> {
    pub(super) rules: Vec<Rule<Res>>,
    pub(super) seed: u64,
    pub(super) start: Instant,
    pub(super) drawn: AtomicU64,
    pub(super) counts: Counters,
}

impl<Res> Plan<Res> {
    /// The fault of the next request, if any: one draw, and the rules active now share it in
    /// order, each its rate's slice.
    pub(super) fn draw(&self) -> (Option<Fault<Res>>, f64) {
        let n = self.drawn.fetch_add(1, Ordering::Relaxed);
        let mut rng = nth_rng(self.seed, 0, n);
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

/// The random source of draw `n` of a fault kit layer seeded `seed`, the same on every run: a
/// layer other than `FaultLayer` passes a `salt` of its own, so that two layers stacked with the
/// same seed do not pick the same requests.
pub(super) fn nth_rng(seed: u64, salt: u64, n: u64) -> fastrand::Rng {
    crate::rng::nth(seed ^ salt, n)
}

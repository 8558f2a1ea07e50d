//! Hedging's settings (`Hedge`, checked into `Hedging`) and the latencies a learned delay reads.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::latencies::Latencies;
use crate::error::{ConfigError, ConfigProblem};

/// How a retry layer hedges (the builders' `hedge`, as
/// [`ResilienceBuilder::hedge`](crate::ResilienceBuilder::hedge)): after a
/// delay with no answer, another attempt goes out beside the first.
///
/// Retries fix failures; they do nothing for the slow call that never fails, and the slow tail
/// is what users feel ("The Tail at Scale", Dean and Barroso). A [`Hedge`] makes the retry layer
/// send the request again when an attempt has had no answer for the hedge delay, without
/// cancelling it, up to `max_in_flight` attempts at once. The first outcome the classifier calls
/// a success or fatal wins, and the others are cancelled (dropped: their connections are let
/// go). A retryable outcome of one attempt does not end the call while others are in flight (as
/// gRFC A6's non-fatal codes); when every attempt in flight has failed, the usual retry rules
/// apply to what is left of the attempts and of the deadline.
///
/// Hedges are attempts like any other, and pay like retries:
///
/// * each counts towards `max_attempts`, and carries its number to the server (the attempt
///   header, `grpc-previous-rpc-attempts`);
/// * each is paid from the [`RetryBudget`](super::RetryBudget) (gRFC A6: hedges and retries
///   share throttling), so that hedging cannot multiply the load on a dependency in trouble;
/// * none starts at or after the deadline, and none is planned that the deadline would cut off
///   before it could start;
/// * a server's pushback or `Retry-After` (any retryable outcome with a hint), and a circuit
///   breaker's rejection, stop further hedges of the call;
/// * only a request that is safe to send twice is hedged ([`Classify::may_hedge`]: the HTTP
///   classifier's idempotency rules), and only one whose copy can be made while the first is in
///   flight ([`Replay::can_hedge`]: an HTTP body that is empty or already sent whole). Each
///   hedge that does not go out says why, in an [`Event::HedgeSkipped`](super::Event).
///
/// The delay is fixed ([`Hedge::after`]), or learned ([`Hedge::learned`]): a percentile of the
/// latencies of recent attempts, kept in a histogram over a rotating window, with a floor, and
/// trusted once it holds enough samples (until then, nothing is hedged).
///
/// [`Classify::may_hedge`]: crate::classify::Classify::may_hedge
/// [`Replay::can_hedge`]: super::Replay::can_hedge
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::retry::{Hedge, RetryLayer};
///
/// // A second attempt after 50 ms without an answer, a third 50 ms later.
/// let fixed = RetryLayer::builder()
///     .hedge(Hedge::after(Duration::from_millis(50)).max_in_flight(3))
///     .build()
///     .unwrap();
/// // Or after the 95th percentile of recent attempts' latencies, at least 5 ms.
/// let learned = RetryLayer::builder()
///     .hedge(Hedge::learned(95.0).floor(Duration::from_millis(5)))
///     .build()
///     .unwrap();
/// # let _ = (fixed, learned);
/// ```
#[derive(Debug, Clone)]
pub struct Hedge {
    delay: Delay,
    max_in_flight: u32,
}

#[derive(Debug, Clone, Copy)]
enum Delay {
    Fixed(Duration),
    Learned {
        percentile: f64,
        floor: Duration,
        min_samples: u64,
        window: Duration,
    },
}

impl Hedge {
    /// Hedges after `delay` without an answer, two attempts in flight at most.
    pub fn after(delay: Duration) -> Self {
        Hedge {
            delay: Delay::Fixed(delay),
            max_in_flight: 2,
        }
    }

    /// Hedges after the `percentile` (`0.0 < p < 100.0`; 95 is a fair start) of the latencies
    /// of this layer's recent attempts that were answered, at least 1 ms, once 100 of them
    /// were seen in the last 60 s (see [`floor`](Self::floor), [`min_samples`](Self::min_samples),
    /// [`window`](Self::window)); two attempts in flight at most.
    pub fn learned(percentile: f64) -> Self {
        Hedge {
            delay: Delay::Learned {
                percentile,
                floor: Duration::from_millis(1),
                min_samples: 100,
                window: Duration::from_secs(60),
            },
            max_in_flight: 2,
        }
    }

    /// The most attempts in flight at once, the first included (default 2; at least 2).
    pub fn max_in_flight(mut self, attempts: u32) -> Self {
        self.max_in_flight = attempts;
        self
    }

    /// A learned delay's least value (default 1 ms; a fixed delay has no use for it).
    pub fn floor(mut self, floor: Duration) -> Self {
        if let Delay::Learned { floor: f, .. } = &mut self.delay {
            *f = floor;
        }
        self
    }

    /// How many latencies a learned delay needs before it is trusted (default 100; a fixed
    /// delay has no use for it).
    pub fn min_samples(mut self, samples: u64) -> Self {
        if let Delay::Learned { min_samples, .. } = &mut self.delay {
            *min_samples = samples;
        }
        self
    }

    /// How far back a learned delay looks: latencies are kept for one to two windows (default
    /// 60 s; a fixed delay has no use for it).
    pub fn window(mut self, window: Duration) -> Self {
        if let Delay::Learned { window: w, .. } = &mut self.delay {
            *w = window;
        }
        self
    }

    pub(crate) fn build(self) -> Result<Hedging, ConfigError> {
        if self.max_in_flight < 2 {
            return Err(ConfigError::new(
                "hedge.max_in_flight",
                ConfigProblem::OutOfRange {
                    value: f64::from(self.max_in_flight),
                    min: 2.0,
                    max: f64::INFINITY,
                },
            ));
        }
        let latencies = match self.delay {
            Delay::Fixed(delay) if delay.is_zero() => {
                return Err(ConfigError::new("hedge.delay", ConfigProblem::ZeroDuration));
            }
            Delay::Fixed(_) => None,
            Delay::Learned {
                percentile, window, ..
            } => {
                if !(percentile > 0.0 && percentile < 100.0) {
                    return Err(ConfigError::new(
                        "hedge.percentile",
                        ConfigProblem::OutOfRange {
                            value: percentile,
                            min: 0.0,
                            max: 100.0,
                        },
                    ));
                }
                if window.is_zero() {
                    return Err(ConfigError::new(
                        "hedge.window",
                        ConfigProblem::ZeroDuration,
                    ));
                }
                Some(Latencies::new(window))
            }
        };
        Ok(Hedging {
            delay: self.delay,
            max_in_flight: self.max_in_flight,
            latencies,
        })
    }
}

/// A retry layer's validated hedging, with the latencies a learned delay reads.
pub(crate) struct Hedging {
    delay: Delay,
    pub(crate) max_in_flight: u32,
    latencies: Option<Latencies>,
}

impl fmt::Debug for Hedging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedging")
            .field("delay", &self.delay)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl Hedging {
    /// The delay before the next hedge, now; `None` while a learned delay has too few samples.
    pub(crate) fn delay(&self, now: Instant) -> Option<Duration> {
        match (self.delay, &self.latencies) {
            (Delay::Fixed(delay), _) => Some(delay),
            (
                Delay::Learned {
                    percentile,
                    floor,
                    min_samples,
                    ..
                },
                Some(latencies),
            ) => latencies
                .percentile(now, percentile, min_samples)
                .map(|delay| delay.max(floor)),
            (Delay::Learned { .. }, None) => None,
        }
    }

    /// Whether attempts are timed, for a learned delay.
    pub(crate) fn learns(&self) -> bool {
        self.latencies.is_some()
    }

    /// Records the latency of an attempt that was answered.
    pub(crate) fn record(&self, now: Instant, latency: Duration) {
        if let Some(latencies) = &self.latencies {
            latencies.record(now, latency);
        }
    }
}

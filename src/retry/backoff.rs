//! How long to wait before each retry.

use std::time::Duration;

use crate::error::{ConfigError, ConfigProblem};

/// How a backoff delay is randomised, so that clients that failed together do not retry
/// together.
///
/// Every kind keeps the delay within the backoff's floor (`min`) and cap (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: the exponential delay itself.
    None,
    /// Anywhere between the floor and the exponential delay (AWS "full jitter"). The default:
    /// it spreads retries the most.
    #[default]
    Full,
    /// Between half the exponential delay and all of it (AWS "equal jitter").
    Equal,
    /// Between `initial` and three times the previous delay, capped (AWS "decorrelated
    /// jitter"); it ignores `multiplier`.
    Decorrelated,
    /// The exponential delay times a factor drawn from `1 - spread ..= 1 + spread`; `spread`
    /// must be in `0.0..=1.0` (gRPC's connection backoff uses 0.2).
    Spread(f64),
}

/// An exponential backoff: `initial × multiplier^(retry - 1)`, kept within `[min, max]`, then
/// jittered.
///
/// The defaults are 100 ms, ×2, at most 5 s, no floor, [`Jitter::Full`].
///
/// Python tenacity's `wait_exponential(multiplier=1, min=4, max=10)` with
/// `stop_after_attempt(3)` reads, here:
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
///
/// let backoff = ExponentialBackoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(10))
///     .with_min(Duration::from_secs(4))
///     .with_jitter(Jitter::None);
/// let layer = RetryLayer::builder().max_attempts(3).backoff(backoff).build().unwrap();
/// # let _ = layer;
/// let delays: Vec<u64> = (1..=5).map(|retry| backoff.base_delay(retry).as_secs()).collect();
/// assert_eq!(delays, [4, 4, 4, 8, 10]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    min: Duration,
    jitter: Jitter,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        ExponentialBackoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(5))
    }
}

impl ExponentialBackoff {
    /// A backoff that starts at `initial`, grows by `multiplier` per retry and stops growing at
    /// `max`, with [`Jitter::Full`] and no floor. It is checked when the retry layer is built.
    pub const fn new(initial: Duration, multiplier: f64, max: Duration) -> Self {
        ExponentialBackoff {
            initial,
            multiplier,
            max,
            min: Duration::ZERO,
            jitter: Jitter::Full,
        }
    }

    /// Never waits less than `min`, jitter included.
    pub const fn with_min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// Sets how the delay is randomised.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The jitter in use.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Checks the bounds: `initial` positive, `multiplier` finite and at least 1, `initial` and
    /// `min` not above `max`, a [`Jitter::Spread`] within `0.0..=1.0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial.is_zero() {
            return Err(ConfigError::new(
                "backoff.initial",
                ConfigProblem::ZeroDuration,
            ));
        }
        if !self.multiplier.is_finite() {
            return Err(ConfigError::new(
                "backoff.multiplier",
                ConfigProblem::NotFinite(self.multiplier),
            ));
        }
        if self.multiplier < 1.0 {
            return Err(ConfigError::new(
                "backoff.multiplier",
                ConfigProblem::OutOfRange {
                    value: self.multiplier,
                    min: 1.0,
                    max: f64::INFINITY,
                },
            ));
        }
        for (field, value) in [("backoff.initial", self.initial), ("backoff.min", self.min)] {
            if value > self.max {
                return Err(ConfigError::new(
                    field,
                    ConfigProblem::Exceeds {
                        value,
                        bound: "backoff.max",
                        limit: self.max,
                    },
                ));
            }
        }
        if let Jitter::Spread(spread) = self.jitter {
            if !spread.is_finite() {
                return Err(ConfigError::new(
                    "backoff.jitter",
                    ConfigProblem::NotFinite(spread),
                ));
            }
            if !(0.0..=1.0).contains(&spread) {
                return Err(ConfigError::new(
                    "backoff.jitter",
                    ConfigProblem::OutOfRange {
                        value: spread,
                        min: 0.0,
                        max: 1.0,
                    },
                ));
            }
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1 for the first retry) without jitter:
    /// `initial × multiplier^(retry - 1)` within `[min, max]`.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        // Overflow (or a NaN from an unvalidated value) lands on the cap rather than panicking.
        let delay = Duration::try_from_secs_f64(secs).unwrap_or(self.max);
        delay.clamp(self.min, self.max.max(self.min))
    }

    /// The jittered delay before retry number `retry`, given the delay before the previous one
    /// (used by [`Jitter::Decorrelated`]; pass `Duration::ZERO` for the first retry), as a
    /// request whose randomness is seeded with `seed` would draw it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::retry::{ExponentialBackoff, Jitter};
    ///
    /// let backoff = ExponentialBackoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(5))
    ///     .with_jitter(Jitter::Equal);
    /// let third = backoff.delay(3, Duration::ZERO, 7);
    /// assert!(Duration::from_millis(200) <= third && third <= Duration::from_millis(400));
    /// assert_eq!(third, backoff.delay(3, Duration::ZERO, 7), "the same seed, the same draw");
    /// ```
    pub fn delay(&self, retry: u32, previous: Duration, seed: u64) -> Duration {
        let mut rng = fastrand::Rng::with_seed(seed);
        self.jittered(self.base_delay(retry), previous, &mut rng)
    }

    /// Applies the jitter to `base`, the delay [`base_delay`](Self::base_delay) gives.
    pub(crate) fn jittered(
        &self,
        base: Duration,
        previous: Duration,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let (min, max) = (self.min, self.max.max(self.min));
        let delay = match self.jitter {
            Jitter::None => base,
            Jitter::Full => between(rng, min, base),
            Jitter::Equal => between(rng, (base / 2).max(min), base),
            Jitter::Decorrelated => {
                let low = self.initial.max(min);
                let high = previous.max(low).saturating_mul(3);
                between(rng, low, high)
            }
            Jitter::Spread(spread) => {
                let factor = 1.0 + spread * (rng.f64() * 2.0 - 1.0);
                Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
            }
        };
        delay.clamp(min, max)
    }
}

/// The first few [`ExponentialBackoff::base_delay`]s, worked out once when the layer is built
/// rather than with floating point on every retry.
#[derive(Debug, Clone)]
pub(crate) struct BaseDelays {
    backoff: ExponentialBackoff,
    first: [Duration; 16],
}

impl BaseDelays {
    pub(crate) fn new(backoff: ExponentialBackoff) -> Self {
        let mut first = [Duration::ZERO; 16];
        for (retry, delay) in (1..).zip(first.iter_mut()) {
            *delay = backoff.base_delay(retry);
        }
        BaseDelays { backoff, first }
    }

    pub(crate) fn backoff(&self) -> &ExponentialBackoff {
        &self.backoff
    }

    /// [`ExponentialBackoff::delay`], from the table where it can.
    pub(crate) fn delay(
        &self,
        retry: u32,
        previous: Duration,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let base = match retry
            .checked_sub(1)
            .and_then(|i| self.first.get(i as usize))
        {
            Some(base) => *base,
            None => self.backoff.base_delay(retry),
        };
        self.backoff.jittered(base, previous, rng)
    }
}

/// A uniformly random duration in `low..=high` (or `low` when the range is empty).
fn between(rng: &mut fastrand::Rng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(nanos(low)..=nanos(high)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn no_jitter_doubles_up_to_the_cap() {
        let backoff = ExponentialBackoff::default().with_jitter(Jitter::None);
        let delays: Vec<u128> = (1..=8)
            .map(|n| backoff.delay(n, Duration::ZERO, 1).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn huge_retry_numbers_stay_at_the_cap() {
        let backoff = ExponentialBackoff::new(MS, 10.0, Duration::from_secs(3));
        assert_eq!(backoff.base_delay(u32::MAX), Duration::from_secs(3));
        assert_eq!(backoff.base_delay(0), MS);
    }

    // What was wrong with a refused backoff, as data (from `tests/config.rs`, where the problem's
    // type can no longer be named).
    fn backoff_error(backoff: ExponentialBackoff) -> ConfigError {
        crate::retry::RetryLayer::builder()
            .backoff(backoff)
            .build()
            .unwrap_err()
    }

    #[test]
    fn multiplier_not_a_number() {
        for bad in [f64::NAN, f64::INFINITY] {
            let err = backoff_error(ExponentialBackoff::new(SEC, bad, 5 * SEC));
            assert_eq!(err.field(), "backoff.multiplier");
            assert!(matches!(err.problem(), ConfigProblem::NotFinite(_)));
            assert!(err.to_string().contains("must be a finite number"), "{err}");
        }
    }

    #[test]
    fn zero_initial_delay() {
        let err = backoff_error(ExponentialBackoff::new(Duration::ZERO, 2.0, 5 * SEC));
        assert_eq!(err.field(), "backoff.initial");
        assert_eq!(err.problem(), &ConfigProblem::ZeroDuration);
    }
}

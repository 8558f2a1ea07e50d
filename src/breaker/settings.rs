//! A breaker's settings once checked, in the units its circuits count in.

use std::time::Duration;

use super::BreakerConfig;
use crate::error::{ConfigError, ConfigProblem};

/// Validated settings, in the units the circuits count in (microseconds).
#[derive(Debug, PartialEq)]
pub(crate) struct Settings {
    pub(crate) failure_ratio: Option<f64>,
    pub(crate) min_calls: u64,
    pub(crate) bucket_us: u64,
    pub(crate) buckets: usize,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) slow_calls: Option<(Duration, f64)>,
    break_duration: Duration,
    max_break: Duration,
    break_growth: f64,
    break_jitter: f64,
    pub(crate) probes: u32,
    pub(crate) count_fatal: bool,
    pub(crate) seed: Option<u64>,
}

fn ratio(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if !value.is_finite() {
        return Err(ConfigError::new(field, ConfigProblem::NotFinite(value)));
    }
    if value <= 0.0 || value > 1.0 {
        return Err(out_of_range(field, value, 0.0, 1.0));
    }
    Ok(value)
}

fn out_of_range(field: &'static str, value: f64, min: f64, max: f64) -> ConfigError {
    ConfigError::new(field, ConfigProblem::OutOfRange { value, min, max })
}

fn positive(field: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(field, ConfigProblem::ZeroDuration));
    }
    Ok(value)
}

impl Settings {
    pub(crate) fn new(config: &BreakerConfig) -> Result<Self, ConfigError> {
        let failure_ratio = match config.failure_ratio {
            Some(value) => Some(ratio("breaker.failure_ratio", value)?),
            None => None,
        };
        if config.min_calls == 0 {
            return Err(ConfigError::new("breaker.min_calls", ConfigProblem::Zero));
        }
        let window = positive("breaker.window", config.window)?;
        if !(1..=1000).contains(&config.buckets) {
            let buckets = f64::from(config.buckets);
            return Err(out_of_range("breaker.buckets", buckets, 1.0, 1000.0));
        }
        let bucket_us = micros(window) / u64::from(config.buckets);
        if bucket_us == 0 {
            return Err(ConfigError::new(
                "breaker.window",
                ConfigProblem::OutOfRange {
                    value: window.as_secs_f64(),
                    min: f64::from(config.buckets) / 1e6,
                    max: f64::INFINITY,
                },
            ));
        }
        if config.consecutive_failures == Some(0) {
            return Err(ConfigError::new(
                "breaker.consecutive_failures",
                ConfigProblem::Zero,
            ));
        }
        let slow_calls = match config.slow_calls {
            Some((threshold, share)) => Some((
                positive("breaker.slow_calls.threshold", threshold)?,
                ratio("breaker.slow_calls.ratio", share)?,
            )),
            None => None,
        };
        let (break_duration, growth, jitter) = check_breaks(config)?;
        if !(1..=1000).contains(&config.probes) {
            let probes = f64::from(config.probes);
            return Err(out_of_range("breaker.probes", probes, 1.0, 1000.0));
        }
        if config.max_keys == 0 {
            return Err(ConfigError::new("breaker.max_keys", ConfigProblem::Zero));
        }
        Ok(Settings {
            failure_ratio,
            min_calls: u64::from(config.min_calls),
            bucket_us,
            buckets: config.buckets as usize,
            consecutive_failures: config.consecutive_failures,
            slow_calls,
            break_duration,
            max_break: config.max_break,
            break_growth: growth,
            break_jitter: jitter,
            probes: config.probes,
            count_fatal: config.count_fatal,
            seed: config.seed,
        })
    }

    /// Whether outcomes are counted in the window (which reads the clock for each).
    pub(crate) fn windowed(&self) -> bool {
        self.failure_ratio.is_some() || self.slow_calls.is_some()
    }

    /// The break after the circuit opened `opens` times in a row (1 for the first), with
    /// `random` in `0.0..1.0` for its jitter.
    pub(crate) fn break_for(&self, opens: u32, random: f64) -> Duration {
        let grown = self
            .break_growth
            .powi(opens.saturating_sub(1).min(1000) as i32);
        let base = Duration::try_from_secs_f64(self.break_duration.as_secs_f64() * grown)
            .unwrap_or(self.max_break)
            .min(self.max_break);
        let jittered = base.as_secs_f64() * (1.0 + self.break_jitter * random);
        Duration::try_from_secs_f64(jittered).unwrap_or(base)
    }
}

/// The break's settings, checked: its first length, its growth and its jitter.
fn check_breaks(config: &BreakerConfig) -> Result<(Duration, f64, f64), ConfigError> {
    let break_duration = positive("breaker.break_duration", config.break_duration)?;
    if config.max_break < break_duration {
        return Err(ConfigError::new(
            "breaker.break_duration",
            ConfigProblem::Exceeds {
                value: break_duration,
                bound: "breaker.max_break",
                limit: config.max_break,
            },
        ));
    }
    let growth = within("breaker.break_growth", config.break_growth, 1.0, 100.0)?;
    let jitter = within("breaker.break_jitter", config.break_jitter, 0.0, 1.0)?;
    Ok((break_duration, growth, jitter))
}

/// A finite `value` of `field` within `min..=max`.
fn within(field: &'static str, value: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
    if !value.is_finite() {
        return Err(ConfigError::new(field, ConfigProblem::NotFinite(value)));
    }
    if !(min..=max).contains(&value) {
        return Err(out_of_range(field, value, min, max));
    }
    Ok(value)
}

/// Microseconds in `duration`, rounded down, saturating.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

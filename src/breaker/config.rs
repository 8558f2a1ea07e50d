//! [`BreakerConfig`]: when a circuit opens, how long it stays open, and how it closes again;
//! checked once, into the `Settings` every circuit of a layer reads.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Observer;
use super::settings::Settings;
use crate::error::ConfigError;
use crate::scope::DEFAULT_MAX_KEYS;

/// The settings of a circuit breaker. The defaults are Polly's: the circuit opens when at least
/// 10% of the calls of the last 30 s failed, once there were at least 100 of them, and stays
/// open 5 s; then one probe call decides. Repeated failed probes double the break, up to
/// 60 s, and every break is lengthened by up to 20% at random, so that a fleet of clients does
/// not probe in lockstep.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::breaker::BreakerConfig;
///
/// let config = BreakerConfig::new()
///     .failure_ratio(0.5)
///     .min_calls(20)
///     .window(Duration::from_secs(10))
///     .consecutive_failures(5)
///     .break_duration(Duration::from_secs(2));
/// assert!(config.check().is_ok());
/// let bad = BreakerConfig::new().failure_ratio(1.5).check().unwrap_err();
/// assert_eq!(bad.field(), "breaker.failure_ratio");
/// ```
#[derive(Clone)]
#[must_use = "a configuration does nothing until a layer is built with it"]
pub struct BreakerConfig {
    pub(super) failure_ratio: Option<f64>,
    pub(super) min_calls: u32,
    pub(super) window: Duration,
    pub(super) buckets: u32,
    pub(super) consecutive_failures: Option<u32>,
    pub(super) slow_calls: Option<(Duration, f64)>,
    pub(super) break_duration: Duration,
    pub(super) max_break: Duration,
    pub(super) break_growth: f64,
    pub(super) break_jitter: f64,
    pub(super) probes: u32,
    pub(super) count_fatal: bool,
    pub(super) seed: Option<u64>,
    pub(super) max_keys: usize,
    pub(crate) observer: Option<Arc<dyn Observer>>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_ratio: Some(0.1),
            min_calls: 100,
            window: Duration::from_secs(30),
            buckets: 10,
            consecutive_failures: None,
            slow_calls: None,
            break_duration: Duration::from_secs(5),
            max_break: Duration::from_secs(60),
            break_growth: 2.0,
            break_jitter: 0.2,
            probes: 1,
            count_fatal: false,
            seed: None,
            max_keys: DEFAULT_MAX_KEYS,
            observer: None,
        }
    }
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("failure_ratio", &self.failure_ratio)
            .field("min_calls", &self.min_calls)
            .field("window", &self.window)
            .field("buckets", &self.buckets)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("slow_calls", &self.slow_calls)
            .field("break_duration", &self.break_duration)
            .field("max_break", &self.max_break)
            .field("break_growth", &self.break_growth)
            .field("break_jitter", &self.break_jitter)
            .field("probes", &self.probes)
            .field("count_fatal", &self.count_fatal)
            .field("seed", &self.seed)
            .field("max_keys", &self.max_keys)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl BreakerConfig {
    /// The defaults (see above).
    pub fn new() -> Self {
        BreakerConfig::default()
    }

    /// Opens the circuit when at least this share of the window's calls failed (`0.0 < ratio
    /// <= 1.0`; default 0.1).
    pub fn failure_ratio(mut self, ratio: f64) -> Self {
        self.failure_ratio = Some(ratio);
        self
    }

    /// Never opens on the failure ratio (only on consecutive failures or slow calls, if set, or
    /// by hand). A breaker without the ratio reads no clock on a call that succeeds.
    pub fn no_failure_ratio(mut self) -> Self {
        self.failure_ratio = None;
        self
    }

    /// The fewest calls in the window for the ratios to count (default 100).
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = calls;
        self
    }

    /// How far back the ratios look (default 30 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How many buckets the window is counted in (default 10; 1 to 1000): outcomes leave the
    /// window a bucket at a time.
    pub fn buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
    }

    /// Also opens the circuit after this many failures in a row, whatever the window says.
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// Also opens the circuit when at least `ratio` of the window's calls took `threshold` or
    /// longer (`0.0 < ratio <= 1.0`), as resilience4j's slow-call rate does; a probe that slow
    /// counts as failed.
    pub fn slow_calls(mut self, threshold: Duration, ratio: f64) -> Self {
        self.slow_calls = Some((threshold, ratio));
        self
    }

    /// How long the circuit stays open the first time (default 5 s).
    pub fn break_duration(mut self, duration: Duration) -> Self {
        self.break_duration = duration;
        self
    }

    /// The longest break that growth reaches (default 60 s; at least `break_duration`).
    pub fn max_break(mut self, duration: Duration) -> Self {
        self.max_break = duration;
        self
    }

    /// How much longer each break is than the one before, while probes keep failing (default
    /// 2.0; 1.0 keeps it constant). A closed circuit starts again from `break_duration`.
    pub fn break_growth(mut self, factor: f64) -> Self {
        self.break_growth = factor;
        self
    }

    /// Lengthens every break by up to this share at random (`0.0..=1.0`, default 0.2).
    pub fn break_jitter(mut self, share: f64) -> Self {
        self.break_jitter = share;
        self
    }

    /// Seeds the break jitter, for reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many probe calls a half-open circuit lets through (default 1; 1 to 1000). It closes
    /// when all of them succeed and opens again when one fails.
    pub fn probes(mut self, probes: u32) -> Self {
        self.probes = probes;
        self
    }

    /// Counts fatal outcomes (a 404, `INVALID_ARGUMENT`) as failures too. By default they do
    /// not count: the dependency answered.
    pub fn count_fatal(mut self, count: bool) -> Self {
        self.count_fatal = count;
        self
    }

    /// With state per key, the most keys kept (default 1024).
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys;
        self
    }

    /// Receives every change of state.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The most keys kept, as set.
    pub(crate) fn keys(&self) -> usize {
        self.max_keys
    }

    /// Checks the settings: a [`ConfigError`] names the first field that is out of bounds.
    pub fn check(&self) -> Result<(), ConfigError> {
        Settings::new(self).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(config: BreakerConfig) -> Settings {
        Settings::new(&config).unwrap()
    }

    #[test]
    fn breaks_grow_to_the_cap_and_jitter_only_lengthens_them() {
        let s = settings(BreakerConfig::new().break_jitter(0.0));
        let secs = |opens| s.break_for(opens, 0.99).as_secs();
        assert_eq!(
            [secs(1), secs(2), secs(3), secs(4), secs(5)],
            [5, 10, 20, 40, 60]
        );
        assert_eq!(secs(u32::MAX), 60);
        let jittered = settings(BreakerConfig::new());
        assert_eq!(jittered.break_for(1, 0.0), Duration::from_secs(5));
        assert_eq!(jittered.break_for(1, 0.5), Duration::from_millis(5500));
    }

    #[test]
    fn every_bad_setting_names_its_field() {
        let field = |config: BreakerConfig| config.check().unwrap_err().field();
        let c = BreakerConfig::new;
        assert_eq!(field(c().failure_ratio(0.0)), "breaker.failure_ratio");
        assert_eq!(field(c().failure_ratio(f64::NAN)), "breaker.failure_ratio");
        assert_eq!(field(c().min_calls(0)), "breaker.min_calls");
        assert_eq!(field(c().window(Duration::ZERO)), "breaker.window");
        assert_eq!(field(c().window(Duration::from_nanos(5))), "breaker.window");
        assert_eq!(field(c().buckets(0)), "breaker.buckets");
        assert_eq!(field(c().buckets(1001)), "breaker.buckets");
        assert_eq!(
            field(c().consecutive_failures(0)),
            "breaker.consecutive_failures"
        );
        let instant = Duration::ZERO;
        assert_eq!(
            field(c().slow_calls(instant, 0.5)),
            "breaker.slow_calls.threshold"
        );
        let second = Duration::from_secs(1);
        assert_eq!(
            field(c().slow_calls(second, 2.0)),
            "breaker.slow_calls.ratio"
        );
        assert_eq!(field(c().break_duration(instant)), "breaker.break_duration");
        let long = Duration::from_secs(90);
        assert_eq!(field(c().break_duration(long)), "breaker.break_duration");
        assert_eq!(field(c().break_growth(0.5)), "breaker.break_growth");
        assert_eq!(
            field(c().break_growth(f64::INFINITY)),
            "breaker.break_growth"
        );
        assert_eq!(field(c().break_jitter(-0.1)), "breaker.break_jitter");
        assert_eq!(field(c().probes(0)), "breaker.probes");
        assert_eq!(field(c().max_keys(0)), "breaker.max_keys");
        assert!(c().no_failure_ratio().check().is_ok());
    }
}

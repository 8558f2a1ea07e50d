//! The presets' settings as data (feature `serde`): a preset deserializes from a document that
//! names its settings, as a file would (TOML, YAML, JSON through their serde crates).
//!
//! Durations are humantime strings (`"250ms"`, `"2s"`, `"1m 30s"`); a field the preset does not
//! have is an error that names it; a value out of range is the builder's own error, which names
//! the field and the bound. Every field is optional: what is absent keeps its default.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

use super::{ResilienceBuilder, ResilienceLayer};
#[cfg(feature = "http")]
use crate::breaker::BreakerConfig;
use crate::classify::DefaultClassifier;
use crate::error::ConfigError;
use crate::retry::{ExponentialBackoff, Hedge, Jitter, RetryBudget};

/// Every setting a preset takes, as a document spells it.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    #[serde(default, deserialize_with = "duration")]
    total_timeout: Option<Duration>,
    #[serde(default)]
    no_total_timeout: bool,
    #[serde(default, deserialize_with = "duration")]
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    max_elapsed: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max_retry_after: Option<Duration>,
    seed: Option<u64>,
    backoff: Option<Backoff>,
    budget: Option<Budget>,
    #[serde(default)]
    no_budget: bool,
    hedge: Option<HedgeSettings>,
    breaker: Option<Breaker>,
    // The HTTP preset's own.
    pub(crate) replay_cap: Option<usize>,
    pub(crate) attempt_header: Option<String>,
    pub(crate) deadline_header: Option<String>,
    #[serde(default)]
    pub(crate) total_timeout_covers_body: bool,
    #[serde(default)]
    pub(crate) retry_unsafe_methods: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Backoff {
    #[serde(deserialize_with = "required_duration")]
    initial: Duration,
    multiplier: f64,
    #[serde(deserialize_with = "required_duration")]
    max: Duration,
    #[serde(default)]
    jitter: JitterSetting,
}

#[derive(serde::Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum JitterSetting {
    None,
    #[default]
    Full,
    Equal,
    Decorrelated,
    /// `{ "spread": 0.2 }`: the delay times a factor in `1 - spread ..= 1 + spread`.
    Spread(f64),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Budget {
    ratio: f64,
    floor: u32,
    #[serde(deserialize_with = "required_duration")]
    window: Duration,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HedgeSettings {
    #[serde(default, deserialize_with = "duration")]
    after: Option<Duration>,
    percentile: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    floor: Option<Duration>,
    max_in_flight: Option<u32>,
}

// Read by the HTTP and gRPC presets only (the core preset's type has no breaker to set).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
struct Breaker {
    failure_ratio: Option<f64>,
    min_calls: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    window: Option<Duration>,
    buckets: Option<u32>,
    consecutive_failures: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    break_duration: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max_break: Option<Duration>,
    break_growth: Option<f64>,
    break_jitter: Option<f64>,
    probes: Option<u32>,
    count_fatal: Option<bool>,
    max_keys: Option<usize>,
    seed: Option<u64>,
}

/// A humantime duration, for an optional field.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    required_duration(d).map(Some)
}

/// A humantime duration (`"250ms"`, `"2s"`, `"1m 30s"`).
fn required_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Humantime;
    impl de::Visitor<'_> for Humantime {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"250ms\", \"2s\" or \"1m 30s\"")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
            humantime::parse_duration(value).map_err(|err| E::custom(format!("{value:?}: {err}")))
        }
    }
    d.deserialize_str(Humantime)
}

impl Settings {
    /// Applies the settings every preset shares to `builder`.
    pub(crate) fn apply<C, P, X>(
        &self,
        mut b: ResilienceBuilder<C, P, X>,
    ) -> Result<ResilienceBuilder<C, P, X>, ConfigError> {
        if self.total_timeout.is_some() && self.no_total_timeout {
            return Err(ConfigError::at_most_one("total_timeout, no_total_timeout"));
        }
        if self.budget.is_some() && self.no_budget {
            return Err(ConfigError::at_most_one("budget, no_budget"));
        }
        if let Some(total) = self.total_timeout {
            b = b.total_timeout(total);
        }
        if self.no_total_timeout {
            b = b.no_total_timeout();
        }
        if let Some(attempt) = self.attempt_timeout {
            b = b.attempt_timeout(attempt);
        }
        if let Some(n) = self.max_attempts {
            b = b.max_attempts(n);
        }
        if let Some(elapsed) = self.max_elapsed {
            b = b.max_elapsed(elapsed);
        }
        if let Some(cap) = self.max_retry_after {
            b = b.max_retry_after(cap);
        }
        if let Some(seed) = self.seed {
            b = b.seed(seed);
        }
        if let Some(backoff) = &self.backoff {
            let jitter = match backoff.jitter {
                JitterSetting::None => Jitter::None,
                JitterSetting::Full => Jitter::Full,
                JitterSetting::Equal => Jitter::Equal,
                JitterSetting::Decorrelated => Jitter::Decorrelated,
                JitterSetting::Spread(spread) => Jitter::Spread(spread),
            };
            b = b.backoff(
                ExponentialBackoff::new(backoff.initial, backoff.multiplier, backoff.max)
                    .with_jitter(jitter),
            );
        }
        if let Some(budget) = &self.budget {
            b = b.budget(RetryBudget::new(budget.ratio, budget.floor, budget.window)?);
        }
        if self.no_budget {
            b = b.no_budget();
        }
        if let Some(hedge) = &self.hedge {
            b = b.hedge(hedge.hedge()?);
        }
        Ok(b)
    }

    /// The breaker's settings, if the document asks for one.
    #[cfg(feature = "http")]
    pub(crate) fn breaker(&self) -> Option<BreakerConfig> {
        let s = self.breaker.as_ref()?;
        let mut c = BreakerConfig::new();
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = s.$field { c = c.$field(v); })* };
        }
        set!(
            failure_ratio,
            min_calls,
            window,
            buckets,
            consecutive_failures,
            break_duration
        );
        set!(
            max_break,
            break_growth,
            break_jitter,
            probes,
            count_fatal,
            max_keys,
            seed
        );
        Some(c)
    }

    /// Refuses the HTTP preset's own settings in a preset that is not HTTP's.
    pub(crate) fn only_common(&self) -> Result<(), ConfigError> {
        let http = [
            ("replay_cap", self.replay_cap.is_some()),
            ("attempt_header", self.attempt_header.is_some()),
            ("deadline_header", self.deadline_header.is_some()),
            ("total_timeout_covers_body", self.total_timeout_covers_body),
            ("retry_unsafe_methods", self.retry_unsafe_methods),
        ];
        match http.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(ConfigError::not_here(field)),
            None => Ok(()),
        }
    }
}

impl HedgeSettings {
    fn hedge(&self) -> Result<Hedge, ConfigError> {
        let hedge = match (self.after, self.percentile) {
            (Some(_), None) if self.floor.is_some() => {
                return Err(ConfigError::needs("hedge.floor", "hedge.percentile"));
            }
            (Some(after), None) => Hedge::after(after),
            (None, Some(percentile)) => {
                let learned = Hedge::learned(percentile);
                match self.floor {
                    Some(floor) => learned.floor(floor),
                    None => learned,
                }
            }
            _ => {
                return Err(ConfigError::exactly_one("hedge.after, hedge.percentile"));
            }
        };
        Ok(match self.max_in_flight {
            Some(n) => hedge.max_in_flight(n),
            None => hedge,
        })
    }
}

/// `name` as a header name, or the error that says which setting it is.
#[cfg(feature = "http")]
pub(crate) fn header(name: &str, field: &'static str) -> Result<http::HeaderName, ConfigError> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::not_a_header(field))
}

/// Builds `builder` with the breaker the settings ask for, if any.
#[cfg(feature = "http")]
pub(crate) fn with_breaker<C, P, X, T>(
    settings: &Settings,
    builder: ResilienceBuilder<C, P, X>,
    build: impl FnOnce(ResilienceBuilder<C, P, X>) -> Result<T, ConfigError>,
    build_with: impl FnOnce(
        ResilienceBuilder<C, P, X, crate::breaker::BreakerPlan>,
    ) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    match settings.breaker() {
        Some(config) => build_with(builder.circuit_breaker(config)),
        None => build(builder),
    }
}

/// The standard pipeline from a document of its settings (feature `serde`): see the
/// [`ResilienceBuilder`]'s setters for what each does.
///
/// ```
/// let layer: tower_tenacity::ResilienceLayer = serde_json::from_str(r#"{
///     "total_timeout": "5s",
///     "attempt_timeout": "500ms",
///     "max_attempts": 4,
///     "backoff": { "initial": "50ms", "multiplier": 2.0, "max": "1s", "jitter": "full" }
/// }"#).unwrap();
/// assert_eq!(layer.attempt_timeout(), std::time::Duration::from_millis(500));
/// ```
impl<'de> Deserialize<'de> for ResilienceLayer<DefaultClassifier> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let settings = Settings::deserialize(d)?;
        let built = (|| {
            settings.only_common()?;
            let builder = settings.apply(ResilienceLayer::builder(DefaultClassifier))?;
            // The core preset's breaker slot is its type: only the breakerless one is this type.
            if settings.breaker.is_some() {
                return Err(ConfigError::not_here(
                    "breaker (use the HTTP or gRPC preset)",
                ));
            }
            builder.build()
        })();
        built.map_err(de::Error::custom)
    }
}

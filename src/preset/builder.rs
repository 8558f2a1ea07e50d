//! [`ResilienceBuilder`]: the one configuration of every preset, checked once.

use std::fmt;
use std::time::Duration;

use super::ResilienceLayer;
use super::live::Live;
#[cfg(feature = "http")]
use crate::breaker::CircuitBreakerLayer;
use crate::breaker::{BreakerConfig, BreakerPlan, BreakerSlot, NoBreaker};
use crate::classify::DefaultClassifier;
use crate::error::{ConfigError, ConfigProblem};
use crate::retry::{
    CloneReplay, ExponentialBackoff, Hedge, Observer, RetryBudget, RetryBuilder, RetryLayer,
};
#[cfg(feature = "http")]
use crate::scope::DEFAULT_MAX_KEYS;

/// The total deadline of [`ResilienceLayer::builder`] and the HTTP preset when none is set.
const DEFAULT_TOTAL: Duration = Duration::from_secs(10);
/// The longest attempt timeout given when none is set.
const DEFAULT_ATTEMPT: Duration = Duration::from_secs(2);

impl<C> ResilienceLayer<C> {
    /// The standard pipeline with `classifier` and every default: 10 s in all, 2 s per attempt,
    /// 3 attempts, the default backoff and budget.
    pub fn new(classifier: C) -> Self {
        ResilienceLayer::builder(classifier)
            .build()
            .expect("the default resilience configuration is valid")
    }

    /// Starts a configuration with `classifier` from the defaults.
    pub fn builder(classifier: C) -> ResilienceBuilder<C> {
        ResilienceBuilder {
            total: None,
            attempt: None,
            default_total: Some(DEFAULT_TOTAL),
            retry: RetryLayer::builder().classifier(classifier),
            breaker: NoBreaker,
            options: (),
        }
    }
}

impl Default for ResilienceLayer {
    /// The standard pipeline with the [`DefaultClassifier`] and every default.
    fn default() -> Self {
        ResilienceLayer::new(DefaultClassifier)
    }
}

/// The one configuration of every preset, checked by `build`: the timeouts and the retry
/// settings, and in `X` what a protocol preset adds (`()` for [`ResilienceLayer::builder`];
/// the HTTP and gRPC presets' builders are this type with their own options, and add their
/// own setters and `build`).
///
/// `B` is the breaker slot: a breaker switched off until
/// [`circuit_breaker`](Self::circuit_breaker) asks for one, the breaker's plan after.
#[must_use = "a builder does nothing until `.build()` makes the layer"]
pub struct ResilienceBuilder<C = DefaultClassifier, P = CloneReplay, X = (), B = NoBreaker> {
    // What the user set: `Some(None)` is "no total deadline".
    total: Option<Option<Duration>>,
    attempt: Option<Duration>,
    // The preset's total when the user sets none (the gRPC preset has none).
    default_total: Option<Duration>,
    retry: RetryBuilder<C, P>,
    breaker: B,
    options: X,
}

impl<C: fmt::Debug, P: fmt::Debug, X: fmt::Debug, B: fmt::Debug> fmt::Debug
    for ResilienceBuilder<C, P, X, B>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceBuilder")
            .field("total_timeout", &self.total)
            .field("attempt_timeout", &self.attempt)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("options", &self.options)
            .finish()
    }
}

impl<C, P, X, B> ResilienceBuilder<C, P, X, B> {
    /// Puts a circuit breaker between retry and the attempt timeout (Polly's standard order),
    /// counting what the stack's classifier calls retryable (the one it is built with, whether
    /// set before or after this). The HTTP and gRPC presets keep one circuit per host (scheme
    /// and authority); the others one circuit for every call.
    /// See [`breaker`](crate::breaker).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::breaker::BreakerConfig;
    /// use tower_tenacity::{classify::DefaultClassifier, ResilienceLayer};
    ///
    /// let layer = ResilienceLayer::builder(DefaultClassifier)
    ///     .circuit_breaker(BreakerConfig::new().consecutive_failures(5))
    ///     .build()
    ///     .unwrap();
    /// assert!(layer.breaker().is_on());
    /// ```
    pub fn circuit_breaker(self, config: BreakerConfig) -> ResilienceBuilder<C, P, X, BreakerPlan> {
        ResilienceBuilder {
            total: self.total,
            attempt: self.attempt,
            default_total: self.default_total,
            breaker: BreakerPlan::new(config),
            retry: self.retry,
            options: self.options,
        }
    }

    /// The budget of each call, attempts and backoff included (default 10 s; with only the
    /// attempt timeout set, at least `attempt × max_attempts`).
    pub fn total_timeout(mut self, total: Duration) -> Self {
        self.total = Some(Some(total));
        self
    }

    /// No total deadline: each attempt is bounded by its timeout, and the call by the attempts
    /// and backoff allowed.
    pub fn no_total_timeout(mut self) -> Self {
        self.total = Some(None);
        self
    }

    /// The timeout of each attempt (default 2 s, or `total / max_attempts` if that is shorter);
    /// at most the total.
    pub fn attempt_timeout(mut self, attempt: Duration) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Sets the total used when the user sets none (`None`: no deadline by default).
    #[cfg(feature = "grpc")]
    pub(crate) fn default_total(mut self, total: Option<Duration>) -> Self {
        self.default_total = total;
        self
    }

    /// Attempts in all, the first included (default 3).
    pub fn max_attempts(self, attempts: u32) -> Self {
        self.retry_with(|retry| retry.max_attempts(attempts))
    }

    /// The delays between attempts.
    pub fn backoff(self, backoff: ExponentialBackoff) -> Self {
        self.retry_with(|retry| retry.backoff(backoff))
    }

    /// The longest server hint honoured (default 60 s; the deadline bounds it too).
    pub fn max_retry_after(self, cap: Duration) -> Self {
        self.retry_with(|retry| retry.max_retry_after(cap))
    }

    /// The retry budget: shared with other layers given the same one. The HTTP and gRPC presets
    /// keep a budget per host, each a fresh copy of this one's settings (so that a host that is
    /// down spends only its own); there it sets the settings, not a shared budget.
    pub fn budget(self, budget: RetryBudget) -> Self {
        self.retry_with(|retry| retry.budget(budget))
    }

    /// No retry budget.
    pub fn no_budget(self) -> Self {
        self.retry_with(RetryBuilder::no_budget)
    }

    /// Hedges slow attempts (off by default): after the hedge delay with no answer another
    /// attempt goes out beside the first, paid from the same budget, within the same deadline;
    /// see [`Hedge`]. The HTTP preset hedges only requests that are safe to send twice.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::ResilienceLayer;
    /// use tower_tenacity::retry::Hedge;
    ///
    /// let layer = ResilienceLayer::http()
    ///     .hedge(Hedge::learned(95.0).floor(Duration::from_millis(10)))
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn hedge(self, hedge: Hedge) -> Self {
        self.retry_with(|retry| retry.hedge(hedge))
    }

    /// Receives every retry event.
    pub fn observer(self, observer: impl Observer) -> Self {
        self.retry_with(|retry| retry.observer(observer))
    }

    /// Any other retry setting, on the retry builder itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::{classify::DefaultClassifier, ResilienceLayer};
    ///
    /// let layer = ResilienceLayer::builder(DefaultClassifier)
    ///     .retry_with(|retry| retry.max_elapsed(Duration::from_secs(4)).seed(7))
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn retry_with<C2, P2>(
        self,
        configure: impl FnOnce(RetryBuilder<C, P>) -> RetryBuilder<C2, P2>,
    ) -> ResilienceBuilder<C2, P2, X, B> {
        ResilienceBuilder {
            total: self.total,
            attempt: self.attempt,
            default_total: self.default_total,
            retry: configure(self.retry),
            breaker: self.breaker,
            options: self.options,
        }
    }

    /// Decides which outcomes are retried, and what a
    /// [`circuit_breaker`](Self::circuit_breaker) counts as a failure: the stack has one
    /// classifier, the last one set.
    pub fn classifier<C2>(self, classifier: C2) -> ResilienceBuilder<C2, P, X, B> {
        self.retry_with(|retry| retry.classifier(classifier))
    }

    /// Seeds the jitter, for reproducible tests.
    pub fn seed(self, seed: u64) -> Self {
        self.retry_with(|retry| retry.seed(seed))
    }

    /// Stops retrying once the next attempt would start more than `elapsed` after the first.
    pub fn max_elapsed(self, elapsed: Duration) -> Self {
        self.retry_with(|retry| retry.max_elapsed(elapsed))
    }

    /// A preset's builder: these settings with its own options.
    #[cfg(feature = "http")]
    pub(crate) fn with_options<X2>(self, options: X2) -> ResilienceBuilder<C, P, X2, B> {
        ResilienceBuilder {
            total: self.total,
            attempt: self.attempt,
            default_total: self.default_total,
            retry: self.retry,
            breaker: self.breaker,
            options,
        }
    }

    /// The preset's own options.
    #[cfg(feature = "http")]
    pub(crate) fn options_mut(&mut self) -> &mut X {
        &mut self.options
    }

    /// The breaker slot, and these settings with an empty one.
    #[cfg(feature = "http")]
    fn take_breaker(self) -> (B, ResilienceBuilder<C, P, X>) {
        let rest = ResilienceBuilder {
            total: self.total,
            attempt: self.attempt,
            default_total: self.default_total,
            retry: self.retry,
            breaker: NoBreaker,
            options: self.options,
        };
        (self.breaker, rest)
    }

    /// The classifier, changed in place.
    #[cfg(feature = "http")]
    pub(crate) fn map_classifier(self, change: impl FnOnce(C) -> C) -> Self {
        self.retry_with(|retry| retry.map_classifier(change))
    }

    /// Checks the settings (the defaults filled in around what was set) and makes the stack,
    /// handing back the preset's own options.
    pub(crate) fn build_with_options(self) -> Result<Built<C, P, B, X>, ConfigError>
    where
        B: BreakerSlot<C>,
    {
        let attempts = self.retry.attempts().max(1);
        let total = match (self.total, self.attempt) {
            (Some(total), _) => total,
            (None, None) => self.default_total,
            (None, Some(attempt)) => self
                .default_total
                .map(|total| total.max(attempt.saturating_mul(attempts))),
        };
        let attempt = self.attempt.unwrap_or_else(|| match total {
            Some(total) => DEFAULT_ATTEMPT
                .min(total / attempts)
                .max(Duration::from_nanos(1)),
            None => DEFAULT_ATTEMPT,
        });
        if total.is_some_and(|total| total.is_zero()) {
            return Err(ConfigError::new(
                "total_timeout",
                ConfigProblem::ZeroDuration,
            ));
        }
        if attempt.is_zero() {
            return Err(ConfigError::new(
                "attempt_timeout",
                ConfigProblem::ZeroDuration,
            ));
        }
        if let Some(total) = total
            && attempt > total
        {
            return Err(ConfigError::new(
                "attempt_timeout",
                ConfigProblem::Exceeds {
                    value: attempt,
                    bound: "total_timeout",
                    limit: total,
                },
            ));
        }
        let breaker = self.breaker.build(self.retry.classifier_ref())?;
        let layer = ResilienceLayer {
            retry: self.retry.build()?,
            breaker,
            total,
            attempt,
            live: Live::new(),
        };
        Ok((layer, self.options))
    }
}

/// A checked configuration: the stack, and the preset's own options.
type Built<C, P, B, X> = (ResilienceLayer<C, P, <B as BreakerSlot<C>>::Layer>, X);

/// A protocol preset's layers: the deadline and timeout settings (with retry's model), and the
/// retry budget and the breaker kept per key.
#[cfg(feature = "http")]
pub(crate) struct PresetParts<C, P, K, X> {
    pub(crate) stack: ResilienceLayer<C, P>,
    pub(crate) retry: RetryLayer<C, P, K>,
    pub(crate) breaker: CircuitBreakerLayer<C, K>,
    pub(crate) options: X,
}

#[cfg(feature = "http")]
impl<C: Clone + Send + Sync + 'static, P: Clone, X, B: BreakerSlot<C>>
    ResilienceBuilder<C, P, X, B>
{
    /// Checks the settings and makes a protocol preset's layers, with the retry budget and the
    /// breaker (if one was asked for) kept per key of `scope`.
    pub(crate) fn build_per_key<K: Clone + 'static>(
        self,
        scope: K,
    ) -> Result<PresetParts<C, P, K, X>, ConfigError> {
        let classifier = self.retry.classifier_ref().clone();
        let (breaker, unplanned) = self.take_breaker();
        let breaker = breaker.into_config();
        let (stack, options) = unplanned.build_with_options()?;
        let max_keys = breaker
            .as_ref()
            .map_or(DEFAULT_MAX_KEYS, BreakerConfig::keys);
        let breaker = match breaker {
            Some(config) => CircuitBreakerLayer::builder(config)
                .classifier(classifier)
                .per_key(scope.clone())
                .build()?,
            None => CircuitBreakerLayer::off(scope.clone()),
        };
        Ok(PresetParts {
            retry: stack.retry.clone().budget_per_key(scope, max_keys),
            stack,
            breaker,
            options,
        })
    }
}

impl<C, P, B: BreakerSlot<C>> ResilienceBuilder<C, P, (), B> {
    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<ResilienceLayer<C, P, B::Layer>, ConfigError> {
        self.build_with_options().map(|(layer, ())| layer)
    }
}

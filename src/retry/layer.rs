use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tower_layer::Layer;

use super::decide::Limits;
use super::{
    BaseDelays, CloneReplay, Config, ExponentialBackoff, Hedge, Observer, Retry, RetryBudget,
    Schedule,
};
use crate::classify::DefaultClassifier;
use crate::error::{ConfigError, ConfigProblem};
use crate::scope::{Scopes, Unscoped};

/// Wraps services in a retry loop. Build it with [`RetryLayer::builder`]; every clone, and every
/// service it makes, shares one configuration and one [`RetryBudget`] (or one per key, with
/// [`budget_per_key`](Self::budget_per_key)).
pub struct RetryLayer<C = DefaultClassifier, P = CloneReplay, K = Unscoped> {
    pub(super) classifier: C,
    pub(super) replay: P,
    pub(super) shared: Arc<Config>,
    pub(super) scope: K,
    pub(super) keyed: Option<Arc<Scopes<RetryBudget>>>,
}

impl RetryLayer {
    /// A layer with every default: 3 attempts, the default backoff and budget, the
    /// [`DefaultClassifier`], requests replayed by `Clone`.
    pub fn new() -> Self {
        RetryLayer::builder()
            .build()
            .expect("the default retry configuration is valid")
    }

    /// Starts a configuration from the defaults. Its builder takes the retry settings that
    /// [`ResilienceBuilder`](crate::ResilienceBuilder) takes, with the same meaning and
    /// defaults (`classifier`, `max_attempts`, `max_elapsed`, `max_retry_after`, `backoff`,
    /// `budget`, `no_budget`, `observer`, `hedge`, `seed`), and `replay(p)`, how requests are
    /// made again (a [`Replay`](super::Replay); `Clone` by default); with the `backoff`
    /// feature, `backoff_schedule(b)`, any `backoff::backoff::Backoff` as the schedule. Then
    /// `build()`.
    pub fn builder() -> RetryBuilder {
        RetryBuilder::default()
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer::new()
    }
}

impl<C, P, K> RetryLayer<C, P, K> {
    /// The budget that this layer's services share, if it has one (with a budget per key, the
    /// one that each key's budget is a fresh copy of).
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.shared.budget.as_ref()
    }

    /// Keeps one budget per key of `scope`, each a fresh copy of this layer's, for at most
    /// `max_keys` keys (see [`scope`](crate::scope)): a host that is down spends only its own
    /// budget. A layer without a budget stays without one.
    ///
    /// ```
    /// use tower_tenacity::retry::RetryLayer;
    /// use tower_tenacity::scope::key_fn;
    ///
    /// struct Job { tenant: &'static str }
    /// let layer = RetryLayer::new().budget_per_key(key_fn(|job: &Job| job.tenant), 100);
    /// # let _ = layer;
    /// ```
    pub fn budget_per_key<K2>(self, scope: K2, max_keys: usize) -> RetryLayer<C, P, K2> {
        let keyed = self
            .shared
            .budget
            .clone()
            .map(|template| Arc::new(Scopes::per_key(max_keys, move || template.fresh())));
        RetryLayer {
            classifier: self.classifier,
            replay: self.replay,
            shared: self.shared,
            scope,
            keyed,
        }
    }

    /// The number of attempts allowed, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.shared.limits.max_attempts
    }
}

impl<C: Clone, P: Clone, K: Clone> Clone for RetryLayer<C, P, K> {
    fn clone(&self) -> Self {
        RetryLayer {
            classifier: self.classifier.clone(),
            replay: self.replay.clone(),
            shared: self.shared.clone(),
            scope: self.scope.clone(),
            keyed: self.keyed.clone(),
        }
    }
}

impl<C: fmt::Debug, P: fmt::Debug, K: fmt::Debug> fmt::Debug for RetryLayer<C, P, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("classifier", &self.classifier)
            .field("replay", &self.replay)
            .field("config", &self.shared)
            .field("scope", &self.scope)
            .field("budgets", &self.keyed)
            .finish()
    }
}

impl<S: Clone, C: Clone, P: Clone, K: Clone> Layer<S> for RetryLayer<C, P, K> {
    type Service = Retry<S, C, P, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(
            inner,
            self.classifier.clone(),
            self.replay.clone(),
            self.shared.clone(),
            (self.scope.clone(), self.keyed.clone()),
        )
    }
}

/// The configuration of a [`RetryLayer`], checked by [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
///
/// let layer = RetryLayer::builder()
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(30))
///     .backoff(ExponentialBackoff::new(Duration::from_millis(50), 3.0, Duration::from_secs(2))
///         .with_jitter(Jitter::Equal))
///     .max_retry_after(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert_eq!(layer.max_attempts(), 5);
/// assert!(RetryLayer::builder().max_attempts(0).build().is_err());
/// ```
#[must_use = "a builder does nothing until `.build()` makes the layer"]
pub struct RetryBuilder<C = DefaultClassifier, P = CloneReplay> {
    pub(super) classifier: C,
    pub(super) replay: P,
    pub(super) limits: Limits,
    pub(super) schedule: Schedule,
    pub(super) budget: Option<RetryBudget>,
    pub(super) observer: Option<Arc<dyn Observer>>,
    pub(super) hedge: Option<Hedge>,
    pub(super) seed: Option<u64>,
}

impl Default for RetryBuilder {
    fn default() -> Self {
        RetryBuilder {
            classifier: DefaultClassifier,
            replay: CloneReplay,
            limits: Limits {
                max_attempts: 3,
                max_elapsed: None,
                max_retry_after: Duration::from_secs(60),
            },
            schedule: Schedule::Exponential(BaseDelays::new(ExponentialBackoff::default())),
            budget: Some(RetryBudget::default()),
            observer: None,
            hedge: None,
            seed: None,
        }
    }
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for RetryBuilder<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("classifier", &self.classifier)
            .field("replay", &self.replay)
            .field("max_attempts", &self.limits.max_attempts)
            .field("max_elapsed", &self.limits.max_elapsed)
            .field("max_retry_after", &self.limits.max_retry_after)
            .field("schedule", &self.schedule)
            .field("budget", &self.budget)
            .field("observer", &self.observer.is_some())
            .field("hedge", &self.hedge)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<C, P> RetryBuilder<C, P> {
    /// Decides which outcomes are retried (default: [`DefaultClassifier`]).
    pub fn classifier<C2>(self, classifier: C2) -> RetryBuilder<C2, P> {
        RetryBuilder {
            classifier,
            replay: self.replay,
            limits: self.limits,
            schedule: self.schedule,
            budget: self.budget,
            observer: self.observer,
            hedge: self.hedge,
            seed: self.seed,
        }
    }

    /// Makes requests again for retries (default: [`CloneReplay`]).
    pub fn replay<P2>(self, replay: P2) -> RetryBuilder<C, P2> {
        RetryBuilder {
            classifier: self.classifier,
            replay,
            limits: self.limits,
            schedule: self.schedule,
            budget: self.budget,
            observer: self.observer,
            hedge: self.hedge,
            seed: self.seed,
        }
    }

    /// Attempts in all, the first included (default 3; at least 1, which disables retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.limits.max_attempts = attempts;
        self
    }

    /// Stops retrying once the next attempt would start more than `elapsed` after the first
    /// (default: no such limit).
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.limits.max_elapsed = Some(elapsed);
        self
    }

    /// The longest server hint (`Retry-After`, pushback) honoured (default 60 s). A hint longer
    /// than this ends the retries at once, rather than holding the caller that long.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.limits.max_retry_after = cap;
        self
    }

    /// The delays between attempts (default: [`ExponentialBackoff::default`]).
    pub fn backoff(mut self, backoff: ExponentialBackoff) -> Self {
        self.schedule = Schedule::Exponential(BaseDelays::new(backoff));
        self
    }

    /// Lets a `backoff` crate schedule decide the delays. Each request starts from a clone of
    /// `backoff`, reset; when it returns `None` retrying stops (as
    /// [`GiveUp::Elapsed`](crate::GiveUp::Elapsed)).
    #[cfg(feature = "backoff")]
    pub fn backoff_schedule<B>(mut self, backoff: B) -> Self
    where
        B: ::backoff::backoff::Backoff + Clone + Send + Sync + 'static,
    {
        self.schedule = Schedule::Custom(Arc::new(move || {
            let mut fresh = backoff.clone();
            fresh.reset();
            Box::new(fresh)
        }));
        self
    }

    /// Shares `budget` across this layer and any other given the same one (default: a new
    /// [`RetryBudget::default`] per layer).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries without a budget: only the per-request limits apply.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Sends every [`Event`](super::Event) to `observer` as well as to `tracing`.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Hedges slow attempts (off by default): see [`Hedge`].
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Seeds the jitter, for reproducible tests. Requests still draw different delays from each
    /// other; the sequence as a whole repeats from run to run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The classifier, changed in place.
    #[cfg(feature = "http")]
    pub(crate) fn map_classifier(mut self, change: impl FnOnce(C) -> C) -> Self {
        self.classifier = change(self.classifier);
        self
    }

    /// The classifier set so far.
    pub(crate) fn classifier_ref(&self) -> &C {
        &self.classifier
    }

    /// The attempts configured so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.limits.max_attempts
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<RetryLayer<C, P>, ConfigError> {
        if self.limits.max_attempts == 0 {
            return Err(ConfigError::new("max_attempts", ConfigProblem::Zero));
        }
        if self
            .limits
            .max_elapsed
            .is_some_and(|elapsed| elapsed.is_zero())
        {
            return Err(ConfigError::new("max_elapsed", ConfigProblem::ZeroDuration));
        }
        match &self.schedule {
            Schedule::Exponential(delays) => delays.backoff().validate()?,
            #[cfg(feature = "backoff")]
            Schedule::Custom(_) => {}
        }
        let hedging = self.hedge.map(Hedge::build).transpose()?.map(Arc::new);
        Ok(RetryLayer {
            classifier: self.classifier,
            replay: self.replay,
            scope: Unscoped,
            keyed: None,
            shared: Arc::new(Config {
                limits: self.limits,
                schedule: self.schedule,
                budget: self.budget,
                observer: self.observer,
                hedging,
                seed: self.seed,
                sequence: AtomicU64::new(0),
            }),
        })
    }
}

//! [`ResilienceLayer`]: the three layers in the recommended order, from one validated
//! configuration.

use std::fmt;
use std::time::Duration;

use tower_layer::Layer;

use crate::classify::DefaultClassifier;
use crate::error::{ConfigError, ConfigProblem};
use crate::retry::{
    CloneReplay, ExponentialBackoff, Observer, Retry, RetryBudget, RetryBuilder, RetryLayer,
};
use crate::timeout::{Deadline, DeadlineLayer, Timeout, TimeoutLayer};

/// The standard pipeline: a total deadline, retry inside it, a per-attempt timeout inside that.
///
/// ```text
/// Deadline (total, 10 s) → Retry (3 attempts, backoff, budget) → Timeout (2 s per attempt) → S
/// ```
///
/// The defaults are those shown; [`builder`](Self::builder) changes them and checks that they
/// fit together (an attempt timeout longer than the total cannot be).
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::{classify::DefaultClassifier, BoxError, ResilienceLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let layer = ResilienceLayer::builder(DefaultClassifier)
///     .total_timeout(Duration::from_secs(5))
///     .attempt_timeout(Duration::from_millis(500))
///     .max_attempts(4)
///     .build()?;
/// let mut svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x * 2) }));
/// assert_eq!(svc.ready().await?.call(21).await?, 42);
///
/// let too_long = ResilienceLayer::builder(DefaultClassifier)
///     .total_timeout(Duration::from_secs(1))
///     .attempt_timeout(Duration::from_secs(2))
///     .build();
/// assert_eq!(too_long.unwrap_err().field(), "attempt_timeout");
/// # Ok(())
/// # }
/// ```
pub struct ResilienceLayer<C = DefaultClassifier, P = CloneReplay> {
    deadline: DeadlineLayer,
    retry: RetryLayer<C, P>,
    timeout: TimeoutLayer,
    total: Duration,
    attempt: Duration,
}

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
            total: Duration::from_secs(10),
            attempt: Duration::from_secs(2),
            retry: RetryLayer::builder().classifier(classifier),
        }
    }
}

impl<C, P> ResilienceLayer<C, P> {
    /// The total budget of each call.
    pub fn total_timeout(&self) -> Duration {
        self.total
    }

    /// The timeout of each attempt.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt
    }

    /// The retry layer in the middle.
    pub fn retry(&self) -> &RetryLayer<C, P> {
        &self.retry
    }
}

impl<C: Clone, P: Clone> Clone for ResilienceLayer<C, P> {
    fn clone(&self) -> Self {
        ResilienceLayer {
            deadline: self.deadline,
            retry: self.retry.clone(),
            timeout: self.timeout,
            total: self.total,
            attempt: self.attempt,
        }
    }
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for ResilienceLayer<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceLayer")
            .field("total_timeout", &self.total)
            .field("retry", &self.retry)
            .field("attempt_timeout", &self.attempt)
            .finish()
    }
}

impl<S: Clone, C: Clone, P: Clone> Layer<S> for ResilienceLayer<C, P> {
    type Service = Deadline<Retry<Timeout<S>, C, P>>;

    fn layer(&self, inner: S) -> Self::Service {
        self.deadline
            .layer(self.retry.layer(self.timeout.layer(inner)))
    }
}

/// The configuration of a [`ResilienceLayer`], checked by [`build`](Self::build).
pub struct ResilienceBuilder<C = DefaultClassifier, P = CloneReplay> {
    total: Duration,
    attempt: Duration,
    retry: RetryBuilder<C, P>,
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for ResilienceBuilder<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceBuilder")
            .field("total_timeout", &self.total)
            .field("attempt_timeout", &self.attempt)
            .field("retry", &self.retry)
            .finish()
    }
}

impl<C, P> ResilienceBuilder<C, P> {
    /// The budget of each call, attempts and backoff included (default 10 s).
    pub fn total_timeout(mut self, total: Duration) -> Self {
        self.total = total;
        self
    }

    /// The timeout of each attempt (default 2 s); at most the total.
    pub fn attempt_timeout(mut self, attempt: Duration) -> Self {
        self.attempt = attempt;
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

    /// A retry budget shared with other layers.
    pub fn budget(self, budget: RetryBudget) -> Self {
        self.retry_with(|retry| retry.budget(budget))
    }

    /// No retry budget.
    pub fn no_budget(self) -> Self {
        self.retry_with(RetryBuilder::no_budget)
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
    ) -> ResilienceBuilder<C2, P2> {
        ResilienceBuilder {
            total: self.total,
            attempt: self.attempt,
            retry: configure(self.retry),
        }
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<ResilienceLayer<C, P>, ConfigError> {
        if self.total.is_zero() {
            return Err(ConfigError::new(
                "total_timeout",
                ConfigProblem::ZeroDuration,
            ));
        }
        if self.attempt.is_zero() {
            return Err(ConfigError::new(
                "attempt_timeout",
                ConfigProblem::ZeroDuration,
            ));
        }
        if self.attempt > self.total {
            return Err(ConfigError::new(
                "attempt_timeout",
                ConfigProblem::Exceeds {
                    value: self.attempt,
                    bound: "total_timeout",
                    limit: self.total,
                },
            ));
        }
        Ok(ResilienceLayer {
            deadline: DeadlineLayer::new(self.total),
            retry: self.retry.build()?,
            timeout: TimeoutLayer::new(self.attempt),
            total: self.total,
            attempt: self.attempt,
        })
    }
}

#[cfg(feature = "http")]
/// The setters that the protocol presets' builders (HTTP, gRPC) share with
/// [`ResilienceBuilder`], forwarded to the builder each keeps in its `inner` field.
macro_rules! forward_resilience_setters {
    ($builder:ty, $classifier:ty, $replay:ty) => {
        impl $builder {
            fn with(
                mut self,
                configure: impl FnOnce(
                    $crate::ResilienceBuilder<$classifier, $replay>,
                ) -> $crate::ResilienceBuilder<$classifier, $replay>,
            ) -> Self {
                self.inner = configure(self.inner);
                self
            }

            /// The budget of each call, attempts and backoff included (default 10 s).
            pub fn total_timeout(self, total: std::time::Duration) -> Self {
                self.with(|b| b.total_timeout(total))
            }

            /// The timeout of each attempt (default 2 s); at most the total.
            pub fn attempt_timeout(self, attempt: std::time::Duration) -> Self {
                self.with(|b| b.attempt_timeout(attempt))
            }

            /// Attempts in all, the first included (default 3).
            pub fn max_attempts(self, attempts: u32) -> Self {
                self.with(|b| b.max_attempts(attempts))
            }

            /// The delays between attempts.
            pub fn backoff(self, backoff: $crate::retry::ExponentialBackoff) -> Self {
                self.with(|b| b.backoff(backoff))
            }

            /// The longest server hint honoured (default 60 s; the deadline bounds it too).
            pub fn max_retry_after(self, cap: std::time::Duration) -> Self {
                self.with(|b| b.max_retry_after(cap))
            }

            /// A retry budget shared with other layers.
            pub fn budget(self, budget: $crate::retry::RetryBudget) -> Self {
                self.with(|b| b.budget(budget))
            }

            /// No retry budget.
            pub fn no_budget(self) -> Self {
                self.with($crate::ResilienceBuilder::no_budget)
            }

            /// Receives every retry event.
            pub fn observer(self, observer: impl $crate::retry::Observer) -> Self {
                self.with(|b| b.observer(observer))
            }

            /// Any other retry setting, on the retry builder itself.
            pub fn retry_with(
                self,
                configure: impl FnOnce(
                    $crate::retry::RetryBuilder<$classifier, $replay>,
                ) -> $crate::retry::RetryBuilder<$classifier, $replay>,
            ) -> Self {
                self.with(|b| b.retry_with(configure))
            }
        }
    };
}

#[cfg(feature = "http")]
pub(crate) use forward_resilience_setters;

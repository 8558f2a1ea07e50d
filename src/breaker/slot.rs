//! The breaker slot of a preset's builder: empty, or a breaker asked for.

use tower_layer::Layer;

use super::{BreakerConfig, CircuitBreakerLayer};
use crate::error::ConfigError;

/// The breaker slot of [`ResilienceLayer`](crate::ResilienceLayer) with no breaker in it: a
/// layer that adds nothing, so that a stack without a breaker is the stack it was.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBreaker;

impl crate::preset::Carry for NoBreaker {
    fn carry_state(&mut self, _old: &Self) {}
}

impl<S> Layer<S> for NoBreaker {
    type Service = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}

/// A breaker asked of a preset's builder: what
/// [`ResilienceBuilder::circuit_breaker`](crate::ResilienceBuilder::circuit_breaker) sets. It
/// holds no classifier: the breaker counts with the stack's one classifier, the one in place
/// when the stack is built, whatever order the builder's methods were called in.
#[derive(Debug, Clone)]
pub struct BreakerPlan {
    config: BreakerConfig,
}

impl BreakerPlan {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        BreakerPlan { config }
    }
}

/// What a preset's builder with classifier `C` has in its breaker slot: [`NoBreaker`] or a
/// [`BreakerPlan`].
pub trait BreakerSlot<C>: sealed::Sealed {
    /// The layer it makes.
    type Layer;

    #[doc(hidden)]
    fn build(self, classifier: &C) -> Result<Self::Layer, ConfigError>;

    #[doc(hidden)]
    fn into_config(self) -> Option<BreakerConfig>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoBreaker {}
    impl Sealed for super::BreakerPlan {}
}

impl<C> BreakerSlot<C> for NoBreaker {
    type Layer = NoBreaker;

    fn build(self, _classifier: &C) -> Result<NoBreaker, ConfigError> {
        Ok(NoBreaker)
    }

    fn into_config(self) -> Option<BreakerConfig> {
        None
    }
}

impl<C: Clone + Send + Sync + 'static> BreakerSlot<C> for BreakerPlan {
    type Layer = CircuitBreakerLayer<C>;

    fn build(self, classifier: &C) -> Result<CircuitBreakerLayer<C>, ConfigError> {
        CircuitBreakerLayer::builder(self.config)
            .classifier(classifier.clone())
            .build()
    }

    fn into_config(self) -> Option<BreakerConfig> {
        Some(self.config)
    }
}

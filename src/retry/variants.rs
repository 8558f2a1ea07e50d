//! Retry layers made from a layer: the one a reload carries the budgets into, and a gRPC
//! method's own (a service config's retry or hedging policy over the preset's settings).

use std::sync::Arc;

use super::RetryLayer;
#[cfg(all(feature = "grpc", feature = "serde"))]
use super::{BaseDelays, ExponentialBackoff, Hedge, RetryBuilder, Schedule, decide::Limits};
#[cfg(all(feature = "grpc", feature = "serde"))]
use crate::error::ConfigError;
use crate::preset::Carry;

/// What a gRPC service config sets for one method's retries (gRFC A6): the codes retried (or
/// hedged on), the attempts, and the backoff or the hedging.
#[cfg(all(feature = "grpc", feature = "serde"))]
pub(crate) struct MethodRetry<C> {
    pub(crate) classifier: C,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Option<ExponentialBackoff>,
    pub(crate) hedge: Option<Hedge>,
}

#[cfg(all(feature = "grpc", feature = "serde"))]
impl<C, P: Clone, K: Clone> RetryLayer<C, P, K> {
    /// This layer with a method's own retries: its settings, and the rest of this layer's (the
    /// observer, the seed, the limits on time); the budgets are this layer's, shared.
    pub(crate) fn for_method<C2>(
        &self,
        method: MethodRetry<C2>,
    ) -> Result<RetryLayer<C2, P, K>, ConfigError> {
        let config = &self.shared;
        let schedule = match method.backoff {
            Some(backoff) => Schedule::Exponential(BaseDelays::new(backoff)),
            None => config.schedule.clone(),
        };
        let built = RetryBuilder {
            classifier: method.classifier,
            replay: self.replay.clone(),
            limits: Limits {
                max_attempts: method.max_attempts,
                ..config.limits
            },
            schedule,
            budget: config.budget.clone(),
            observer: config.observer.clone(),
            hedge: method.hedge,
            seed: config.seed,
        }
        .build()?;
        Ok(RetryLayer {
            classifier: built.classifier,
            replay: built.replay,
            shared: built.shared,
            scope: self.scope.clone(),
            keyed: self.keyed.clone(),
        })
    }
}

impl<C, P, K> Carry for RetryLayer<C, P, K> {
    /// Keeps the budget when its settings are the same; with a budget per key, each key's
    /// when the cap on keys is the same too.
    fn carry_state(&mut self, old: &Self) {
        let (Some(new), Some(kept)) = (self.shared.budget.as_ref(), old.shared.budget.as_ref())
        else {
            return;
        };
        if !new.same_settings(kept) {
            return;
        }
        self.shared = Arc::new(self.shared.with_budget(Some(kept.clone())));
        if let (Some(new), Some(kept)) = (&self.keyed, &old.keyed)
            && new.cap() == kept.cap()
        {
            self.keyed = Some(kept.clone());
        }
    }
}

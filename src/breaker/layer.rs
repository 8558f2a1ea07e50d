use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::circuit::{Circuit, Shared};
use super::config::BreakerConfig;
use super::settings::Settings;
use super::{BreakerHandle, CircuitBreaker, Circuits, Counted};
use crate::classify::DefaultClassifier;
use crate::error::ConfigError;
use crate::preset::Carry;
use crate::scope::{Scopes, Unscoped};

/// Wraps services in a circuit breaker. Every service it makes, and every clone of them,
/// shares its circuits: one, or one per key with `per_key` on its [`builder`](CircuitBreakerLayer::builder).
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer, CircuitState};
/// use tower::BoxError;
/// use tower_tenacity::{Error, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let config = BreakerConfig::new().consecutive_failures(2).break_duration(Duration::from_secs(5));
/// let layer = CircuitBreakerLayer::new(config).unwrap();
/// let handle = layer.handle();
/// let mut svc = layer.layer(service_fn(|_: ()| async {
///     Err::<(), BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
/// }));
/// for _ in 0..2 {
///     assert!(svc.ready().await.unwrap().call(()).await.is_err());
/// }
/// assert_eq!(handle.snapshot().state, CircuitState::Open);
/// // Rejected at once, without calling the service.
/// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// assert!(matches!(
///     Error::find(err.as_ref()).unwrap().kind(),
///     ErrorKind::CircuitOpen { remaining: Some(_), .. }
/// ));
/// # }
/// ```
pub struct CircuitBreakerLayer<C = DefaultClassifier, K = Unscoped> {
    circuits: Option<Arc<Circuits<C>>>,
    scope: K,
}

impl CircuitBreakerLayer {
    /// One circuit with `config`, counting what the [`DefaultClassifier`] calls retryable.
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        CircuitBreakerLayer::builder(config).build()
    }

    /// Starts a breaker with `config`, to set what its builder takes: `classifier(c)`, what
    /// counts as a failure (any [`ClassifyOutcome`](crate::classify::ClassifyOutcome); the
    /// [`DefaultClassifier`] by default), and `per_key(key)`, one circuit per key (a
    /// [`key_fn`](crate::scope::key_fn), or `http::ByAuthority` for one per host); then
    /// `build()`.
    pub fn builder(config: BreakerConfig) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            config,
            classifier: DefaultClassifier,
            scope: Unscoped,
        }
    }
}

impl<C: Send + Sync + 'static, K> CircuitBreakerLayer<C, K> {
    /// The handle to the layer's circuits: snapshots, and holding them open or closed by hand.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle::new(self.circuits.clone())
    }
}

impl<C, K> Carry for CircuitBreakerLayer<C, K> {
    /// Keeps the circuits, their states and what they counted (and the classifier and the
    /// observer they report to), when the settings and the cap on keys are the same: a reload
    /// that changes other settings leaves an open circuit open. New settings, or a new cap,
    /// start new circuits.
    fn carry_state(&mut self, old: &Self) {
        if let (Some(new), Some(old)) = (&self.circuits, &old.circuits)
            && new.shared.settings == old.shared.settings
            && new.scopes.cap() == old.scopes.cap()
        {
            self.circuits = Some(old.clone());
        }
    }
}

impl<C, K> CircuitBreakerLayer<C, K> {
    /// Whether the layer is switched on (a preset's slot with no breaker configured is not).
    pub fn is_on(&self) -> bool {
        self.circuits.is_some()
    }

    /// A breaker slot that is switched off: it passes calls through.
    #[cfg(feature = "http")]
    pub(crate) fn off(scope: K) -> Self {
        CircuitBreakerLayer {
            circuits: None,
            scope,
        }
    }
}

impl<C, K: Clone> Clone for CircuitBreakerLayer<C, K> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            circuits: self.circuits.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<C, K: fmt::Debug> fmt::Debug for CircuitBreakerLayer<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("scope", &self.scope)
            .field("circuits", &self.circuits)
            .finish()
    }
}

impl<S, C, K: Clone> Layer<S> for CircuitBreakerLayer<C, K> {
    type Service = CircuitBreaker<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            circuits: self.circuits.clone(),
            scope: self.scope.clone(),
        }
    }
}

/// Sets a [`CircuitBreakerLayer`]'s classifier and key; see [`CircuitBreakerLayer::builder`].
#[must_use = "a builder does nothing until `.build()` makes the layer"]
#[derive(Debug, Clone)]
pub struct CircuitBreakerBuilder<C = DefaultClassifier, K = Unscoped> {
    config: BreakerConfig,
    classifier: C,
    scope: K,
}

impl<C, K> CircuitBreakerBuilder<C, K> {
    /// Decides what counts as a failure: the outcomes it calls retryable (and, with
    /// [`count_fatal`](BreakerConfig::count_fatal), fatal). Give it the classifier the retry
    /// layer uses, so that one place decides.
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerBuilder<C2, K> {
        CircuitBreakerBuilder {
            config: self.config,
            classifier,
            scope: self.scope,
        }
    }

    /// Keeps one circuit per key of `scope`, at most
    /// [`max_keys`](BreakerConfig::max_keys) of them.
    pub fn per_key<K2>(self, scope: K2) -> CircuitBreakerBuilder<C, K2> {
        CircuitBreakerBuilder {
            config: self.config,
            classifier: self.classifier,
            scope,
        }
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<CircuitBreakerLayer<C, K>, ConfigError>
    where
        C: Send + Sync + 'static,
        K: 'static,
    {
        let settings = Settings::new(&self.config)?;
        let shared = Arc::new(Shared::new(settings, self.config.observer.clone()));
        let classifier = Arc::new(self.classifier);
        let made = shared.clone();
        let make = move || Counted::new(Circuit::new(made.clone()), classifier.clone());
        let scopes = if is_unscoped::<K>() {
            Scopes::single(make())
        } else {
            Scopes::per_key(self.config.keys(), make)
        };
        let circuits = Circuits { scopes, shared };
        Ok(CircuitBreakerLayer {
            circuits: Some(Arc::new(circuits)),
            scope: self.scope,
        })
    }
}

fn is_unscoped<K: 'static>() -> bool {
    std::any::TypeId::of::<K>() == std::any::TypeId::of::<Unscoped>()
}

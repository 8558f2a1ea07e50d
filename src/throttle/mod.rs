//! Client-side adaptive throttling: when a dependency accepts too little of what it is sent,
//! the client turns requests away itself, before they add to its load.
//!
//! The budget and the breaker bound *retries* and stop calls to a dependency that is down;
//! nothing else bounds *first attempts* to one that is overloaded but still answering some.
//! [`ThrottleLayer`] is the Google SRE book's adaptive throttling ("Handling Overload"): over a
//! sliding window it counts the requests made and those the dependency *accepted*, and rejects a
//! new request locally with probability
//!
//! ```text
//! max(0, (requests − K × accepts) / (requests + 1))
//! ```
//!
//! With `K = 2` (the default), nothing is rejected while the dependency accepts at least half
//! of what it gets: a dependency that is merely flaky is never throttled. Past that, the
//! client sends about `K` times what is accepted, so that the dependency still sees enough
//! traffic to show when it has recovered. Rejected requests count as requests, as the book has
//! it. The probability is capped (0.9 by default, as failsafe-go's throttler does): after a full
//! outage the uncapped formula lets about one request a window through, and climbs back only by
//! doubling what it sends each window; with the cap a tenth gets through, and a recovered
//! dependency is sent everything again within a few windows.
//!
//! The window is ten slices, each a tenth of its length, and a call reads no clock: one task
//! per layer (started by its first call in a tokio runtime, gone with the layer) slides every
//! window of the layer at the end of each slice. A call that is let through adds its outcome to
//! the slice being filled, with one atomic add; an outcome counts in the slice it comes in. When
//! it slides a window, the task also works out how many failures the new slice can take with
//! nothing rejected: while it holds fewer, a call is admitted on a compare, and only past that
//! is the whole window read and tested. Outside a tokio runtime nothing slides the window, and
//! it counts every call since the layer was made (and past 2³² outcomes its count starts
//! again). The task needs the runtime's timers (`enable_time`), as every timeout of this crate
//! does, and so the layer's classifier is `Send + Sync + 'static`.
//!
//! What is accepted comes from the stack's one classifier: a success, or a fatal outcome the
//! server answered (a 404 is an answer). Not accepted: every retryable outcome (a 429, a 503,
//! `RESOURCE_EXHAUSTED`, an open circuit, a reset), and timeouts, an attempt's or the deadline's
//! (an overloaded dependency shows itself by answering late). A request that was not sent for a
//! local reason (no such host, a bad certificate) is not counted as accepted either. A call
//! dropped before its outcome (a hedge that lost) is not counted at all.
//!
//! A throttled request is never sent: it fails at once with [`ErrorKind::Throttled`], which the
//! classifiers call fatal ([`NotSent::Throttled`]), so that it is not retried and spends no retry
//! budget; the retry layer's events report it like any outcome. State is kept like the budget's:
//! one window for every call, or one per key ([`ThrottleLayer::per_key`]; per host, as the
//! presets keep their budgets, with the key the HTTP and gRPC presets use). The presets do not
//! throttle: put the layer between a retry layer and the attempt timeout in a stack of your own.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::classify::DefaultClassifier;
//! use tower_tenacity::throttle::{Throttle, ThrottleLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let layer = ThrottleLayer::new(
//!     Throttle::new().k(2.0).window(Duration::from_secs(10)),
//!     DefaultClassifier,
//! )?;
//! let mut svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, tower::BoxError>(x) }));
//! assert_eq!(svc.ready().await?.call(7).await?, 7);
//! # Ok(())
//! # }
//! ```
//!
//! [`ErrorKind::Throttled`]: crate::ErrorKind::Throttled
//! [`NotSent::Throttled`]: crate::classify::NotSent::Throttled

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::error::{ConfigError, ConfigProblem};
use crate::scope::{DEFAULT_MAX_KEYS, Scopes, Unscoped};

mod admit;
mod service;
mod ticker;
mod window;

use self::admit::{Formula, Throttler};
use self::ticker::Windows;
use self::window::Window;

/// Adaptive throttling's settings: `K` and the window; see [the module](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    k: f64,
    window: Duration,
    max_rejection: f64,
    max_keys: usize,
    seed: Option<u64>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

impl Throttle {
    /// `K = 2` over a 10 s window (ten slices of a second), at most 1024 keys when kept per key.
    pub const fn new() -> Self {
        Throttle {
            k: 2.0,
            window: Duration::from_secs(10),
            max_rejection: 0.9,
            max_keys: DEFAULT_MAX_KEYS,
            seed: None,
        }
    }

    /// How many requests are sent per one accepted before any is rejected (at least 1; the
    /// book suggests 2, lower throttles sooner, higher later).
    pub const fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// How much history the rates are taken over (a second to an hour). Longer reacts slower,
    /// and stays throttled longer after the dependency recovers.
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The highest rejection probability (`0.0..=1.0`, default 0.9): what always gets through
    /// to show that the dependency has recovered.
    pub const fn max_rejection(mut self, max_rejection: f64) -> Self {
        self.max_rejection = max_rejection;
        self
    }

    /// The most keys kept when the layer throttles per key (default 1024).
    pub const fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Seeds the draws that decide which requests are rejected, for reproducible runs.
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub(crate) fn keys(&self) -> usize {
        self.max_keys
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !self.k.is_finite() {
            return Err(ConfigError::new(
                "throttle.k",
                ConfigProblem::NotFinite(self.k),
            ));
        }
        if self.k < 1.0 {
            let problem = ConfigProblem::OutOfRange {
                value: self.k,
                min: 1.0,
                max: f64::INFINITY,
            };
            return Err(ConfigError::new("throttle.k", problem));
        }
        if !(0.0..=1.0).contains(&self.max_rejection) {
            let problem = ConfigProblem::OutOfRange {
                value: self.max_rejection,
                min: 0.0,
                max: 1.0,
            };
            return Err(ConfigError::new("throttle.max_rejection", problem));
        }
        if !(Duration::from_secs(1)..=MAX_WINDOW).contains(&self.window) {
            let problem = ConfigProblem::OutOfRange {
                value: self.window.as_secs_f64(),
                min: 1.0,
                max: MAX_WINDOW.as_secs_f64(),
            };
            return Err(ConfigError::new("throttle.window (seconds)", problem));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new("throttle.max_keys", ConfigProblem::Zero));
        }
        Ok(())
    }
}

/// The longest window: a tenth of it, one slice, then holds the counts of twelve million
/// outcomes a second (see `window.rs`).
const MAX_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Adaptive throttling for every call, or per key; see [the module](self).
pub struct ThrottleLayer<C, K = Unscoped> {
    windows: Arc<Windows<C>>,
    scope: K,
    // What the layer was built with: the window and the keys stay; `K` and the cap can change.
    settings: Throttle,
}

impl<C, K> ThrottleLayer<C, K> {
    /// Changes `K` and the highest rejection probability of every window of this layer (and of
    /// its clones and their services) to `throttle`'s, from the next request on; what the
    /// windows counted stays. The window's length, the keys' cap and the seed are the ones the
    /// layer was built with: a `throttle` that changes them is an error naming the field, as is
    /// one out of range.
    ///
    /// ```
    /// use tower_tenacity::classify::DefaultClassifier;
    /// use tower_tenacity::throttle::{Throttle, ThrottleLayer};
    ///
    /// let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    /// layer.reload(Throttle::new().k(1.5).max_rejection(0.5)).unwrap();
    /// let err = layer.reload(Throttle::new().window(std::time::Duration::from_secs(60)));
    /// assert_eq!(err.unwrap_err().field(), "throttle.window");
    /// ```
    pub fn reload(&self, throttle: Throttle) -> Result<(), ConfigError> {
        throttle.check()?;
        let fixed = &self.settings;
        let changed = if throttle.window != fixed.window {
            Some("throttle.window")
        } else if throttle.max_keys != fixed.max_keys {
            Some("throttle.max_keys")
        } else if throttle.seed != fixed.seed {
            Some("throttle.seed")
        } else {
            None
        };
        if let Some(field) = changed {
            return Err(ConfigError::new(field, ConfigProblem::FixedOnceBuilt));
        }
        let formula = &self.windows.formula;
        formula.set(&throttle);
        (self.windows.scopes).for_each(|throttler| throttler.window.set_k(|| formula.k_fixed()));
        Ok(())
    }
}

impl<C> ThrottleLayer<C> {
    /// One window for every call, counting what `classifier` calls accepted.
    pub fn new(throttle: Throttle, classifier: C) -> Result<Self, ConfigError> {
        throttle.check()?;
        let scopes = Scopes::single(throttler(Arc::new(classifier)));
        Ok(ThrottleLayer {
            windows: windows(scopes, &throttle),
            scope: Unscoped,
            settings: throttle,
        })
    }

    /// One window per key of `scope`, at most [`Throttle::max_keys`] of them.
    pub fn per_key<K>(
        throttle: Throttle,
        classifier: C,
        scope: K,
    ) -> Result<ThrottleLayer<C, K>, ConfigError>
    where
        C: Send + Sync + 'static,
    {
        throttle.check()?;
        let classifier = Arc::new(classifier);
        let scopes = Scopes::per_key(throttle.keys(), move || throttler(classifier.clone()));
        Ok(ThrottleLayer {
            windows: windows(scopes, &throttle),
            scope,
            settings: throttle,
        })
    }
}

fn windows<C>(scopes: Scopes<Throttler<C>>, throttle: &Throttle) -> Arc<Windows<C>> {
    Arc::new(Windows::new(
        scopes,
        Formula::new(throttle),
        throttle.window,
    ))
}

fn throttler<C>(classifier: Arc<C>) -> Throttler<C> {
    Throttler {
        window: Window::new(),
        classifier,
    }
}

impl<C, K: Clone> Clone for ThrottleLayer<C, K> {
    fn clone(&self) -> Self {
        ThrottleLayer {
            windows: self.windows.clone(),
            scope: self.scope.clone(),
            settings: self.settings,
        }
    }
}

impl<C, K: fmt::Debug> fmt::Debug for ThrottleLayer<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleLayer")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<S, C, K: Clone> Layer<S> for ThrottleLayer<C, K> {
    type Service = service::Throttled<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        service::Throttled::new(inner, self.windows.clone(), self.scope.clone())
    }
}

#[cfg(test)]
mod tests;

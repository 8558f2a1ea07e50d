//! [`ResilienceLayer`]: the three layers in the recommended order, from one validated
//! configuration.

use std::fmt;
use std::time::Duration;

use tower_layer::{Identity, Layer};

mod builder;
mod live;
#[cfg(feature = "serde")]
pub(crate) mod settings;

pub use self::builder::ResilienceBuilder;
pub(crate) use self::live::{Build, Carry, Live, Reload, Reloading};
use crate::breaker::NoBreaker;
use crate::classify::DefaultClassifier;
use crate::deadline::Deadline;
use crate::retry::{CloneReplay, Retry, RetryLayer};
use crate::timeout::Timeout;

/// The standard pipeline: a total deadline, retry inside it, a per-attempt timeout inside that,
/// and, when asked for, a circuit breaker between retry and the attempt timeout.
///
/// ```text
/// Deadline (total, 10 s) → Retry (3 attempts, backoff, budget) → [CircuitBreaker]
///     → Timeout (2 s per attempt) → S
/// ```
///
/// The defaults are those shown; [`builder`](Self::builder) changes them and checks that they
/// fit together. Defaults make room for what you set, so only two values you set yourself can
/// conflict (an attempt timeout longer than the total):
///
/// * set only the total, and each attempt gets 2 s or `total / max_attempts`, whichever is
///   shorter, so that every attempt fits in it;
/// * set only the attempt timeout, and the total is 10 s or `attempt × max_attempts`,
///   whichever is longer;
/// * [`no_total_timeout`](ResilienceBuilder::no_total_timeout) leaves the calls without a total
///   deadline (each attempt is still bounded).
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::classify::DefaultClassifier;
/// use tower::BoxError;
/// use tower_tenacity::ResilienceLayer;
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
/// let short = ResilienceLayer::builder(DefaultClassifier)
///     .total_timeout(Duration::from_secs(1))
///     .build()?;
/// assert_eq!(short.attempt_timeout(), Duration::from_secs(1) / 3);
///
/// let too_long = ResilienceLayer::builder(DefaultClassifier)
///     .total_timeout(Duration::from_secs(1))
///     .attempt_timeout(Duration::from_secs(2))
///     .build();
/// assert_eq!(too_long.unwrap_err().field(), "attempt_timeout");
/// # Ok(())
/// # }
/// ```
pub struct ResilienceLayer<C = DefaultClassifier, P = CloneReplay, L = NoBreaker> {
    retry: RetryLayer<C, P>,
    breaker: L,
    total: Option<Duration>,
    attempt: Duration,
    live: Live<Self>,
}

impl<C, P, L> ResilienceLayer<C, P, L> {
    /// The total budget of each call; `None` when calls have no total deadline.
    pub fn total_timeout(&self) -> Option<Duration> {
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

    /// The circuit breaker between retry and the attempt timeout: a
    /// [`CircuitBreakerLayer`](crate::breaker::CircuitBreakerLayer)
    /// if [`circuit_breaker`](ResilienceBuilder::circuit_breaker) was set, a breaker switched off
    /// otherwise.
    pub fn breaker(&self) -> &L {
        &self.breaker
    }
}

impl<C: Clone, P: Clone, L: Clone> Clone for ResilienceLayer<C, P, L> {
    fn clone(&self) -> Self {
        ResilienceLayer {
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            total: self.total,
            attempt: self.attempt,
            live: self.live.clone(),
        }
    }
}

impl<C: Clone, P: Clone, L: Clone + Carry> ResilienceLayer<C, P, L> {
    /// Swaps the settings of every service this layer (or a clone of it) made, and will make,
    /// for `next`'s, without building the stack again: each service takes them before its next
    /// call, and a call in flight keeps the settings it started with. Costs nothing until then
    /// but one atomic load per call.
    ///
    /// What the calls share carries over where its settings are the same: the retry budget
    /// (per host in the HTTP and gRPC presets) and the breaker's circuits, open ones included.
    /// A budget or a breaker with new settings (or a new cap on keys) starts afresh, as a new
    /// layer's would; circuits kept go on counting with the classifier they were built with,
    /// and report to their observer. A
    /// [`BreakerHandle`](crate::breaker::BreakerHandle) taken before then still holds the
    /// circuits it was taken from, so take one from `next`. The settings come whole from
    /// `next`, as from a file read again (see `guides::configuration`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::{service_fn, Layer, Service, ServiceExt};
    /// use tower_tenacity::{classify::DefaultClassifier, ResilienceLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let layer = ResilienceLayer::builder(DefaultClassifier).max_attempts(2).build()?;
    /// let mut svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, tower::BoxError>(x) }));
    /// layer.reload(ResilienceLayer::builder(DefaultClassifier).max_attempts(5).build()?);
    /// assert_eq!(svc.ready().await?.call(7).await?, 7); // with 5 attempts
    /// # Ok(())
    /// # }
    /// ```
    pub fn reload(&self, next: Self) {
        self.live.reload(self, next);
    }
}

impl<C, P, L: Carry> Reload for ResilienceLayer<C, P, L> {
    fn cell(&mut self) -> &mut Live<Self> {
        &mut self.live
    }
}

impl<C, P, L: Carry> Carry for ResilienceLayer<C, P, L> {
    fn carry_state(&mut self, old: &Self) {
        self.retry.carry_state(&old.retry);
        self.breaker.carry_state(&old.breaker);
    }
}

impl<C: fmt::Debug, P: fmt::Debug, L: fmt::Debug> fmt::Debug for ResilienceLayer<C, P, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceLayer")
            .field("total_timeout", &self.total)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("attempt_timeout", &self.attempt)
            .finish()
    }
}

impl<S: Clone, C: Clone, P: Clone, L: Clone> Layer<S> for ResilienceLayer<C, P, L>
where
    L: Layer<Timeout<S>>,
    L::Service: Clone,
{
    type Service = Reloading<Self, S, Deadline<Retry<L::Service, C, P>>>;

    fn layer(&self, inner: S) -> Self::Service {
        self.live.service(self, inner)
    }
}

impl<S: Clone, C: Clone, P: Clone, L> Build<S> for ResilienceLayer<C, P, L>
where
    L: Layer<Timeout<S>>,
    L::Service: Clone,
{
    type Stack = Deadline<Retry<L::Service, C, P>>;

    fn build(&self, inner: S) -> Self::Stack {
        let attempts = attempts(
            &self.retry,
            &self.breaker,
            Identity::new(),
            self.attempt,
            inner,
        );
        Deadline::enforced_inside(attempts, self.total)
    }
}

/// The order every preset builds its attempts in, written once, outermost first: retry, the
/// circuit breaker (each attempt counted, a rejection classified like any outcome), `around`
/// (what a protocol tells the server of each attempt: its number, the time left), the attempt
/// timeout, and `client` (with whatever a protocol puts inside the timeout). The deadline's
/// owner goes outside: `Deadline` here, the HTTP edge in the protocol presets.
pub(crate) fn attempts<S, A, B, R>(
    retry: &R,
    breaker: &B,
    around: A,
    attempt_timeout: Duration,
    client: S,
) -> R::Service
where
    A: Layer<Timeout<S>>,
    B: Layer<A::Service>,
    R: Layer<B::Service>,
{
    retry.layer(breaker.layer(around.layer(Timeout::new(client, attempt_timeout))))
}

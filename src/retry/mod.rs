//! Retry: classify each outcome, decide, back off, re-issue.
//!
//! [`RetryLayer`] wraps a service so that a call whose outcome the classifier calls
//! [retryable](crate::classify::Classification::Retryable) is made again, after an
//! [`ExponentialBackoff`] delay (or the server's own hint), until it succeeds, fails fatally, or
//! a limit stops it:
//!
//! * `max_attempts` attempts in all (3 by default, the first included);
//! * `max_elapsed`: no attempt starts later than this after the first;
//! * the enclosing [`DeadlineLayer`](crate::deadline::DeadlineLayer): no backoff that would end
//!   past it is started, and no attempt is sent at or after it, whatever the timer's resolution
//!   (a backoff that wakes late, a service that turns ready late);
//! * `max_retry_after`: a server that asks for a longer wait than this is not retried;
//! * the [`RetryBudget`], shared by all clones, that caps retries across all requests.
//!
//! When retrying stops, the caller gets the last outcome: an `Ok` response as it is (the caller
//! sees the 503), an error wrapped in an [`Error`](crate::Error) that says how many attempts were
//! made and which limit stopped them, with the last error as its source. Errors classified as
//! fatal are returned unchanged.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::retry::RetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! tokio::time::pause();
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = calls.clone();
//! let flaky = service_fn(move |name: &'static str| {
//!     let call = counter.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if call < 2 {
//!             Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
//!         } else {
//!             Ok(format!("hello, {name}"))
//!         }
//!     }
//! });
//! let mut svc = RetryLayer::builder().max_attempts(3).build().unwrap().layer(flaky);
//! let reply = svc.ready().await.unwrap().call("world").await.unwrap();
//! assert_eq!(reply, "hello, world");
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # }
//! ```

mod backoff;
mod budget;
mod decide;
mod events;
pub(crate) mod future;
mod hedge;
mod latencies;
mod layer;
mod plan;
mod replay;

mod service;
mod variants;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::time::Instant;
use tower_service::Service;

use crate::error::Attempt;
use crate::scope::Scopes;

use self::backoff::BaseDelays;
pub use self::backoff::{ExponentialBackoff, Jitter};
pub use self::budget::RetryBudget;
use self::decide::Limits;
pub(crate) use self::events::NoHedge;
pub use self::events::{Event, Observer};
pub use self::hedge::Hedge;
use self::hedge::Hedging;
pub use self::layer::RetryLayer;
pub use self::replay::Replay;
// The builder, the default replay and the service the layer makes: named by the methods that
// return them and the layer's `Service` type, not by path.
pub(crate) use self::layer::RetryBuilder;
pub(crate) use self::replay::{CloneReplay, Releasing};
pub(crate) use self::service::Retry;
#[cfg(all(feature = "grpc", feature = "serde"))]
pub(crate) use self::variants::MethodRetry;
pub(crate) use crate::error::GiveUp;

/// What the clones of one [`Retry`] share, behind one `Arc` so that a call counts one
/// reference and its future stays small: the layer's configuration (with its budget), the
/// classifier and the replay, and the spare service that retries go out through.
pub(crate) struct Shared<S, C, P> {
    pub(crate) config: Arc<Config>,
    pub(crate) classifier: C,
    pub(crate) replay: P,
    /// A budget per key, when the layer keeps one (`config.budget` is then only their model).
    keyed: Option<Arc<Scopes<RetryBudget>>>,
    spare: Mutex<S>,
}

impl<S: Clone, C, P> Shared<S, C, P> {
    /// A clone of the spare service, for one request's retries.
    pub(crate) fn spare(&self) -> S {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A retry layer's validated configuration, with the budget its services share.
pub(crate) struct Config {
    pub(crate) limits: Limits,
    pub(crate) schedule: Schedule,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    // Shared with the configurations made from this one (`with_budget`): what a learned delay
    // has learned stays.
    pub(crate) hedging: Option<Arc<Hedging>>,
    pub(crate) seed: Option<u64>,
    /// Counts requests that needed randomness, so seeded ones still differ from each other.
    pub(crate) sequence: AtomicU64,
}

impl Config {
    /// This configuration with `budget` as the one its services share.
    pub(crate) fn with_budget(&self, budget: Option<RetryBudget>) -> Config {
        Config {
            limits: self.limits,
            schedule: self.schedule.clone(),
            budget,
            observer: self.observer.clone(),
            hedging: self.hedging.clone(),
            seed: self.seed,
            sequence: AtomicU64::new(self.sequence.load(Ordering::Relaxed)),
        }
    }

    /// The budget a call draws on: its key's, when the layer keeps one per key, or the layer's.
    pub(crate) fn budget<'a>(
        &'a self,
        keyed: Option<&'a Arc<crate::scope::Slot<RetryBudget>>>,
    ) -> Option<&'a RetryBudget> {
        keyed.map(|slot| &***slot).or(self.budget.as_ref())
    }

    pub(crate) fn attempt(&self, number: u32) -> Attempt {
        Attempt {
            number,
            max: self.limits.max_attempts,
        }
    }

    /// Reports `event`, when anyone listens: the check is one relaxed load, so that a quiet
    /// success path does not build events nobody reads. WARN is the least verbose level the
    /// events use, so any subscriber at all passes it; each event's own macro then checks its
    /// level.
    #[inline]
    pub(crate) fn emit(&self, event: impl FnOnce() -> events::Event) {
        self.emit_in(None, event);
    }

    /// Reports `event` of a call whose state is kept under the key `scope`.
    #[inline]
    pub(crate) fn emit_in(
        &self,
        scope: Option<crate::scope::Scope<'_>>,
        event: impl FnOnce() -> events::Event,
    ) {
        if self.observed() || tracing::level_enabled!(tracing::Level::WARN) {
            events::emit(self.observer.as_deref(), event(), scope);
        }
    }

    /// Whether anything but `tracing` reads the events: an observer, or the `metrics` feature.
    #[inline]
    pub(crate) fn observed(&self) -> bool {
        self.observer.is_some() || cfg!(feature = "metrics")
    }

    /// When an attempt sent now is sent, if anyone reads its latency: one clock read, only
    /// then.
    #[inline]
    pub(crate) fn sent_at(&self) -> Option<Instant> {
        self.observed().then(Instant::now)
    }

    /// Sends `request` as `attempt` through `service`: an event, and the attempt in scope for
    /// the layers inside while they make the call (an attempt header reads it there).
    #[inline(always)]
    pub(crate) fn send<S: Service<Req>, Req>(
        &self,
        service: &mut S,
        request: Req,
        attempt: Attempt,
    ) -> S::Future {
        self.emit(|| Event::Attempt { attempt });
        let _attempt = crate::context::enter_attempt(attempt);
        service.call(request)
    }

    /// A random source for one request's jitter.
    pub(crate) fn rng(&self) -> fastrand::Rng {
        match self.seed {
            Some(seed) => {
                let n = self.sequence.fetch_add(1, Ordering::Relaxed);
                crate::rng::nth(seed, n)
            }
            None => fastrand::Rng::new(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryConfig")
            .field("max_attempts", &self.limits.max_attempts)
            .field("max_elapsed", &self.limits.max_elapsed)
            .field("max_retry_after", &self.limits.max_retry_after)
            .field("schedule", &self.schedule)
            .field("budget", &self.budget)
            .field("observer", &self.observer.is_some())
            .field("hedging", &self.hedging)
            .field("seed", &self.seed)
            .finish()
    }
}

/// Where backoff delays come from.
// One per layer, behind the layer's `Arc`: the table's size costs nothing per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Schedule {
    Exponential(BaseDelays),
    #[cfg(feature = "backoff")]
    Custom(Arc<dyn Fn() -> Box<dyn ::backoff::backoff::Backoff + Send> + Send + Sync>),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Exponential(delays) => delays.backoff().fmt(f),
            #[cfg(feature = "backoff")]
            Schedule::Custom(_) => f.write_str("Custom(backoff::Backoff)"),
        }
    }
}

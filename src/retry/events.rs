//! What the retry loop reports: `tracing` events, and the same as data for an [`Observer`].

use std::time::Duration;

use crate::classify::{Classification, Reason};
use crate::error::Attempt;
use crate::error::GiveUp;

/// One thing that happened in a retry loop.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An attempt is being sent.
    Attempt {
        /// Which one.
        attempt: Attempt,
    },
    /// An attempt finished and was classified.
    Outcome {
        /// Which one.
        attempt: Attempt,
        /// What the classifier said.
        classification: Classification,
        /// How long it took, from its call to its outcome; timed only when an observer (or the
        /// `metrics` feature) reads the events, `None` otherwise.
        elapsed: Option<Duration>,
    },
    /// The attempt failed and another follows after `delay`.
    Retry {
        /// The attempt that failed.
        attempt: Attempt,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why the attempt failed.
        reason: Reason,
        /// Whether `delay` came from the server's hint rather than the backoff.
        hinted: bool,
    },
    /// A hedge is being sent: another attempt beside those in flight, which had no answer
    /// for the hedge delay.
    Hedge {
        /// The hedge's attempt.
        attempt: Attempt,
    },
    /// A hedge was due but not sent, and no other will be in this call.
    HedgeSkipped {
        /// The attempt it would have been.
        attempt: Attempt,
        /// Why not, said by its `Display` in a phrase ("the request is not safe to send
        /// twice", "retry budget exhausted", "the deadline would pass first", …).
        why: NoHedge,
    },
    /// A call that hedged ended: this attempt's outcome (a success or a fatal one) won, and the
    /// attempts still in flight were cancelled.
    HedgeWon {
        /// The attempt that won.
        attempt: Attempt,
        /// How many attempts in flight were cancelled.
        cancelled: u32,
    },
    /// The attempt failed and no other follows.
    GiveUp {
        /// The last attempt.
        attempt: Attempt,
        /// Why retrying stopped.
        why: GiveUp,
        /// Why the last attempt failed, when it was classified.
        reason: Option<Reason>,
    },
}

/// Why a hedge was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoHedge {
    /// The request is not safe to send twice (the classifier's
    /// [`may_hedge`](crate::classify::Classify::may_hedge): for HTTP, a method that is not
    /// idempotent, without an `Idempotency-Key`).
    NotSafe,
    /// The request cannot be copied while the first attempt is in flight (an HTTP body still
    /// being sent; see [`Replay::can_hedge`](super::Replay::can_hedge)).
    NotReplayable,
    /// The retry budget had no retry to give.
    Budget,
    /// The deadline would pass before the hedge was due, or had passed.
    Deadline,
    /// The service was not ready to take another call at once.
    NotReady,
}

impl std::fmt::Display for NoHedge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoHedge::NotSafe => "the request is not safe to send twice",
            NoHedge::NotReplayable => "the request cannot be copied while it is being sent",
            NoHedge::Budget => "retry budget exhausted",
            NoHedge::Deadline => "the deadline would pass first",
            NoHedge::NotReady => "the service was not ready",
        })
    }
}

/// Receives every [`Event`] of a retry layer, for metrics. Set with the builders' `observer`
/// (as [`ResilienceBuilder::observer`](crate::ResilienceBuilder::observer)); without one the events cost
/// only the `tracing` macros.
///
/// Any `Fn(&Event) + Send + Sync` is an observer:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tower_tenacity::retry::{Event, RetryLayer};
///
/// let retries = Arc::new(AtomicU64::new(0));
/// let counter = retries.clone();
/// let layer = RetryLayer::builder()
///     .observer(move |event: &Event| {
///         if let Event::Retry { .. } = event {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Called synchronously, on the task that runs the request: keep it short.
    fn on_event(&self, event: &Event);

    /// The same, with the key the call's state is kept under when the layer keeps it per key
    /// (the presets: the host, `scheme://host:port`), for a metric's attribute: at most as many
    /// as the layer keeps keys. By default it calls [`on_event`](Self::on_event).
    fn on_event_in(&self, event: &Event, scope: Option<&str>) {
        let _ = scope;
        self.on_event(event);
    }
}

impl<F> Observer for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// Sends `event` to `tracing` and to the observer, if any.
#[cold]
#[inline(never)]
pub(crate) fn emit(
    observer: Option<&dyn Observer>,
    event: Event,
    scope: Option<crate::scope::Scope<'_>>,
) {
    match event {
        Event::Attempt { attempt } => {
            tracing::trace!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                "attempt"
            );
        }
        Event::Outcome {
            attempt,
            classification,
            ..
        } => {
            tracing::debug!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                outcome = %classification,
                "attempt finished"
            );
        }
        Event::Retry {
            attempt,
            delay,
            reason,
            hinted,
        } => {
            tracing::info!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                delay_ms = delay.as_millis() as u64,
                %reason,
                server_hint = hinted,
                "retrying"
            );
        }
        Event::Hedge { .. } | Event::HedgeSkipped { .. } | Event::HedgeWon { .. } => {
            trace_hedge(event);
        }
        Event::GiveUp {
            attempt,
            why,
            reason,
        } => trace_give_up(attempt, why, reason),
    }
    #[cfg(feature = "metrics")]
    crate::metrics::record(&event, scope);
    if let Some(observer) = observer {
        observer.on_event_in(&event, scope.map(|scope| scope.name));
    }
}

/// A hedge's `tracing` event, at DEBUG.
fn trace_hedge(event: Event) {
    match event {
        Event::Hedge { attempt } => {
            tracing::debug!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                "hedging"
            );
        }
        Event::HedgeSkipped { attempt, why } => {
            tracing::debug!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                why = %why,
                "not hedging"
            );
        }
        Event::HedgeWon { attempt, cancelled } => {
            tracing::debug!(
                attempt = attempt.number,
                max_attempts = attempt.max,
                cancelled,
                "hedge won"
            );
        }
        _ => {}
    }
}

/// A give-up's `tracing` event: DEBUG for a fatal answer (a 404, say: the service's verdict, not
/// an incident), WARN when a limit stopped the retries.
fn trace_give_up(attempt: Attempt, why: GiveUp, reason: Option<Reason>) {
    let reason = reason.map(tracing::field::display);
    if why == GiveUp::Fatal {
        tracing::debug!(
            attempt = attempt.number,
            max_attempts = attempt.max,
            why = %why,
            reason,
            "not retrying"
        );
    } else {
        tracing::warn!(
            attempt = attempt.number,
            max_attempts = attempt.max,
            why = %why,
            reason,
            "giving up"
        );
    }
}

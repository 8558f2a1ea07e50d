//! What a circuit reports: its state, its changes of state (as `tracing` events and to an
//! [`Observer`]), and a [`Snapshot`] that a health endpoint can print.

use std::fmt;
use std::time::Duration;

use super::window::Counts;

/// The state of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls pass, and their outcomes are counted.
    Closed,
    /// Calls are rejected at once until the break ends.
    Open,
    /// The break ended: a few probe calls pass, the rest are rejected, and the probes' outcomes
    /// close the circuit or open it again.
    HalfOpen,
    /// Held open by hand: every call is rejected until it is released.
    HeldOpen,
    /// Held closed by hand: every call passes and is counted, and nothing opens the circuit.
    HeldClosed,
}

impl CircuitState {
    /// The state as a metric's attribute value.
    #[cfg(feature = "metrics")]
    pub(crate) fn label(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::HeldOpen => "held_open",
            CircuitState::HeldClosed => "held_closed",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
            CircuitState::HeldOpen => "held open",
            CircuitState::HeldClosed => "held closed",
        })
    }
}

/// Why a circuit changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The window's failure ratio reached the threshold.
    FailureRatio,
    /// The configured number of failures came in a row.
    ConsecutiveFailures,
    /// The window's slow-call ratio reached the threshold.
    SlowCalls,
    /// The break ended (seen by the first call after it).
    BreakEnded,
    /// A probe failed (or was slow).
    ProbeFailed,
    /// Every probe succeeded.
    ProbesSucceeded,
    /// An operator held or released the circuit.
    Manual,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::FailureRatio => "failure ratio reached",
            Cause::ConsecutiveFailures => "consecutive failures reached",
            Cause::SlowCalls => "slow-call ratio reached",
            Cause::BreakEnded => "break ended",
            Cause::ProbeFailed => "probe failed",
            Cause::ProbesSucceeded => "probes succeeded",
            Cause::Manual => "changed by hand",
        })
    }
}

/// One change of a circuit's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition<'a> {
    /// The circuit's key, as its `Debug` form, when the breaker keeps one circuit per key.
    pub key: Option<&'a str>,
    /// The state before.
    pub from: CircuitState,
    /// The state now.
    pub to: CircuitState,
    /// Why, said by its `Display` in a phrase ("failure ratio reached", "consecutive failures
    /// reached", "slow-call ratio reached", "break ended", "probe failed", "probes succeeded",
    /// "changed by hand").
    pub cause: Cause,
    /// When the circuit opened: how long the break lasts.
    pub break_for: Option<Duration>,
    /// The window's counts when it changed: `calls`, `failures` and `slow`.
    pub counts: Counts,
}

/// Receives every [`Transition`] of a breaker's circuits; see
/// [`BreakerConfig::observer`](super::BreakerConfig::observer). Any `Fn(&Transition) + Send +
/// Sync` is one.
pub trait Observer: Send + Sync + 'static {
    /// Called synchronously, by the call that caused the change: keep it short.
    fn on_transition(&self, transition: &Transition<'_>);
}

impl<F> Observer for F
where
    F: Fn(&Transition<'_>) + Send + Sync + 'static,
{
    fn on_transition(&self, transition: &Transition<'_>) {
        self(transition)
    }
}

/// Sends `transition` to `tracing` (WARN when a circuit opens, INFO otherwise) and to the
/// observer.
#[cold]
#[inline(never)]
pub(crate) fn emit(observer: Option<&dyn Observer>, transition: &Transition<'_>) {
    let key = transition.key.unwrap_or("");
    let break_ms = transition.break_for.map(|d| d.as_millis() as u64);
    let (calls, failures) = (transition.counts.calls, transition.counts.failures);
    if matches!(transition.to, CircuitState::Open | CircuitState::HeldOpen) {
        tracing::warn!(
            key,
            from = %transition.from,
            to = %transition.to,
            cause = %transition.cause,
            break_ms,
            calls,
            failures,
            "circuit opened"
        );
    } else {
        tracing::info!(
            key,
            from = %transition.from,
            to = %transition.to,
            cause = %transition.cause,
            calls,
            failures,
            "circuit changed"
        );
    }
    #[cfg(feature = "metrics")]
    crate::metrics::transition(
        transition.from.label(),
        transition.to.label(),
        transition.key,
    );
    if let Some(observer) = observer {
        observer.on_transition(transition);
    }
}

/// A circuit's state and counts at one moment, for a health endpoint or a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The circuit's key, as its `Debug` form, when the breaker keeps one circuit per key.
    pub key: Option<String>,
    /// Its state. An open circuit whose break has ended shows as half-open: the next call
    /// probes.
    pub state: CircuitState,
    /// While open, how long the break still lasts.
    pub remaining: Option<Duration>,
    /// The window's counts (calls since the circuit last closed, within the window).
    pub counts: Counts,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Times it opened since it was last closed.
    pub opens: u32,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.state)?;
        if let Some(remaining) = self.remaining {
            write!(f, " for {remaining:?} more")?;
        }
        let Counts {
            calls,
            failures,
            slow,
        } = self.counts;
        write!(
            f,
            "; {calls} calls, {failures} failed, {slow} slow in the window"
        )
    }
}

//! Metrics through the `metrics` facade (feature `metrics`): what each layer records, named and
//! described in `guides::metrics`. With no recorder installed each record is a no-op; with the
//! feature off none of this is built.

use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

use crate::classify::{Classification, Reason};
use crate::error::TimeoutScope;
use crate::retry::{Event, GiveUp};
use crate::scope::Scope;

/// A key's handles for what every successful call records, made at its first success: a
/// success then records with no allocation. (A handle is bound to the recorder installed when
/// it was made; install yours before the first call.)
pub(crate) struct ScopeMetrics {
    successes: Counter,
    durations: Histogram,
}

impl ScopeMetrics {
    fn new(scope: &str) -> Self {
        let scope = scope.to_owned();
        ScopeMetrics {
            successes: counter!(
                "tenacity.attempts",
                "outcome" => "success",
                "reason" => "",
                "tenacity.scope" => scope.clone()
            ),
            durations: histogram!(
                "tenacity.attempt.duration",
                "outcome" => "success",
                "tenacity.scope" => scope
            ),
        }
    }
}

/// Records a success: through the key's handles, or with labels that are all constants (which
/// the `metrics` macros keep static: no allocation either way).
fn success(elapsed: Option<Duration>, scope: Option<Scope<'_>>) {
    let seconds = elapsed.map(|elapsed| elapsed.as_secs_f64());
    match scope {
        Some(scope) => {
            let handles = scope.metrics.get_or_init(|| ScopeMetrics::new(scope.name));
            handles.successes.increment(1);
            if let Some(seconds) = seconds {
                handles.durations.record(seconds);
            }
        }
        None => {
            counter!("tenacity.attempts", "outcome" => "success", "reason" => "", "tenacity.scope" => "")
                .increment(1);
            if let Some(seconds) = seconds {
                histogram!("tenacity.attempt.duration", "outcome" => "success", "tenacity.scope" => "")
                    .record(seconds);
            }
        }
    }
}

/// Records a retry layer's `event`, with the key its state is kept under (`scope`), if any.
pub(crate) fn record(event: &Event, scope: Option<Scope<'_>>) {
    if let Event::Outcome {
        classification: Classification::Success,
        elapsed,
        ..
    } = *event
    {
        return success(elapsed, scope);
    }
    let scope = scope.map_or("", |scope| scope.name).to_owned();
    match *event {
        Event::Outcome {
            classification,
            elapsed,
            ..
        } => outcome(classification, elapsed, scope),
        Event::Retry { reason, .. } => {
            counter!("tenacity.retries", "reason" => reason.to_string(), "tenacity.scope" => scope)
                .increment(1);
        }
        Event::Hedge { .. } => hedge("sent", scope),
        Event::HedgeWon { .. } => hedge("won", scope),
        Event::HedgeSkipped { why, .. } => {
            if why == crate::retry::NoHedge::Budget {
                budget_denied("hedge", scope.clone());
            }
            hedge("skipped", scope);
        }
        Event::GiveUp { why, .. } => {
            if why == GiveUp::Budget {
                budget_denied("retry", scope.clone());
            }
            counter!("tenacity.give_ups", "why" => why_label(why), "tenacity.scope" => scope)
                .increment(1);
        }
        Event::Attempt { .. } => {}
    }
}

/// A failed attempt (a success goes through [`success`]).
fn outcome(classification: Classification, elapsed: Option<Duration>, scope: String) {
    let (kind, reason) = match classification {
        Classification::Success => ("success", None),
        Classification::Retryable { reason, .. } => ("retryable", Some(reason)),
        Classification::Fatal { reason } => ("fatal", Some(reason)),
    };
    let reason_label = reason.map_or_else(String::new, |reason| reason.to_string());
    counter!(
        "tenacity.attempts",
        "outcome" => kind,
        "reason" => reason_label,
        "tenacity.scope" => scope.clone()
    )
    .increment(1);
    if let Some(elapsed) = elapsed {
        histogram!("tenacity.attempt.duration", "outcome" => kind, "tenacity.scope" => scope.clone())
            .record(elapsed.as_secs_f64());
    }
    if let Some(Reason::Timeout(timeout)) = reason {
        let label = match timeout {
            TimeoutScope::Attempt => "attempt",
            TimeoutScope::Total => "total",
        };
        counter!("tenacity.deadline.exceeded", "scope" => label, "tenacity.scope" => scope)
            .increment(1);
    }
}

fn hedge(result: &'static str, scope: String) {
    counter!("tenacity.hedges", "result" => result, "tenacity.scope" => scope).increment(1);
}

fn budget_denied(kind: &'static str, scope: String) {
    counter!("tenacity.budget.denied", "kind" => kind, "tenacity.scope" => scope).increment(1);
}

fn why_label(why: GiveUp) -> &'static str {
    match why {
        GiveUp::Fatal => "fatal",
        GiveUp::Attempts => "attempts",
        GiveUp::Elapsed => "elapsed",
        GiveUp::Deadline => "deadline",
        GiveUp::RetryAfter { .. } => "retry_after",
        GiveUp::Budget => "budget",
        GiveUp::NotReplayable => "not_replayable",
    }
}

/// A circuit changed state.
pub(crate) fn transition(from: &'static str, to: &'static str, scope: Option<&str>) {
    let scope = scope.unwrap_or("").to_owned();
    counter!("tenacity.breaker.transitions", "from" => from, "to" => to, "tenacity.scope" => scope)
        .increment(1);
}

/// A layer turned a call away without sending it: `layer` is `breaker`, `throttle` or
/// `admission`.
pub(crate) fn rejected(layer: &'static str, scope: Option<&str>) {
    let scope = scope.unwrap_or("").to_owned();
    counter!("tenacity.rejected", "layer" => layer, "tenacity.scope" => scope).increment(1);
}

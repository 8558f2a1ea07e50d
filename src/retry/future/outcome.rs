//! What an attempt's outcome comes to beyond the decision: how the caller's outcome is marked,
//! and what a retryable one says to the call's hedging.

use std::time::Duration;

use tokio::time::Instant;

use crate::classify::{NotSent, Reason};
use crate::context::{current_bound, deadline_passed};
use crate::deadline::is_total_timeout;
use crate::error::{Attempt, BoxError, Error, TimeoutScope};
use crate::retry::budget::Taken;
use crate::retry::plan::Progress;
use crate::retry::{Replay, RetryBudget};

/// The outcome the caller gets, marked with the attempt that gave it: a response through the
/// replay ([`Replay::answered`]), the deadline's error (from an attempt timeout capped at it)
/// with the attempt it cut.
#[inline]
pub(super) fn answer<Req, Res, P: Replay<Req, Res>>(
    replay: &P,
    outcome: Result<Res, BoxError>,
    attempt: Attempt,
) -> Result<Res, BoxError> {
    match outcome {
        Ok(mut response) => {
            replay.answered(&mut response, attempt);
            Ok(response)
        }
        Err(err) => Err(with_attempt_cut(err, attempt)),
    }
}

/// The deadline's error with the attempt it cut: from an attempt timeout capped at it, or, once
/// the deadline has passed, around whatever error came then (a gRPC channel that enforces the
/// `grpc-timeout` it was sent fails in the same tick). Any other error as it is.
#[cold]
fn with_attempt_cut(err: BoxError, attempt: Attempt) -> BoxError {
    if !is_total_timeout(&err) {
        if !deadline_passed() {
            return err;
        }
        let budget = current_bound(Instant::now()).map_or(Duration::ZERO, |(_, budget)| budget);
        let error = Error::timeout(TimeoutScope::Total, budget).with_attempt(Some(attempt));
        return error.with_source(err).into();
    }
    match err.downcast::<Error>() {
        Ok(ours) if ours.attempt().is_none() => (*ours).with_attempt(Some(attempt)).into(),
        Ok(ours) => ours,
        Err(other) => other,
    }
}

/// What a retryable outcome says to the call's hedging and budget: a server (or an open
/// circuit) that asked to wait gets no more hedges; a failure the dependency gave is counted
/// (by a token bucket); and a hedge that an open circuit turned away put no load on the
/// dependency and gives back the retry it `taken` from the budget.
pub(super) fn after_retryable(
    progress: &mut Progress,
    budget: Option<&RetryBudget>,
    (reason, hint): (Reason, Option<Duration>),
    taken: Option<Taken>,
) {
    let turned_away = reason == Reason::NeverSent(NotSent::CircuitOpen);
    if hint.is_some() || turned_away {
        progress.no_more_hedges = true;
    }
    // A token bucket (gRFC A6) counts every failure the dependency gave, retried or not; a
    // request that never reached it (a refused stream, an open circuit) is free, as A6's
    // transparent retries are.
    if !matches!(reason, Reason::NeverSent(_))
        && let Some(budget) = budget
    {
        budget.failed();
    }
    if turned_away && let (Some(budget), Some(taken)) = (budget, taken) {
        budget.give_back(taken);
    }
}

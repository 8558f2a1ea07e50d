//! The future of a [`Retry`](super::Retry) call: a state machine whose states own their data.
//!
//! ```text
//! Calling ──retryable──▶ Waiting (backoff, drain) ──▶ Readying (a clone of the spare) ──▶ Calling
//!  │ ▲  (hedge timer: another attempt beside      (the request made again from the kept copy)
//!  └─┘   the ones in flight)
//!    └──success, fatal, or a limit──▶ done
//! ```
//!
//! The call holds one timer at a time, beside its state: the backoff's while it waits, the
//! next hedge's while an attempt is in flight. A hedged call answered before the hedge delay
//! allocates nothing; the set of hedges in flight is made when the first is sent.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;

mod hedging;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::budget::Taken;
use super::hedge::Hedges;
use super::plan::{
    Progress, none_left, past_deadline, plan_retry, poll_wait, ready_service, stopped, unclassified,
};
use super::{Config, Event, GiveUp, Releasing, Replay, RetryBudget, Shared};
use crate::classify::{Classification, Classify, NotSent, Reason};
use crate::context::current_bound;
use crate::deadline::is_total_timeout;
use crate::error::{Attempt, BoxError, Error};
use crate::scope::Slot;

pin_project! {
    #[project = StateProj]
    #[project_ref = StateProjRef]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // An attempt is in flight (and hedges of it, which the future keeps beside it, if the
        // call hedges), and when it was first found pending, if a hedge delay is learned.
        Calling {
            #[pin]
            future: S::Future,
            sent: Option<Instant>,
        },
        // The attempt held here failed while hedges of it are still in flight.
        Hedging,
        // Waiting out the delay before the next attempt (no timer for a zero delay), while the
        // response being retried is drained; once the delay is over, the timer slot holds the
        // deadline, past which the drain does not hold the call.
        Waiting { discarding: Option<Releasing>, waited: bool },
        // Waiting for a clone of the spare service to be ready for the next attempt. One that
        // is ready at once is called at once; one that is not is kept (boxed, to keep this
        // future small) until it is: a service wakes the clone that asked, and only while it
        // lives.
        Readying { pending: Option<Box<S>> },
    }
}

pin_project! {
    /// The future of a [`Retry`](super::Retry) call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<S, Req, C, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
        // The one timer a call needs at a time: the backoff's while `Waiting`, the next hedge's
        // while an attempt is in flight (armed when it is first found pending under a `Hedge`).
        #[pin]
        timer: Option<Sleep>,
        // The copy kept for classification and for making the next attempt's request.
        kept: Option<Req>,
        // The layer's configuration, classifier and replay, and the spare service.
        shared: Arc<Shared<S, C, P>>,
        // Attempts sent so far; `current` is the one in `State::Calling`'s `future`.
        attempt: u32,
        current: u32,
        progress: Progress,
        // This request's key's budget, when the layer keeps one per key.
        keyed: Option<Arc<Slot<RetryBudget>>>,
        // The hedges in flight, made when the first is sent.
        hedges: Option<Box<Hedges<S::Future>>>,
    }
}

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        future: S::Future,
        kept: Option<Req>,
        shared: Arc<Shared<S, C, P>>,
        keyed: Option<Arc<Slot<RetryBudget>>>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future, sent: None },
            timer: None,
            kept,
            shared,
            attempt: 1,
            current: 1,
            progress: Progress::default(),
            keyed,
            hedges: None,
        }
    }
}

impl<S, Req, C, P> fmt::Debug for ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.shared.config.limits.max_attempts)
            .field(
                "hedges_in_flight",
                &self.hedges.as_ref().map_or(0, |h| h.len()),
            )
            .finish_non_exhaustive()
    }
}

/// What an outcome came to: the call's result, or the call goes on.
enum Next<T> {
    Done(T),
    GoOn,
}

impl<S, Req, C, P> Future for ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Calling { future, sent, .. } => {
                    if let Poll::Ready(outcome) = future.poll(cx) {
                        let sent = *sent;
                        let number = *this.current;
                        // Classifiers read errors as `BoxError`, whatever the service's type
                        // (one that is a `BoxError` already stays as it is).
                        let outcome = outcome.map_err(Into::into);
                        match self
                            .as_mut()
                            .on_outcome(outcome, number, (sent, true, None))
                        {
                            Next::Done(done) => return Poll::Ready(done),
                            Next::GoOn => continue,
                        }
                    }
                    if let Some(done) = ready!(self.as_mut().poll_hedges(cx)) {
                        return Poll::Ready(done);
                    }
                }
                StateProj::Hedging => {
                    if let Some(done) = ready!(self.as_mut().poll_hedges(cx)) {
                        return Poll::Ready(done);
                    }
                }
                StateProj::Waiting { discarding, waited } => {
                    ready!(poll_wait(this.timer, discarding, waited, cx));
                    this.state.set(State::Readying { pending: None });
                }
                StateProj::Readying { pending } => {
                    let service = match ready_service(this.shared, pending, cx) {
                        Poll::Ready(Ok(service)) => service,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        // The deadline is this future's to wait for now: a preset's deadline
                        // arms no timer, counting on the attempts' and this one.
                        Poll::Pending => return self.as_mut().poll_deadline(cx),
                    };
                    // Nothing is sent that the deadline would cancel at once: the call ends
                    // with the deadline's error.
                    if crate::context::deadline_passed() {
                        return Poll::Ready(Err(past_deadline(self.attempt_sent())));
                    }
                    if let Err(done) = self.as_mut().send_next(service) {
                        return Poll::Ready(done);
                    }
                }
            }
        }
    }
}

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    /// Only `max_elapsed` measures from the first attempt: without it, a pending attempt reads
    /// no clock.
    fn note_pending(self: Pin<&mut Self>) {
        let this = self.project();
        if this.progress.started.is_none() && this.shared.config.limits.max_elapsed.is_some() {
            this.progress.started = Some(Instant::now());
        }
    }

    /// The last attempt sent.
    fn attempt_sent(&self) -> Attempt {
        self.shared.config.attempt(self.attempt)
    }

    /// While the next attempt waits for a service to turn ready: the deadline in force, if any,
    /// ends the call (its timer in the timer slot, which is free between attempts).
    fn poll_deadline(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<<Self as Future>::Output> {
        let attempt = self.attempt_sent();
        let mut timer = self.project().timer;
        if timer.is_none() {
            let Some((deadline, _)) = current_bound(Instant::now()) else {
                return Poll::Pending;
            };
            timer.set(Some(tokio::time::sleep_until(deadline)));
        }
        match timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(past_deadline(attempt))),
            _ => Poll::Pending,
        }
    }

    /// Sends the next attempt (after a backoff) through `service`.
    fn send_next(
        self: Pin<&mut Self>,
        mut service: S,
    ) -> Result<(), Result<S::Response, BoxError>> {
        let mut this = self.project();
        let config = &this.shared.config;
        let next = (this.kept.as_ref()).and_then(|kept| this.shared.replay.replay(kept));
        let Some(request) = next else {
            // `can_replay` said it could be; a replay that changed its mind.
            let attempt = config.attempt(*this.attempt);
            return Err(unclassified(config, attempt, Err(none_left())));
        };
        *this.attempt += 1;
        *this.current = *this.attempt;
        // The slot held the deadline's timer, if the service was slow to turn ready; its
        // hedges, if any, come after their own delay, counted from when it is found pending.
        this.timer.set(None);
        let future = config.send(&mut service, request, config.attempt(*this.attempt));
        this.state.set(State::Calling { future, sent: None });
        Ok(())
    }

    /// Classifies the outcome of attempt `number` (sent at `sent`, when timed; the one held in
    /// `State::Calling` if `held`; a hedge that took `taken` from the budget otherwise) and ends
    /// the call, waits for the other attempts in flight, or plans the next attempt (in the
    /// `Waiting` state).
    fn on_outcome(
        mut self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
        number: u32,
        (sent, held, taken): (Option<Instant>, bool, Option<Taken>),
    ) -> Next<Result<S::Response, BoxError>> {
        let mut this = self.as_mut().project();
        let shared: &Shared<S, C, P> = this.shared;
        let config: &Config = &shared.config;
        let Some(kept) = this.kept.as_ref() else {
            return Next::Done(unclassified(config, config.attempt(number), outcome));
        };
        let classification = shared.classifier.classify(kept, outcome.as_ref());
        let attempt = config.attempt(number);
        config.emit(|| Event::Outcome {
            attempt,
            classification,
        });
        // The other attempts still in flight: hedges, and the one held in `Calling` if this
        // outcome is a hedge's.
        let calling = matches!(
            this.state.as_ref().project_ref(),
            StateProjRef::Calling { .. }
        );
        let others = |hedges: &Option<Box<Hedges<S::Future>>>| {
            hedges.as_ref().map_or(0, |h| h.len()) + usize::from(calling && !held)
        };
        let (reason, hint) = match classification {
            Classification::Success | Classification::Fatal { .. } => {
                if classification.is_success() {
                    if let Some(budget) = config.budget(this.keyed.as_ref()) {
                        budget.succeeded();
                    }
                } else if let Classification::Fatal { reason } = classification {
                    let why = GiveUp::Fatal;
                    config.emit(|| Event::GiveUp {
                        attempt,
                        why,
                        reason: Some(reason),
                    });
                }
                // Only a call that hedged, or that waits for a learned delay, has news for it.
                if sent.is_some() || this.hedges.is_some() {
                    let hedges = this.hedges.as_deref();
                    hedging::won(config, hedges, attempt, sent, others(this.hedges) as u32);
                }
                return Next::Done(answer(&shared.replay, outcome, attempt));
            }
            Classification::Retryable { reason, after } => (reason, after),
        };
        let budget = config.budget(this.keyed.as_ref());
        after_retryable(this.progress, budget, (reason, hint), taken);
        if others(this.hedges) > 0 {
            // Another attempt may still answer: this one's failure ends nothing. As gRFC A6
            // says, the next hedge in line goes out at once rather than at its timer (unless a
            // hint stopped hedging; attempts, the limit in flight and the budget still apply).
            if held {
                this.state.set(State::Hedging);
            }
            this.progress.hedge_now = true;
            return Next::GoOn;
        }
        self.retry_or_stop(outcome, reason, hint)
    }

    /// Every attempt in flight failed, the last with `outcome` (`reason`, the server's `hint`):
    /// plans the next attempt (the `Waiting` state), or ends the call saying why not.
    fn retry_or_stop(
        self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
        reason: Reason,
        hint: Option<Duration>,
    ) -> Next<Result<S::Response, BoxError>> {
        let mut this = self.project();
        let shared: &Shared<S, C, P> = this.shared;
        let config: &Config = &shared.config;
        let attempt = config.attempt(*this.attempt);
        // Nothing is in flight: what comes next is a retry, not a hedge.
        this.progress.hedge_now = false;
        let Some(kept) = this.kept.as_ref() else {
            return Next::Done(unclassified(config, attempt, outcome));
        };
        let budget = config.budget(this.keyed.as_ref());
        let planned = plan_retry(shared, kept, attempt, (reason, hint, budget), this.progress);
        match planned {
            Ok((delay, at)) => {
                config.emit(|| Event::Retry {
                    attempt,
                    delay,
                    reason,
                    hinted: hint.is_some(),
                });
                let discarding = match outcome {
                    Ok(response) => shared.replay.release(response),
                    Err(_) => None,
                };
                this.timer
                    .set((!delay.is_zero()).then(|| tokio::time::sleep_until(at)));
                this.state.set(State::Waiting {
                    discarding,
                    waited: false,
                });
                Next::GoOn
            }
            Err(why) => {
                config.emit(|| Event::GiveUp {
                    attempt,
                    why,
                    reason: Some(reason),
                });
                let outcome = outcome.map_err(|err| stopped(err, attempt, why, Some(reason)));
                Next::Done(answer(&shared.replay, outcome, attempt))
            }
        }
    }
}

/// The outcome the caller gets, marked with the attempt that gave it: a response through the
/// replay ([`Replay::answered`]), the deadline's error (from an attempt timeout capped at it)
/// with the attempt it cut.
#[inline]
fn answer<Req, Res, P: Replay<Req, Res>>(
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

/// The deadline's error (from an attempt timeout capped at it) with the attempt it cut; any
/// other error as it is.
#[cold]
fn with_attempt_cut(err: BoxError, attempt: Attempt) -> BoxError {
    if !is_total_timeout(&err) {
        return err;
    }
    match err.downcast::<Error>() {
        Ok(ours) if ours.attempt().is_none() => (*ours).with_attempt(Some(attempt)).into(),
        Ok(ours) => ours,
        Err(other) => other,
    }
}

/// What a retryable outcome says to the call's hedging: a server (or an open circuit) that
/// asked to wait gets no more hedges, and a hedge that an open circuit turned away put no load
/// on the dependency and gives back the retry it `taken` from the budget.
fn after_retryable(
    progress: &mut Progress,
    budget: Option<&RetryBudget>,
    (reason, hint): (Reason, Option<Duration>),
    taken: Option<Taken>,
) {
    let turned_away = reason == Reason::NeverSent(NotSent::CircuitOpen);
    if hint.is_some() || turned_away {
        progress.no_more_hedges = true;
    }
    if turned_away && let (Some(budget), Some(taken)) = (budget, taken) {
        budget.give_back(taken);
    }
}

#[cfg(test)]
mod tests;

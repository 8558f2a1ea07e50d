//! The future of a [`Retry`](super::Retry) call: a state machine whose states own their data.
//!
//! ```text
//! Calling ──all failed──▶ Waiting (backoff, drain) ──▶ Readying (a clone of the spare) ──▶ Calling
//!  │ ▲  (hedge timer: another attempt        (the request made again from the kept copy)
//!  └─┘   into the set in flight)
//!    └──success, fatal, or a limit──▶ done
//! ```
//!
//! `Calling` holds the attempts in flight as one set ([`InFlight`]): a retry starts a set of
//! one, a hedge adds to it, and the first outcome that is not retryable ends the call. The
//! call holds one timer at a time, beside its state: the backoff's while it waits, the next
//! hedge's while attempts are in flight. A call answered before the hedge delay allocates
//! nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;

mod between;
mod hedging;
mod in_flight;
mod outcome;
use self::in_flight::{InFlight, Sent};
use self::outcome::{after_retryable, answer};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::plan::{Progress, plan_retry, poll_wait, stopped, unclassified};
use super::{Config, Event, GiveUp, Releasing, Replay, RetryBudget, Shared};
use crate::classify::{Classification, Classify, Reason};
use crate::error::{Attempt, BoxError};
use crate::scope::Slot;

pin_project! {
    #[project = StateProj]
    #[project_ref = StateProjRef]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // Attempts are in flight: one, or more if the call hedges.
        Calling {
            #[pin]
            attempts: InFlight<S::Future>,
        },
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
        // Attempts sent so far.
        attempt: u32,
        progress: Progress,
        // This request's key's budget, when the layer keeps one per key.
        keyed: Option<Arc<Slot<RetryBudget>>>,
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
            state: State::Calling {
                attempts: InFlight::new(future, Sent::first(1, shared.config.sent_at())),
            },
            timer: None,
            kept,
            shared,
            attempt: 1,
            progress: Progress::default(),
            keyed,
        }
    }
}

impl<S, Req, C, P> fmt::Debug for ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let in_flight = match &self.state {
            State::Calling { attempts } => attempts.len(),
            _ => 0,
        };
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.shared.config.limits.max_attempts)
            .field("in_flight", &in_flight)
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
                StateProj::Calling { attempts } => {
                    if let Poll::Ready(landed) = attempts.poll(cx) {
                        // Classifiers read errors as `BoxError`, whatever the service's type
                        // (one that is a `BoxError` already stays as it is).
                        let outcome = landed.outcome.map_err(Into::into);
                        match self.as_mut().on_outcome(outcome, landed.sent) {
                            Next::Done(done) => return Poll::Ready(done),
                            Next::GoOn => continue,
                        }
                    }
                    ready!(self.as_mut().poll_pending(cx));
                }
                StateProj::Waiting { discarding, waited } => {
                    ready!(poll_wait(this.timer, discarding, waited, cx));
                    this.state.set(State::Readying { pending: None });
                }
                StateProj::Readying { .. } => {
                    if let Some(done) = ready!(self.as_mut().poll_readying(cx)) {
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
    /// No attempt in flight has an outcome yet: sends a hedge if one is due (`Ready`: the
    /// set in flight changed), or waits.
    fn poll_pending(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.config.hedging.is_some() && self.as_mut().hedge_due(cx) {
            self.as_mut().send_hedge(cx);
            return Poll::Ready(());
        }
        self.note_pending();
        Poll::Pending
    }

    /// Only `max_elapsed` measures from the first attempt: without it, a pending attempt reads
    /// no clock.
    fn note_pending(self: Pin<&mut Self>) {
        let this = self.project();
        if this.progress.started.is_none() && this.shared.config.limits.max_elapsed.is_some() {
            this.progress.started = Some(Instant::now());
        }
    }

    /// Classifies the outcome of the attempt `sent` and ends the call, waits for the other
    /// attempts in flight, or plans the next attempt (in the `Waiting` state).
    #[inline]
    fn on_outcome(
        mut self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
        sent: Sent,
    ) -> Next<Result<S::Response, BoxError>> {
        let this = self.as_mut().project();
        let shared: &Shared<S, C, P> = this.shared;
        let config: &Config = &shared.config;
        let Some(kept) = this.kept.as_ref() else {
            return Next::Done(unclassified(config, config.attempt(sent.number), outcome));
        };
        let classification = shared.classifier.classify(kept, outcome.as_ref());
        let attempt = config.attempt(sent.number);
        let scope = this.keyed.as_ref().and_then(|slot| slot.scope());
        config.emit_in(scope, || Event::Outcome {
            attempt,
            classification,
            elapsed: sent
                .at
                .map(|at| Instant::now().saturating_duration_since(at)),
        });
        let (reason, hint) = match classification {
            Classification::Retryable { reason, after } => (reason, after),
            done => return Next::Done(self.as_ref().finish(outcome, done, attempt, sent.at)),
        };
        let this = self.as_mut().project();
        let budget = this.shared.config.budget(this.keyed.as_ref());
        after_retryable(this.progress, budget, (reason, hint), sent.taken);
        if self.as_ref().in_flight() > 0 {
            // Another attempt may still answer: this one's failure ends nothing. As gRFC A6
            // says, the next hedge in line goes out at once rather than at its timer (unless a
            // hint stopped hedging; attempts, the limit in flight and the budget still apply).
            self.project().progress.hedge_now = true;
            return Next::GoOn;
        }
        self.retry_or_stop(outcome, reason, hint)
    }

    /// How many attempts are in flight (an outcome's own attempt is out of the set by then).
    #[inline]
    fn in_flight(self: Pin<&Self>) -> usize {
        match self.project_ref().state.project_ref() {
            StateProjRef::Calling { attempts } => attempts.len(),
            _ => 0,
        }
    }

    /// A success or a fatal outcome of `attempt` (sent at `sent`, when timed) ends the call: a
    /// success is told to the budget, a fatal one as a give-up, and the hedging learns which
    /// attempt won.
    #[inline]
    fn finish(
        self: Pin<&Self>,
        outcome: Result<S::Response, BoxError>,
        classification: Classification,
        attempt: Attempt,
        sent: Option<Instant>,
    ) -> Result<S::Response, BoxError> {
        let others = self.in_flight() as u32;
        let this = self.project_ref();
        let config: &Config = &this.shared.config;
        let scope = this.keyed.as_ref().and_then(|slot| slot.scope());
        match classification {
            Classification::Fatal { reason } => config.emit_in(scope, || Event::GiveUp {
                attempt,
                why: GiveUp::Fatal,
                reason: Some(reason),
            }),
            _ => {
                if let Some(budget) = config.budget(this.keyed.as_ref()) {
                    budget.succeeded();
                }
            }
        }
        // Only a call that hedged, or whose latency a hedge delay learns, has news for it.
        let learns = || config.hedging.as_ref().is_some_and(|h| h.learns());
        if (sent.is_some() && learns()) || this.progress.hedged {
            hedging::won(config, scope, this.progress.hedged, attempt, sent, others);
        }
        answer(&this.shared.replay, outcome, attempt)
    }

    /// Every attempt in flight failed, the last with `outcome` (`reason`, the server's `hint`):
    /// plans the next attempt (the `Waiting` state), or ends the call saying why not.
    #[inline]
    fn retry_or_stop(
        mut self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
        reason: Reason,
        hint: Option<Duration>,
    ) -> Next<Result<S::Response, BoxError>> {
        let this = self.as_mut().project();
        let shared: &Shared<S, C, P> = this.shared;
        let attempt = shared.config.attempt(*this.attempt);
        // Nothing is in flight: what comes next is a retry, not a hedge.
        this.progress.hedge_now = false;
        let Some(kept) = this.kept.as_ref() else {
            return Next::Done(unclassified(&shared.config, attempt, outcome));
        };
        let budget = shared.config.budget(this.keyed.as_ref());
        let planned = plan_retry(shared, kept, attempt, (reason, hint, budget), this.progress);
        let config = &self.shared.config;
        let scope = self.keyed.as_ref().and_then(|slot| slot.scope());
        match planned {
            Ok((delay, at)) => {
                config.emit_in(scope, || Event::Retry {
                    attempt,
                    delay,
                    reason,
                    hinted: hint.is_some(),
                });
                self.wait_to_retry(outcome, delay, at);
                Next::GoOn
            }
            Err(why) => {
                config.emit_in(scope, || Event::GiveUp {
                    attempt,
                    why,
                    reason: Some(reason),
                });
                let outcome = outcome.map_err(|err| stopped(err, attempt, why, Some(reason)));
                Next::Done(answer(&self.shared.replay, outcome, attempt))
            }
        }
    }
}

#[cfg(test)]
mod tests;

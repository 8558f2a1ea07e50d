//! The future of a [`Retry`](super::Retry) call: a state machine whose states own their data.
//!
//! ```text
//! Calling ──retryable──▶ Waiting (backoff, drain) ──▶ Readying (a clone of the spare) ──▶ Calling
//!                                                     (the request made again from the kept copy)
//!    └──success, fatal, or a limit──▶ done
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use super::decide::{Clock, Verdict, decide};
use super::replay::Releasing;
use super::{Config, Event, GiveUp, Replay, RetryBudget, Schedule, Shared};
use crate::classify::{Classification, Classify, NotSent, Reason};
use crate::context::Timer;
use crate::error::{Attempt, BoxError, Error, ErrorKind};
use crate::scope::Slot;

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // An attempt is in flight.
        Calling { #[pin] future: S::Future },
        // Waiting out the delay before the next attempt (no timer for a zero delay), while the
        // response being retried is drained.
        Waiting {
            #[pin]
            timer: Option<Timer>,
            discarding: Option<Releasing>,
        },
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
        // The copy kept for classification and for making the next attempt's request.
        kept: Option<Req>,
        // The layer's configuration, classifier and replay, and the spare service.
        shared: Arc<Shared<S, C, P>>,
        attempt: u32,
        progress: Progress,
        // This request's key's budget, when the layer keeps one per key.
        keyed: Option<Arc<Slot<RetryBudget>>>,
    }
}

/// How far a request's retrying has come: when it started, and where its backoff is.
#[derive(Default)]
struct Progress {
    // When the first attempt was found pending (kept only under a `max_elapsed`); a call that
    // completes at once reads no clock.
    started: Option<Instant>,
    backoff: BackoffState,
}

/// The per-request state of the backoff schedule: its randomness and the previous delay (for
/// decorrelated jitter), made at the first retry; a `backoff` crate schedule's own state.
#[derive(Default)]
struct BackoffState {
    rng: Option<fastrand::Rng>,
    previous: Duration,
    #[cfg(feature = "backoff")]
    custom: Option<Box<dyn ::backoff::backoff::Backoff + Send>>,
}

impl BackoffState {
    /// The delay before retry number `retry`, or `None` when the schedule has ended.
    fn next_delay(&mut self, shared: &Config, retry: u32) -> Option<Duration> {
        let delay = match &shared.schedule {
            Schedule::Exponential(delays) => {
                let rng = self.rng.get_or_insert_with(|| shared.rng());
                delays.delay(retry, self.previous, rng)
            }
            #[cfg(feature = "backoff")]
            Schedule::Custom(make) => self.custom.get_or_insert_with(|| make()).next_backoff()?,
        };
        self.previous = delay;
        Some(delay)
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
            state: State::Calling { future },
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
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.shared.config.limits.max_attempts)
            .finish_non_exhaustive()
    }
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
                StateProj::Calling { future } => {
                    let Poll::Ready(outcome) = future.poll(cx) else {
                        // Only `max_elapsed` measures from the first attempt: without it, a
                        // pending attempt reads no clock.
                        if this.progress.started.is_none()
                            && this.shared.config.limits.max_elapsed.is_some()
                        {
                            this.progress.started = Some(Instant::now());
                        }
                        return Poll::Pending;
                    };
                    // Classifiers read errors as `BoxError`, whatever the service's type (one
                    // that is a `BoxError` already stays as it is).
                    if let Some(done) = self.as_mut().on_outcome(outcome.map_err(Into::into)) {
                        return Poll::Ready(done);
                    }
                }
                StateProj::Waiting { timer, discarding } => {
                    ready!(poll_wait(timer, discarding, cx));
                    this.state.set(State::Readying { pending: None });
                }
                StateProj::Readying { pending } => {
                    let mut service = match ready!(ready_service(this.shared, pending, cx)) {
                        Ok(service) => service,
                        Err(err) => return Poll::Ready(Err(err)),
                    };
                    // Nothing is sent that the deadline would cancel at once: the deadline
                    // (whose timer is armed, as nothing here promised to wake it) answers.
                    if crate::context::deadline_passed() {
                        return Poll::Pending;
                    }
                    let config = &this.shared.config;
                    let next = this
                        .kept
                        .as_ref()
                        .and_then(|kept| this.shared.replay.replay(kept));
                    let Some(request) = next else {
                        // `can_replay` said it could be; a replay that changed its mind.
                        let attempt = config.attempt(*this.attempt);
                        return Poll::Ready(unclassified(config, attempt, Err(none_left())));
                    };
                    *this.attempt += 1;
                    config.started(config.attempt(*this.attempt));
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// A clone of the spare service, ready for the next attempt: the one kept in `pending` from an
/// earlier poll, or a fresh one, which is kept there if it is not ready yet.
fn ready_service<S, Req, C, P>(
    shared: &Shared<S, C, P>,
    pending: &mut Option<Box<S>>,
    cx: &mut Context<'_>,
) -> Poll<Result<S, BoxError>>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    if let Some(mut boxed) = pending.take() {
        return match boxed.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(*boxed)),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err.into())),
            Poll::Pending => {
                *pending = Some(boxed);
                Poll::Pending
            }
        };
    }
    let mut service = shared.spare();
    match service.poll_ready(cx) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(service)),
        Poll::Ready(Err(err)) => Poll::Ready(Err(err.into())),
        Poll::Pending => {
            *pending = Some(Box::new(service));
            Poll::Pending
        }
    }
}

/// The cause of a give-up on a request that could no longer be made.
fn none_left() -> BoxError {
    "the request could not be made again".into()
}

/// The backoff and the drain before the next attempt: ready once both are done.
fn poll_wait(
    mut timer: Pin<&mut Option<Timer>>,
    discarding: &mut Option<Releasing>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if let Some(drain) = discarding.as_mut()
        && drain.as_mut().poll(cx).is_ready()
    {
        *discarding = None;
    }
    if let Some(backoff) = timer.as_mut().as_pin_mut() {
        // While it is pending, the deadline around need not arm a timer of its own.
        ready!(backoff.poll_fired(cx));
        timer.set(None);
    }
    if discarding.is_some() {
        return Poll::Pending;
    }
    Poll::Ready(())
}

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    /// Classifies the outcome of the attempt in flight and either ends the call (`Some`) or
    /// plans the next attempt (`None`, in the `Waiting` state).
    fn on_outcome(
        self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
    ) -> Option<Result<S::Response, BoxError>> {
        let mut this = self.project();
        let shared: &Shared<S, C, P> = this.shared;
        let config: &Config = &shared.config;
        let attempt = config.attempt(*this.attempt);
        let Some(kept) = this.kept.as_ref() else {
            return Some(unclassified(config, attempt, outcome));
        };
        let classification = shared.classifier.classify(kept, outcome.as_ref());
        config.emit(|| Event::Outcome {
            attempt,
            classification,
        });
        let (reason, hint) = match classification {
            Classification::Success => return Some(outcome),
            Classification::Fatal { reason } => {
                config.emit(|| Event::GiveUp {
                    attempt,
                    why: GiveUp::Fatal,
                    reason: Some(reason),
                });
                return Some(outcome);
            }
            Classification::Retryable { reason, after } => (reason, after),
        };
        let budget = this
            .keyed
            .as_ref()
            .map(|slot| &***slot)
            .or(config.budget.as_ref());
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
                let timer = (!delay.is_zero()).then(|| Timer::at(at));
                this.state.set(State::Waiting { timer, discarding });
                None
            }
            Err(why) => {
                config.emit(|| Event::GiveUp {
                    attempt,
                    why,
                    reason: Some(reason),
                });
                Some(outcome.map_err(|err| stopped(err, attempt, why, Some(reason))))
            }
        }
    }
}

/// The outcome of a request that could not be copied before it was sent: nothing to classify
/// it against and nothing to retry with, and an error says so.
fn unclassified<T>(
    config: &Config,
    attempt: Attempt,
    outcome: Result<T, BoxError>,
) -> Result<T, BoxError> {
    outcome.map_err(|err| {
        config.emit(|| Event::GiveUp {
            attempt,
            why: GiveUp::NotReplayable,
            reason: None,
        });
        stopped(err, attempt, GiveUp::NotReplayable, None)
    })
}

/// Whether the failed `attempt` (with its reason and the server's `hint`) is followed by
/// another: when, or why not. The decision first; then whether the request can be made again
/// (known before waiting for nothing; it is made when the attempt is sent), and a retry from the
/// budget, asked last so that a retry that would not happen spends nothing. An attempt that an
/// open circuit turned away put no load on the dependency, and its retry takes no budget.
fn plan_retry<S: Service<Req>, Req, C, P: Replay<Req, S::Response>>(
    shared: &Shared<S, C, P>,
    kept: &Req,
    attempt: Attempt,
    (reason, hint, budget): (Reason, Option<Duration>, Option<&RetryBudget>),
    progress: &mut Progress,
) -> Result<(Duration, Instant), GiveUp> {
    let config = &shared.config;
    let Progress { started, backoff } = progress;
    // The one clock read of a retry decision, made only if the decision needs it.
    let mut now = None;
    let verdict = decide(
        &config.limits,
        attempt.number,
        hint,
        || backoff.next_delay(config, attempt.number),
        || {
            let read = *now.insert(Instant::now());
            Clock {
                now: read,
                started: *started.get_or_insert(read),
                deadline: crate::context::current_deadline(read),
            }
        },
    );
    let (Verdict::Retry { delay, at }, Some(now)) = (verdict, now) else {
        return Err(match verdict {
            Verdict::Stop(why) => why,
            Verdict::Retry { .. } => unreachable!("a retry is planned on the clock"),
        });
    };
    if !shared.replay.can_replay(kept) {
        return Err(GiveUp::NotReplayable);
    }
    match budget {
        Some(_) if reason == Reason::NeverSent(NotSent::CircuitOpen) => Ok((delay, at)),
        Some(budget) if !budget.withdraw_at(now) => Err(GiveUp::Budget),
        _ => Ok((delay, at)),
    }
}

/// The error the caller gets when retrying stopped on an error: why it stopped, after how many
/// attempts, with the last error as its source.
fn stopped(err: BoxError, attempt: Attempt, why: GiveUp, reason: Option<Reason>) -> BoxError {
    let attempts = attempt.number;
    // A fatal error is returned as it is.
    if why == GiveUp::Fatal {
        return err;
    }
    let kind = ErrorKind::GaveUp { attempts, why };
    let mut error = Error::new(kind)
        .with_attempt(Some(attempt))
        .with_source(err);
    if let Some(reason) = reason {
        error = error.with_reason(reason);
    }
    error.into()
}

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::{Common, Event, GiveUp, Replay, Schedule, Shared};
use crate::classify::{Classification, Classify, Discarding, Reason};
use crate::error::{Attempt, BoxError, Error, ErrorKind, Limit};

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is in flight.
        Calling { #[pin] future: F },
        // Waiting out the delay before the next attempt (the timer is in `RetryState`).
        Backoff,
        // Waiting for the service to be ready for the next attempt.
        Readying,
    }
}

pin_project! {
    /// The future of a [`Retry`](super::Retry) call: a state machine over attempts, backoff
    /// sleeps and readiness.
    pub struct ResponseFuture<S, Req, C, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        // The copy kept for classification and for making the next attempt's request.
        kept: Option<Req>,
        // The layer's configuration, classifier and replay, and where retries get their clone
        // of the service from.
        shared: Arc<Common<S, C, P>>,
        attempt: u32,
        // When the first attempt was found pending (kept only under a `max_elapsed`); a call
        // that completes at once reads no clock.
        started: Option<Instant>,
        // What only a request that retries needs, timer and service included: boxed at the
        // first retry so that the future of a call that succeeds at once stays small.
        retry: Option<Pin<Box<RetryState<S, Req>>>>,
    }
}

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    pub(crate) fn new(future: S::Future, kept: Option<Req>, shared: Arc<Common<S, C, P>>) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            kept,
            shared,
            attempt: 1,
            started: None,
            retry: None,
        }
    }
}

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    /// The copy of the request kept for retries, if one could be made.
    #[cfg(feature = "http")]
    pub(crate) fn kept(&self) -> Option<&Req> {
        self.kept.as_ref()
    }
}

impl<S, Req, C, P> fmt::Debug for ResponseFuture<S, Req, C, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.shared.max_attempts)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The backoff timer, randomness, history and service of one request that retries.
    struct RetryState<S, Req> {
        // Made at the first backoff, reset for the later ones.
        #[pin]
        sleep: Option<Sleep>,
        rng: fastrand::Rng,
        previous: Duration,
        custom: CustomBackoff,
        // A discarded response being let go of (drained) before the next attempt.
        discarding: Option<Discarding>,
        // This request's clone of the spare service, made for its first retry.
        service: Option<S>,
        // The request for the next attempt, made before the backoff so that a request that
        // cannot be replayed is known before waiting for nothing.
        next: Option<Req>,
    }

    impl<S, Req> PinnedDrop for RetryState<S, Req> {
        fn drop(this: Pin<&mut Self>) {
            // Its timer may have been an enclosing deadline's reason not to arm one.
            if this.sleep.is_some() {
                crate::timeout::uncover();
            }
        }
    }
}

/// The per-request state of a `backoff` crate schedule.
#[cfg(feature = "backoff")]
type CustomBackoff = Option<Box<dyn ::backoff::backoff::Backoff + Send>>;
#[cfg(not(feature = "backoff"))]
type CustomBackoff = ();

impl<S, Req> RetryState<S, Req> {
    fn new(shared: &Shared) -> Self {
        RetryState {
            sleep: None,
            rng: shared.rng(),
            previous: Duration::ZERO,
            #[cfg(feature = "backoff")]
            custom: match &shared.schedule {
                Schedule::Custom(make) => Some(make()),
                Schedule::Exponential(_) => None,
            },
            #[cfg(not(feature = "backoff"))]
            custom: (),
            discarding: None,
            service: None,
            next: None,
        }
    }

    /// The delay before retry number `retry`, or `None` when the schedule has ended.
    fn next_delay(self: Pin<&mut Self>, schedule: &Schedule, retry: u32) -> Option<Duration> {
        let this = self.project();
        let delay = match schedule {
            Schedule::Exponential(delays) => delays.delay(retry, *this.previous, this.rng),
            #[cfg(feature = "backoff")]
            Schedule::Custom(_) => this.custom.as_mut()?.next_backoff()?,
        };
        *this.previous = delay;
        Some(delay)
    }
}

impl<S, Req, C, P> Future for ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    // Classifiers read errors as `BoxError`, whatever the service's type
                    // (one that is a `BoxError` already stays as it is).
                    let outcome = match future.poll(cx) {
                        Poll::Ready(outcome) => outcome.map_err(Into::<BoxError>::into),
                        Poll::Pending => {
                            // Only `max_elapsed` measures from the first attempt: without it,
                            // a pending attempt reads no clock.
                            if this.started.is_none() && this.shared.max_elapsed.is_some() {
                                *this.started = Some(Instant::now());
                            }
                            return Poll::Pending;
                        }
                    };
                    let shared: &Shared = this.shared;
                    let attempt = shared.attempt(*this.attempt);
                    let Some(kept) = this.kept.as_ref() else {
                        // Could not be copied before it was sent: nothing to classify it against
                        // and nothing to retry with.
                        return Poll::Ready(match outcome {
                            Ok(response) => Ok(response),
                            Err(err) => {
                                shared.emit(|| Event::GiveUp {
                                    attempt,
                                    why: GiveUp::NotReplayable,
                                    reason: None,
                                });
                                Err(give_up(err, attempt, GiveUp::NotReplayable, None))
                            }
                        });
                    };
                    let classification = this.shared.classifier.classify(kept, outcome.as_ref());
                    shared.emit(|| Event::Outcome {
                        attempt,
                        classification,
                    });
                    let (reason, hint) = match classification {
                        Classification::Success => return Poll::Ready(outcome),
                        Classification::Fatal { reason } => {
                            shared.emit(|| Event::GiveUp {
                                attempt,
                                why: GiveUp::Fatal,
                                reason: Some(reason),
                            });
                            return Poll::Ready(outcome);
                        }
                        Classification::Retryable { reason, after } => (reason, after),
                    };
                    let decision = decide(shared, attempt, hint, this.started, this.retry, || {
                        this.shared.replay.replay(kept)
                    });
                    match decision {
                        Ok(delay) => {
                            shared.emit(|| Event::Retry {
                                attempt,
                                delay,
                                reason,
                                hinted: hint.is_some(),
                            });
                            let discarding = match outcome {
                                Ok(response) => this.shared.classifier.discard(response),
                                Err(_) => None,
                            };
                            let draining = discarding.is_some();
                            if let Some(retry) = this.retry.as_mut() {
                                *retry.as_mut().project().discarding = discarding;
                            }
                            this.state.set(if delay.is_zero() && !draining {
                                State::Readying
                            } else {
                                State::Backoff
                            });
                        }
                        Err(why) => {
                            shared.emit(|| Event::GiveUp {
                                attempt,
                                why,
                                reason: Some(reason),
                            });
                            return Poll::Ready(match outcome {
                                Ok(response) => Ok(response),
                                Err(err) => Err(give_up(err, attempt, why, Some(reason))),
                            });
                        }
                    }
                }
                StateProj::Backoff => {
                    if let Some(retry) = this.retry.as_mut() {
                        let retry = retry.as_mut().project();
                        if let Some(discarding) = retry.discarding.as_mut()
                            && discarding.as_mut().poll(cx).is_ready()
                        {
                            *retry.discarding = None;
                        }
                        if let Some(mut sleep) = retry.sleep.as_pin_mut()
                            && sleep.as_mut().poll(cx).is_pending()
                        {
                            // The deadline around need not arm a timer of its own: retry never
                            // sleeps past it.
                            crate::timeout::cover(sleep.deadline());
                            return Poll::Pending;
                        }
                        if retry.discarding.is_some() {
                            return Poll::Pending;
                        }
                    }
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let Some(retry) = this.retry.as_mut() else {
                        unreachable!("`decide` makes the retry state before any retry");
                    };
                    let retry = retry.as_mut().project();
                    let shared: &Common<S, C, P> = this.shared;
                    let service = retry.service.get_or_insert_with(|| shared.spare());
                    if let Err(err) = ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(err.into()));
                    }
                    // Nothing is sent that the deadline would cancel at once: the deadline
                    // (whose timer is armed, as nothing here promised to wake it) answers.
                    if crate::timeout::deadline_passed() {
                        return Poll::Pending;
                    }
                    let Some(request) = retry.next.take() else {
                        unreachable!("`decide` makes the next request before any retry");
                    };
                    *this.attempt += 1;
                    this.shared.started(this.shared.attempt(*this.attempt));
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// Decides whether a retryable failure of `attempt` is retried: the delay (with the backoff
/// timer set to it and the request for the next attempt made), or why not. The cheap, local checks
/// come first; the budget is asked last, so that a retry that would not happen anyway does not
/// spend it.
fn decide<S, Req>(
    shared: &Shared,
    attempt: Attempt,
    hint: Option<Duration>,
    started: &mut Option<Instant>,
    retry: &mut Option<Pin<Box<RetryState<S, Req>>>>,
    replay: impl FnOnce() -> Option<Req>,
) -> Result<Duration, GiveUp> {
    if attempt.number >= attempt.max {
        return Err(GiveUp::Limit(Limit::Attempts));
    }
    let state = retry.get_or_insert_with(|| Box::pin(RetryState::new(shared)));
    let delay = match hint {
        Some(requested) if requested > shared.max_retry_after => {
            return Err(GiveUp::Limit(Limit::RetryAfter {
                requested,
                cap: shared.max_retry_after,
            }));
        }
        Some(requested) => requested,
        None => state
            .as_mut()
            .next_delay(&shared.schedule, attempt.number)
            .ok_or(GiveUp::Limit(Limit::Elapsed))?,
    };
    // The one clock read of a retry decision: everything below measures from it.
    let now = Instant::now();
    // An attempt that failed without ever being pending started, for all the clock can tell, now.
    let started = *started.get_or_insert(now);
    // A delay beyond any clock (an uncapped hint, an unbounded schedule) waits "for ever"
    // rather than overflowing.
    let next_start = crate::timeout::after(now, delay);
    if let Some(max_elapsed) = shared.max_elapsed
        && next_start.saturating_duration_since(started) > max_elapsed
    {
        return Err(GiveUp::Limit(Limit::Elapsed));
    }
    if crate::timeout::current_deadline(now).is_some_and(|deadline| next_start >= deadline) {
        return Err(GiveUp::Limit(Limit::Deadline));
    }
    let request = replay().ok_or(GiveUp::NotReplayable)?;
    if let Some(budget) = &shared.budget
        && !budget.withdraw_at(now)
    {
        return Err(GiveUp::Budget);
    }
    let mut state = state.as_mut().project();
    *state.next = Some(request);
    if !delay.is_zero() {
        match state.sleep.as_mut().as_pin_mut() {
            Some(sleep) => sleep.reset(next_start),
            None => state.sleep.set(Some(tokio::time::sleep_until(next_start))),
        }
    }
    Ok(delay)
}

/// The error the caller gets when retrying stopped on an error.
fn give_up<E: Into<BoxError>>(
    err: E,
    attempt: Attempt,
    why: GiveUp,
    reason: Option<Reason>,
) -> BoxError {
    let attempts = attempt.number;
    let kind = match why {
        GiveUp::Limit(limit) => ErrorKind::RetriesExhausted { attempts, limit },
        GiveUp::Budget => ErrorKind::BudgetExhausted { attempts },
        GiveUp::NotReplayable => ErrorKind::NotReplayable { attempts },
        // Fatal errors are returned as they are and never come here.
        GiveUp::Fatal => ErrorKind::RetriesExhausted {
            attempts,
            limit: Limit::Attempts,
        },
    };
    let mut error = Error::new(kind)
        .with_attempt(Some(attempt))
        .with_source(err.into());
    if let Some(reason) = reason {
        error = error.with_reason(reason);
    }
    error.into()
}

//! What follows a failed attempt: another after a delay, or the error that says why not.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::decide::{Clock, Verdict, decide};
use super::{Config, Event, GiveUp, Releasing, Replay, RetryBudget, Schedule, Shared};
use crate::classify::{NotSent, Reason};
use crate::context::current_bound;
use crate::error::{Attempt, BoxError, Error, ErrorKind, TimeoutScope};

/// The outcome of a request that could not be copied before it was sent: nothing to classify
/// it against and nothing to retry with, and an error says so.
pub(super) fn unclassified<T>(
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
pub(super) fn plan_retry<S: Service<Req>, Req, C, P: Replay<Req, S::Response>>(
    shared: &Shared<S, C, P>,
    kept: &Req,
    attempt: Attempt,
    (reason, hint, budget): (Reason, Option<Duration>, Option<&RetryBudget>),
    progress: &mut Progress,
) -> Result<(Duration, Instant), GiveUp> {
    let config = &shared.config;
    let Progress {
        started,
        backoff,
        restarted_at,
        ..
    } = progress;
    // The one clock read of a retry decision, made only if the decision needs it.
    let mut now = None;
    let verdict = decide(
        &config.limits,
        attempt.number,
        hint,
        || backoff.next_delay(config, attempt.number - *restarted_at),
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
    if hint.is_some() {
        *restarted_at = attempt.number;
        backoff.restart();
    }
    if !shared.replay.can_replay(kept) {
        return Err(GiveUp::NotReplayable);
    }
    match budget {
        Some(_) if reason == Reason::NeverSent(NotSent::CircuitOpen) => Ok((delay, at)),
        Some(budget) if !budget.withdraw_at(now) => Err(GiveUp::Budget),
        _ => Ok((delay, at)),
    }
}

/// The error of a call whose deadline passed while it waited to send the attempt after
/// `sent` (a backoff that woke at the deadline, a service that turned ready late or never):
/// the deadline's, with the attempt it cut. Nothing more is sent, and the call ends at once.
pub(super) fn past_deadline(sent: Attempt) -> BoxError {
    let budget = current_bound(Instant::now()).map_or(Duration::ZERO, |(_, budget)| budget);
    let error = Error::timeout(TimeoutScope::Total, budget).with_attempt(Some(sent));
    error.into()
}

/// The error the caller gets when retrying stopped on an error: why it stopped, after how many
/// attempts, with the last error as its source.
pub(super) fn stopped(
    err: BoxError,
    attempt: Attempt,
    why: GiveUp,
    reason: Option<Reason>,
) -> BoxError {
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

/// How far a request's retrying has come: when it started, and where its backoff is.
#[derive(Default)]
pub(super) struct Progress {
    // When the first attempt was found pending (kept only under a `max_elapsed`); a call that
    // completes at once reads no clock.
    pub(super) started: Option<Instant>,
    pub(super) backoff: BackoffState,
    // No more hedges in this call (a server asked to wait, a hedge could not be sent).
    pub(super) no_more_hedges: bool,
    // Whether the request may be hedged was asked (once, when the call was first pending).
    pub(super) hedge_checked: bool,
    // An attempt failed while others were in flight: the next hedge is due now (gRFC A6).
    pub(super) hedge_now: bool,
    // A hedge went out in this call: its end is news for the events.
    pub(super) hedged: bool,
    // The attempt after which the backoff starts over: the last whose retry waited what the
    // server asked (gRFC A6: after a pushback, the backoff is reset to its initial delay).
    pub(super) restarted_at: u32,
}

/// The per-request state of the backoff schedule: its randomness and the previous delay (for
/// decorrelated jitter), made at the first retry; where it last started over; a `backoff`
/// crate schedule's own state.
#[derive(Default)]
pub(super) struct BackoffState {
    rng: Option<fastrand::Rng>,
    previous: Duration,
    #[cfg(feature = "backoff")]
    custom: Option<Box<dyn ::backoff::backoff::Backoff + Send>>,
}

impl BackoffState {
    /// The delay before retry number `retry`, or `None` when the schedule has ended.
    pub(super) fn next_delay(&mut self, shared: &Config, retry: u32) -> Option<Duration> {
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

    /// The server set a retry's delay: the schedule starts over after it.
    fn restart(&mut self) {
        self.previous = Duration::ZERO;
        #[cfg(feature = "backoff")]
        if let Some(custom) = self.custom.as_mut() {
            custom.reset();
        }
    }
}

/// A clone of the spare service, ready for the next attempt: the one kept in `pending` from an
/// earlier poll, or a fresh one, which is kept there if it is not ready yet.
pub(super) fn ready_service<S, Req, C, P>(
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
pub(super) fn none_left() -> BoxError {
    "the request could not be made again".into()
}

/// The backoff and the drain before the next attempt: ready once both are done, or once the
/// backoff is and the deadline has passed (the drain then lets go of the response, as it does
/// past its own bounds). `waited` says the backoff is over and `timer` holds the deadline.
pub(super) fn poll_wait(
    mut timer: Pin<&mut Option<Sleep>>,
    discarding: &mut Option<Releasing>,
    waited: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if let Some(drain) = discarding.as_mut()
        && drain.as_mut().poll(cx).is_ready()
    {
        *discarding = None;
    }
    if !*waited {
        if let Some(backoff) = timer.as_mut().as_pin_mut() {
            ready!(backoff.poll(cx));
        }
        *waited = true;
        let deadline = (discarding.is_some())
            .then(|| current_bound(Instant::now()))
            .flatten();
        timer.set(deadline.map(|(at, _)| tokio::time::sleep_until(at)));
    }
    if discarding.is_some() {
        let past = (timer.as_mut().as_pin_mut()).is_some_and(|at| at.poll(cx).is_ready());
        if !past {
            return Poll::Pending;
        }
        *discarding = None;
    }
    timer.set(None);
    Poll::Ready(())
}

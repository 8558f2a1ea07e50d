//! Between two attempts: waiting out the backoff (the response being retried drained), then
//! readying a service and sending the next attempt, with the deadline watched throughout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

use super::in_flight::{InFlight, Sent};
use super::{ResponseFuture, State, StateProj};
use crate::classify::Classify;
use crate::context::current_bound;
use crate::error::{Attempt, BoxError};
use crate::retry::Replay;
use crate::retry::plan::{none_left, past_deadline, ready_service, unclassified};

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    /// Readies a clone of the spare service and sends the next attempt through it:
    /// `Ready(None)` once it is sent, `Ready(Some)` when the call ends instead.
    #[inline]
    pub(super) fn poll_readying(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<<Self as Future>::Output>> {
        let this = self.as_mut().project();
        let StateProj::Readying { pending } = this.state.project() else {
            return Poll::Ready(None);
        };
        let service = match ready_service(this.shared, pending, cx) {
            Poll::Ready(Ok(service)) => service,
            Poll::Ready(Err(err)) => return Poll::Ready(Some(Err(err))),
            // The deadline is this future's to wait for now: a preset's deadline arms no
            // timer, counting on the attempts' and this one.
            Poll::Pending => return self.poll_deadline(cx).map(Some),
        };
        // Nothing is sent that the deadline would cancel at once: the call ends with the
        // deadline's error.
        if crate::context::deadline_passed() {
            return Poll::Ready(Some(Err(past_deadline(self.attempt_sent()))));
        }
        Poll::Ready(self.send_next(service).err())
    }

    /// The last attempt sent.
    #[inline]
    pub(super) fn attempt_sent(&self) -> Attempt {
        self.shared.config.attempt(self.attempt)
    }

    /// While the next attempt waits for a service to turn ready: the deadline in force, if any,
    /// ends the call (its timer in the timer slot, which is free between attempts).
    #[inline]
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
    #[inline]
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
        // The slot held the deadline's timer, if the service was slow to turn ready; its
        // hedges, if any, come after their own delay, counted from when it is found pending.
        this.timer.set(None);
        let future = config.send(&mut service, request, config.attempt(*this.attempt));
        let attempts = InFlight::new(future, Sent::first(*this.attempt, config.sent_at()));
        this.state.set(State::Calling { attempts });
        Ok(())
    }

    /// Lets go of the outcome being retried (a response is drained) and waits `delay`, until
    /// `at`, in the `Waiting` state (no timer for a zero delay).
    #[inline]
    pub(super) fn wait_to_retry(
        self: Pin<&mut Self>,
        outcome: Result<S::Response, BoxError>,
        delay: Duration,
        at: Instant,
    ) {
        let mut this = self.project();
        let discarding = match outcome {
            Ok(response) => this.shared.replay.release(response),
            Err(_) => None,
        };
        this.timer
            .set((!delay.is_zero()).then(|| tokio::time::sleep_until(at)));
        this.state.set(State::Waiting {
            discarding,
            waited: false,
        });
    }
}

//! The hedging half of the retry future: when the next attempt goes out beside those in
//! flight, and what a hedged call's end tells the hedging.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;

use super::in_flight::Sent;
use super::{ResponseFuture, StateProj};
use crate::classify::Classify;
use crate::error::{Attempt, BoxError};
use crate::retry::budget::Taken;
use crate::retry::{Config, Event, NoHedge, Replay, RetryBudget, Shared};

impl<S, Req, C, P> ResponseFuture<S, Req, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    /// Whether a hedge is due now: the timer of the next one, armed here if one may follow,
    /// has fired.
    pub(super) fn hedge_due(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        if self.shared.config.hedging.is_none() {
            return false;
        }
        if !self.progress.hedge_checked {
            self.as_mut().check_safe();
        }
        let mut this = self.as_mut().project();
        let Some(hedging) = &this.shared.config.hedging else {
            return false;
        };
        // A learned delay times the first attempt from when it is first found pending; that
        // clock reading serves the hedge timer too.
        let StateProj::Calling { attempts } = this.state.as_mut().project() else {
            return false;
        };
        let read = if hedging.learns() {
            attempts.time_first(Instant::now)
        } else {
            None
        };
        if this.progress.no_more_hedges {
            this.timer.set(None);
            return false;
        }
        let now_due = std::mem::take(&mut this.progress.hedge_now);
        if this.timer.is_none() || now_due {
            if !self.as_ref().room_for_hedge() {
                return false;
            }
            if now_due || !self.as_mut().arm_timer(read.unwrap_or_else(Instant::now)) {
                return now_due;
            }
        }
        let timer = self.project().timer;
        (timer.as_pin_mut()).is_some_and(|timer| timer.poll(cx).is_ready())
    }

    /// Whether another attempt may go out beside those in flight: under the limit in flight
    /// and the attempts allowed.
    #[inline]
    fn room_for_hedge(self: Pin<&Self>) -> bool {
        let in_flight = self.in_flight();
        let config = &self.shared.config;
        let max_in_flight = config
            .hedging
            .as_ref()
            .map_or(0, |h| h.max_in_flight as usize);
        in_flight < max_in_flight && self.attempt < config.limits.max_attempts
    }

    /// A request that may not be sent twice is never hedged: known once, before any timer is
    /// armed for it.
    fn check_safe(self: Pin<&mut Self>) {
        let this = self.project();
        this.progress.hedge_checked = true;
        let shared: &Shared<S, C, P> = this.shared;
        if !(this.kept.as_ref()).is_some_and(|kept| shared.classifier.may_hedge(kept)) {
            this.progress.no_more_hedges = true;
            let attempt = shared.config.attempt(*this.attempt + 1);
            let why = NoHedge::NotSafe;
            let scope = this.keyed.as_ref().and_then(|slot| slot.scope());
            shared
                .config
                .emit_in(scope, || Event::HedgeSkipped { attempt, why });
        }
    }

    /// Arms the next hedge's timer, its delay counted from `now`; `false` when no hedge is to
    /// come (a learned delay with too few samples yet, or one that would start at or past the
    /// deadline, which ends the call's hedging and says so).
    #[inline]
    fn arm_timer(self: Pin<&mut Self>, now: Instant) -> bool {
        let mut this = self.project();
        let config = &this.shared.config;
        let Some(delay) = config
            .hedging
            .as_ref()
            .and_then(|hedging| hedging.delay(now))
        else {
            return false;
        };
        let at = crate::context::after(now, delay);
        if crate::context::current_deadline(now).is_some_and(|deadline| at >= deadline) {
            this.progress.no_more_hedges = true;
            let attempt = config.attempt(*this.attempt + 1);
            let why = NoHedge::Deadline;
            let scope = this.keyed.as_ref().and_then(|slot| slot.scope());
            config.emit_in(scope, || Event::HedgeSkipped { attempt, why });
            return false;
        }
        this.timer.set(Some(tokio::time::sleep_until(at)));
        true
    }

    /// The hedge timer fired: sends another attempt beside those in flight, or says why not.
    pub(super) fn send_hedge(self: Pin<&mut Self>, cx: &mut Context<'_>) {
        let mut this = self.project();
        this.timer.set(None);
        let shared: &Shared<S, C, P> = this.shared;
        let config = &shared.config;
        let attempt = config.attempt(*this.attempt + 1);
        let budget = config.budget(this.keyed.as_ref());
        let sent = try_send(shared, this.kept.as_ref(), budget, cx);
        let scope = this.keyed.as_ref().and_then(|slot| slot.scope());
        let (service, request, taken) = match sent {
            Ok(sent) => sent,
            Err(why) => {
                this.progress.no_more_hedges = true;
                config.emit_in(scope, || Event::HedgeSkipped { attempt, why });
                return;
            }
        };
        let StateProj::Calling { attempts } = this.state.project() else {
            return;
        };
        let mut service = service;
        *this.attempt += 1;
        this.progress.hedged = true;
        let learns = config.hedging.as_ref().is_some_and(|h| h.learns());
        let at = (learns || config.observed()).then(Instant::now);
        let future = config.send(&mut service, request, attempt);
        config.emit_in(scope, || Event::Hedge { attempt });
        let number = attempt.number;
        attempts.push(Sent { number, at, taken }, future);
    }
}

/// A call that hedged (or could have) ended with `attempt`'s outcome, a success or a fatal one,
/// with `cancelled` attempts still in flight: its latency is learned, and, if a hedge went out,
/// its number is the one the response and the errors report.
#[cold]
pub(super) fn won(
    config: &Config,
    scope: Option<crate::scope::Scope<'_>>,
    hedged: bool,
    attempt: Attempt,
    sent: Option<Instant>,
    cancelled: u32,
) {
    if let (Some(hedging), Some(sent)) = (&config.hedging, sent) {
        let now = Instant::now();
        hedging.record(now, now.saturating_duration_since(sent));
    }
    if hedged {
        config.emit_in(scope, || Event::HedgeWon { attempt, cancelled });
    }
}

/// Whether a hedge can go out now, cheapest check first, and what it goes out through: a clone
/// of the spare service that is ready at once, and the request made again. The budget is asked
/// last, so that a hedge that would not go out spends nothing.
fn try_send<S, Req, C, P>(
    shared: &Shared<S, C, P>,
    kept: Option<&Req>,
    budget: Option<&RetryBudget>,
    cx: &mut Context<'_>,
) -> Result<(S, Req, Option<Taken>), NoHedge>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
{
    let kept = kept.ok_or(NoHedge::NotReplayable)?;
    if !shared.classifier.may_hedge(kept) {
        return Err(NoHedge::NotSafe);
    }
    if !shared.replay.can_hedge(kept) {
        return Err(NoHedge::NotReplayable);
    }
    if crate::context::deadline_passed() {
        return Err(NoHedge::Deadline);
    }
    let mut service = shared.spare();
    if !matches!(service.poll_ready(cx), Poll::Ready(Ok(()))) {
        return Err(NoHedge::NotReady);
    }
    let request = shared.replay.replay(kept).ok_or(NoHedge::NotReplayable)?;
    let taken = match budget {
        Some(budget) => Some(budget.take_at(Instant::now()).ok_or(NoHedge::Budget)?),
        None => None,
    };
    Ok((service, request, taken))
}

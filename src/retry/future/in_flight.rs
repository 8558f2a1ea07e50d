//! A call's attempts in flight, as one set: the first of a round held inline, so that a call
//! that never hedges allocates nothing, and the hedges sent beside it, each boxed.
//!
//! Every attempt in the set is alike to the retry future: it polls the set, gets the first
//! outcome with what that attempt was sent with ([`Landed`]), and asks how many are left.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::retry::budget::Taken;

/// What an attempt was sent with: its number, when it was sent (when attempts are timed, for a
/// learned hedge delay), and the retry it took from the budget (a hedge's; given back if an
/// open circuit turns it away).
#[derive(Clone, Copy)]
pub(super) struct Sent {
    pub(super) number: u32,
    pub(super) at: Option<Instant>,
    pub(super) taken: Option<Taken>,
}

impl Sent {
    /// The first attempt of a round, sent `at` (when someone reads its latency; otherwise a
    /// learned hedge delay times it once it is found pending).
    pub(super) fn first(number: u32, at: Option<Instant>) -> Self {
        Sent {
            number,
            at,
            taken: None,
        }
    }
}

/// An attempt's outcome, with what it was sent with.
pub(super) struct Landed<T> {
    pub(super) sent: Sent,
    pub(super) outcome: T,
}

pin_project! {
    /// The attempts in flight.
    pub(super) struct InFlight<F> {
        // The first attempt of the round, in flight while `first_sent` is `Some`. Once it has
        // landed it is never polled again, and is dropped with the set.
        #[pin]
        first: F,
        first_sent: Option<Sent>,
        hedges: Vec<(Sent, Pin<Box<F>>)>,
    }
}

impl<F> InFlight<F> {
    /// A round of one attempt.
    pub(super) fn new(future: F, sent: Sent) -> Self {
        InFlight {
            first: future,
            first_sent: Some(sent),
            hedges: Vec::new(),
        }
    }

    /// How many attempts are in flight.
    #[inline]
    pub(super) fn len(&self) -> usize {
        usize::from(self.first_sent.is_some()) + self.hedges.len()
    }

    /// Times the first attempt from `now()`, unless it is timed already or has landed; the
    /// clock reading, if it took one.
    pub(super) fn time_first(
        self: Pin<&mut Self>,
        now: impl FnOnce() -> Instant,
    ) -> Option<Instant> {
        match self.project().first_sent {
            Some(sent) if sent.at.is_none() => Some(*sent.at.insert(now())),
            _ => None,
        }
    }

    /// Adds a hedge.
    pub(super) fn push(self: Pin<&mut Self>, sent: Sent, future: F) {
        self.project().hedges.push((sent, Box::pin(future)));
    }
}

impl<F: Future> InFlight<F> {
    /// The first outcome of any attempt in flight, that attempt taken out of the set.
    #[inline]
    pub(super) fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Landed<F::Output>> {
        let this = self.project();
        if this.first_sent.is_some()
            && let Poll::Ready(outcome) = this.first.poll(cx)
            && let Some(sent) = this.first_sent.take()
        {
            return Poll::Ready(Landed { sent, outcome });
        }
        poll_hedges(this.hedges, cx)
    }
}

/// The first hedge that has an outcome, taken out of the set.
fn poll_hedges<F: Future>(
    hedges: &mut Vec<(Sent, Pin<Box<F>>)>,
    cx: &mut Context<'_>,
) -> Poll<Landed<F::Output>> {
    for i in 0..hedges.len() {
        if let Poll::Ready(outcome) = hedges[i].1.as_mut().poll(cx) {
            let (sent, _) = hedges.swap_remove(i);
            return Poll::Ready(Landed { sent, outcome });
        }
    }
    Poll::Pending
}

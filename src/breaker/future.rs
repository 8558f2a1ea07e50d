//! The future of a [`CircuitBreaker`](super::CircuitBreaker) call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::Counted;
use super::circuit::{Circuit, Pass};
use crate::classify::{Classification, ClassifyOutcome};
use crate::deadline::is_total_timeout;
use crate::error::BoxError;
use crate::scope::Slot;

pin_project! {
    /// The future of a [`CircuitBreaker`](super::CircuitBreaker) call: the inner call, whose
    /// outcome the circuit counts, or a rejection, ready at once.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called { #[pin] future: F, ticket: Option<Ticket<C>> },
        Rejected { error: Option<BoxError> },
    }
}

/// What a call let through owes its circuit: an outcome, or, for a probe dropped before it
/// had one, its permit back.
pub(crate) struct Ticket<C> {
    circuit: Arc<Slot<Counted<C>>>,
    // When the call started (µs), kept only under a slow-call threshold; `NOT_TIMED` otherwise.
    started_us: u64,
    pass: Pass,
    done: bool,
}

const NOT_TIMED: u64 = u64::MAX;

impl<C> Ticket<C> {
    pub(crate) fn new(circuit: Arc<Slot<Counted<C>>>, pass: Pass, started_us: Option<u64>) -> Self {
        Ticket {
            circuit,
            started_us: started_us.unwrap_or(NOT_TIMED),
            pass,
            done: false,
        }
    }

    fn finish<Res>(&mut self, outcome: Result<&Res, &BoxError>)
    where
        C: ClassifyOutcome<Res>,
    {
        // The call's deadline cut the attempt (its timeout, capped at the deadline, says so):
        // that is the caller's time running out, not the dependency's answer. Not counted, as
        // an attempt dropped by the deadline is not; a probe's permit goes back on drop.
        if let Err(err) = outcome
            && is_total_timeout(err)
        {
            return;
        }
        self.done = true;
        let counted = &**self.circuit;
        let circuit: &Circuit = counted;
        let settings = circuit.settings();
        let failure = match counted.classifier().classify_outcome(outcome) {
            Classification::Success => false,
            Classification::Retryable { .. } => true,
            Classification::Fatal { .. } => settings.count_fatal,
        };
        let started = (self.started_us != NOT_TIMED).then_some(self.started_us);
        let now = (settings.windowed() || started.is_some()).then(|| circuit.now_us());
        let slow = match (settings.slow_calls, started, now) {
            (Some((threshold, _)), Some(started), Some(now)) => {
                now.saturating_sub(started) >= super::settings::micros(threshold)
            }
            _ => false,
        };
        circuit.on_outcome(self.pass, failure, slow, now, self.circuit.name());
    }
}

impl<C> Drop for Ticket<C> {
    fn drop(&mut self) {
        if self.pass.probe && !self.done {
            self.circuit.release_probe(self.pass);
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, ticket: Ticket<C>) -> Self {
        ResponseFuture {
            state: State::Called {
                future,
                ticket: Some(ticket),
            },
        }
    }

    /// A call through a breaker that is switched off.
    pub(crate) fn passed(future: F) -> Self {
        ResponseFuture {
            state: State::Called {
                future,
                ticket: None,
            },
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: ClassifyOutcome<Res>,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future, ticket } => {
                let outcome = ready!(future.poll(cx)).map_err(Into::into);
                if let Some(ticket) = ticket {
                    ticket.finish(outcome.as_ref());
                }
                Poll::Ready(outcome)
            }
            StateProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
        }
    }
}

//! The future of a [`CircuitBreaker`](super::CircuitBreaker) call.

use std::sync::Arc;

use super::Counted;
use super::circuit::{Circuit, Pass};
use crate::classify::{Classification, ClassifyOutcome};
use crate::deadline::is_total_timeout;
use crate::error::BoxError;
use crate::gate::{GateFuture, Settle};
use crate::scope::Slot;

/// The future of a [`CircuitBreaker`](super::CircuitBreaker) call: the inner call, whose
/// outcome the circuit counts, or a rejection, ready at once.
pub type ResponseFuture<F, C> = GateFuture<F, Ticket<C>>;

/// What a call let through owes its circuit: an outcome, or, for a probe dropped before it
/// had one, its permit back.
pub struct Ticket<C> {
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
}

impl<C: ClassifyOutcome<Res>, Res> Settle<Res> for Ticket<C> {
    fn settle(&mut self, outcome: Result<&Res, &BoxError>) {
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

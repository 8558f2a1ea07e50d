//! [`BreakerHandle`]: snapshots of a breaker's circuits, and the operator's switch.

use std::fmt;
use std::sync::Arc;

use super::{CircuitState, Circuits, Counts, Snapshot};

/// A breaker's circuits, whatever its classifier: what a [`BreakerHandle`] reaches.
trait AnyCircuits: Send + Sync {
    fn snapshots(&self) -> Vec<Snapshot>;
    fn hold(&self, state: CircuitState);
}

impl<C: Send + Sync + 'static> AnyCircuits for Circuits<C> {
    fn snapshots(&self) -> Vec<Snapshot> {
        let all = self.scopes.all();
        all.iter().map(|slot| slot.snapshot(slot.name())).collect()
    }

    fn hold(&self, state: CircuitState) {
        // The flag first: a circuit made from now on follows it at its first call.
        self.shared.set_hold(state);
        for slot in self.scopes.all() {
            slot.follow_hold(true, slot.name());
        }
    }
}

/// A handle to a breaker's circuits: snapshots for a health endpoint, and an operator's switch.
/// Cheap to clone; every clone reaches the same circuits.
///
/// With one circuit per key, a hold covers every key, those seen already and those seen later,
/// until it is released; a held circuit dropped to make room for another key comes back held.
/// The handle of a breaker that is switched off has no circuits.
#[derive(Clone)]
pub struct BreakerHandle {
    circuits: Option<Arc<dyn AnyCircuits>>,
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("circuits", &self.snapshots())
            .finish()
    }
}

impl BreakerHandle {
    pub(crate) fn new<C: Send + Sync + 'static>(circuits: Option<Arc<Circuits<C>>>) -> Self {
        BreakerHandle {
            circuits: circuits.map(|c| c as Arc<dyn AnyCircuits>),
        }
    }

    /// Every circuit's state and counts, one snapshot each: its `key` (the `Debug` form of the
    /// circuit's key, when the breaker keeps one per key), its `state` (a [`CircuitState`]; an
    /// open circuit whose break has ended shows as half-open), `remaining` (while open, the
    /// rest of the break), `counts` (`calls`, `failures` and `slow` calls in the window since
    /// it last closed), `consecutive_failures` and `opens` (times it opened since it last
    /// closed). A snapshot's `Display` is one line, for a health endpoint.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        (self.circuits.as_ref()).map_or_else(Vec::new, |c| c.snapshots())
    }

    /// The state and counts of the one circuit of an unscoped breaker (with one circuit per
    /// key, of the circuit in the worst state: open before half-open before closed); see
    /// [`snapshots`](Self::snapshots) for what a snapshot says.
    pub fn snapshot(&self) -> Snapshot {
        let rank = |s: &Snapshot| match s.state {
            CircuitState::HeldOpen => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            _ => 3,
        };
        self.snapshots()
            .into_iter()
            .min_by_key(rank)
            .unwrap_or_else(|| Snapshot {
                key: None,
                state: CircuitState::Closed,
                remaining: None,
                counts: Counts::default(),
                consecutive_failures: 0,
                opens: 0,
            })
    }

    /// Holds every circuit open, those of keys seen later too: each call is rejected until
    /// [`release`](Self::release).
    pub fn hold_open(&self) {
        self.hold(CircuitState::HeldOpen);
    }

    /// Holds every circuit closed, those of keys seen later too: each call passes and nothing
    /// opens a circuit until [`release`](Self::release).
    pub fn hold_closed(&self) {
        self.hold(CircuitState::HeldClosed);
    }

    /// Ends a hold, and closes every circuit with a fresh window (no failures in a row, and the
    /// break back to its first length): the outcomes drive them again.
    pub fn release(&self) {
        self.hold(CircuitState::Closed);
    }

    fn hold(&self, state: CircuitState) {
        if let Some(circuits) = &self.circuits {
            circuits.hold(state);
        }
    }
}

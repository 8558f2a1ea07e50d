//! The operator's hold: one flag for every circuit of a breaker, present and future.
//!
//! A hold set by [`BreakerHandle`](crate::breaker::BreakerHandle) is kept beside the circuits,
//! not only in them: the handle moves every circuit that exists to the held state, and a circuit
//! it could not reach (made after the hold, or evicted from a per-key map and made again) is
//! moved by its next call, which finds it out of step with the flag. So a hold covers every key,
//! present and future, until it is released, and an evicted circuit comes back held.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CLOSED, Circuit, HELD_CLOSED, HELD_OPEN, advance, tag};
use crate::breaker::events::{Cause, CircuitState, Observer};
use crate::breaker::settings::Settings;

/// What every circuit of a breaker shares: its settings, its observer and the operator's hold.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    /// The state every circuit is held in (`HELD_OPEN` or `HELD_CLOSED`), or `CLOSED`: none.
    hold: AtomicU64,
}

impl Shared {
    pub(crate) fn new(settings: Settings, observer: Option<Arc<dyn Observer>>) -> Self {
        Shared {
            settings,
            observer,
            hold: AtomicU64::new(CLOSED),
        }
    }

    /// The hold's state as a word's tag.
    fn hold(&self) -> u64 {
        // Relaxed: a call that reads an old value acts as it would have a moment earlier, and
        // the next one follows the hold (the handle's own changes take each circuit's lock).
        self.hold.load(Ordering::Relaxed)
    }

    /// Whether the circuits are held, open or closed.
    pub(crate) fn held(&self) -> bool {
        self.hold() != CLOSED
    }

    /// Holds every circuit in `state` (held open or held closed), or releases them (any other).
    /// The circuits that exist are moved by the caller, with [`Circuit::follow_hold`].
    pub(crate) fn set_hold(&self, state: CircuitState) {
        let tag = match state {
            CircuitState::HeldOpen => HELD_OPEN,
            CircuitState::HeldClosed => HELD_CLOSED,
            _ => CLOSED,
        };
        self.hold.store(tag, Ordering::Relaxed);
    }

    /// Whether a circuit whose word is `word` is as the hold says.
    pub(super) fn followed_by(&self, word: u64) -> bool {
        match self.hold() {
            CLOSED => !matches!(tag(word), HELD_OPEN | HELD_CLOSED),
            held => tag(word) == held,
        }
    }
}

impl Circuit {
    /// Moves the circuit to the state the hold says: held, or, with no hold, closed with a
    /// fresh window. `always`: even if it is there already (an operator's call: a release then
    /// starts the window afresh). Returns the word after.
    pub(crate) fn follow_hold(&self, always: bool, key: Option<&str>) -> u64 {
        let mut guarded = self.lock();
        let from = self.word.load(Ordering::Relaxed);
        if !always && self.shared.followed_by(from) {
            return from;
        }
        let to = self.shared.hold();
        if to == CLOSED {
            self.window.clear();
            self.consecutive.store(0, Ordering::Relaxed);
            guarded.opens = 0;
        }
        let next = advance(from, to);
        self.word.store(next, Ordering::Release);
        drop(guarded);
        self.changed(key, from, next, Cause::Manual, None);
        next
    }
}

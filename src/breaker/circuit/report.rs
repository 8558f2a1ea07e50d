//! What a circuit tells: its snapshot, and its changes of state as events.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Circuit, OPEN, state, tag};
use crate::breaker::events::{self, Cause, CircuitState, Snapshot, Transition};

impl Circuit {
    pub(crate) fn snapshot(&self, key: Option<&str>) -> Snapshot {
        let opens = self.lock().opens;
        let word = self.word.load(Ordering::Acquire);
        let now = self.now_us();
        let until = self.until.load(Ordering::Relaxed);
        let (state, remaining) = match tag(word) {
            OPEN if now < until => (CircuitState::Open, Some(Duration::from_micros(until - now))),
            // The break is over: the next call probes.
            OPEN => (CircuitState::HalfOpen, None),
            _ => (state(word), None),
        };
        Snapshot {
            key: key.map(str::to_owned),
            state,
            remaining,
            counts: self.window.counts(now),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            opens,
        }
    }

    pub(super) fn changed(
        &self,
        key: Option<&str>,
        from: u64,
        to: u64,
        cause: Cause,
        break_for: Option<Duration>,
    ) {
        let listened = self.shared.observer.is_some() || cfg!(feature = "metrics");
        if !listened && !tracing::level_enabled!(tracing::Level::WARN) {
            return;
        }
        let transition = Transition {
            key,
            from: state(from),
            to: state(to),
            cause,
            break_for,
            counts: self.window.counts(self.now_us()),
        };
        events::emit(self.shared.observer.as_deref(), &transition);
    }
}

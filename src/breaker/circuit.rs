//! One circuit's state machine: a word read without a lock, changed under one.
//!
//! The word holds the state (3 bits) and the circuit's generation (61 bits), which every
//! change of state advances. A call let through carries the generation it was let through in,
//! and its outcome counts only while the circuit is still in it: a probe's outcome that arrives
//! after its half-open episode ended, the permit of a probe dropped then, or a failure admitted
//! before the circuit last closed, counts for nothing. The generation never wraps: each change
//! takes the circuit's lock, and at one change every 20 ns 2^61 changes take 1 400 years.
//!
//! A change of state and the state's data (the end of the break while open; the probes let
//! through and the probes that succeeded while half-open) change together, under the lock. No
//! call takes it on its way through a closed circuit, nor to be rejected while the break lasts
//! or while every probe is out: those read the word (and, while open, the break's end, written
//! before the word). Only a change takes it, and a half-open circuit's probes: a few calls per
//! break. An operator's hold is a flag beside the circuits ([`Shared`]), which every circuit
//! follows when a call finds it out of step.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::events::{Cause, CircuitState};
use super::settings::Settings;
use super::window::Window;

mod hold;
mod report;
#[cfg(test)]
mod tests;

pub(crate) use self::hold::Shared;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
/// Half-open, with probes still to let through.
const HALF_OPEN: u64 = 2;
/// Half-open, with every probe out.
const PROBING: u64 = 3;
const HELD_OPEN: u64 = 4;
const HELD_CLOSED: u64 = 5;
const TAG_BITS: u32 = 3;
const TAG: u64 = (1 << TAG_BITS) - 1;

fn tag(word: u64) -> u64 {
    word & TAG
}

fn generation(word: u64) -> u64 {
    word >> TAG_BITS
}

/// The word of the generation after `from`'s, in state `tag`.
fn advance(from: u64, tag: u64) -> u64 {
    ((generation(from) + 1) << TAG_BITS) | tag
}

/// `word` in state `tag`, in the same generation (half-open with or without probes left).
fn retag(word: u64, tag: u64) -> u64 {
    (word & !TAG) | tag
}

fn state(word: u64) -> CircuitState {
    match tag(word) {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        HALF_OPEN | PROBING => CircuitState::HalfOpen,
        HELD_OPEN => CircuitState::HeldOpen,
        _ => CircuitState::HeldClosed,
    }
}

/// A call let through: the generation it was let through in, and whether it is a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub(crate) generation: u64,
    pub(crate) probe: bool,
}

/// A call turned away: how long the break still lasts (`None` while probes are out or while
/// the circuit is held open), and whether it is held open by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) remaining: Option<Duration>,
    pub(crate) held: bool,
}

const PROBES_OUT: Rejection = Rejection {
    remaining: None,
    held: false,
};

/// What changes only with the state, under the circuit's lock.
#[derive(Debug, Default)]
struct Guarded {
    /// While half-open: probes still to let through, and probes that succeeded.
    left: u32,
    succeeded: u32,
    /// Times opened since the circuit last closed.
    opens: u32,
    /// Breaks drawn so far: the jitter's sequence.
    breaks: u64,
}

/// One circuit: its state word, its window and its counters.
pub(crate) struct Circuit {
    shared: Arc<Shared>,
    word: AtomicU64,
    /// The end of the break (µs), while open.
    until: AtomicU64,
    guarded: Mutex<Guarded>,
    window: Window,
    consecutive: AtomicU32,
    seed: u64,
    origin: Instant,
}

impl Circuit {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let settings = &shared.settings;
        let window = if settings.windowed() {
            Window::new(settings.bucket_us, settings.buckets)
        } else {
            Window::new(1, 1)
        };
        Circuit {
            seed: settings.seed.unwrap_or_else(|| fastrand::u64(..)),
            shared,
            word: AtomicU64::new(CLOSED),
            until: AtomicU64::new(0),
            guarded: Mutex::new(Guarded::default()),
            window,
            consecutive: AtomicU32::new(0),
            origin: Instant::now(),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Microseconds since the circuit was made.
    pub(crate) fn now_us(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.origin);
        elapsed
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(elapsed.subsec_micros()))
    }

    fn lock(&self) -> MutexGuard<'_, Guarded> {
        // Nothing panics while it is held; were it poisoned, what it guards would still be whole.
        self.guarded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call through, or says why not. A call through a closed circuit reads the word and
    /// the breaker's hold; the clock is read only while open.
    #[inline]
    pub(crate) fn admit(&self, key: Option<&str>) -> Result<Pass, Rejection> {
        let word = self.word.load(Ordering::Acquire);
        if tag(word) == CLOSED && !self.shared.held() {
            return Ok(Pass {
                generation: generation(word),
                probe: false,
            });
        }
        self.admit_otherwise(word, key)
    }

    /// [`admit`](Self::admit) through a circuit that is not simply closed.
    fn admit_otherwise(&self, mut word: u64, key: Option<&str>) -> Result<Pass, Rejection> {
        loop {
            if !self.shared.followed_by(word) {
                word = self.follow_hold(false, key);
            }
            match tag(word) {
                CLOSED | HELD_CLOSED => {
                    return Ok(Pass {
                        generation: generation(word),
                        probe: false,
                    });
                }
                HELD_OPEN => {
                    return Err(Rejection {
                        remaining: None,
                        held: true,
                    });
                }
                PROBING => return Err(PROBES_OUT),
                OPEN => {
                    let (now, until) = (self.now_us(), self.until.load(Ordering::Relaxed));
                    if now < until {
                        return Err(Rejection {
                            remaining: Some(Duration::from_micros(until - now)),
                            held: false,
                        });
                    }
                }
                _ => {}
            }
            if let Some(pass) = self.probe(word, key) {
                return Ok(pass);
            }
            word = self.word.load(Ordering::Acquire);
        }
    }

    /// Lets a probe through a circuit whose break has ended (`word` is open) or that is
    /// half-open with probes left, unless the word changed since it was read.
    fn probe(&self, word: u64, key: Option<&str>) -> Option<Pass> {
        let mut guarded = self.lock();
        if self.word.load(Ordering::Relaxed) != word {
            return None;
        }
        let mut next = word;
        if tag(word) == OPEN {
            guarded.left = self.settings().probes;
            guarded.succeeded = 0;
            next = advance(word, HALF_OPEN);
        }
        guarded.left -= 1;
        if guarded.left == 0 {
            next = retag(next, PROBING);
        }
        self.word.store(next, Ordering::Release);
        drop(guarded);
        if tag(word) == OPEN {
            self.changed(key, word, next, Cause::BreakEnded, None);
        }
        Some(Pass {
            generation: generation(next),
            probe: true,
        })
    }

    /// Records the outcome of a call let through with `pass`: a failure, or one slower than
    /// the threshold, at `now_us` (read when the window or the slow-call threshold needs it).
    #[inline]
    pub(crate) fn on_outcome(
        &self,
        pass: Pass,
        failure: bool,
        slow: bool,
        now_us: Option<u64>,
        key: Option<&str>,
    ) {
        if pass.probe {
            return self.on_probe(pass, failure || slow, now_us, key);
        }
        let word = self.word.load(Ordering::Acquire);
        if generation(word) != pass.generation {
            return;
        }
        if let Some(now) = now_us
            && self.settings().windowed()
        {
            self.window.record(now, failure, slow);
        }
        let in_a_row = if failure {
            self.consecutive
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1)
        } else {
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            0
        };
        if tag(word) != CLOSED || !(failure || slow) {
            return;
        }
        let cause = if failure
            && self
                .settings()
                .consecutive_failures
                .is_some_and(|n| in_a_row >= n)
        {
            Some(Cause::ConsecutiveFailures)
        } else {
            now_us.and_then(|now| self.tripped(now))
        };
        if let Some(cause) = cause {
            let guarded = self.lock();
            if self.word.load(Ordering::Relaxed) == word {
                self.open(guarded, word, now_us, cause, key);
            }
        }
    }

    /// Whether the window's ratios open the circuit at `now`.
    fn tripped(&self, now: u64) -> Option<Cause> {
        let settings = self.settings();
        let counts = self.window.counts(now);
        if counts.calls < settings.min_calls {
            return None;
        }
        let share = |n: u64| n as f64 / counts.calls as f64;
        if settings
            .failure_ratio
            .is_some_and(|ratio| share(counts.failures) >= ratio)
        {
            return Some(Cause::FailureRatio);
        }
        settings
            .slow_calls
            .is_some_and(|(_, ratio)| share(counts.slow) >= ratio)
            .then_some(Cause::SlowCalls)
    }

    /// Opens the circuit from `from`, the word under `guarded` (unless the breaker is held:
    /// then the circuit follows the hold at its next call).
    fn open(
        &self,
        mut guarded: MutexGuard<'_, Guarded>,
        from: u64,
        now_us: Option<u64>,
        cause: Cause,
        key: Option<&str>,
    ) {
        if self.shared.held() {
            return;
        }
        let now = now_us.unwrap_or_else(|| self.now_us());
        guarded.opens = guarded.opens.saturating_add(1);
        let random = self.random(&mut guarded);
        let duration = self.settings().break_for(guarded.opens, random);
        let micros = u64::try_from(duration.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX);
        self.until
            .store(now.saturating_add(micros), Ordering::Relaxed);
        let next = advance(from, OPEN);
        self.word.store(next, Ordering::Release);
        drop(guarded);
        self.changed(key, from, next, cause, Some(duration));
    }

    /// The next jitter draw, in `0.0..1.0`: a sequence per circuit, from its seed.
    fn random(&self, guarded: &mut Guarded) -> f64 {
        let n = guarded.breaks;
        guarded.breaks += 1;
        crate::rng::nth(self.seed, n).f64()
    }

    fn on_probe(&self, pass: Pass, failed: bool, now_us: Option<u64>, key: Option<&str>) {
        let mut guarded = self.lock();
        // The generation of a half-open episode is half-open all along.
        let word = self.word.load(Ordering::Relaxed);
        if generation(word) != pass.generation {
            return;
        }
        if failed {
            return self.open(guarded, word, now_us, Cause::ProbeFailed, key);
        }
        guarded.succeeded += 1;
        if guarded.succeeded < self.settings().probes {
            return;
        }
        // Cleared before the new generation is published, so that no call of it is lost.
        self.window.clear();
        self.consecutive.store(0, Ordering::Relaxed);
        guarded.opens = 0;
        let next = advance(word, CLOSED);
        self.word.store(next, Ordering::Release);
        drop(guarded);
        self.changed(key, word, next, Cause::ProbesSucceeded, None);
    }

    /// Gives back the permit of a probe that ended without an outcome (it was dropped).
    pub(crate) fn release_probe(&self, pass: Pass) {
        let mut guarded = self.lock();
        let word = self.word.load(Ordering::Relaxed);
        if generation(word) == pass.generation {
            guarded.left += 1;
            self.word.store(retag(word, HALF_OPEN), Ordering::Release);
        }
    }
}

//! One circuit's state machine, in one atomic word.
//!
//! The word holds the state (3 bits), an epoch (8 bits) that every change of state advances,
//! and the state's data: the end of the break while open (microseconds since the circuit was
//! made), the probes left and the probes that succeeded while half-open. Every change is one
//! compare-and-swap from the word that was read, so that of two calls that would change it at
//! once exactly one does, and a call admitted in one epoch cannot change another: a probe's
//! outcome that arrives after its half-open episode ended, or a failure admitted before the
//! circuit last closed, counts for nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::events::{self, Cause, CircuitState, Observer, Snapshot, Transition};
use super::settings::Settings;
use super::window::Window;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const HELD_OPEN: u64 = 3;
const HELD_CLOSED: u64 = 4;

const EPOCH_SHIFT: u32 = 3;
const PAYLOAD_SHIFT: u32 = 11;
/// The latest end of a break: 2^53 µs, 285 years.
const PAYLOAD_MAX: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
/// In a half-open word: probes left in the low 16 bits, successes in the next 16.
const PERMIT: u64 = 1 << PAYLOAD_SHIFT;
const SUCCESS: u64 = 1 << (PAYLOAD_SHIFT + 16);

fn pack(tag: u64, epoch: u8, payload: u64) -> u64 {
    tag | (u64::from(epoch) << EPOCH_SHIFT) | (payload << PAYLOAD_SHIFT)
}

fn tag(word: u64) -> u64 {
    word & 0b111
}

fn epoch(word: u64) -> u8 {
    (word >> EPOCH_SHIFT) as u8
}

fn payload(word: u64) -> u64 {
    word >> PAYLOAD_SHIFT
}

fn state(word: u64) -> CircuitState {
    match tag(word) {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        HALF_OPEN => CircuitState::HalfOpen,
        HELD_OPEN => CircuitState::HeldOpen,
        _ => CircuitState::HeldClosed,
    }
}

/// A call let through: the epoch it was let through in, and whether it is a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub(crate) epoch: u8,
    pub(crate) probe: bool,
}

/// A call turned away: how long the break still lasts (`None` while probes are out or while
/// the circuit is held open), and whether it is held open by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) remaining: Option<Duration>,
    pub(crate) held: bool,
}

/// One circuit: its state word, its window and its counters.
pub(crate) struct Circuit {
    settings: Arc<Settings>,
    observer: Option<Arc<dyn Observer>>,
    word: AtomicU64,
    window: Window,
    consecutive: AtomicU32,
    opens: AtomicU32,
    /// Breaks drawn so far: the jitter's sequence.
    breaks: AtomicU64,
    seed: u64,
    origin: Instant,
}

impl Circuit {
    pub(crate) fn new(settings: Arc<Settings>, observer: Option<Arc<dyn Observer>>) -> Self {
        let window = if settings.windowed() {
            Window::new(settings.bucket_us, settings.buckets)
        } else {
            Window::new(1, 1)
        };
        Circuit {
            seed: settings.seed.unwrap_or_else(|| fastrand::u64(..)),
            settings,
            observer,
            word: AtomicU64::new(pack(CLOSED, 0, 0)),
            window,
            consecutive: AtomicU32::new(0),
            opens: AtomicU32::new(0),
            breaks: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Microseconds since the circuit was made.
    pub(crate) fn now_us(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.origin);
        elapsed
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(elapsed.subsec_micros()))
    }

    /// Lets a call through, or says why not. Reads the clock only while open.
    #[inline]
    pub(crate) fn admit(&self, key: Option<&str>) -> Result<Pass, Rejection> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let next = match tag(word) {
                CLOSED | HELD_CLOSED => {
                    return Ok(Pass {
                        epoch: epoch(word),
                        probe: false,
                    });
                }
                HELD_OPEN => {
                    return Err(Rejection {
                        remaining: None,
                        held: true,
                    });
                }
                OPEN => {
                    let (now, until) = (self.now_us(), payload(word));
                    if now < until {
                        return Err(Rejection {
                            remaining: Some(Duration::from_micros(until - now)),
                            held: false,
                        });
                    }
                    let probes = u64::from(self.settings.probes);
                    pack(HALF_OPEN, epoch(word).wrapping_add(1), probes - 1)
                }
                _ => {
                    if payload(word) & 0xFFFF == 0 {
                        return Err(Rejection {
                            remaining: None,
                            held: false,
                        });
                    }
                    word - PERMIT
                }
            };
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if tag(word) == OPEN {
                        self.changed(key, word, next, Cause::BreakEnded, None);
                    }
                    return Ok(Pass {
                        epoch: epoch(next),
                        probe: true,
                    });
                }
                Err(actual) => word = actual,
            }
        }
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
            return self.on_probe(pass.epoch, failure || slow, now_us, key);
        }
        let word = self.word.load(Ordering::Acquire);
        if epoch(word) != pass.epoch {
            return;
        }
        if let Some(now) = now_us
            && self.settings.windowed()
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
                .settings
                .consecutive_failures
                .is_some_and(|n| in_a_row >= n)
        {
            Some(Cause::ConsecutiveFailures)
        } else {
            now_us.and_then(|now| self.tripped(now))
        };
        if let Some(cause) = cause {
            self.open(word, now_us, cause, key);
        }
    }

    /// Whether the window's ratios open the circuit at `now`.
    fn tripped(&self, now: u64) -> Option<Cause> {
        let settings = &*self.settings;
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

    /// Opens the circuit from `from`, unless another call changed it first.
    fn open(&self, from: u64, now_us: Option<u64>, cause: Cause, key: Option<&str>) -> bool {
        let now = now_us.unwrap_or_else(|| self.now_us());
        let opens = self.opens.load(Ordering::Relaxed).saturating_add(1);
        let duration = self.settings.break_for(opens, self.random());
        let micros = u64::try_from(duration.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX);
        let until = now.saturating_add(micros).min(PAYLOAD_MAX);
        let next = pack(OPEN, epoch(from).wrapping_add(1), until);
        if self
            .word
            .compare_exchange(from, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.opens.store(opens, Ordering::Relaxed);
        self.changed(key, from, next, cause, Some(duration));
        true
    }

    /// The next jitter draw, in `0.0..1.0`: a sequence per circuit, from its seed.
    fn random(&self) -> f64 {
        let n = self.breaks.fetch_add(1, Ordering::Relaxed);
        fastrand::Rng::with_seed(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).f64()
    }

    fn on_probe(&self, probe_epoch: u8, failed: bool, now_us: Option<u64>, key: Option<&str>) {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if tag(word) != HALF_OPEN || epoch(word) != probe_epoch {
                return;
            }
            if failed {
                if self.open(word, now_us, Cause::ProbeFailed, key) {
                    return;
                }
                word = self.word.load(Ordering::Acquire);
                continue;
            }
            let successes = (payload(word) >> 16) + 1;
            let closes = successes >= u64::from(self.settings.probes);
            let next = if closes {
                // Cleared before the change, so that no call of the new epoch is lost.
                self.window.clear();
                self.consecutive.store(0, Ordering::Relaxed);
                pack(CLOSED, probe_epoch.wrapping_add(1), 0)
            } else {
                word + SUCCESS
            };
            match self
                .word
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if closes {
                        self.opens.store(0, Ordering::Relaxed);
                        self.changed(key, word, next, Cause::ProbesSucceeded, None);
                    }
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Gives back the permit of a probe that ended without an outcome (it was dropped).
    pub(crate) fn release_probe(&self, probe_epoch: u8) {
        let mut word = self.word.load(Ordering::Acquire);
        while tag(word) == HALF_OPEN && epoch(word) == probe_epoch {
            match self.word.compare_exchange_weak(
                word,
                word + PERMIT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Sets the state by hand: held open, held closed, or closed (released, with a fresh
    /// window).
    pub(crate) fn set(&self, to: CircuitState, key: Option<&str>) {
        let tag = match to {
            CircuitState::HeldOpen => HELD_OPEN,
            CircuitState::HeldClosed => HELD_CLOSED,
            _ => CLOSED,
        };
        if tag == CLOSED {
            self.window.clear();
            self.consecutive.store(0, Ordering::Relaxed);
            self.opens.store(0, Ordering::Relaxed);
        }
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let next = pack(tag, epoch(word).wrapping_add(1), 0);
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return self.changed(key, word, next, Cause::Manual, None),
                Err(actual) => word = actual,
            }
        }
    }

    pub(crate) fn snapshot(&self, key: Option<&str>) -> Snapshot {
        let word = self.word.load(Ordering::Acquire);
        let now = self.now_us();
        let (state, remaining) = match state(word) {
            CircuitState::Open if now < payload(word) => (
                CircuitState::Open,
                Some(Duration::from_micros(payload(word) - now)),
            ),
            CircuitState::Open => (CircuitState::HalfOpen, None),
            other => (other, None),
        };
        Snapshot {
            key: key.map(str::to_owned),
            state,
            remaining,
            counts: self.window.counts(now),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            opens: self.opens.load(Ordering::Relaxed),
        }
    }

    fn changed(
        &self,
        key: Option<&str>,
        from: u64,
        to: u64,
        cause: Cause,
        break_for: Option<Duration>,
    ) {
        if self.observer.is_none() && !tracing::level_enabled!(tracing::Level::WARN) {
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
        events::emit(self.observer.as_deref(), &transition);
    }
}

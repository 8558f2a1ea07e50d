//! The circuit breaker against a model of what it should do, for any script of outcomes and
//! timings and any configuration (property tests, on a paused clock).
//!
//! The model is the breaker's rules written out plainly, with the window as a list of outcomes
//! rather than atomic buckets: a closed circuit counts each outcome in the bucket of the instant
//! it arrives and, when a call fails (or is slow), opens if the failures in a row, the failure
//! ratio or the slow-call ratio of the buckets that the window touches reach their thresholds
//! (the ratios once the window holds `min_calls`); an open circuit rejects calls, saying how long
//! the break still lasts; the first call at or after the end of the break probes, and so do the
//! next until `probes` were let through; all of them succeeding closes the circuit with a fresh
//! window, one failing (or slow) opens it again for a break that grows. The breaker must let
//! through and reject exactly the calls, and change state at exactly the instants and for
//! exactly the causes, that the model says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer, CircuitState, Transition};
use tower_tenacity::classify::{Classification, Reason, classify_error, outcome_fn};
use tower_tenacity::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// 503: retryable, a failure.
    Busy,
    /// 404: fatal, a failure only under `count_fatal`.
    NotFound,
    /// A reset connection: retryable, a failure.
    Reset,
}

/// One call: how long after the previous one ended it starts, how long the service takes, and
/// what it answers.
#[derive(Debug, Clone, Copy)]
struct Call {
    gap_ms: u64,
    latency_ms: u64,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Config {
    failure_ratio: Option<f64>,
    min_calls: u32,
    window_ms: u64,
    buckets: u32,
    consecutive: Option<u32>,
    slow: Option<(u64, f64)>,
    break_ms: u64,
    max_break_ms: u64,
    growth: f64,
    probes: u32,
    count_fatal: bool,
}

/// What the caller saw of one call.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Passed(Outcome),
    /// Rejected, with the rest of the break in µs (`None` while the probes are out).
    Rejected(Option<u64>),
}

/// A change of state: when (µs from the start), from, to, why.
type Change = (u64, CircuitState, CircuitState, Cause);

/// Why a circuit changed state, as a transition says it (by its phrase: the type it reports is
/// the crate's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    FailureRatio,
    ConsecutiveFailures,
    SlowCalls,
    BreakEnded,
    ProbeFailed,
    ProbesSucceeded,
}

impl Cause {
    fn of(transition: &Transition<'_>) -> Cause {
        match transition.cause.to_string().as_str() {
            "failure ratio reached" => Cause::FailureRatio,
            "consecutive failures reached" => Cause::ConsecutiveFailures,
            "slow-call ratio reached" => Cause::SlowCalls,
            "break ended" => Cause::BreakEnded,
            "probe failed" => Cause::ProbeFailed,
            "probes succeeded" => Cause::ProbesSucceeded,
            other => panic!("a cause the model does not know: {other}"),
        }
    }
}

enum State {
    Closed,
    Open { until: u64 },
    HalfOpen { permits: u32, successes: u32 },
}

struct Model<'a> {
    config: &'a Config,
    state: State,
    /// The window: (bucket, failed, slow) of each outcome since the circuit last closed.
    window: Vec<(u64, bool, bool)>,
    consecutive: u32,
    opens: u32,
    changes: Vec<Change>,
}

impl Model<'_> {
    fn bucket_us(&self) -> u64 {
        self.config.window_ms * 1000 / u64::from(self.config.buckets)
    }

    fn state(&self) -> CircuitState {
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn change(&mut self, at: u64, to: State, cause: Cause) {
        let from = self.state();
        self.state = to;
        let to = self.state();
        self.changes.push((at, from, to, cause));
    }

    /// The break after `opens` opens in a row, as the configuration defines it (no jitter).
    fn break_us(&self, opens: u32) -> u64 {
        let grown = self.config.growth.powi(opens as i32 - 1);
        let base = Duration::from_millis(self.config.break_ms).as_secs_f64() * grown;
        let capped = Duration::try_from_secs_f64(base)
            .unwrap()
            .min(Duration::from_millis(self.config.max_break_ms));
        let jittered = Duration::try_from_secs_f64(capped.as_secs_f64()).unwrap();
        jittered.as_nanos().div_ceil(1000) as u64
    }

    fn open(&mut self, at: u64, cause: Cause) {
        self.opens += 1;
        let until = at + self.break_us(self.opens);
        self.change(at, State::Open { until }, cause);
    }

    fn tripped(&self, at: u64) -> Option<Cause> {
        let current = at / self.bucket_us();
        let buckets = u64::from(self.config.buckets);
        let live: Vec<_> = (self.window.iter())
            .filter(|(bucket, ..)| current - bucket < buckets)
            .collect();
        let calls = live.len() as u64;
        if calls < u64::from(self.config.min_calls) {
            return None;
        }
        let share = |n: usize| n as f64 / calls as f64;
        let failures = live.iter().filter(|(_, failed, _)| *failed).count();
        let slow = live.iter().filter(|(_, _, slow)| *slow).count();
        if self
            .config
            .failure_ratio
            .is_some_and(|r| share(failures) >= r)
        {
            return Some(Cause::FailureRatio);
        }
        self.config
            .slow
            .is_some_and(|(_, r)| share(slow) >= r)
            .then_some(Cause::SlowCalls)
    }

    fn outcome(&mut self, at: u64, probe: bool, call: Call) {
        let failed = match call.outcome {
            Outcome::Ok => false,
            Outcome::Busy | Outcome::Reset => true,
            Outcome::NotFound => self.config.count_fatal,
        };
        let slow = self.config.slow.is_some_and(|(t, _)| call.latency_ms >= t);
        if probe {
            if failed || slow {
                return self.open(at, Cause::ProbeFailed);
            }
            let State::HalfOpen { permits, successes } = self.state else {
                unreachable!("calls are one at a time")
            };
            if successes + 1 == self.config.probes {
                self.window.clear();
                self.consecutive = 0;
                self.opens = 0;
                self.change(at, State::Closed, Cause::ProbesSucceeded);
            } else {
                self.state = State::HalfOpen {
                    permits,
                    successes: successes + 1,
                };
            }
            return;
        }
        if self.config.failure_ratio.is_some() || self.config.slow.is_some() {
            self.window.push((at / self.bucket_us(), failed, slow));
        }
        self.consecutive = if failed { self.consecutive + 1 } else { 0 };
        if !(failed || slow) {
            return;
        }
        let in_a_row = failed
            && self
                .config
                .consecutive
                .is_some_and(|n| self.consecutive >= n);
        let cause = if in_a_row {
            Some(Cause::ConsecutiveFailures)
        } else {
            self.tripped(at)
        };
        if let Some(cause) = cause {
            self.open(at, cause);
        }
    }

    fn run(mut self, calls: &[Call]) -> (Vec<Seen>, Vec<Change>) {
        let mut now = 0;
        let mut seen = Vec::new();
        for &call in calls {
            now += call.gap_ms * 1000;
            let probe = match self.state {
                State::Closed => false,
                State::Open { until } if now < until => {
                    seen.push(Seen::Rejected(Some(until - now)));
                    continue;
                }
                State::Open { .. } => {
                    let permits = self.config.probes - 1;
                    let half_open = State::HalfOpen {
                        permits,
                        successes: 0,
                    };
                    self.change(now, half_open, Cause::BreakEnded);
                    true
                }
                State::HalfOpen { permits: 0, .. } => {
                    seen.push(Seen::Rejected(None));
                    continue;
                }
                State::HalfOpen {
                    ref mut permits, ..
                } => {
                    *permits -= 1;
                    true
                }
            };
            now += call.latency_ms * 1000;
            self.outcome(now, probe, call);
            seen.push(Seen::Passed(call.outcome));
        }
        (seen, self.changes)
    }
}

fn model(config: &Config, calls: &[Call]) -> (Vec<Seen>, Vec<Change>) {
    let model = Model {
        config,
        state: State::Closed,
        window: Vec::new(),
        consecutive: 0,
        opens: 0,
        changes: Vec::new(),
    };
    model.run(calls)
}

fn breaker_config(config: &Config, log: Arc<Mutex<Vec<(Instant, Change)>>>) -> BreakerConfig {
    let ms = Duration::from_millis;
    let mut breaker = BreakerConfig::new()
        .min_calls(config.min_calls)
        .window(ms(config.window_ms))
        .buckets(config.buckets)
        .break_duration(ms(config.break_ms))
        .max_break(ms(config.max_break_ms))
        .break_growth(config.growth)
        .break_jitter(0.0)
        .probes(config.probes)
        .count_fatal(config.count_fatal)
        .observer(move |t: &Transition<'_>| {
            let change = (0, t.from, t.to, Cause::of(t));
            log.lock().unwrap().push((Instant::now(), change));
        });
    breaker = match config.failure_ratio {
        Some(ratio) => breaker.failure_ratio(ratio),
        None => breaker.no_failure_ratio(),
    };
    if let Some(n) = config.consecutive {
        breaker = breaker.consecutive_failures(n);
    }
    if let Some((threshold, ratio)) = config.slow {
        breaker = breaker.slow_calls(ms(threshold), ratio);
    }
    breaker
}

/// What the breaker did, run on a paused clock.
fn run(config: &Config, calls: &[Call]) -> (Vec<Seen>, Vec<Change>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let log = Arc::new(Mutex::new(Vec::new()));
        let classifier = outcome_fn(|outcome: Result<&u16, &BoxError>| match outcome {
            Ok(200) => Classification::Success,
            Ok(503) => Classification::retryable(Reason::Status(503)),
            Ok(status) => Classification::fatal(Reason::Status(*status)),
            Err(err) => classify_error(err.as_ref()),
        });
        let start = Instant::now();
        let layer = CircuitBreakerLayer::builder(breaker_config(config, log.clone()))
            .classifier(classifier)
            .build()
            .unwrap();
        let mut svc = layer.layer(service_fn(|call: Call| async move {
            tokio::time::sleep(Duration::from_millis(call.latency_ms)).await;
            match call.outcome {
                Outcome::Ok => Ok::<u16, BoxError>(200),
                Outcome::Busy => Ok(503),
                Outcome::NotFound => Ok(404),
                Outcome::Reset => {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
                }
            }
        }));
        let mut seen = Vec::new();
        for &call in calls {
            tokio::time::sleep(Duration::from_millis(call.gap_ms)).await;
            let result = svc.ready().await.unwrap().call(call).await;
            seen.push(match result {
                Ok(status) => Seen::Passed(match status {
                    200 => Outcome::Ok,
                    503 => Outcome::Busy,
                    _ => Outcome::NotFound,
                }),
                Err(err) => match Error::find(err.as_ref()).map(Error::kind) {
                    Some(ErrorKind::CircuitOpen { remaining, held }) => {
                        assert!(!held);
                        Seen::Rejected(remaining.map(|d| d.as_micros() as u64))
                    }
                    _ => Seen::Passed(Outcome::Reset),
                },
            });
        }
        let changes = (log.lock().unwrap().iter())
            .map(|(at, (_, from, to, cause))| {
                let at = at.duration_since(start).as_micros() as u64;
                (at, *from, *to, *cause)
            })
            .collect();
        (seen, changes)
    })
}

fn config() -> impl Strategy<Value = Config> {
    let ratio = prop_oneof![Just(0.25), Just(0.5), Just(0.75), Just(1.0)];
    (
        proptest::option::of(ratio.clone()),
        1u32..=6,
        (1u64..=40).prop_map(|n| n * 10),
        1u32..=5,
        proptest::option::of(1u32..=4),
        proptest::option::of(((1u64..=6).prop_map(|n| n * 10), ratio)),
        (1u64..=30).prop_map(|n| n * 10),
        0u64..=3,
        prop_oneof![Just(1.0), Just(1.5), Just(2.0)],
        1u32..=3,
        any::<bool>(),
    )
        .prop_map(
            |(
                failure_ratio,
                min_calls,
                window_ms,
                buckets,
                consecutive,
                slow,
                break_ms,
                doublings,
                growth,
                probes,
                count_fatal,
            )| Config {
                failure_ratio,
                min_calls,
                window_ms,
                buckets,
                consecutive,
                slow,
                break_ms,
                max_break_ms: break_ms << doublings,
                growth,
                probes,
                count_fatal,
            },
        )
}

fn call() -> impl Strategy<Value = Call> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Ok),
        2 => Just(Outcome::Busy),
        1 => Just(Outcome::NotFound),
        2 => Just(Outcome::Reset),
    ];
    (0u64..=120, 0u64..=80, outcome).prop_map(|(gap_ms, latency_ms, outcome)| Call {
        gap_ms,
        latency_ms,
        outcome,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_breaker_does_what_the_rules_say(
        config in config(),
        calls in proptest::collection::vec(call(), 1..60),
    ) {
        prop_assert_eq!(run(&config, &calls), model(&config, &calls));
    }
}

/// A hand-written script, to read the model against: five failures in a row open it, the
/// break rejects, the probe after it fails and doubles the break, the next probe closes it.
#[test]
fn a_written_script_opens_probes_and_closes() {
    let config = Config {
        failure_ratio: None,
        min_calls: 1,
        window_ms: 1000,
        buckets: 10,
        consecutive: Some(5),
        slow: None,
        break_ms: 100,
        max_break_ms: 1000,
        growth: 2.0,
        probes: 1,
        count_fatal: false,
    };
    let at = |gap_ms, outcome| Call {
        gap_ms,
        latency_ms: 0,
        outcome,
    };
    let mut calls = vec![at(0, Outcome::Reset); 5];
    calls.extend([
        at(50, Outcome::Ok),   // rejected: 50 ms of the break left
        at(50, Outcome::Busy), // the probe, at the end of the break: fails, break 200 ms
        at(199, Outcome::Ok),  // rejected: 1 ms left
        at(1, Outcome::Ok),    // the probe: closes
        at(0, Outcome::NotFound),
    ]);
    let (seen, changes) = run(&config, &calls);
    assert_eq!((seen.clone(), changes.clone()), model(&config, &calls));
    assert_eq!(seen[5], Seen::Rejected(Some(50_000)));
    assert_eq!(seen[7], Seen::Rejected(Some(1_000)));
    use CircuitState::*;
    assert_eq!(
        changes,
        [
            (0, Closed, Open, Cause::ConsecutiveFailures),
            (100_000, Open, HalfOpen, Cause::BreakEnded),
            (100_000, HalfOpen, Open, Cause::ProbeFailed),
            (300_000, Open, HalfOpen, Cause::BreakEnded),
            (300_000, HalfOpen, Closed, Cause::ProbesSucceeded),
        ]
    );
}

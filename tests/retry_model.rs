//! The deadline → retry → attempt timeout stack against a model of what it should do, for any
//! script of outcomes and any configuration (property tests, with time paused).
//!
//! The model is the rules of the core issue written out plainly: an attempt's outcome is
//! classified; a retryable one is retried after the backoff (or the server's hint, after which
//! the backoff starts over) unless the
//! attempts are used up, the hint is over its cap, the next attempt would start past
//! `max_elapsed` or at or after the deadline; the deadline cuts an attempt that is still running.
//! The stack must make exactly the calls, at exactly the instants, and end with exactly the
//! result the model says.
//!
//! Every duration that can end an attempt or a wait is a whole, even number of milliseconds and
//! every limit measured against them (the deadline, `max_elapsed`) an odd number, so that no two
//! events ever fall on the same instant and the model never has to guess an order.

mod common;

use std::io;

use common::{Reply, Script, StatusClassifier, Step, call, ms};
use proptest::prelude::*;
use tower::ServiceBuilder;
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
use tower_tenacity::timeout::TimeoutLayer;
use tower_tenacity::{Error, ErrorKind, GiveUp, TimeoutScope};

#[derive(Debug, Clone)]
struct Config {
    max_attempts: u32,
    initial: u64,
    max_delay: u64,
    max_retry_after: u64,
    total: Option<u64>,
    attempt_timeout: Option<u64>,
    max_elapsed: Option<u64>,
}

/// How a call ended, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// A response, returned as it is.
    Reply(u16),
    /// The inner service's own error, returned as it is.
    Io(io::ErrorKind),
    /// Retrying stopped on an error: after how many attempts, which limit.
    GaveUp { attempts: u32, limit: GiveUp },
    /// The deadline cut an attempt.
    Deadline,
}

/// What the model says happens: when each call starts (ms from the first) and how it ends.
fn model(config: &Config, steps: &[Step], then: Step) -> (Vec<u64>, Ended) {
    let mut calls = Vec::new();
    let mut now = 0u64;
    // The attempt after which the backoff last started over: the last one the server hinted.
    let mut restarted_at = 0;
    for attempt in 1..=config.max_attempts {
        calls.push(now);
        let step = steps.get(attempt as usize - 1).copied().unwrap_or(then);
        // How the attempt ends: a reply (maybe with a hint) or an error, and when.
        let (outcome, hint): (Ended, Option<u64>) = match step {
            Step::Reply(status) => (Ended::Reply(status), None),
            Step::Hint(after) => (Ended::Reply(503), Some(after.as_millis() as u64)),
            Step::Fail(kind) => (Ended::Io(kind), None),
            Step::Stall => {
                let cut_by_timeout = config.attempt_timeout.map(|t| now + t);
                let cut_by_deadline = config.total;
                match (cut_by_timeout, cut_by_deadline) {
                    (Some(timeout), Some(deadline)) if deadline < timeout => {
                        return (calls, Ended::Deadline);
                    }
                    (None, Some(_)) => return (calls, Ended::Deadline),
                    (Some(timeout), _) => {
                        now = timeout;
                        (Ended::Io(io::ErrorKind::TimedOut), None)
                    }
                    (None, None) => unreachable!("the generator never stalls without a timeout"),
                }
            }
        };
        let retryable = match &outcome {
            Ended::Reply(status) => *status == 503,
            Ended::Io(kind) => matches!(
                kind,
                io::ErrorKind::ConnectionReset | io::ErrorKind::TimedOut
            ),
            _ => unreachable!(),
        };
        if !retryable {
            return (calls, outcome);
        }
        // The caller gets the last response as it is, or the last error inside a give-up.
        let stop = |limit: GiveUp| match outcome {
            Ended::Reply(status) => Ended::Reply(status),
            _ => Ended::GaveUp {
                attempts: attempt,
                limit,
            },
        };
        if attempt == config.max_attempts {
            return (calls, stop(GiveUp::Attempts));
        }
        let delay = match hint {
            Some(requested) if requested > config.max_retry_after => {
                return (
                    calls,
                    stop(GiveUp::RetryAfter {
                        requested: ms(requested),
                        cap: ms(config.max_retry_after),
                    }),
                );
            }
            Some(requested) => {
                restarted_at = attempt;
                requested
            }
            // Retry number n waits initial × 2^(n-1), counted from the last hinted retry: after a
            // server's hint the backoff starts over (gRFC A6).
            None => (config.initial << (attempt - 1 - restarted_at)).min(config.max_delay),
        };
        let next_start = now + delay;
        if config.max_elapsed.is_some_and(|max| next_start > max) {
            return (calls, stop(GiveUp::Elapsed));
        }
        if config.total.is_some_and(|deadline| next_start >= deadline) {
            return (calls, stop(GiveUp::Deadline));
        }
        now = next_start;
    }
    unreachable!("the last attempt always returns")
}

/// What the stack did, run on a paused clock.
fn run(config: &Config, steps: &[Step], then: Step) -> (Vec<u64>, Ended) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let script = Script::new(steps.iter().copied(), then);
        let backoff = ExponentialBackoff::new(ms(config.initial), 2.0, ms(config.max_delay))
            .with_jitter(Jitter::None);
        let mut retry = RetryLayer::builder()
            .classifier(StatusClassifier)
            .no_budget()
            .max_attempts(config.max_attempts)
            .max_retry_after(ms(config.max_retry_after))
            .backoff(backoff);
        if let Some(max) = config.max_elapsed {
            retry = retry.max_elapsed(ms(max));
        }
        let retry = retry.build().unwrap();
        let mut svc = ServiceBuilder::new()
            .option_layer(config.total.map(|total| DeadlineLayer::new(ms(total))))
            .layer(retry)
            .option_layer(config.attempt_timeout.map(|t| TimeoutLayer::new(ms(t))))
            .service(script.clone());
        let result = call(&mut svc).await;
        let offsets = script
            .call_offsets()
            .iter()
            .map(|d| d.as_millis() as u64)
            .collect();
        let ended = match result {
            Ok(Reply { status, .. }) => Ended::Reply(status),
            Err(err) => match Error::find(err.as_ref()).map(Error::kind) {
                Some(ErrorKind::GaveUp {
                    attempts,
                    why:
                        limit @ (GiveUp::Attempts
                        | GiveUp::Elapsed
                        | GiveUp::Deadline
                        | GiveUp::RetryAfter { .. }),
                }) => Ended::GaveUp { attempts, limit },
                Some(ErrorKind::Timeout {
                    scope: TimeoutScope::Total,
                    ..
                }) => Ended::Deadline,
                Some(ErrorKind::Timeout {
                    scope: TimeoutScope::Attempt,
                    ..
                }) => Ended::Io(io::ErrorKind::TimedOut),
                Some(other) => panic!("unexpected error kind {other:?}: {err}"),
                None => Ended::Io(
                    err.downcast_ref::<io::Error>()
                        .unwrap_or_else(|| panic!("not an I/O error: {err}"))
                        .kind(),
                ),
            },
        };
        (offsets, ended)
    })
}

fn even(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = u64> {
    range.prop_map(|n| n * 2)
}

fn odd(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = u64> {
    range.prop_map(|n| n * 2 + 1)
}

fn config() -> impl Strategy<Value = Config> {
    (
        1u32..=5,
        even(1..=200),
        0u32..=3,
        even(0..=1000),
        proptest::option::of(odd(0..=1500)),
        proptest::option::of(even(1..=500)),
        proptest::option::of(odd(0..=1500)),
    )
        .prop_map(
            |(
                max_attempts,
                initial,
                doublings,
                max_retry_after,
                total,
                attempt_timeout,
                max_elapsed,
            )| {
                Config {
                    max_attempts,
                    initial,
                    max_delay: initial << doublings,
                    max_retry_after,
                    total,
                    attempt_timeout,
                    max_elapsed,
                }
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Reply(200)),
        Just(Step::Reply(503)),
        Just(Step::Reply(404)),
        even(0..=600).prop_map(|h| Step::Hint(ms(h))),
        Just(Step::Fail(io::ErrorKind::ConnectionReset)),
        Just(Step::Fail(io::ErrorKind::PermissionDenied)),
        Just(Step::Stall),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_stack_does_what_the_rules_say(
        config in config(),
        steps in proptest::collection::vec(step(), 0..6),
        then in step(),
    ) {
        // A stall with nothing to end it would hang the model and the stack alike.
        let no_end = config.attempt_timeout.is_none() && config.total.is_none();
        let tame = |step: Step| match step {
            Step::Stall if no_end => Step::Reply(503),
            other => other,
        };
        let steps: Vec<Step> = steps.into_iter().map(tame).collect();
        let then = tame(then);
        prop_assert_eq!(run(&config, &steps, then), model(&config, &steps, then));
    }
}

//! The circuit breaker with retry around it (paused clock), under concurrency (a multi-thread
//! runtime), by hand, and kept per key. The state machine itself is checked against a model in
//! `breaker_model.rs`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer, CircuitState};
use tower_tenacity::classify::{
    Classification, ClassifyOutcome, DefaultClassifier, NotSent, Reason, outcome_fn,
};
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryBudget};
use tower_tenacity::scope::key_fn;
use tower_tenacity::{Error, ErrorKind, GiveUp, ResilienceLayer};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn reset() -> BoxError {
    io::Error::from(io::ErrorKind::ConnectionReset).into()
}

/// Fails its first `failures` calls with a reset connection, then answers; counts its calls.
fn failing_first(
    failures: u32,
) -> (
    Arc<AtomicU32>,
    impl Service<
        u32,
        Response = u32,
        Error = BoxError,
        Future = impl std::future::Future<Output = Result<u32, BoxError>> + Send,
    > + Clone,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = service_fn(move |n: u32| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        async move { if call < failures { Err(reset()) } else { Ok(n) } }
    });
    (calls, svc)
}

fn breaker(break_ms: u64) -> BreakerConfig {
    BreakerConfig::new()
        .consecutive_failures(1)
        .break_duration(ms(break_ms))
        .break_jitter(0.0)
}

/// Deadline → retry (3 attempts, 10 ms apart, no budget) → breaker → attempt timeout (a macro:
/// the builder's type with a breaker is the crate's own, so no function can return it).
macro_rules! stack {
    ($break_ms:expr, $total_ms:expr) => {
        ResilienceLayer::builder(DefaultClassifier)
            .total_timeout(ms($total_ms))
            .attempt_timeout(ms(50))
            .max_attempts(3)
            .backoff(ExponentialBackoff::new(ms(10), 1.0, ms(10)).with_jitter(Jitter::None))
            .no_budget()
            .circuit_breaker(breaker($break_ms))
    };
}

/// The stack has one classifier, whatever order the builder's methods come in: one set after
/// `circuit_breaker` (here, one that calls every answer a failure) is the breaker's too.
#[tokio::test(start_paused = true)]
async fn the_breaker_counts_with_a_classifier_set_after_it() {
    let everything_fails =
        outcome_fn(|_: Result<&u32, &BoxError>| Classification::retryable(Reason::Status(503)));
    let set_after = ResilienceLayer::builder(DefaultClassifier)
        .circuit_breaker(breaker(100))
        .classifier(everything_fails)
        .build()
        .unwrap();
    let set_within = ResilienceLayer::builder(DefaultClassifier)
        .circuit_breaker(breaker(100))
        .retry_with(|retry| retry.classifier(everything_fails))
        .build()
        .unwrap();
    for layer in [set_after, set_within] {
        let handle = layer.breaker().handle();
        let (_, svc) = failing_first(0);
        let _ = layer.layer(svc).oneshot(7).await;
        assert_eq!(handle.snapshot().state, CircuitState::Open);
    }
}

/// Retry waits out the rest of the break (the rejection's hint) when the deadline allows, and
/// the probe after it goes through. The rejection spends no retry budget: the budget has one
/// retry, spent on the first failure, and still the call gets its third attempt.
#[tokio::test(start_paused = true)]
async fn retry_waits_out_the_break_and_the_rejection_spends_no_budget() {
    let (calls, svc) = failing_first(1);
    let budget = RetryBudget::new(0.0, 1, Duration::from_secs(3600)).unwrap();
    let layer = stack!(100, 1000).budget(budget.clone()).build().unwrap();
    let handle = layer.breaker().handle();
    let mut svc = layer.layer(svc);
    let start = Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    // Failed at 0 (the circuit opens for 100 ms), rejected at 10 ms with 90 ms left, waited
    // 90 ms, probed at 100 ms.
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the rejection never reached the service"
    );
    assert_eq!(
        budget.retries_left(),
        0,
        "one retry was spent, on the failure"
    );
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
}

/// A break that outlasts the deadline is not waited for: the call fails at once, naming the
/// open circuit, and the service sees only the call that opened it.
#[tokio::test(start_paused = true)]
async fn a_break_past_the_deadline_fails_fast() {
    let (calls, svc) = failing_first(u32::MAX);
    let mut svc = stack!(10_000, 1000).build().unwrap().layer(svc);
    let start = Instant::now();
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        ms(10),
        "the backoff before the rejected attempt, no more"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let error = Error::find(err.as_ref()).unwrap();
    assert!(matches!(
        error.kind(),
        ErrorKind::GaveUp {
            attempts: 2,
            why: GiveUp::Deadline
        }
    ));
    assert_eq!(
        error.reason(),
        Some(Reason::NeverSent(NotSent::CircuitOpen))
    );
    assert!(err.to_string().contains("the circuit is open for"), "{err}");

    // A second call is rejected at its first attempt, and stops at once too.
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no traffic while open");
    assert!(matches!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::GaveUp {
            attempts: 1,
            why: GiveUp::Deadline
        }
    ));
}

/// The break as a hint is capped like any server hint.
#[tokio::test(start_paused = true)]
async fn a_break_longer_than_the_hint_cap_is_not_waited_for() {
    let (calls, svc) = failing_first(u32::MAX);
    let layer = stack!(500, 5000).max_retry_after(ms(100)).build().unwrap();
    let mut svc = layer.layer(svc);
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(matches!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::GaveUp { why: GiveUp::RetryAfter { cap, .. }, .. } if cap == ms(100)
    ));
}

/// Held open by hand: every call is rejected, and retry does not try again (the rejection is
/// fatal); released, calls flow again.
#[tokio::test(start_paused = true)]
async fn an_operator_can_hold_the_circuit_open_and_release_it() {
    let (calls, svc) = failing_first(0);
    let layer = stack!(100, 1000).build().unwrap();
    let handle = layer.breaker().handle();
    let mut svc = layer.layer(svc);
    handle.hold_open();
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    assert!(matches!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::CircuitOpen {
            remaining: None,
            held: true
        }
    ));
    assert_eq!(
        err.to_string(),
        "request not sent: the circuit is held open"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(handle.snapshot().state, CircuitState::HeldOpen);
    handle.release();
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    handle.hold_closed();
    assert_eq!(handle.snapshot().state, CircuitState::HeldClosed);
}

/// A held-closed circuit counts but never opens.
#[tokio::test(start_paused = true)]
async fn a_circuit_held_closed_counts_but_never_opens() {
    let (calls, svc) = failing_first(u32::MAX);
    let layer =
        CircuitBreakerLayer::new(BreakerConfig::new().min_calls(2).failure_ratio(0.5)).unwrap();
    let handle = layer.handle();
    handle.hold_closed();
    let mut svc = layer.layer(svc);
    for _ in 0..5 {
        let _ = svc.ready().await.unwrap().call(1).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.state, CircuitState::HeldClosed);
    assert_eq!((snapshot.counts.calls, snapshot.counts.failures), (5, 5));
    assert_eq!(snapshot.consecutive_failures, 5);
}

/// Many tasks on a multi-thread runtime race for a half-open circuit's probes: exactly the
/// configured number reach the service, the rest are rejected at once; the probes' success
/// closes the circuit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_the_allowed_probes_reach_the_service() {
    const PROBES: u32 = 3;
    const TASKS: usize = 200;
    let calls = Arc::new(AtomicU32::new(0));
    // The probes wait here, in flight, until every other task has been answered.
    let gate = Arc::new(Semaphore::new(0));
    let (counter, waiting) = (calls.clone(), gate.clone());
    let svc = service_fn(move |fail: bool| {
        let (counter, waiting) = (counter.clone(), waiting.clone());
        async move {
            if fail {
                return Err(reset());
            }
            counter.fetch_add(1, Ordering::SeqCst);
            waiting.acquire().await.unwrap().forget();
            Ok::<_, BoxError>(())
        }
    });
    let layer = CircuitBreakerLayer::new(breaker(1).probes(PROBES)).unwrap();
    let handle = layer.handle();
    let svc = layer.layer(svc);
    assert!(svc.clone().oneshot(true).await.is_err());
    assert_eq!(handle.snapshot().state, CircuitState::Open);
    // Let the 1 ms break pass (no timing is checked: only that it is over).
    while handle.snapshot().state == CircuitState::Open {
        tokio::time::sleep(ms(1)).await;
    }
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| tokio::spawn(svc.clone().oneshot(false)))
        .collect();
    // Each task either reaches the service, and waits at the gate, or is rejected at once.
    let mut waited = 0;
    while calls.load(Ordering::SeqCst) < PROBES
        || tasks.iter().filter(|t| t.is_finished()).count() < TASKS - PROBES as usize
    {
        waited += 1;
        assert!(
            waited < 10_000,
            "{} calls reached the service",
            calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(ms(1)).await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        PROBES,
        "exactly the probes reached the service"
    );
    gate.add_permits(PROBES as usize);
    let (mut passed, mut rejected) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => passed += 1,
            Err(err) => {
                let kind = Error::find(err.as_ref()).unwrap().kind();
                assert!(
                    matches!(
                        kind,
                        ErrorKind::CircuitOpen {
                            remaining: None,
                            held: false
                        }
                    ),
                    "{kind:?}"
                );
                rejected += 1;
            }
        }
    }
    assert_eq!((passed, rejected), (PROBES, TASKS as u32 - PROBES));
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
}

/// A probe dropped before it answers (its caller gave up) gives its place back: the next call
/// probes, rather than the circuit staying half-open for ever.
#[tokio::test(start_paused = true)]
async fn a_dropped_probe_gives_its_place_back() {
    let (calls, inner) = failing_first(1);
    let slow = tower::ServiceBuilder::new()
        .and_then(|n: u32| async move {
            tokio::time::sleep(ms(1000)).await;
            Ok::<_, BoxError>(n)
        })
        .service(inner);
    let layer = CircuitBreakerLayer::new(breaker(100)).unwrap();
    let handle = layer.handle();
    let mut svc = layer.layer(slow);
    assert!(svc.ready().await.unwrap().call(1).await.is_err());
    tokio::time::advance(ms(100)).await;
    // The caller gives up on its probe before it answers.
    let probe = svc.ready().await.unwrap().call(1);
    assert!(tokio::time::timeout(ms(10), probe).await.is_err());
    let answer = tokio::time::timeout(ms(2000), svc.ready().await.unwrap().call(2)).await;
    assert_eq!(answer.unwrap().unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
}

/// Per key: one key's failures open only its circuit.
#[tokio::test(start_paused = true)]
async fn a_circuit_per_key_opens_only_for_its_key() {
    let svc = service_fn(|(host, n): (&'static str, u32)| async move {
        if host == "down" { Err(reset()) } else { Ok(n) }
    });
    let layer = CircuitBreakerLayer::builder(breaker(1000))
        .per_key(key_fn(|(host, _): &(&'static str, u32)| *host))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut svc = layer.layer(svc);
    assert!(svc.ready().await.unwrap().call(("down", 1)).await.is_err());
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(("down", 1))
        .await
        .unwrap_err();
    assert!(matches!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::CircuitOpen {
            remaining: Some(_),
            ..
        }
    ));
    assert_eq!(svc.ready().await.unwrap().call(("up", 2)).await.unwrap(), 2);
    let mut states: Vec<_> = (handle.snapshots().into_iter())
        .map(|s| (s.key.unwrap(), s.state))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        states,
        [
            ("\"down\"".to_string(), CircuitState::Open),
            ("\"up\"".to_string(), CircuitState::Closed)
        ]
    );
}

/// Fatal outcomes mean the dependency answered: they do not count, unless asked.
#[test]
fn fatal_outcomes_count_only_when_asked() {
    let not_found = DefaultClassifier.classify_outcome(Err::<&(), _>(&"no such thing".into()));
    assert!(matches!(not_found, Classification::Fatal { .. }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    for (count_fatal, expected) in [(false, CircuitState::Closed), (true, CircuitState::Open)] {
        let state = rt.block_on(async {
            let layer = CircuitBreakerLayer::new(breaker(100).count_fatal(count_fatal)).unwrap();
            let handle = layer.handle();
            let mut svc = layer.layer(service_fn(|_: ()| async {
                Err::<(), BoxError>("no such thing".into())
            }));
            let _ = svc.ready().await.unwrap().call(()).await;
            handle.snapshot().state
        });
        assert_eq!(state, expected);
    }
}

/// The break grows while probes keep failing, with jitter that only lengthens it (within the
/// configured share), and starts again from the first break once the circuit closes.
#[tokio::test(start_paused = true)]
async fn breaks_grow_with_jitter_and_start_over_after_a_close() {
    let fail = Arc::new(AtomicU32::new(1));
    let flag = fail.clone();
    let svc = service_fn(move |_: ()| {
        let failing = flag.load(Ordering::SeqCst) == 1;
        async move {
            if failing {
                Err(reset())
            } else {
                Ok::<_, BoxError>(())
            }
        }
    });
    let config = breaker(100)
        .break_jitter(0.5)
        .break_growth(2.0)
        .max_break(ms(300))
        .seed(7);
    let layer = CircuitBreakerLayer::new(config).unwrap();
    let handle = layer.handle();
    let mut svc = layer.layer(svc);
    let mut breaks = Vec::new();
    for _ in 0..4 {
        let _ = svc.ready().await.unwrap().call(()).await;
        let remaining = handle.snapshot().remaining.unwrap();
        breaks.push(remaining);
        tokio::time::advance(remaining).await;
    }
    for (opened, (low, high)) in breaks
        .iter()
        .zip([(100, 150), (200, 300), (300, 450), (300, 450)])
    {
        assert!((ms(low)..ms(high)).contains(opened), "{breaks:?}");
    }
    assert!(
        breaks.windows(2).any(|w| w[0] != w[1]),
        "jittered: {breaks:?}"
    );
    fail.store(0, Ordering::SeqCst);
    svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
    fail.store(1, Ordering::SeqCst);
    let _ = svc.ready().await.unwrap().call(()).await;
    let first_again = handle.snapshot().remaining.unwrap();
    assert!((ms(100)..ms(150)).contains(&first_again), "{first_again:?}");
}

/// Every bad setting is refused when the layer (or a preset) is built, naming the field.
#[test]
fn bad_settings_are_config_errors_naming_the_field() {
    let err = CircuitBreakerLayer::new(BreakerConfig::new().probes(0)).unwrap_err();
    assert_eq!(err.field(), "breaker.probes");
    let err = ResilienceLayer::builder(DefaultClassifier)
        .circuit_breaker(BreakerConfig::new().failure_ratio(2.0))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "breaker.failure_ratio");
    assert_eq!(
        err.to_string(),
        "invalid configuration: breaker.failure_ratio must be between 0 and 1, got 2"
    );
    let err = ResilienceLayer::http()
        .circuit_breaker(BreakerConfig::new().window(Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "breaker.window");
}

//! Backoff delays: exact sequences, jitter bounds (property tests), jitter per request.

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Script, Step, ms, secs};
use proptest::prelude::*;
use tower::Layer;
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter, RetryLayer};

#[tokio::test(start_paused = true)]
async fn tenacity_style_floor_and_cap_through_the_retry_loop() {
    // tenacity: stop_after_attempt(6), wait_exponential(multiplier=1, min=4, max=10)
    let backoff = ExponentialBackoff::new(secs(1), 2.0, secs(10))
        .with_min(secs(4))
        .with_jitter(Jitter::None);
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionRefused));
    let mut svc = RetryLayer::builder()
        .max_attempts(6)
        .backoff(backoff)
        .no_budget()
        .build()
        .unwrap()
        .layer(script.clone());
    common::call(&mut svc).await.unwrap_err();
    // Waits of 4, 4, 4, 8, 10 seconds.
    assert_eq!(
        script.call_offsets(),
        [secs(0), secs(4), secs(8), secs(12), secs(20), secs(30)]
    );
}

#[test]
fn default_backoff_without_jitter_doubles_from_100ms_to_5s() {
    let backoff = ExponentialBackoff::default().with_jitter(Jitter::None);
    let delays: Vec<Duration> = (1..=8).map(|n| backoff.base_delay(n)).collect();
    assert_eq!(
        delays,
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            secs(5),
            secs(5)
        ]
    );
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        (0.0..=1.0f64).prop_map(Jitter::Spread),
    ]
}

proptest! {
    #[test]
    fn every_jitter_stays_within_its_bounds(
        initial_ms in 1u64..5_000,
        multiplier in 1.0f64..10.0,
        max_extra_ms in 0u64..60_000,
        min_ms in 0u64..5_000,
        retry in 1u32..64,
        previous_ms in 0u64..120_000,
        seed in any::<u64>(),
        jitter in jitter(),
    ) {
        let initial = ms(initial_ms);
        let max = initial.max(ms(min_ms)) + ms(max_extra_ms);
        let min = ms(min_ms);
        let backoff = ExponentialBackoff::new(initial, multiplier, max)
            .with_min(min)
            .with_jitter(jitter);
        prop_assert!(backoff.validate().is_ok());
        let base = backoff.base_delay(retry);
        prop_assert!(min <= base && base <= max);
        let previous = ms(previous_ms);
        let delay = backoff.delay(retry, previous, seed);
        prop_assert!(min <= delay && delay <= max, "{delay:?} outside {min:?}..={max:?}");
        match jitter {
            Jitter::None => prop_assert_eq!(delay, base),
            Jitter::Full => prop_assert!(delay <= base),
            Jitter::Equal => prop_assert!(delay >= base / 2 && delay <= base),
            Jitter::Decorrelated => {
                let low = initial.max(min);
                prop_assert!(delay >= low.min(max));
                prop_assert!(delay <= previous.max(low).saturating_mul(3).max(min));
            }
            Jitter::Spread(spread) => {
                let (lo, hi) = (base.as_secs_f64() * (1.0 - spread), base.as_secs_f64() * (1.0 + spread));
                let d = delay.as_secs_f64();
                prop_assert!(d >= lo.min(min.as_secs_f64()) - 1e-9 && d <= hi.max(min.as_secs_f64()) + 1e-9);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn jitter_is_spread_across_its_range(seed in any::<u64>()) {
        // 200 draws of full jitter over 0..=1s all landing in one tenth of it would mean no jitter.
        let backoff = ExponentialBackoff::new(secs(1), 2.0, secs(1));
        let draws: Vec<Duration> = (0..200)
            .map(|i| backoff.delay(1, Duration::ZERO, seed.wrapping_add(i)))
            .collect();
        let low = draws.iter().filter(|d| **d < ms(500)).count();
        prop_assert!((40..=160).contains(&low), "{low} of 200 in the lower half");
    }
}

/// The first backoff delay of each of `n` concurrent requests through one layer seeded with
/// `seed` (or unseeded).
async fn first_delays(n: usize, seed: Option<u64>) -> Vec<Duration> {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let sink = delays.clone();
    let mut builder = RetryLayer::builder()
        .max_attempts(2)
        .no_budget()
        .backoff(ExponentialBackoff::new(secs(10), 2.0, secs(10)))
        .observer(move |event: &Event| {
            if let Event::Retry { delay, .. } = event {
                sink.lock().unwrap().push(*delay);
            }
        });
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    let svc = builder
        .build()
        .unwrap()
        .layer(Script::always(Step::Fail(io::ErrorKind::ConnectionReset)));
    let calls = (0..n).map(|_| {
        let mut svc = svc.clone();
        async move { common::call(&mut svc).await }
    });
    futures_util::future::join_all(calls).await;
    let mut delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), n);
    delays.sort();
    delays
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_draw_different_jitter() {
    let delays = first_delays(2, Some(42)).await;
    assert_ne!(delays[0], delays[1], "each request has its own randomness");
    assert_eq!(
        first_delays(2, Some(42)).await,
        delays,
        "a seed makes the run reproducible"
    );
    assert_ne!(
        first_delays(2, Some(43)).await,
        delays,
        "another seed, other delays"
    );
}

#[tokio::test(start_paused = true)]
async fn unseeded_requests_draw_different_jitter_too() {
    let mut delays = first_delays(8, None).await;
    delays.dedup();
    // Full jitter over 10 s in nanoseconds: a repeat would mean a shared sequence.
    assert_eq!(delays.len(), 8, "{delays:?}");
}

/// The field a backoff's `validate` refuses, or `None` when it accepts it.
fn refused(backoff: ExponentialBackoff) -> Option<&'static str> {
    backoff.validate().err().map(|err| err.field())
}

#[test]
fn validation_names_the_field_and_allows_the_bounds_themselves() {
    let ok = ExponentialBackoff::new(ms(100), 2.0, secs(5));
    assert_eq!(refused(ok), None);
    let zero = ExponentialBackoff::new(Duration::ZERO, 2.0, secs(5));
    assert_eq!(refused(zero), Some("backoff.initial"));
    for multiplier in [f64::NAN, f64::INFINITY, 0.5, 0.999] {
        let backoff = ExponentialBackoff::new(ms(100), multiplier, secs(5));
        assert_eq!(refused(backoff), Some("backoff.multiplier"), "{multiplier}");
    }
    // A multiplier of exactly 1 is a constant delay, and allowed.
    assert_eq!(
        refused(ExponentialBackoff::new(ms(100), 1.0, secs(5))),
        None
    );
    assert_eq!(
        refused(ExponentialBackoff::new(secs(6), 2.0, secs(5))),
        Some("backoff.initial")
    );
    assert_eq!(refused(ok.with_min(secs(6))), Some("backoff.min"));
    // `initial` and `min` may each be exactly `max`.
    assert_eq!(
        refused(ExponentialBackoff::new(secs(5), 2.0, secs(5)).with_min(secs(5))),
        None
    );
    for spread in [f64::NAN, f64::INFINITY, -0.1, 1.1] {
        let backoff = ok.with_jitter(Jitter::Spread(spread));
        assert_eq!(refused(backoff), Some("backoff.jitter"), "{spread}");
    }
    for spread in [0.0, 0.2, 1.0] {
        assert_eq!(refused(ok.with_jitter(Jitter::Spread(spread))), None);
    }
}

#[test]
fn a_layer_refuses_a_backoff_that_validate_refuses() {
    let err = RetryLayer::builder()
        .backoff(ExponentialBackoff::new(Duration::ZERO, 2.0, secs(5)))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "backoff.initial");
}

#[test]
fn the_jitter_set_is_the_jitter_read() {
    let backoff = ExponentialBackoff::default();
    assert_eq!(backoff.jitter(), Jitter::Full);
    for jitter in [
        Jitter::None,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::Spread(0.3),
    ] {
        assert_eq!(backoff.with_jitter(jitter).jitter(), jitter);
    }
}

#[test]
fn a_spread_of_20_percent_falls_within_it_on_both_sides_of_the_base() {
    let backoff = ExponentialBackoff::new(secs(1), 2.0, secs(10)).with_jitter(Jitter::Spread(0.2));
    let factors: Vec<f64> = (0..1000)
        .map(|seed| backoff.delay(1, Duration::ZERO, seed).as_secs_f64())
        .collect();
    for factor in &factors {
        assert!((0.8..=1.2).contains(factor), "{factor}");
    }
    let below = factors.iter().filter(|f| **f < 1.0).count();
    // Uniform over 0.8..=1.2: about half below the base, and the draws reach near both ends.
    assert!(
        (400..=600).contains(&below),
        "{below} of 1000 below the base"
    );
    let lowest = factors.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = factors.iter().copied().fold(0.0, f64::max);
    assert!(lowest < 0.81 && highest > 1.19, "{lowest}..{highest}");
}

/// A server's hint sets one delay exactly, and the schedule starts over after it (gRFC A6:
/// "for subsequent retries, the delay period will be reset to the initialBackoff setting").
#[tokio::test(start_paused = true)]
async fn after_a_servers_hint_the_backoff_starts_over() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use tower::{BoxError, Service, ServiceExt};
    use tower_tenacity::classify::{Classification, Reason, classify_fn};

    let delays = Arc::new(Mutex::new(Vec::new()));
    let sink = delays.clone();
    // Attempts 2 and 4 come back with a hint of 500 ms; every attempt fails.
    let classifier = classify_fn(|_: &u32, outcome: Result<&u32, &BoxError>| match outcome {
        Ok(n) if n % 2 == 0 => Classification::retry_after(Reason::Status(503), ms(500)),
        _ => Classification::retryable(Reason::Status(503)),
    });
    let counter = Arc::new(AtomicU32::new(0));
    let svc = tower::service_fn(move |_: u32| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<u32, BoxError>(n) }
    });
    let mut svc = RetryLayer::builder()
        .classifier(classifier)
        .max_attempts(6)
        .no_budget()
        .backoff(ExponentialBackoff::new(ms(10), 2.0, secs(10)).with_jitter(Jitter::None))
        .observer(move |event: &Event| {
            if let Event::Retry { delay, .. } = event {
                sink.lock().unwrap().push(*delay);
            }
        })
        .build()
        .unwrap()
        .layer(svc);
    svc.ready().await.unwrap().call(0).await.unwrap();
    assert_eq!(
        *delays.lock().unwrap(),
        [ms(10), ms(500), ms(10), ms(500), ms(10)],
        "the backoff's first delay after each hint, not its third and fifth"
    );
}

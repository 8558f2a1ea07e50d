//! The retry budget under load: retries stay a share of the traffic, whatever each request's
//! own attempt limit would allow.

mod a6;
mod common;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::{Script, Step, ms, secs};
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_tenacity::GiveUp;
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter, RetryBudget, RetryLayer};
use tower_tenacity::{Error, ErrorKind};

#[tokio::test(start_paused = true)]
async fn under_total_failure_the_inner_service_sees_at_most_the_budget() {
    const REQUESTS: usize = 300;
    const RATIO: f64 = 0.2;
    const FLOOR: u32 = 5;
    let budget = RetryBudget::new(RATIO, FLOOR, secs(3600)).unwrap();
    let give_ups = Arc::new(Mutex::new(0usize));
    let counter = give_ups.clone();
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionRefused));
    let layer = RetryLayer::builder()
        .max_attempts(5)
        .backoff(ExponentialBackoff::new(ms(10), 2.0, ms(100)))
        .budget(budget.clone())
        .observer(move |event: &Event| {
            if let Event::GiveUp {
                why: GiveUp::Budget,
                ..
            } = event
            {
                *counter.lock().unwrap() += 1;
            }
        })
        .build()
        .unwrap();
    // Clones of the layer's service share the budget, as concurrent callers do.
    let svc = layer.layer(script.clone());
    let calls = (0..REQUESTS).map(|_| {
        let mut svc = svc.clone();
        async move { common::call(&mut svc).await }
    });
    let results = futures_util::future::join_all(calls).await;

    let inner_calls = script.calls();
    let bound = ((1.0 + RATIO) * REQUESTS as f64) as usize + FLOOR as usize;
    assert!(inner_calls <= bound, "{inner_calls} calls, bound {bound}");
    // Without a budget, 5 attempts each would have meant 1500 calls; the budget was used fully.
    assert!(
        inner_calls >= bound - 1,
        "{inner_calls} calls: the budget was not spent"
    );
    let budget_errors = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| {
            matches!(
                Error::find(e.as_ref()).map(Error::kind),
                Some(ErrorKind::GaveUp {
                    why: GiveUp::Budget,
                    ..
                })
            )
        })
        .count();
    assert!(budget_errors > 0);
    assert_eq!(
        budget_errors,
        *give_ups.lock().unwrap(),
        "every refusal is an event"
    );
    assert_eq!(budget.retries_left(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_budget_is_shared_by_every_layer_given_it() {
    let budget = RetryBudget::new(0.0, 2, secs(3600)).unwrap();
    let make = || {
        RetryLayer::builder()
            .max_attempts(10)
            .budget(budget.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (
        Script::always(Step::Fail(io::ErrorKind::ConnectionReset)),
        Script::always(Step::Fail(io::ErrorKind::ConnectionReset)),
    );
    let mut first = make().layer(a.clone());
    let mut second = make().layer(b.clone());
    let _ = common::call(&mut first).await;
    let _ = common::call(&mut second).await;
    assert_eq!(
        a.calls() + b.calls(),
        4,
        "two requests, two retries from the floor of 2"
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_layer_has_a_budget_and_no_budget_removes_it() {
    assert!(RetryLayer::new().budget().is_some());
    let layer = RetryLayer::builder().no_budget().build().unwrap();
    assert!(layer.budget().is_none());
}

/// Requests that each deposit and then retry for as long as the budget lets them (a service
/// that always fails): how many retries `requests` requests get from a budget with no floor.
fn retries_granted(ratio: f64, requests: u64) -> u64 {
    let budget = RetryBudget::new(ratio, 0, secs(3600)).unwrap();
    let mut granted = 0;
    for _ in 0..requests {
        budget.deposit();
        while budget.withdraw() {
            granted += 1;
            // Every ratio here is at most 5: a budget that never runs out fails rather than hangs.
            assert!(
                granted <= 5 * requests,
                "{granted} retries for {requests} requests"
            );
        }
    }
    granted
}

#[test]
fn the_documented_bound_is_exact_for_a_fine_ratio() {
    // 0.0015 × 10 000 requests is 15 retries; deposits rounded to a thousandth gave 20.
    assert_eq!(retries_granted(0.0015, 10_000), 15);
    assert_eq!(retries_granted(0.1, 10), 1);
    assert_eq!(retries_granted(0.3, 10), 3);
    assert_eq!(retries_granted(0.000_000_001, 1_000_000_000 / 1000), 0);
    // Under 1/1000, the deposits of 1000 requests are less than one retry: the budget still
    // saves up to one (it once capped the savings below a whole token, and never granted any).
    assert_eq!(retries_granted(0.000_784_93, 1274), 1);
    assert_eq!(retries_granted(0.000_01, 250_000), 2);
}

proptest::proptest! {
    /// For a ratio given to the nanoth (what a user writes) the budget grants exactly
    /// ⌊ratio × requests⌋ retries; for any other ratio never more than `ratio × requests`.
    #[test]
    fn retries_never_exceed_ratio_times_requests(
        billionths in 0u64..=5_000_000_000,
        requests in 0u64..3000,
        any_ratio in 0.0f64..=5.0,
    ) {
        let ratio = billionths as f64 / 1e9;
        let exact = u128::from(billionths) * u128::from(requests) / 1_000_000_000;
        proptest::prop_assert_eq!(u128::from(retries_granted(ratio, requests)), exact, "ratio {}", ratio);
        let granted = retries_granted(any_ratio, requests) as f64;
        proptest::prop_assert!(granted <= any_ratio * requests as f64, "ratio {} gave {}", any_ratio, granted);
    }
}

#[test]
fn ratios_are_kept_to_the_billionth_and_savings_to_1000_requests() {
    // 4.1 is 4.0999999999999996 in binary: rounded to the nanotoken, not down.
    assert_eq!(retries_granted(4.1, 10), 41);
    // A tenth of a nanotoken under 0.5 is rounded down: two requests never make one retry.
    assert_eq!(retries_granted(0.499_999_999_6, 2), 0);
    let budget = RetryBudget::new(1.0, 0, secs(3600)).unwrap();
    for _ in 0..1001 {
        budget.deposit();
    }
    assert_eq!(budget.retries_left(), 1000);
    assert_eq!((0..2000).filter(|_| budget.withdraw()).count(), 1000);
}

/// gRPC's retry throttling as a budget, against the scenario grpc-go tests it with (`a6`): the
/// number of the last attempt each call reaches, and whether the call succeeds, are A6's
/// arithmetic.
#[tokio::test(start_paused = true)]
async fn a_token_bucket_throttles_as_grpc_does() {
    use std::sync::atomic::AtomicU32;

    let seen = Arc::new(AtomicU32::new(0));
    let counter = seen.clone();
    let svc = tower::service_fn(move |_: ()| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if a6::ANSWERED.contains(&n) {
                Ok(n)
            } else {
                Err::<u32, BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
            }
        }
    });
    let layer = RetryLayer::builder()
        .max_attempts(4)
        .backoff(ExponentialBackoff::new(ms(10), 1.0, ms(10)).with_jitter(Jitter::None))
        .budget(RetryBudget::tokens(10, 0.5).unwrap())
        .build()
        .unwrap();
    let mut svc = layer.layer(svc);
    for (call, (ok, count)) in a6::CALLS.into_iter().enumerate() {
        let outcome = svc.ready().await.unwrap().call(()).await;
        assert_eq!(outcome.is_ok(), ok, "call {}", call + 1);
        assert_eq!(
            seen.load(Ordering::SeqCst) as usize,
            count,
            "call {}",
            call + 1
        );
    }
}

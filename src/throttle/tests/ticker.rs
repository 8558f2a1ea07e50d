//! The ticker's tests: the window slides on time with no call reading the clock, and the task
//! that slides it starts, stops and starts again as runtimes come and go.

use std::time::Duration;

use tower::{Layer, Service, ServiceExt, service_fn};

use crate::classify::DefaultClassifier;
use crate::error::BoxError;
use crate::scope::key_fn;
use crate::throttle::{Throttle, ThrottleLayer};

/// The tally of a layer's one window (which must be there).
fn tally<C>(layer: &ThrottleLayer<C>) -> (u64, u64) {
    let mut tallies = Vec::new();
    (layer.windows.scopes).for_each(|throttler| tallies.push(throttler.window.tally()));
    let [tally] = tallies[..] else {
        panic!("one window expected, found {}", tallies.len())
    };
    (tally.requests, tally.accepts)
}

async fn calls<S: Service<(), Error = BoxError>>(svc: &mut S, n: usize) {
    for _ in 0..n {
        let _ = svc.ready().await.unwrap().call(()).await;
    }
}

/// The tasks alive in the current runtime: a ticker, when a test spawned nothing else.
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

fn echo() -> impl Service<(), Response = (), Error = BoxError> + Clone {
    service_fn(|()| async { Ok::<(), BoxError>(()) })
}

#[tokio::test(start_paused = true)]
async fn the_window_slides_once_a_slice_with_no_call_reading_the_clock() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    // The ticker starts with the first call, at 0 s: slices end at 1 s, 2 s, ...
    calls(&mut svc, 3).await;
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    calls(&mut svc, 2).await;
    assert_eq!(tally(&layer), (5, 5));
    // At 10 s the first slice leaves the ten-second window; at 15 s the second.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(tally(&layer), (5, 5), "at 9.5 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tally(&layer), (2, 2), "at 10.5 s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(tally(&layer), (0, 0), "at 15.5 s");
}

#[tokio::test(start_paused = true)]
async fn a_clock_advanced_past_the_window_empties_it() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    calls(&mut svc, 4).await;
    // One wake of the ticker, for a year of slices: it slides a whole window, not a year's.
    tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(tally(&layer), (0, 0));
    calls(&mut svc, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tally(&layer), (1, 1));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(tally(&layer), (0, 0), "and goes on sliding");
}

#[tokio::test(start_paused = true)]
async fn every_key_s_window_slides() {
    let layer = ThrottleLayer::per_key(
        Throttle::new(),
        DefaultClassifier,
        key_fn(|host: &u8| *host),
    )
    .unwrap();
    let mut svc = layer.layer(service_fn(|_: u8| async { Ok::<(), BoxError>(()) }));
    for host in [1, 2, 3, 2] {
        svc.ready().await.unwrap().call(host).await.unwrap();
    }
    let tallies = || {
        let mut tallies = Vec::new();
        (layer.windows.scopes).for_each(|t| tallies.push(t.window.tally().requests));
        tallies.sort();
        tallies
    };
    assert_eq!(tallies(), [1, 1, 2]);
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    assert_eq!(tallies(), [0, 0, 0]);
}

#[test]
fn without_timers_the_ticker_is_not_started_again_and_calls_go_on() {
    // A runtime with no time driver: the ticker panics arming its first timer (tokio reports
    // it), once; the calls are let through and counted, over a window that does not slide.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    runtime.block_on(async {
        calls(&mut svc, 1).await;
        assert_eq!(tasks(), 1, "the call started a ticker");
        tokio::task::yield_now().await;
        assert_eq!(tasks(), 0, "which failed arming its timer");
        assert!(
            layer.windows.ticking(),
            "the ticker that could not start is not forgotten"
        );
        calls(&mut svc, 2).await;
        assert_eq!(tasks(), 0, "and no call starts another");
    });
    assert_eq!(tally(&layer), (3, 3));
}

/// A runtime of its own, on a paused clock: for the tests that use a layer in two of them.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn a_layer_used_in_a_later_runtime_slides_there() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    paused_runtime().block_on(async {
        calls(&mut svc, 3).await;
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert_eq!(tally(&layer), (0, 0));
        calls(&mut svc, 3).await;
    });
    // The first runtime, and its ticker, are gone: a second one starts its own.
    paused_runtime().block_on(async {
        calls(&mut svc, 2).await;
        assert_eq!(tally(&layer), (5, 5));
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert_eq!(tally(&layer), (0, 0));
    });
}

#[test]
fn a_window_slid_in_a_runtime_now_gone_starts_a_ticker_in_the_next() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    paused_runtime().block_on(async {
        calls(&mut svc, 5).await;
        // Slid once: five successes in the past, so the next calls are admitted on headroom.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    });
    paused_runtime().block_on(async {
        calls(&mut svc, 1).await;
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert_eq!(
            tally(&layer),
            (0, 0),
            "the call found no headroom, and started a ticker here"
        );
    });
}

#[test]
fn a_runtime_dropped_before_its_ticker_ran_leaves_room_for_the_next() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    // The call spawns the ticker, and the runtime goes before the task is ever polled.
    paused_runtime().block_on(calls(&mut svc, 1));
    paused_runtime().block_on(async {
        calls(&mut svc, 2).await;
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert_eq!(
            tally(&layer),
            (0, 0),
            "a ticker slides in the second runtime"
        );
    });
}

#[tokio::test(start_paused = true)]
async fn the_ticker_ends_with_the_layer() {
    let layer = ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap();
    let mut svc = layer.layer(echo());
    calls(&mut svc, 1).await;
    let clone = svc.clone();
    calls(&mut layer.layer(echo()), 1).await;
    assert_eq!(tasks(), 1, "one ticker for the layer and its services");
    drop((layer, svc));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(tasks(), 1, "a clone of a service keeps it");
    drop(clone);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(tasks(), 0);
}

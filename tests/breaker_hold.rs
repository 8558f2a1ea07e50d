//! The operator's switch (paused clock): a hold covers every circuit of a breaker, those of keys
//! seen later and those dropped to make room and made again, until it is released; a release
//! starts every circuit afresh, and a hold keeps what the circuits counted.

use std::io;
use std::time::Duration;

use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{BreakerConfig, BreakerHandle, CircuitBreakerLayer, CircuitState};
use tower_tenacity::scope::key_fn;
use tower_tenacity::{Error, ErrorKind};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A call to `host` that succeeds or fails.
type Request = (&'static str, bool);

/// What a call came to: `Ok(answered)`, or `Err(held)` for a rejection.
type Called = std::pin::Pin<Box<dyn Future<Output = Result<bool, bool>>>>;

/// A breaker with one circuit per host over a service that answers as told.
fn per_host(config: BreakerConfig) -> (impl FnMut(&'static str, bool) -> Called, BreakerHandle) {
    let layer = CircuitBreakerLayer::builder(config)
        .per_key(key_fn(|(host, _): &Request| *host))
        .build()
        .unwrap();
    let handle = layer.handle();
    let svc = layer.layer(service_fn(|(_, up): Request| async move {
        if up {
            Ok(())
        } else {
            Err::<(), BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
        }
    }));
    let call = move |host, up| {
        let mut svc = svc.clone();
        Box::pin(async move {
            match svc.ready().await.unwrap().call((host, up)).await {
                Ok(()) => Ok(true),
                Err(err) => match Error::find(err.as_ref()).map(Error::kind) {
                    Some(ErrorKind::CircuitOpen { held, .. }) => Err(held),
                    _ => Ok(false),
                },
            }
        }) as Called
    };
    (call, handle)
}

fn state_of(handle: &BreakerHandle, host: &str) -> Option<CircuitState> {
    let key = format!("{host:?}");
    (handle.snapshots().into_iter())
        .find(|s| s.key.as_deref() == Some(&key))
        .map(|s| s.state)
}

#[tokio::test(start_paused = true)]
async fn a_hold_covers_hosts_first_seen_after_it() {
    let (mut call, handle) = per_host(BreakerConfig::new().consecutive_failures(1));
    handle.hold_open();
    assert_eq!(call("a", true).await, Err(true), "held open");
    assert_eq!(state_of(&handle, "a"), Some(CircuitState::HeldOpen));
    handle.release();
    assert_eq!(call("a", true).await, Ok(true));
    assert_eq!(call("b", true).await, Ok(true));
    assert_eq!(state_of(&handle, "a"), Some(CircuitState::Closed));

    // One failure would open a circuit: held closed, a new host's does not.
    handle.hold_closed();
    assert_eq!(call("c", false).await, Ok(false));
    assert_eq!(state_of(&handle, "c"), Some(CircuitState::HeldClosed));
    assert_eq!(call("c", true).await, Ok(true));
}

/// With room for one host, each new host drops the circuit of the last: a held-open circuit
/// made again is held open still.
#[tokio::test(start_paused = true)]
async fn a_held_circuit_dropped_for_room_comes_back_held() {
    let (mut call, handle) = per_host(BreakerConfig::new().max_keys(1));
    assert_eq!(call("a", true).await, Ok(true));
    handle.hold_open();
    let b = call("b", true).await;
    assert_eq!(state_of(&handle, "a"), None, "dropped for b");
    let a = call("a", true).await;
    assert_eq!(state_of(&handle, "b"), None, "dropped for a");
    assert_eq!(a, Err(true), "made again, held open still");
    assert_eq!(b, Err(true));
    handle.release();
    assert_eq!(call("b", true).await, Ok(true));
}

/// Held closed, new hosts' failures open nothing; released, they do.
#[tokio::test(start_paused = true)]
async fn a_hold_closed_keeps_new_hosts_closed_until_released() {
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .break_duration(ms(100));
    let (mut call, handle) = per_host(config);
    handle.hold_closed();
    for _ in 0..3 {
        assert_eq!(call("a", false).await, Ok(false));
    }
    assert_eq!(state_of(&handle, "a"), Some(CircuitState::HeldClosed));
    handle.release();
    assert_eq!(call("a", false).await, Ok(false));
    assert_eq!(state_of(&handle, "a"), Some(CircuitState::Open));
    assert_eq!(call("a", true).await, Err(false));
}

/// A hold keeps the window, the failures in a row and the opens; a release forgets them, so
/// that the next break is the first one again.
#[tokio::test(start_paused = true)]
async fn a_release_starts_afresh_and_a_hold_keeps_the_counts() {
    let config = BreakerConfig::new()
        .failure_ratio(0.9)
        .min_calls(3)
        .consecutive_failures(3)
        .break_duration(ms(100))
        .break_jitter(0.0);
    let layer = CircuitBreakerLayer::new(config).unwrap();
    let handle = layer.handle();
    let mut svc = layer.layer(service_fn(|up: bool| async move {
        if up {
            Ok(())
        } else {
            Err::<(), BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
        }
    }));
    for up in [true, false, false] {
        let _ = svc.ready().await.unwrap().call(up).await;
    }
    let counted = |handle: &BreakerHandle| {
        let s = handle.snapshot();
        (
            s.counts.calls,
            s.counts.failures,
            s.consecutive_failures,
            s.opens,
        )
    };
    assert_eq!(counted(&handle), (3, 2, 2, 0));
    handle.hold_open();
    assert_eq!(counted(&handle), (3, 2, 2, 0));
    handle.hold_closed();
    assert_eq!(counted(&handle), (3, 2, 2, 0));
    handle.release();
    assert_eq!(counted(&handle), (0, 0, 0, 0));

    // Open it twice in a row (the second break is twice the first), hold it, and release it.
    for _ in 0..3 {
        let _ = svc.ready().await.unwrap().call(false).await;
    }
    tokio::time::advance(ms(100)).await;
    let _ = svc.ready().await.unwrap().call(false).await;
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.opens, snapshot.remaining), (2, Some(ms(200))));
    handle.hold_open();
    assert_eq!(handle.snapshot().opens, 2);
    handle.release();
    assert_eq!(counted(&handle), (0, 0, 0, 0));
    for _ in 0..3 {
        let _ = svc.ready().await.unwrap().call(false).await;
    }
    assert_eq!(
        handle.snapshot().remaining,
        Some(ms(100)),
        "the first break again"
    );
}

//! The breaker in a process that runs for months (paused clock): a call admitted hundreds of
//! changes of state ago, and outcomes a month old, count for nothing now; a probe's outcome, or
//! a dropped probe's place, counts only in its own half-open episode.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{
    BreakerConfig, BreakerHandle, CircuitBreakerLayer, CircuitState, Transition,
};
use tower_tenacity::{Error, ErrorKind};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// What the service does with one call: answer, fail, or wait to be told which.
enum Call {
    Ok,
    Fail,
    Wait(oneshot::Receiver<bool>),
}

type Svc = <CircuitBreakerLayer as Layer<
    tower::util::ServiceFn<
        fn(Call) -> std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>,
    >,
>>::Service;

fn answer(call: Call) -> std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
    Box::pin(async move {
        let ok = match call {
            Call::Ok => true,
            Call::Fail => false,
            Call::Wait(told) => told.await.unwrap_or(false),
        };
        if ok {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::ConnectionReset).into())
        }
    })
}

/// A breaker over the scripted service, with `config` (no jitter, no growth, 1 ms breaks),
/// counting the changes of state it makes.
fn breaker(config: BreakerConfig) -> (Svc, BreakerHandle, Arc<AtomicU32>) {
    let changes = Arc::new(AtomicU32::new(0));
    let counter = changes.clone();
    let config = config
        .break_duration(ms(1))
        .break_growth(1.0)
        .break_jitter(0.0)
        .observer(move |_: &Transition<'_>| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
    let layer = CircuitBreakerLayer::new(config).unwrap();
    let handle = layer.handle();
    let answer: fn(Call) -> _ = answer;
    (layer.layer(service_fn(answer)), handle, changes)
}

async fn call(svc: &mut Svc, call: Call) -> Result<(), BoxError> {
    svc.ready().await.unwrap().call(call).await
}

/// A call that waits, let through now, and the sender that will answer it.
async fn waiting(
    svc: &mut Svc,
) -> (
    impl Future<Output = Result<(), BoxError>> + use<>,
    oneshot::Sender<bool>,
) {
    let (tell, told) = oneshot::channel();
    (svc.ready().await.unwrap().call(Call::Wait(told)), tell)
}

fn rejected_with_probes_out(result: Result<(), BoxError>) -> bool {
    let err = result.unwrap_err();
    matches!(
        Error::find(err.as_ref()).map(Error::kind),
        Some(ErrorKind::CircuitOpen {
            remaining: None,
            held: false
        })
    )
}

/// 256 changes of state (84 cycles of a flapping dependency, then an operator's hold and
/// release twice) bring an 8-bit epoch round to where it was: the failure of a call admitted
/// before them all must not open the circuit, which has been closed and opened since.
#[tokio::test(start_paused = true)]
async fn a_failure_admitted_256_changes_ago_counts_for_nothing() {
    let (mut svc, handle, changes) = breaker(BreakerConfig::new().consecutive_failures(1));
    let (stale, tell) = waiting(&mut svc).await;
    for _ in 0..84 {
        call(&mut svc, Call::Fail).await.unwrap_err();
        tokio::time::advance(ms(1)).await;
        call(&mut svc, Call::Ok).await.unwrap();
    }
    for _ in 0..2 {
        handle.hold_open();
        handle.release();
    }
    assert_eq!(changes.load(Ordering::SeqCst), 256);
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
    tell.send(false).unwrap();
    stale.await.unwrap_err();
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
    assert_eq!(handle.snapshot().consecutive_failures, 0);
    call(&mut svc, Call::Ok).await.unwrap();
}

/// Takes a circuit with two probes, half-open with one probe out, through 256 changes to
/// another half-open episode, and lets one probe of that episode through (answered only if
/// polled, and then as a failure).
async fn half_open_again(svc: &mut Svc, changes: &AtomicU32) -> impl Future + use<> {
    let before = changes.load(Ordering::SeqCst);
    // The other probe fails: open again. Then 127 times: the break ends, a probe fails.
    call(svc, Call::Fail).await.unwrap_err();
    for _ in 0..127 {
        tokio::time::advance(ms(1)).await;
        call(svc, Call::Fail).await.unwrap_err();
    }
    tokio::time::advance(ms(1)).await;
    let (probe, _tell) = waiting(svc).await;
    assert_eq!(changes.load(Ordering::SeqCst) - before, 256);
    probe
}

/// A probe dropped 256 changes after it was let through gives no place back: the episode it
/// belonged to is over, and the one under way lets through its two probes, not three.
#[tokio::test(start_paused = true)]
async fn a_probe_dropped_in_a_later_episode_gives_no_place_back() {
    let (mut svc, handle, changes) =
        breaker(BreakerConfig::new().consecutive_failures(1).probes(2));
    call(&mut svc, Call::Fail).await.unwrap_err();
    tokio::time::advance(ms(1)).await;
    let (first, _tell) = waiting(&mut svc).await;
    let _now = half_open_again(&mut svc, &changes).await;
    drop(first);
    let (_second, _tell) = waiting(&mut svc).await;
    let third = call(&mut svc, Call::Ok).await;
    assert!(rejected_with_probes_out(third));
    assert_eq!(handle.snapshot().state, CircuitState::HalfOpen);
}

/// A probe that succeeds 256 changes after it was let through counts for nothing: the episode
/// under way needs its own two probes to succeed.
#[tokio::test(start_paused = true)]
async fn a_probe_that_answers_in_a_later_episode_counts_for_nothing() {
    let (mut svc, handle, changes) =
        breaker(BreakerConfig::new().consecutive_failures(1).probes(2));
    call(&mut svc, Call::Fail).await.unwrap_err();
    tokio::time::advance(ms(1)).await;
    let (first, tell) = waiting(&mut svc).await;
    let now = half_open_again(&mut svc, &changes).await;
    tell.send(true).unwrap();
    first.await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::HalfOpen);
    drop(now);
    call(&mut svc, Call::Ok).await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::HalfOpen);
    call(&mut svc, Call::Ok).await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
}

/// A window of 10 s in 1 000 buckets: nine failures, then, 2^28 buckets later (31 days), one
/// more. The nine are a month old: one failure of one call is no ratio (ten calls needed).
#[tokio::test(start_paused = true)]
async fn failures_a_month_old_are_not_in_the_window() {
    let config = BreakerConfig::new()
        .failure_ratio(0.5)
        .min_calls(10)
        .window(Duration::from_secs(10))
        .buckets(1000);
    let (mut svc, handle, _) = breaker(config);
    for _ in 0..9 {
        call(&mut svc, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.snapshot().counts.failures, 9);
    tokio::time::advance(ms(10) * (1 << 28)).await;
    assert_eq!(handle.snapshot().counts.failures, 0);
    call(&mut svc, Call::Fail).await.unwrap_err();
    let snapshot = handle.snapshot();
    assert_eq!(
        (snapshot.counts.calls, snapshot.state),
        (1, CircuitState::Closed)
    );
}

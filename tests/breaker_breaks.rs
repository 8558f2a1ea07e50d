//! A circuit's breaks at their edges (paused clock): the longest break, the instant a break
//! ends, the jitter and its seeds, a dropped probe's place, and the warning an opening logs.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{BreakerConfig, BreakerHandle, CircuitBreakerLayer, CircuitState};
use tower_tenacity::{Error, ErrorKind};

/// The tests of this file, one at a time: the log test reads what `tracing`'s global callsite
/// cache lets through to its thread's subscriber, and another test hitting the same callsite at
/// the same moment, with no subscriber, can leave that cache stale (seen here in one run of
/// three under `cargo test`).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

type Answer = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Svc =
    <CircuitBreakerLayer as Layer<tower::util::ServiceFn<fn(Option<bool>) -> Answer>>>::Service;

/// `Some(up)`: answers at once; `None`: never answers.
fn answer(up: Option<bool>) -> Answer {
    Box::pin(async move {
        match up {
            Some(true) => Ok(()),
            Some(false) => Err(io::Error::from(io::ErrorKind::ConnectionReset).into()),
            None => std::future::pending().await,
        }
    })
}

/// A breaker that one failure opens, with `config` on top.
fn breaker(config: impl FnOnce(BreakerConfig) -> BreakerConfig) -> (Svc, BreakerHandle) {
    let config = config(BreakerConfig::new().consecutive_failures(1));
    let layer = CircuitBreakerLayer::new(config).unwrap();
    let handle = layer.handle();
    let answer: fn(Option<bool>) -> Answer = answer;
    (layer.layer(service_fn(answer)), handle)
}

async fn call(svc: &mut Svc, up: bool) -> Result<(), BoxError> {
    svc.ready().await.unwrap().call(Some(up)).await
}

/// The rest of the break a rejection names, or `None` if the call was not rejected that way.
fn remaining(result: Result<(), BoxError>) -> Option<Option<Duration>> {
    let err = result.err()?;
    match Error::find(err.as_ref())?.kind() {
        ErrorKind::CircuitOpen { remaining, .. } => Some(remaining),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn the_longest_break_does_not_end() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut svc, handle) = breaker(|c| c.break_duration(Duration::MAX).max_break(Duration::MAX));
    call(&mut svc, false).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(3600 * 24 * 365)).await;
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.state, CircuitState::Open);
    assert!(snapshot.remaining.unwrap() > Duration::from_secs(1 << 40));
    let rest = remaining(call(&mut svc, true).await).unwrap().unwrap();
    assert!(rest > Duration::from_secs(1 << 40), "{rest:?}");
}

#[tokio::test(start_paused = true)]
async fn a_break_ends_at_its_last_microsecond() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut svc, handle) = breaker(|c| c.break_duration(ms(100)).break_jitter(0.0));
    call(&mut svc, false).await.unwrap_err();
    tokio::time::advance(ms(40)).await;
    assert_eq!(handle.snapshot().remaining, Some(ms(60)));
    assert_eq!(remaining(call(&mut svc, true).await), Some(Some(ms(60))));
    tokio::time::advance(ms(60) - Duration::from_micros(1)).await;
    let snapshot = handle.snapshot();
    let last = Some(Duration::from_micros(1));
    assert_eq!(
        (snapshot.state, snapshot.remaining),
        (CircuitState::Open, last)
    );
    assert_eq!(remaining(call(&mut svc, true).await), Some(last));
    tokio::time::advance(Duration::from_micros(1)).await;
    let snapshot = handle.snapshot();
    assert_eq!(
        (snapshot.state, snapshot.remaining),
        (CircuitState::HalfOpen, None)
    );
    call(&mut svc, true).await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::Closed);
}

/// The first breaks of a few circuits (one per seed), and the next breaks of one of them,
/// whose probes keep failing.
async fn breaks(seed: u64, count: usize) -> Vec<Duration> {
    let (mut svc, handle) = breaker(|c| {
        (c.break_duration(ms(1000)).max_break(ms(1000)))
            .break_jitter(0.5)
            .seed(seed)
    });
    let mut breaks = Vec::new();
    for _ in 0..count {
        call(&mut svc, false).await.unwrap_err();
        let remaining = handle.snapshot().remaining.unwrap();
        breaks.push(remaining);
        tokio::time::advance(remaining).await;
    }
    breaks
}

#[tokio::test(start_paused = true)]
async fn jitter_lengthens_breaks_differently_for_each_seed_and_each_break() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut firsts = Vec::new();
    for seed in [1, 2, 3, 4, u64::MAX] {
        firsts.push(breaks(seed, 1).await[0]);
    }
    for first in &firsts {
        assert!((ms(1000)..ms(1500)).contains(first), "{firsts:?}");
    }
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts.len(), 5, "a first break per seed: {firsts:?}");
    // One seed's breaks differ from one another, whatever the seed's bits.
    for seed in [7, u64::MAX] {
        let mut next = breaks(seed, 5).await;
        assert!(next.iter().all(|b| (ms(1000)..ms(1500)).contains(b)));
        assert!(next.iter().any(|b| *b > ms(1000)), "lengthened: {next:?}");
        next.sort();
        next.dedup();
        assert_eq!(next.len(), 5, "{next:?}");
    }
    assert_eq!(
        breaks(7, 5).await,
        breaks(7, 5).await,
        "a seed, one sequence"
    );
}

/// Of two probes, one is dropped: its place goes to the next call, and only to it.
#[tokio::test(start_paused = true)]
async fn the_place_of_a_dropped_probe_goes_to_the_next_call() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut svc, handle) = breaker(|c| c.break_duration(ms(10)).break_jitter(0.0).probes(2));
    call(&mut svc, false).await.unwrap_err();
    tokio::time::advance(ms(10)).await;
    let first = svc.ready().await.unwrap().call(None);
    let _second = svc.ready().await.unwrap().call(None);
    assert_eq!(remaining(call(&mut svc, true).await), Some(None));
    drop(first);
    let third = svc.ready().await.unwrap().call(Some(true));
    assert_eq!(remaining(call(&mut svc, true).await), Some(None));
    third.await.unwrap();
    assert_eq!(handle.snapshot().state, CircuitState::HalfOpen);
}

/// An opening logs a warning even with no observer: the quiet path skips only when nobody
/// listens at all.
#[test]
fn an_opening_logs_a_warning_without_an_observer() {
    let _one = ONE_AT_A_TIME.blocking_lock();
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let (mut svc, handle) = breaker(|c| c);
            call(&mut svc, false).await.unwrap_err();
            assert_eq!(handle.snapshot().state, CircuitState::Open);
        })
    });
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("circuit opened"), "{text}");
    assert!(
        text.contains("cause=consecutive failures reached"),
        "{text}"
    );
}

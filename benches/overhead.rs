//! What the layers cost: a bare service, tower 0.5's own `Timeout` + `Retry`
//! (`ExponentialBackoffMaker` + `TpsBudget`), and this crate's deadline → retry → attempt
//! timeout, in one run.
//!
//! * `success`: an always-ready `service_fn`, polled once with a no-op waker (inside a runtime
//!   context, which tower's `Timeout` needs to create its timer).
//! * `retry`: an inner service that fails twice and then succeeds, on a paused-clock runtime so
//!   that the backoff sleeps cost no wall-clock time.
//!
//! `cargo bench --bench overhead`

#[path = "support/services.rs"]
mod services;
#[path = "support/tower_stack.rs"]
mod support;

use std::future::{Future, Ready, ready};
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use services::{always_ready, fails_twice};
use support::tower_stack;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::breaker::BreakerConfig;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{ExponentialBackoff as TenacityBackoff, Jitter};
use tower_tenacity::throttle::{Throttle, ThrottleLayer};

/// Fails the first two attempts of each request: the request carries its own attempt counter,
/// so that concurrent requests do not disturb each other's pattern.
fn fails_twice_per_request()
-> impl Service<Arc<AtomicU32>, Response = u32, Error = BoxError, Future = Ready<Result<u32, BoxError>>>
+ Clone {
    service_fn(|attempts: Arc<AtomicU32>| {
        let attempt = attempts.fetch_add(1, Ordering::Relaxed);
        ready(if attempt >= 2 {
            Ok(attempt)
        } else {
            Err(io::Error::from(io::ErrorKind::ConnectionReset).into())
        })
    })
}

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a ready service pended"),
    }
}

fn call_ready<S: Service<u64>>(svc: &mut S, n: u64) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => poll_once(svc.call(n)),
        _ => panic!("not ready"),
    }
}

/// `realistic`: the defaults, budget and jitter on, as for the success path. Otherwise neither,
/// for the retry path, where both stacks must wait the same delays: with per-request jitter
/// each request's backoff ends at its own instant and the runtime wakes once for each, where
/// tower's policy (whose clones share one random sequence) wakes once for all. That measures
/// jitter working, not the middleware.
fn ours(realistic: bool) -> ResilienceLayer {
    let builder = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(2));
    let builder = if realistic {
        builder
    } else {
        builder
            .no_budget()
            .backoff(TenacityBackoff::default().with_jitter(Jitter::None))
    };
    builder.build().expect("valid configuration")
}

fn success(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _context = rt.enter();
    let mut group = c.benchmark_group("success");
    let mut bare = always_ready();
    group.bench_function("bare", |b| {
        b.iter(|| call_ready(&mut bare, std::hint::black_box(7)))
    });
    let mut tower = tower_stack(always_ready(), true);
    group.bench_function("tower_timeout_retry", |b| {
        b.iter(|| call_ready(&mut tower, std::hint::black_box(7)))
    });
    let mut tenacity = ours(true).layer(always_ready());
    group.bench_function("tenacity_deadline_retry_timeout", |b| {
        b.iter(|| call_ready(&mut tenacity, std::hint::black_box(7)))
    });
    let with_breaker = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(2))
        .circuit_breaker(BreakerConfig::new())
        .build()
        .expect("valid configuration");
    let mut tenacity_breaker = with_breaker.layer(always_ready());
    group.bench_function("tenacity_with_breaker", |b| {
        b.iter(|| call_ready(&mut tenacity_breaker, std::hint::black_box(7)))
    });
    // A client that never meets overload: its window slid over a history of successes (the
    // first call starts the ticker, which slides it a second later).
    let throttle = ThrottleLayer::new(Throttle::new(), DefaultClassifier).expect("valid");
    let mut tenacity_throttle = ours(true).layer(throttle.layer(always_ready()));
    for n in 0..20_000 {
        call_ready(&mut tenacity_throttle, n).expect("a success");
    }
    rt.block_on(tokio::time::sleep(Duration::from_millis(1_500)));
    group.bench_function("tenacity_with_throttle", |b| {
        b.iter(|| call_ready(&mut tenacity_throttle, std::hint::black_box(7)))
    });
    group.finish();
}

fn retry(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fails_twice_then_succeeds");
    // The floor: the same two waits (100 ms, 200 ms) and three calls, with no middleware.
    let mut bare = fails_twice();
    group.bench_function("bare_two_sleeps", |b| {
        b.iter(|| rt.block_on(async { two_sleeps(&mut bare).await }))
    });
    let mut tower = tower_stack(fails_twice(), false);
    group.bench_function("tower_timeout_retry", |b| {
        b.iter(|| rt.block_on(async { tower.ready().await.unwrap().call(7).await.unwrap() }))
    });
    let mut tenacity = ours(false).layer(fails_twice());
    group.bench_function("tenacity_deadline_retry_timeout", |b| {
        b.iter(|| rt.block_on(async { tenacity.ready().await.unwrap().call(7).await.unwrap() }))
    });
    group.finish();
}

/// The retry path with the runtime's per-wakeup work shared out: 64 requests at once, each
/// failing twice, so that each backoff round is one timer advance for all of them and what is
/// left per request is the middleware's own work (decisions, timers, jitter).
fn retry_batched(c: &mut Criterion) {
    const BATCH: usize = 64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fails_twice_then_succeeds_64_at_once");
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("bare_two_sleeps", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..BATCH).map(|_| async {
                    let mut bare = fails_twice();
                    two_sleeps(&mut bare).await
                });
                futures_util::future::join_all(calls).await
            })
        })
    });
    let tower = tower_stack(fails_twice_per_request(), false);
    group.bench_function("tower_timeout_retry", |b| {
        b.iter(|| rt.block_on(run_batch(tower.clone(), BATCH)))
    });
    let tenacity = ours(false).layer(fails_twice_per_request());
    group.bench_function("tenacity_deadline_retry_timeout", |b| {
        b.iter(|| rt.block_on(run_batch(tenacity.clone(), BATCH)))
    });
    group.finish();
}

/// What any retry of a request that fails twice must do: three calls and two waits.
async fn two_sleeps<S: Service<u64, Response = u64, Error = BoxError>>(svc: &mut S) -> u64 {
    let _ = svc.ready().await.unwrap().call(7).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = svc.ready().await.unwrap().call(7).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    svc.ready().await.unwrap().call(7).await.unwrap()
}

async fn run_batch<S>(svc: S, n: usize)
where
    S: Service<Arc<AtomicU32>, Response = u32, Error = BoxError> + Clone,
{
    let calls = (0..n).map(|_| {
        let svc = svc.clone();
        async move {
            let reply = svc.oneshot(Arc::new(AtomicU32::new(0))).await;
            assert_eq!(reply.unwrap(), 2);
        }
    });
    futures_util::future::join_all(calls).await;
}

criterion_group!(benches, success, retry, retry_batched);
criterion_main!(benches);

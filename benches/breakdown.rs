use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer, Service, service_fn};
use tower_tenacity::BoxError;
use tower_tenacity::retry::RetryLayer;
use tower_tenacity::timeout::{DeadlineLayer, TimeoutLayer};

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) { Poll::Ready(out) => out, Poll::Pending => panic!() }
}
fn call_ready<S: Service<u64>>(svc: &mut S, n: u64) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) { Poll::Ready(Ok(())) => poll_once(svc.call(n)), _ => panic!() }
}
fn b(c: &mut Criterion) {
    let inner = || service_fn(|n: u64| ready(Ok::<_, BoxError>(n)));
    let mut g = c.benchmark_group("breakdown");
    let mut s = TimeoutLayer::new(Duration::from_secs(1)).layer(inner());
    g.bench_function("timeout", |b| b.iter(|| call_ready(&mut s, 7)));
    let mut s = DeadlineLayer::new(Duration::from_secs(1)).layer(inner());
    g.bench_function("deadline", |b| b.iter(|| call_ready(&mut s, 7)));
    let mut s = RetryLayer::builder().no_budget().build().unwrap().layer(inner());
    g.bench_function("retry_nobudget", |b| b.iter(|| call_ready(&mut s, 7)));
    let mut s = RetryLayer::new().layer(inner());
    g.bench_function("retry", |b| b.iter(|| call_ready(&mut s, 7)));
    let mut s = TimeoutLayer::new(Duration::from_secs(1)).layer(TimeoutLayer::new(Duration::from_secs(1)).layer(TimeoutLayer::new(Duration::from_secs(1)).layer(inner())));
    g.bench_function("timeout_x3", |b| b.iter(|| call_ready(&mut s, 7)));
    let arc = std::sync::Arc::new(5u64);
    g.bench_function("arc_clone_drop", |b| b.iter(|| { let a = std::hint::black_box(arc.clone()); drop(a); }));
    g.finish();
}
criterion_group!(benches, b);
criterion_main!(benches);

//! The success path through deadline → retry → attempt timeout allocates nothing and arms no
//! timer; keeping URI secrets out of errors costs a call that succeeds nothing either (the
//! per-host key is made, hashed and compared in place, whatever the case of the host or the
//! userinfo the URI carries). Its own test binary, because the counting allocator is global (it counts each
//! thread's allocations apart, so that the tests may run side by side).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower::BoxError;
use tower::{Layer, Service, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{Hedge, RetryLayer};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made by this thread so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a ready service made the stack pend"),
    }
}

#[test]
fn a_successful_call_through_all_three_layers_allocates_nothing() {
    let inner = service_fn(|n: u64| ready(Ok::<_, BoxError>(n + 1)));
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut svc = layer.layer(inner);
    let mut cx = Context::from_waker(Waker::noop());

    // Warm up anything lazy (thread-locals, tracing's callsite registry).
    for n in 0..10 {
        assert!(svc.poll_ready(&mut cx).is_ready());
        assert_eq!(poll_once(svc.call(n)).unwrap(), n + 1);
    }

    let before = allocations();
    for n in 0..1000 {
        assert!(svc.poll_ready(&mut cx).is_ready());
        assert_eq!(poll_once(svc.call(n)).unwrap(), n + 1);
    }
    let allocations = allocations() - before;
    // No tokio runtime exists here: arming a timer would have panicked.
    assert_eq!(allocations, 0, "{allocations} allocations in 1000 calls");
}

/// With a circuit breaker (Polly's defaults: a failure ratio over a window, so every outcome is
/// counted), and its circuits and the retry budget kept per key, a call allocates nothing of
/// this crate's either, once each key has its state: a success nothing, a (fatal) failure that
/// the breaker counts only the service's own error. (With the `metrics` feature a failure's
/// record builds its labels, the reason among them, so this runs without it: CI runs it so.)
#[test]
#[cfg(not(feature = "metrics"))]
fn a_call_through_a_breaker_and_state_per_key_allocates_nothing() {
    use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer};
    use tower_tenacity::scope::key_fn;

    let fails = |n: u64| n.is_multiple_of(7);
    let inner = service_fn(move |n: u64| {
        ready(if fails(n) {
            Err::<u64, BoxError>("not found".into())
        } else {
            Ok(n + 1)
        })
    });
    let before = allocations();
    let _ = poll_once(inner.clone().call(7));
    let per_error = allocations() - before;

    let by_parity = key_fn(|n: &u64| n % 2);
    let config = BreakerConfig::new().count_fatal(true).failure_ratio(0.5);
    let breaker = CircuitBreakerLayer::builder(config)
        .per_key(by_parity.clone())
        .build()
        .unwrap();
    let retry = RetryLayer::builder()
        .build()
        .unwrap()
        .budget_per_key(by_parity, 16);
    let mut svc = retry.layer(breaker.layer(inner));
    let mut cx = Context::from_waker(Waker::noop());
    let mut call = |n: u64| {
        assert!(svc.poll_ready(&mut cx).is_ready());
        let answer = poll_once(svc.call(n));
        assert_eq!(
            answer.is_err(),
            fails(n),
            "a fatal error is returned as it is"
        );
    };
    for n in 1..=10 {
        call(n);
    }
    let before = allocations();
    for n in 1..=1000 {
        call(n);
    }
    let allocations = allocations() - before;
    let errors = (1..=1000).filter(|n| fails(*n)).count();
    assert_eq!(
        allocations,
        errors * per_error,
        "in 1000 calls, {errors} of them failing"
    );
    let snapshots = breaker.handle().snapshots();
    assert_eq!(snapshots.len(), 2);
    assert!(snapshots.iter().any(|s| s.counts.failures > 0));
}

/// A future that is pending once (waking its task at once), then ready: an answer that takes a
/// moment, but comes before any hedge delay.
struct AfterAMoment(Option<u64>, bool);

impl Future for AfterAMoment {
    type Output = Result<u64, BoxError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(self.0.take().unwrap_or(0)))
    }
}

/// A call that hedges and has to wait, but is answered before the hedge delay, arms the hedge
/// timer and allocates nothing: the timer lives in the retry future.
#[test]
fn a_hedged_call_answered_before_the_delay_allocates_nothing() {
    let inner = service_fn(|n: u64| AfterAMoment(Some(n + 1), false));
    let layer = RetryLayer::builder()
        .hedge(Hedge::after(Duration::from_secs(1)))
        .build()
        .unwrap();
    let mut svc = layer.layer(inner);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let counted = runtime.block_on(async move {
        let mut call = async |n: u64| {
            let ready = std::future::poll_fn(|cx| svc.poll_ready(cx)).await;
            assert!(ready.is_ok());
            assert_eq!(svc.call(n).await.unwrap(), n + 1);
        };
        for n in 0..10 {
            call(n).await;
        }
        let before = allocations();
        for n in 0..1000 {
            call(n).await;
        }
        allocations() - before
    });
    assert_eq!(counted, 0, "{counted} allocations in 1000 calls");
}

/// The HTTP preset's per-host key and a successful call through it, with secrets in the URI or
/// without.
#[cfg(feature = "http")]
mod http_preset {
    use std::convert::Infallible;
    use std::future::{Future, ready};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use tower::{Layer, Service, service_fn};
    use tower_tenacity::ResilienceLayer;
    use tower_tenacity::http::ReplayBody;

    use super::allocations;

    fn get(uri: &str) -> Request<Full<Bytes>> {
        Request::get(uri).body(Full::new(Bytes::new())).unwrap()
    }

    /// The per-host key allocates nothing, with secrets and capitals in the URI or without: the
    /// preset keys every call by host, and a success through it allocates nothing for either.
    /// (That both URIs make one key, with one hash, is `http::ByAuthority`'s unit test.)
    #[test]
    fn the_per_host_key_allocates_nothing() {
        let plain = allocations_of_a_success("http://example.com:8080/x");
        let secret = allocations_of_a_success("http://alice:pw@Example.COM:8080/y?access_token=t");
        assert_eq!((plain, secret), (0, 0));
    }

    /// Allocations of one successful call of `uri` through the HTTP preset, once its host is known.
    fn allocations_of_a_success(uri: &str) -> usize {
        let inner = service_fn(|_: Request<ReplayBody<Full<Bytes>>>| {
            ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
        });
        let mut svc = ResilienceLayer::http().build().unwrap().layer(inner);
        let mut call = |uri: &str| {
            let request = get(uri);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(svc.poll_ready(&mut cx).is_ready());
            let before = allocations();
            let future = pin!(svc.call(request));
            let Poll::Ready(Ok(response)) = future.poll(&mut cx) else {
                panic!("a ready service answers at once");
            };
            drop(response);
            allocations() - before
        };
        call(uri);
        call(uri)
    }

    #[test]
    fn a_success_costs_no_more_with_secrets_in_its_uri() {
        let plain = allocations_of_a_success("http://example.com/x");
        let secret = allocations_of_a_success("http://alice:pw@Example.com/x?access_token=t");
        assert_eq!((plain, secret), (0, 0));
    }
}

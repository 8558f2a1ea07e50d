//! The success path through deadline → retry → attempt timeout allocates nothing and arms no
//! timer. Its own test binary, because the counting allocator is global.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{Future, ready};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower::{Layer, Service, service_fn};
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::{BoxError, ResilienceLayer};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for n in 0..1000 {
        assert!(svc.poll_ready(&mut cx).is_ready());
        assert_eq!(poll_once(svc.call(n)).unwrap(), n + 1);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    // No tokio runtime exists here: arming a timer would have panicked.
    assert_eq!(allocations, 0, "{allocations} allocations in 1000 calls");
}

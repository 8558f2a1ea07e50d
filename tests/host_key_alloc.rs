//! Keeping URI secrets out of errors costs a call that succeeds nothing: the per-host key is
//! made, hashed and compared without allocating (whatever the case of the host, whatever
//! userinfo the URI carries), and a successful call through the HTTP preset allocates nothing,
//! for a URI with userinfo and a query as for a plain one. Its own test binary, because the
//! counting allocator is global (it counts each thread's allocations apart).
#![cfg(feature = "http")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Future, ready};
use std::hash::BuildHasher;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{ByAuthority, ReplayBody};
use tower_tenacity::scope::ScopeKey;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

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

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

#[test]
fn the_per_host_key_allocates_nothing() {
    let hasher = foldhash::fast::FixedState::with_seed(1);
    let plain = get("http://example.com:8080/x");
    let secret = get("http://alice:pw@Example.COM:8080/y?access_token=t");
    let before = allocations();
    let (a, b) = (ByAuthority.key(&plain), ByAuthority.key(&secret));
    assert_eq!(a, b);
    assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
    drop((a, b));
    assert_eq!(allocations() - before, 0);
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

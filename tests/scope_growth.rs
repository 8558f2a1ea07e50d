//! State per key costs the same for the ten-thousandth new key as for the tenth: a crawler or a
//! proxy meets a new host on most requests. Work is measured as bytes allocated (by a counting
//! allocator, per thread), which a map copied whole on every insert makes grow with its size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::retry::RetryLayer;
use tower_tenacity::scope::key_fn;

struct Counting;

thread_local! {
    /// Bytes this thread has asked the allocator for.
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|n| n.set(n.get() + layout.size() as u64));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocated() -> u64 {
    ALLOCATED.with(Cell::get)
}

/// Calls a retry layer that keeps a budget per key (at most `cap` keys) with keys `0..keys`,
/// one new key a call; returns the bytes allocated by each call, and the layer's `Debug`.
async fn new_key_costs(cap: usize, keys: u32) -> (Vec<u64>, String) {
    let layer = RetryLayer::new().budget_per_key(key_fn(|key: &u32| *key), cap);
    let debug = || format!("{layer:?}");
    let inner = service_fn(|_: u32| async { Ok::<_, Infallible>(()) });
    let mut svc = layer.layer(inner);
    let mut costs = Vec::with_capacity(keys as usize);
    for key in 0..keys {
        let before = allocated();
        svc.ready().await.unwrap().call(key).await.unwrap();
        costs.push(allocated() - before);
    }
    (costs, debug())
}

fn sum(costs: &[u64]) -> u64 {
    costs.iter().sum()
}

#[tokio::test]
async fn a_new_key_costs_the_same_in_a_full_map_as_in_an_empty_one() {
    let (costs, debug) = new_key_costs(10_000, 10_000).await;
    let (first, last) = (sum(&costs[..1_000]), sum(&costs[9_000..]));
    assert!(
        last <= first * 2,
        "the last 1 000 new keys allocated {last} bytes, the first 1 000 {first}"
    );
    assert!(debug.contains("keys: 10000"), "{debug}");
}

#[tokio::test]
async fn past_the_cap_new_keys_stay_cheap_and_the_map_stays_bounded() {
    let (costs, debug) = new_key_costs(1_024, 20_000).await;
    let (filling, evicting) = (sum(&costs[..1_000]), sum(&costs[19_000..]));
    assert!(
        evicting <= filling * 2,
        "1 000 new keys past the cap allocated {evicting} bytes, the first 1 000 {filling}"
    );
    assert!(debug.contains("keys: 1024"), "{debug}");
}

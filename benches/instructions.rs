//! Instructions and allocations per operation, counted under callgrind: exact on a shared
//! machine, where wall-clock time is not. Each stack is measured beside a bare service and
//! tower 0.5's `Timeout` + `Retry` (with `TpsBudget`) doing the same work:
//!
//! * `success`: one call of an always-ready service, polled once with a no-op waker;
//! * `retry`: one call that fails twice and then succeeds, on a paused clock (the floor, `bare`,
//!   is the same three calls and two sleeps with no middleware);
//! * `http`: one GET through a hyper-util client to a hyper server on 127.0.0.1, both in this
//!   process on one thread, so that the count is the client's and the server's work.
//!
//! ```text
//! cargo bench --bench instructions             # every scenario, a table at the end
//! INSTRUCTIONS=retry cargo bench --bench instructions   # scenarios whose name starts so
//! ```
//!
//! It runs itself under `valgrind --tool=callgrind` twice per stack, with 0 and with N
//! operations after the same setup and warm-up, and divides the difference by N: what the
//! setup costs cancels out. Allocations are counted by a counting allocator in the same runs.

#[path = "support/services.rs"]
mod services;
#[path = "support/tower_stack.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{Future, ready};
use std::pin::pin;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use services::{always_ready, fails_twice};
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::breaker::BreakerConfig;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::http::ReplayBody;
use tower_tenacity::retry::{ExponentialBackoff, Hedge, Jitter};
use tower_tenacity::throttle::{Throttle, ThrottleLayer};
use tower_tenacity::{ResilienceBuilder, ResilienceLayer};

/// Counts every allocation, to report allocations per operation.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A scenario: its name, how many operations to count, and the operation run `n` times after
/// its setup and warm-up.
struct Scenario {
    name: &'static str,
    ops: u64,
    run: fn(u64),
}

const WARM_UP: u64 = 32;

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "success/bare",
            ops: 10_000,
            run: success_bare,
        },
        Scenario {
            name: "success/tower",
            ops: 10_000,
            run: success_tower,
        },
        Scenario {
            name: "success/tenacity",
            ops: 10_000,
            run: success_tenacity,
        },
        Scenario {
            name: "success/tenacity+breaker",
            ops: 10_000,
            run: success_breaker,
        },
        Scenario {
            name: "success/tenacity+breaker(consecutive)",
            ops: 10_000,
            run: success_breaker_in_a_row,
        },
        Scenario {
            name: "success/tenacity+throttle",
            ops: 10_000,
            run: success_throttle,
        },
        Scenario {
            name: "success/tenacity+hedge",
            ops: 10_000,
            run: success_hedge,
        },
        Scenario {
            name: "retry/bare",
            ops: 500,
            run: retry_bare,
        },
        Scenario {
            name: "retry/tower",
            ops: 500,
            run: retry_tower,
        },
        Scenario {
            name: "retry/tenacity",
            ops: 500,
            run: retry_tenacity,
        },
        Scenario {
            name: "http/bare",
            ops: 300,
            run: http_bare,
        },
        Scenario {
            name: "http/tower",
            ops: 300,
            run: http_tower,
        },
        Scenario {
            name: "http/tenacity",
            ops: 300,
            run: http_tenacity,
        },
        Scenario {
            name: "http/tenacity+breaker",
            ops: 300,
            run: http_breaker,
        },
        Scenario {
            name: "http/tenacity+hedge",
            ops: 300,
            run: http_hedge,
        },
    ]
}

fn main() {
    if let Ok(spec) = std::env::var("INSTRUCTIONS_RUN") {
        let (name, n) = spec.split_once(':').expect("name:ops");
        let scenario = scenarios()
            .into_iter()
            .find(|s| s.name == name)
            .expect("a scenario by that name");
        let n: u64 = n.parse().expect("a count");
        (scenario.run)(n);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("instructions: valgrind is not installed; nothing measured");
        return;
    }
    let filter = std::env::var("INSTRUCTIONS").unwrap_or_default();
    let me = std::env::current_exe().expect("this binary");
    let mut rows = Vec::new();
    for scenario in scenarios()
        .into_iter()
        .filter(|s| s.name.starts_with(&filter))
    {
        let (ir_0, allocs_0) = measure(&me, scenario.name, 0);
        let (ir_n, allocs_n) = measure(&me, scenario.name, scenario.ops);
        let per_op = (ir_n - ir_0) as f64 / scenario.ops as f64;
        let allocs = (allocs_n - allocs_0) as f64 / scenario.ops as f64;
        eprintln!(
            "{:<36} {per_op:>10.0} instructions/op {allocs:>6.2} allocations/op",
            scenario.name
        );
        rows.push((scenario.name, per_op, allocs));
    }
    println!();
    println!("| scenario | instructions/op | above bare | allocations/op |");
    println!("|---|---|---|---|");
    for (name, per_op, allocs) in &rows {
        let group = name.split('/').next().unwrap_or_default();
        let bare = rows
            .iter()
            .find(|(n, _, _)| *n == format!("{group}/bare"))
            .map(|(_, ir, _)| *ir);
        let above = bare.map_or_else(String::new, |bare| format!("{:.0}", per_op - bare));
        println!("| {name} | {per_op:.0} | {above} | {allocs:.2} |");
    }
    future_sizes();
}

/// The size of one call's future through each stack of the success path, in bytes (what a
/// caller's own future holds, and moves, for each call).
fn future_sizes() {
    fn size<S: Service<u64>>(mut svc: S) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_ready());
        std::mem::size_of_val(&svc.call(7))
    }
    let rt = timer_runtime(false);
    let _context = rt.enter();
    println!();
    println!(
        "future size: bare {} bytes, tower timeout + retry {} bytes, tenacity preset {} bytes \
         ({} with a throttle)",
        size(always_ready()),
        size(support::tower_stack(always_ready(), true)),
        size(tenacity(true).layer(always_ready())),
        size(tenacity(true).layer(throttle().layer(always_ready()))),
    );
}

/// Runs `name` with `ops` operations under callgrind: instructions in all, allocations.
fn measure(me: &std::path::Path, name: &str, ops: u64) -> (u64, u64) {
    let out = std::env::temp_dir().join(format!("instructions-{}.out", std::process::id()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(me)
        .env("INSTRUCTIONS_RUN", format!("{name}:{ops}"))
        .output()
        .expect("valgrind runs");
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(&out).expect("callgrind's output");
    let _ = std::fs::remove_file(&out);
    let instructions = report
        .lines()
        .find_map(|line| {
            line.strip_prefix("summary: ")
                .or_else(|| line.strip_prefix("totals: "))
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("callgrind's summary line");
    let allocations = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("allocations: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the run's allocation count");
    (instructions, allocations)
}

/// Warms up, then runs `op` `n` times and prints the allocations made by the whole run.
fn repeat(n: u64, mut op: impl FnMut()) {
    for _ in 0..WARM_UP {
        op();
    }
    for _ in 0..n {
        op();
    }
    println!("allocations: {}", ALLOCATIONS.load(Ordering::Relaxed));
}

// --- success path -------------------------------------------------------------------------

// Never inlined, for every stack alike: inlined into some scenarios' loops and not others, it
// gave the stacks whose loops it joined a copy of the future the others did not pay.
#[inline(never)]
fn call_ready<S: Service<u64>>(svc: &mut S) {
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = svc.poll_ready(&mut cx) else {
        panic!("not ready");
    };
    // Made in place: a future made, then moved into its pin, is copied whole or not as the
    // compiler's inlining goes, which moves the count by a hundred with no change to the stack.
    let future = pin!(svc.call(std::hint::black_box(7)));
    let Poll::Ready(Ok(_)) = future.poll(&mut cx) else {
        panic!("a ready service pended or failed");
    };
}

fn timer_runtime(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .unwrap()
}

/// This crate's deadline → retry → attempt timeout with every default (budget and jitter on),
/// or, for the retry path, with neither (so that both stacks wait the same delays).
fn tenacity(realistic: bool) -> ResilienceLayer {
    tenacity_builder(realistic).build().unwrap()
}

fn tenacity_builder(realistic: bool) -> ResilienceBuilder {
    let builder = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(2));
    if realistic {
        builder
    } else {
        builder
            .no_budget()
            .backoff(ExponentialBackoff::default().with_jitter(Jitter::None))
    }
}

fn success_bare(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let mut svc = always_ready();
    repeat(n, || call_ready(&mut svc));
}

fn success_tower(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let mut svc = support::tower_stack(always_ready(), true);
    repeat(n, || call_ready(&mut svc));
}

fn success_tenacity(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let mut svc = tenacity(true).layer(always_ready());
    steady(&rt, &mut svc, n);
    repeat(n, || call_ready(&mut svc));
}

/// The same stack with adaptive throttling inside it (one window, the defaults), in the state of
/// a client that never meets overload: its window has been slid over a history of successes,
/// more than the calls counted. (Before its first slide, a window is tested whole on every
/// call; that first slice is a second in a client's life.)
fn success_throttle(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let mut svc = tenacity(true).layer(throttle().layer(always_ready()));
    steady(&rt, &mut svc, n);
    repeat(n, || call_ready(&mut svc));
}

/// Brings a stack of the success path to the state of a client that has run for a while:
/// `HISTORY` successes, then a second and a half of its runtime's time, in which a throttle's
/// ticker (started by the first call) slides its window. The stacks with and without a throttle
/// both get it, so that their rows differ by the throttle alone (the retry budget is full in
/// both, for one).
fn steady<S: Service<u64>>(rt: &tokio::runtime::Runtime, svc: &mut S, n: u64) {
    assert!(
        WARM_UP + n < HISTORY,
        "more calls than the history leaves room for"
    );
    for _ in 0..HISTORY {
        call_ready(svc);
    }
    rt.block_on(tokio::time::sleep(Duration::from_millis(1500)));
}

/// Successes before the count on the success path, where the throttle is compared: more than
/// the calls counted.
const HISTORY: u64 = 20_000;

fn throttle() -> ThrottleLayer<DefaultClassifier> {
    ThrottleLayer::new(Throttle::new(), DefaultClassifier).unwrap()
}

/// The same stack with a circuit breaker between retry and the attempt timeout: Polly's
/// defaults (a failure ratio over a 30 s window, which reads the clock for each outcome).
fn success_breaker(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let layer = tenacity_builder(true)
        .circuit_breaker(BreakerConfig::new())
        .build()
        .unwrap();
    let mut svc = layer.layer(always_ready());
    repeat(n, || call_ready(&mut svc));
}

/// The breaker counting only failures in a row: no window, no clock.
fn success_breaker_in_a_row(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let config = BreakerConfig::new()
        .no_failure_ratio()
        .consecutive_failures(5);
    let layer = tenacity_builder(true)
        .circuit_breaker(config)
        .build()
        .unwrap();
    let mut svc = layer.layer(always_ready());
    repeat(n, || call_ready(&mut svc));
}

/// The same stack hedging after 50 ms: a call answered at once never arms the hedge timer.
fn success_hedge(n: u64) {
    let rt = timer_runtime(false);
    let _context = rt.enter();
    let layer = tenacity_builder(true)
        .hedge(Hedge::after(Duration::from_millis(50)))
        .build()
        .unwrap();
    let mut svc = layer.layer(always_ready());
    repeat(n, || call_ready(&mut svc));
}

// --- retry path ---------------------------------------------------------------------------

fn retry_bare(n: u64) {
    let rt = timer_runtime(true);
    let mut svc = fails_twice();
    repeat(n, || {
        rt.block_on(async {
            let _ = svc.ready().await.unwrap().call(7).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = svc.ready().await.unwrap().call(7).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            svc.ready().await.unwrap().call(7).await.unwrap();
        })
    });
}

fn retry_tower(n: u64) {
    let rt = timer_runtime(true);
    let mut svc = support::tower_stack(fails_twice(), false);
    repeat(n, || {
        rt.block_on(async { svc.ready().await.unwrap().call(7).await.unwrap() });
    });
}

fn retry_tenacity(n: u64) {
    let rt = timer_runtime(true);
    let mut svc = tenacity(false).layer(fails_twice());
    repeat(n, || {
        rt.block_on(async { svc.ready().await.unwrap().call(7).await.unwrap() });
    });
}

// --- HTTP ---------------------------------------------------------------------------------

/// A hyper server on 127.0.0.1 that answers `ok`, on this thread's runtime.
fn http_runtime() -> (tokio::runtime::Runtime, Uri) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let uri = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|_: Request<hyper::body::Incoming>| {
                            ready(Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            ))))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://{addr}/ok").parse().unwrap()
    });
    (rt, uri)
}

async fn get<S, B>(svc: &mut S, uri: &Uri)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let request = Request::get(uri.clone())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert!(response.status().is_success());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
}

fn http_bare(n: u64) {
    let (rt, uri) = http_runtime();
    let mut client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    repeat(n, || rt.block_on(get(&mut client, &uri)));
}

fn http_tower(n: u64) {
    let (rt, uri) = http_runtime();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let _context = rt.enter();
    let mut svc = support::tower_stack(client, true);
    repeat(n, || rt.block_on(get(&mut svc, &uri)));
}

fn http_breaker(n: u64) {
    let (rt, uri) = http_runtime();
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let layer = ResilienceLayer::http()
        .circuit_breaker(BreakerConfig::new())
        .build()
        .unwrap();
    let mut svc = layer.layer(client);
    repeat(n, || rt.block_on(get(&mut svc, &uri)));
}

/// The HTTP preset hedging after 50 ms: each request waits for its answer, so each arms the
/// hedge timer, which never fires.
fn http_hedge(n: u64) {
    let (rt, uri) = http_runtime();
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let layer = ResilienceLayer::http()
        .hedge(Hedge::after(Duration::from_millis(50)))
        .build()
        .unwrap();
    let mut svc = layer.layer(client);
    repeat(n, || rt.block_on(get(&mut svc, &uri)));
}

fn http_tenacity(n: u64) {
    let (rt, uri) = http_runtime();
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let mut svc = ResilienceLayer::http().build().unwrap().layer(client);
    repeat(n, || rt.block_on(get(&mut svc, &uri)));
}

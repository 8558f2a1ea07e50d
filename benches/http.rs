//! Throughput of a hyper-util client against a hyper server on 127.0.0.1, 64 requests in
//! flight: bare, through tower's own timeout + retry, and through `ResilienceLayer::http()`, in
//! one run. One more stack, `floor_timer_and_copy`, does only what every client with attempt
//! timeouts and retries does for a request that succeeds at once: it arms a tokio timer and
//! keeps a copy of the request until the answer comes.
//!
//! `cargo bench --bench http`; compare the `thrpt` figures, or the paired ratios printed at the
//! end.
//!
//! `HTTP_BENCH_LAYERS=1 cargo bench --bench http` prints only the paired ratios, for these
//! stacks, for the floor without its timer (`floor_copy_only`), and for this crate's layers
//! added one at a time (`layers_*`: the request body made replayable, then the attempt timeout,
//! the retry, the deadline), to show what each costs.
//!
//! With `HTTP_BENCH_ONLY` set to one of the stacks' names, the binary instead sends one batch
//! through that stack and exits, for counting instructions, which unlike time do not drift:
//!
//! ```text
//! cargo bench --bench http --no-run   # prints the binary's path
//! HTTP_BENCH_ONLY=tenacity_http_preset valgrind --tool=callgrind target/release/deps/http-…
//! ```

#[path = "../examples/demo_client/server.rs"]
mod server;
#[path = "support/tower_stack.rs"]
mod support;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use futures_util::StreamExt;
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use tower::util::MapRequestLayer;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::http::ReplayBody;
use tower_tenacity::timeout::TimeoutLayer;

const REQUESTS: usize = 2048;
const IN_FLIGHT: usize = 64;

fn throughput(c: &mut Criterion) {
    // The server on a thread and runtime of its own, the client on this one: one core each, so
    // that the two stacks are compared on the client's work and not on scheduling luck.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = server::FlakyServer::start().await.unwrap();
            addr_tx.send(server.url("/ok")).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url: Uri = addr_rx.recv().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let bare: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resilient = ResilienceLayer::http()
        .build()
        .unwrap()
        .layer(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>());

    let tower = support::tower_stack(
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        true,
    );
    let floor = Floor {
        inner: Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        timer: true,
    };
    let copy_only = Floor {
        inner: Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        timer: false,
    };
    let run_bare = || run(&rt, &bare, &url);
    let run_floor = || run(&rt, &floor, &url);
    let run_copy_only = || run(&rt, &copy_only, &url);
    let run_tower = || run(&rt, &tower, &url);
    let run_resilient = || run(&rt, &resilient, &url);

    // This crate's layers added one at a time, to see what each costs; each stack has a client
    // (and so a connection pool) of its own, as the others do.
    let client = || Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let timeout = TimeoutLayer::new(Duration::from_secs(2));
    // The preset's own retry layer (its classifier, its replay of `ReplayBody`s, one budget).
    let retry = ResilienceLayer::http()
        .build()
        .unwrap()
        .stack()
        .retry()
        .clone();
    let deadline = DeadlineLayer::new(Duration::from_secs(10));
    let replayable = MapRequestLayer::new(replayable as fn(_) -> _);
    let body_only = replayable.layer(client());
    let timeout_only = replayable.layer(timeout.layer(client()));
    let retry_timeout = replayable.layer(retry.layer(timeout.layer(client())));
    let deadline_retry_timeout =
        replayable.layer(deadline.layer(retry.layer(timeout.layer(client()))));
    let run_body_only = || run(&rt, &body_only, &url);
    let run_timeout = || run(&rt, &timeout_only, &url);
    let run_retry_timeout = || run(&rt, &retry_timeout, &url);
    let run_deadline_retry_timeout = || run(&rt, &deadline_retry_timeout, &url);

    // Loopback throughput drifts by several percent from second to second on a small machine.
    // Each iteration therefore runs a batch of each, and times only its own: the measurements
    // see the same conditions, so their ratios are what is left.
    let mut runs: Vec<(&str, &dyn Fn())> = vec![
        ("bare_hyper_util", &run_bare),
        ("floor_timer_and_copy", &run_floor),
        ("tower_timeout_retry", &run_tower),
        ("tenacity_http_preset", &run_resilient),
    ];
    let layers: [(&str, &dyn Fn()); 5] = [
        ("floor_copy_only", &run_copy_only),
        ("layers_replay_body", &run_body_only),
        ("layers_timeout", &run_timeout),
        ("layers_retry_timeout", &run_retry_timeout),
        ("layers_deadline_retry", &run_deadline_retry_timeout),
    ];
    let by_layer = std::env::var_os("HTTP_BENCH_LAYERS").is_some();
    if by_layer || std::env::var_os("HTTP_BENCH_ONLY").is_some() {
        runs.extend(layers);
    }
    if let Ok(only) = std::env::var("HTTP_BENCH_ONLY") {
        let Some((_, run)) = runs.iter().find(|(name, _)| *name == only) else {
            panic!("HTTP_BENCH_ONLY: no stack named {only:?}");
        };
        run();
        return;
    }
    if by_layer {
        paired_ratios(&runs);
        return;
    }
    let mut group = c.benchmark_group("http_64_in_flight");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.sample_size(20);
    for (measured, (name, _)) in runs.iter().enumerate() {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let mut timed = Duration::ZERO;
                for _ in 0..iterations {
                    for (which, (_, run)) in runs.iter().enumerate() {
                        let start = Instant::now();
                        run();
                        if which == measured {
                            timed += start.elapsed();
                        }
                    }
                }
                timed
            })
        });
    }
    group.finish();
    paired_ratios(&runs);
}

/// The request with its body made replayable, as the HTTP preset does first.
fn replayable(request: Request<Full<Bytes>>) -> Request<ReplayBody<Full<Bytes>>> {
    request.map(|body| ReplayBody::new(body, 64 * 1024))
}

/// A client that arms a tokio timer for each call (unless `timer` is off) and keeps a copy of
/// the request until the response comes: the least a retrying client with attempt timeouts does
/// per request.
#[derive(Clone)]
struct Floor<S> {
    inner: S,
    timer: bool,
}

impl<S, B> Service<Request<B>> for Floor<S>
where
    S: Service<Request<B>>,
    B: Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future, Request<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let kept = request.clone();
        FloorFuture {
            inner: self.inner.call(request),
            timer: self
                .timer
                .then(|| tokio::time::sleep(Duration::from_secs(2))),
            kept: Some(kept),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F, R> {
        #[pin]
        inner: F,
        #[pin]
        timer: Option<tokio::time::Sleep>,
        kept: Option<R>,
    }
}

impl<F: Future<Output = Result<T, E>>, T, E, R> Future for FloorFuture<F, R> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            this.kept.take();
            return Poll::Ready(out);
        }
        if let Some(timer) = this.timer.as_pin_mut() {
            assert!(
                timer.poll(cx).is_pending(),
                "no response takes 2 s on loopback"
            );
        }
        Poll::Pending
    }
}

/// Sends `REQUESTS` GETs to `url` through clones of `svc`, `IN_FLIGHT` at a time, and reads
/// each response body to its end.
fn run<S, B>(rt: &Runtime, svc: &S, url: &Uri)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    rt.block_on(async {
        futures_util::stream::iter(0..REQUESTS)
            .map(|_| {
                let svc = svc.clone();
                let request = Request::get(url.clone()).body(Full::default()).unwrap();
                async move {
                    let response = svc.oneshot(request).await.unwrap();
                    response.into_body().collect().await.unwrap();
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<()>()
            .await
    })
}

/// The ratios that the target is about, measured so that drift cancels: rounds of one batch of
/// each stack back to back (in an order that rotates, so that no stack always goes first),
/// each round giving each stack's throughput relative to bare (the first stack) and to tower in
/// that round; the median rounds are printed, with the quartiles of the ratio to bare.
fn paired_ratios(runs: &[(&str, &dyn Fn())]) {
    const ROUNDS: usize = 60;
    let tower = runs
        .iter()
        .position(|(name, _)| *name == "tower_timeout_retry")
        .expect("tower's stack runs");
    // Per stack, per round: throughput relative to bare, and relative to tower.
    let mut to_bare = vec![Vec::with_capacity(ROUNDS); runs.len()];
    let mut to_tower = vec![Vec::with_capacity(ROUNDS); runs.len()];
    for round in 0..ROUNDS {
        let mut took = vec![Duration::ZERO; runs.len()];
        for offset in 0..runs.len() {
            let which = (round + offset) % runs.len();
            let start = Instant::now();
            (runs[which].1)();
            took[which] = start.elapsed();
        }
        for which in 0..runs.len() {
            let this = took[which].as_secs_f64();
            to_bare[which].push(took[0].as_secs_f64() / this);
            to_tower[which].push(took[tower].as_secs_f64() / this);
        }
    }
    println!(
        "throughput relative to bare, median (and quartiles) of {ROUNDS} paired rounds, \
         and median relative to tower:"
    );
    let quartiles = |ratios: &mut Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        [1, 2, 3].map(|q| ratios[(ROUNDS - 1) * q / 4])
    };
    for (which, (name, _)) in runs.iter().enumerate().skip(1) {
        let [low, median, high] = quartiles(&mut to_bare[which]);
        let [_, against_tower, _] = quartiles(&mut to_tower[which]);
        println!("  {name:<22} {median:.3} ({low:.3}..{high:.3})   tower: {against_tower:.3}");
    }
}

criterion_group!(benches, throughput);

fn main() {
    benches();
    if std::env::var_os("HTTP_BENCH_ONLY").is_none() {
        Criterion::default().configure_from_args().final_summary();
    }
}

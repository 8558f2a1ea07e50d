//! Throughput of a hyper-util client against a hyper server on 127.0.0.1, 64 requests in
//! flight: bare, through tower's own timeout + retry, and through `ResilienceLayer::http()`, in
//! one run.
//!
//! `cargo bench --bench http`; compare the `thrpt` figures, or the paired ratios printed at the
//! end.
//!
//! With `HTTP_BENCH_ONLY` set to one of the three names, the binary instead sends one batch
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
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::ReplayBody;

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
    let run_bare = || run(&rt, &bare, &url);
    let run_tower = || run(&rt, &tower, &url);
    let run_resilient = || run(&rt, &resilient, &url);

    // Loopback throughput drifts by several percent from second to second on a small machine.
    // Each iteration therefore runs a batch of each, and times only its own: the measurements
    // see the same conditions, so their ratios are what is left.
    let runs: [(&str, &dyn Fn()); 3] = [
        ("bare_hyper_util", &run_bare),
        ("tower_timeout_retry", &run_tower),
        ("tenacity_http_preset", &run_resilient),
    ];
    if let Ok(only) = std::env::var("HTTP_BENCH_ONLY") {
        let Some((_, run)) = runs.iter().find(|(name, _)| *name == only) else {
            panic!("HTTP_BENCH_ONLY: no stack named {only:?}");
        };
        run();
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
/// each round giving each stack's throughput relative to bare in that round; the median round
/// is printed.
fn paired_ratios(runs: &[(&str, &dyn Fn())]) {
    const ROUNDS: usize = 60;
    let mut ratios = vec![Vec::with_capacity(ROUNDS); runs.len()];
    for round in 0..ROUNDS {
        let mut took = vec![Duration::ZERO; runs.len()];
        for offset in 0..runs.len() {
            let which = (round + offset) % runs.len();
            let start = Instant::now();
            (runs[which].1)();
            took[which] = start.elapsed();
        }
        for (which, ratio) in ratios.iter_mut().enumerate() {
            // Throughput relative to bare: bare's time over this stack's.
            ratio.push(took[0].as_secs_f64() / took[which].as_secs_f64());
        }
    }
    println!("throughput relative to bare, median (and quartiles) of {ROUNDS} paired rounds:");
    for ((name, _), ratio) in runs.iter().zip(&mut ratios).skip(1) {
        ratio.sort_by(f64::total_cmp);
        let at = |q: usize| ratio[(ROUNDS - 1) * q / 4];
        println!("  {name:<22} {:.3} ({:.3}..{:.3})", at(2), at(1), at(3));
    }
}

criterion_group!(benches, throughput);

fn main() {
    benches();
    if std::env::var_os("HTTP_BENCH_ONLY").is_none() {
        Criterion::default().configure_from_args().final_summary();
    }
}

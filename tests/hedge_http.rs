//! Hedging through the HTTP preset against a real hyper server where a share of requests
//! stall: the slow tail is cut, the extra load stays within the budget, a POST without an
//! `Idempotency-Key` is never sent twice, and the losing attempts let go of everything.
//!
//! Client and server are real hyper, talking HTTP/1 over in-memory pipes (as the demo's do), so
//! that the tests run on tokio's paused clock: the latencies asserted are the simulated ones,
//! the same on every run and every machine, however loaded.

#[path = "../examples/demo_client/pipe.rs"]
mod pipe;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pipe::PipeConnector;
use tokio::io::DuplexStream;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{Attempts, ReplayBody};
use tower_tenacity::retry::{Hedge, RetryBudget};

type Body = Full<Bytes>;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A server whose every `stall_every`-th request (counting from 0) stalls for `stall`; the
/// others answer at once. It counts requests, requests by method, and handlers still running.
#[derive(Clone)]
struct Stalling {
    stall_every: u64,
    stall: Duration,
    requests: Arc<AtomicU64>,
    posts: Arc<AtomicU64>,
    running: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

struct Held(Arc<AtomicUsize>);

impl Held {
    fn new(count: &Arc<AtomicUsize>) -> Held {
        count.fetch_add(1, Ordering::SeqCst);
        Held(count.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stalling {
    /// A server whose every `stall_every`th request (the first included) waits `stall`.
    fn start(stall_every: u64, stall: Duration) -> Stalling {
        Stalling {
            stall_every,
            stall,
            requests: Arc::default(),
            posts: Arc::default(),
            running: Arc::default(),
            connections: Arc::default(),
        }
    }

    /// Serves one connection: the server's end of a pipe.
    fn serve(&self, io: DuplexStream) {
        let state = self.clone();
        let connection = Held::new(&state.connections);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let state = state.clone();
            async move {
                let _running = Held::new(&state.running);
                let n = state.requests.fetch_add(1, Ordering::SeqCst);
                if request.method() == http::Method::POST {
                    state.posts.fetch_add(1, Ordering::SeqCst);
                }
                if n.is_multiple_of(state.stall_every) {
                    tokio::time::sleep(state.stall).await;
                }
                Ok::<_, Infallible>(Response::new(Body::new(Bytes::from_static(b"ok"))))
            }
        });
        tokio::spawn(async move {
            let _connection = connection;
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }

    fn url(&self) -> String {
        "http://stalling.test/".to_owned()
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// A hyper-util client whose every connection is a new pipe to this server.
    fn client(&self) -> Client<PipeConnector, ReplayBody<Body>> {
        let server = self.clone();
        Client::builder(TokioExecutor::new()).build(PipeConnector::new(move |io| server.serve(io)))
    }
}

/// Latencies of `n` GETs, 25 at a time, in ms, sorted.
async fn latencies<S, B>(svc: S, url: &str, n: usize) -> Vec<u64>
where
    S: tower::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: std::fmt::Debug + Send,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    let mut all = Vec::new();
    for batch in 0..n.div_ceil(25) {
        let calls: Vec<_> = (0..25.min(n - batch * 25))
            .map(|_| {
                let svc = svc.clone();
                let request = Request::get(url).body(Body::default()).unwrap();
                tokio::spawn(async move {
                    let start = Instant::now();
                    let response = svc.oneshot(request).await.unwrap();
                    assert!(response.status().is_success());
                    response.into_body().collect().await.unwrap();
                    start.elapsed().as_millis() as u64
                })
            })
            .collect();
        for call in calls {
            all.push(call.await.unwrap());
        }
    }
    all.sort_unstable();
    all
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One request in ten stalls for 1 s. Without hedging the p99 is the stall; with a 50 ms
/// hedge it is the hedge's delay and an instant answer, and the extra requests are the hedges,
/// about one per stalled first attempt, within the budget.
#[tokio::test(start_paused = true)]
async fn hedging_cuts_the_slow_tail_within_the_budget() {
    const CALLS: usize = 200;
    let stall = Duration::from_secs(1);

    let plain_server = Stalling::start(10, stall);
    let plain = ResilienceLayer::http()
        .attempt_timeout(Duration::from_secs(5))
        .total_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .layer(plain_server.client());
    let before = latencies(plain, &plain_server.url(), CALLS).await;

    let server = Stalling::start(10, stall);
    let budget = RetryBudget::new(0.2, 0, Duration::from_secs(60)).unwrap();
    let hedged = ResilienceLayer::http()
        .attempt_timeout(Duration::from_secs(5))
        .total_timeout(Duration::from_secs(10))
        .budget(budget)
        .hedge(Hedge::after(ms(50)))
        .build()
        .unwrap()
        .layer(server.client());
    let after = latencies(hedged, &server.url(), CALLS).await;

    let (p50_before, p99_before) = (percentile(&before, 50.0), percentile(&before, 99.0));
    let (p50_after, p99_after) = (percentile(&after, 50.0), percentile(&after, 99.0));
    println!("without hedging: p50 {p50_before} ms, p99 {p99_before} ms");
    println!("with a 50 ms hedge: p50 {p50_after} ms, p99 {p99_after} ms");
    println!(
        "requests: {} without, {} with ({} hedges for {CALLS} calls)",
        plain_server.requests(),
        server.requests(),
        server.requests() - CALLS as u64
    );
    assert_eq!(p99_before, 1000, "the stall is the tail");
    assert_eq!(p50_after, 0, "most answers come at once");
    assert_eq!(p99_after, 50, "hedged, the tail is the hedge's delay");
    let extra = server.requests() - CALLS as u64;
    assert!(extra > 0, "hedges went out");
    assert!(
        extra as f64 <= 0.2 * CALLS as f64,
        "{extra} hedges, over the 20% budget"
    );
}

/// A POST without an `Idempotency-Key` is never hedged, however long it takes: the server sees
/// each once.
#[tokio::test(start_paused = true)]
async fn a_post_without_a_key_is_sent_once() {
    let server = Stalling::start(1, ms(200));
    let svc = ResilienceLayer::http()
        .hedge(Hedge::after(ms(20)))
        .build()
        .unwrap()
        .layer(server.client());
    for _ in 0..3 {
        let post = Request::post(server.url()).body(Body::from("x")).unwrap();
        let response = svc.clone().oneshot(post).await.unwrap();
        assert!(response.status().is_success());
    }
    assert_eq!(server.posts.load(Ordering::SeqCst), 3);
    assert_eq!(server.requests(), 3);
}

/// The attempts that lose are cancelled: their requests are dropped on the server (its
/// handlers stop) and their connections closed, so nothing they held stays behind.
#[tokio::test(start_paused = true)]
async fn losing_attempts_release_everything() {
    let server = Stalling::start(2, Duration::from_secs(30));
    let svc = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(60))
        .attempt_timeout(Duration::from_secs(60))
        .hedge(Hedge::after(ms(30)))
        .build()
        .unwrap()
        .layer(server.client());
    for _ in 0..5 {
        let get = Request::get(server.url()).body(Body::default()).unwrap();
        let response = svc.clone().oneshot(get).await.unwrap();
        // Every first attempt stalls (requests 0, 2, 4, ...): the hedge, attempt 2, wins.
        let winner = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
        assert_eq!(winner, 2);
        response.into_body().collect().await.unwrap();
    }
    // Requests 0, 2, 4, ... stalled and lost to their hedges: they must not be left running.
    let mut waited = 0;
    while server.running.load(Ordering::SeqCst) > 0 {
        waited += 1;
        assert!(
            waited < 500,
            "{} handlers still running",
            server.running.load(Ordering::SeqCst)
        );
        tokio::time::sleep(ms(10)).await;
    }
    assert_eq!(server.requests(), 10, "every call was hedged once");
    // Every loser's connection is closed (its response was never read); what is left is the
    // connection the winners shared, idle in the client's pool.
    let mut waited = 0;
    while server.connections.load(Ordering::SeqCst) > 1 {
        waited += 1;
        let open = server.connections.load(Ordering::SeqCst);
        assert!(waited < 500, "{open} connections still open");
        tokio::time::sleep(ms(10)).await;
    }
}

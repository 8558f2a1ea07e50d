//! A call graph over real hyper and axum: client → hop A → hop B → leaf, every hop a real axum
//! app whose handler calls the next through the HTTP preset over hyper-util. Shared by
//! `examples/chain` and `tests/chain.rs`. The hops talk HTTP/1 over in-memory pipes (the demo's
//! connector), so that a run goes on tokio's paused clock: the counts and instants are the same
//! on every run and every machine, however loaded.
//!
//! * Retry at one hop: the hop next to the failure retries; a hop that gave up answers 503 with
//!   `x-envoy-overloaded` (`http::upstream`), which the hops
//!   above do not retry.
//! * The deadline crosses hops: each preset sends the time left
//!   (`x-envoy-expected-rq-timeout-ms`), each hop's `ServerTimeoutLayer` reads it, so that a
//!   handler's own call inherits it and no leaf work starts after its caller's deadline.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{HttpResilience, ReplayBody, ServerTimeoutLayer, upstream};

use crate::pipe::PipeConnector;

/// The HTTP preset over a hyper-util client whose connections are pipes to one hop.
pub type Resilient = HttpResilience<Client<PipeConnector, ReplayBody<Full<Bytes>>>>;

/// The URL every hop is called at: the connector, not the host, says which hop it is.
const URL: &str = "http://hop.test/";
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

pub const DEADLINE: &str = "x-envoy-expected-rq-timeout-ms";
pub const REQUEST_ID: &str = "x-request-id";

pub fn deadline_header() -> HeaderName {
    HeaderName::from_static(DEADLINE)
}

/// How the hops work. `Presets`: the presets' defaults (3 attempts, the budget per host, with
/// a short backoff so that a run is quick), the deadline sent and read at every hop, and a hop
/// that gave up says so. `Deaf`: the same, but no hop sends or reads the deadline. `Naive`:
/// every hop retries with no budget and nothing says a hop already retried (tower's plain retry
/// at every hop would do the same).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Hops {
    Presets,
    Deaf,
    Naive,
}

pub fn resilient(hops: Hops, total: Duration, next: PipeConnector) -> Resilient {
    let mut builder = ResilienceLayer::http().total_timeout(total).backoff(
        ExponentialBackoff::new(Duration::from_millis(1), 2.0, Duration::from_millis(4))
            .with_jitter(Jitter::None),
    );
    match hops {
        Hops::Presets => builder = builder.deadline_header(deadline_header()),
        Hops::Deaf => {}
        Hops::Naive => builder = builder.no_budget(),
    }
    let hyper = Client::builder(TokioExecutor::new()).build(next);
    builder.build().unwrap().layer(hyper)
}

pub struct Hop {
    client: Resilient,
    hops: Hops,
}

/// A hop's handler: calls the next hop with the request's id, and answers with what it got
/// (status, the one-hop header, body), or, when its own call failed, as a hop that gave up.
pub async fn forward(State(hop): State<Arc<Hop>>, headers: HeaderMap) -> Response {
    let id = headers.get(REQUEST_ID).cloned();
    let outcome = fetch(&mut hop.client.clone(), id).await;
    match (hop.hops, outcome) {
        (Hops::Presets | Hops::Deaf, outcome) => upstream(outcome),
        // Every hop retrying on its own: what it got, or a plain 503.
        (Hops::Naive, Ok(response)) => response,
        (Hops::Naive, Err(err)) => {
            let mut answer = Response::new(Body::from(err.to_string()));
            *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            answer
        }
    }
}

/// What the leaf saw: each request's arrival, by request id.
#[derive(Default)]
pub struct Leaf {
    pub calls: AtomicU64,
    pub arrivals: Mutex<Vec<(u64, Instant)>>,
    work: Duration,
}

pub async fn leaf(State(leaf): State<Arc<Leaf>>, headers: HeaderMap) -> (StatusCode, &'static str) {
    leaf.calls.fetch_add(1, Ordering::SeqCst);
    let id = (headers.get(REQUEST_ID))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(u64::MAX);
    leaf.arrivals.lock().await.push((id, Instant::now()));
    tokio::time::sleep(leaf.work).await;
    (StatusCode::SERVICE_UNAVAILABLE, "down")
}

/// A connector to `app`: each connection a pipe that hyper serves `app` on.
pub fn serve(app: Router) -> PipeConnector {
    PipeConnector::new(move |io| {
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    })
}

pub fn server_timeout(hops: Hops) -> ServerTimeoutLayer {
    let layer = ServerTimeoutLayer::new(Duration::from_secs(5))
        .status(StatusCode::GATEWAY_TIMEOUT)
        .margin(Duration::from_millis(10));
    match hops {
        Hops::Presets => layer.deadline_header(deadline_header()),
        Hops::Deaf | Hops::Naive => layer,
    }
}

/// Starts leaf, B and A; a connector to A.
pub fn chain(hops: Hops, leaf_work: Duration) -> (PipeConnector, Arc<Leaf>) {
    let leaf_state = Arc::new(Leaf {
        work: leaf_work,
        ..Leaf::default()
    });
    let mut next = serve(
        Router::new()
            .route("/", get(leaf))
            .with_state(leaf_state.clone())
            .layer(server_timeout(hops)),
    );
    for _ in ["B", "A"] {
        let hop = Arc::new(Hop {
            client: resilient(hops, Duration::from_secs(5), next),
            hops,
        });
        let app = Router::new()
            .route("/", get(forward))
            .with_state(hop)
            .layer(server_timeout(hops));
        next = serve(app);
    }
    (next, leaf_state)
}

/// A GET of the next hop through `client`, with the request's id if it has one; the body
/// streams on.
async fn fetch(
    client: &mut Resilient,
    id: Option<http::HeaderValue>,
) -> Result<Response, tower::BoxError> {
    let mut request = Request::get(URL).body(Full::<Bytes>::default()).unwrap();
    if let Some(id) = id {
        request.headers_mut().insert(REQUEST_ID, id);
    }
    let response = client.ready().await?.call(request).await?;
    Ok(response.map(Body::new))
}

pub async fn send(client: &mut Resilient, id: u64) -> Result<StatusCode, String> {
    let outcome = fetch(client, Some(id.into())).await;
    outcome.map(|r| r.status()).map_err(|e| e.to_string())
}

/// Leaf calls for one request in an idle system, the leaf down.
pub async fn lone(hops: Hops) -> u64 {
    let (a, leaf) = chain(hops, Duration::ZERO);
    let mut client = resilient(hops, Duration::from_secs(5), a);
    let _ = send(&mut client, 1).await;
    leaf.calls.load(Ordering::SeqCst)
}

/// Leaf calls for `requests` requests one after another, the leaf down all along.
pub async fn steady(hops: Hops, requests: u64) -> u64 {
    let (a, leaf) = chain(hops, Duration::ZERO);
    let mut client = resilient(hops, Duration::from_secs(5), a);
    for id in 0..requests {
        let _ = send(&mut client, id).await;
    }
    leaf.calls.load(Ordering::SeqCst)
}

/// A caller that says it has 100 ms left (the header alone: a proxy, say, that does not hang
/// up at its deadline) sends `requests` requests one after another to a chain whose leaf takes
/// 60 ms to fail: the leaf calls, those that started after their caller's deadline, and the
/// statuses the caller got.
pub async fn late(hops: Hops, requests: u64) -> (usize, usize, Vec<StatusCode>) {
    let (a, leaf) = chain(hops, Duration::from_millis(60));
    let plain = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(a);
    let left = Duration::from_millis(100);
    let (mut gave_up, mut statuses) = (Vec::new(), Vec::new());
    for id in 0..requests {
        let request = Request::get(URL)
            .header(REQUEST_ID, id)
            .header(DEADLINE, left.as_millis() as u64)
            .body(Full::default())
            .unwrap();
        let start = Instant::now();
        statuses.push(plain.request(request).await.unwrap().status());
        gave_up.push(start + left);
    }
    let arrivals = leaf.arrivals.lock().await;
    let late = (arrivals.iter())
        .filter(|(id, at)| *at >= gave_up[*id as usize])
        .count();
    (late, arrivals.len(), statuses)
}

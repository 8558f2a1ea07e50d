//! A call graph over real hyper and axum on 127.0.0.1: client → hop A → hop B → leaf, every hop
//! a real axum app whose handler calls the next through the HTTP preset over hyper-util. Shared
//! by `examples/chain` and `tests/chain.rs`.
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
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{HyperResilience, ServerTimeoutLayer, upstream};
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

pub fn resilient(hops: Hops, total: Duration) -> HyperResilience {
    let mut builder = ResilienceLayer::http().total_timeout(total).backoff(
        ExponentialBackoff::new(Duration::from_millis(1), 2.0, Duration::from_millis(4))
            .with_jitter(Jitter::None),
    );
    match hops {
        Hops::Presets => builder = builder.deadline_header(deadline_header()),
        Hops::Deaf => {}
        Hops::Naive => builder = builder.no_budget(),
    }
    let hyper = Client::builder(TokioExecutor::new()).build_http();
    builder.build().unwrap().hyper(hyper)
}

pub struct Hop {
    next: String,
    client: HyperResilience,
    hops: Hops,
}

/// A hop's handler: calls the next hop with the request's id, and answers with what it got
/// (status, the one-hop header, body), or, when its own call failed, as a hop that gave up.
pub async fn forward(State(hop): State<Arc<Hop>>, headers: HeaderMap) -> Response {
    let id = headers.get(REQUEST_ID).cloned();
    let outcome = fetch(&mut hop.client.clone(), &hop.next, id).await;
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

pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
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

/// Starts leaf, B and A; the URL of A.
pub async fn chain(hops: Hops, leaf_work: Duration) -> (String, Arc<Leaf>) {
    let leaf_state = Arc::new(Leaf {
        work: leaf_work,
        ..Leaf::default()
    });
    let leaf_url = serve(
        Router::new()
            .route("/", get(leaf))
            .with_state(leaf_state.clone())
            .layer(server_timeout(hops)),
    )
    .await;
    let mut next = leaf_url;
    for _ in ["B", "A"] {
        let hop = Arc::new(Hop {
            next,
            client: resilient(hops, Duration::from_secs(5)),
            hops,
        });
        let app = Router::new()
            .route("/", get(forward))
            .with_state(hop)
            .layer(server_timeout(hops));
        next = serve(app).await;
    }
    (next, leaf_state)
}

/// A GET of `url` through `client`, with the request's id if it has one; the body streams on.
async fn fetch(
    client: &mut HyperResilience,
    url: &str,
    id: Option<http::HeaderValue>,
) -> Result<Response, tower::BoxError> {
    let mut request = Request::get(url).body(Full::<Bytes>::default()).unwrap();
    if let Some(id) = id {
        request.headers_mut().insert(REQUEST_ID, id);
    }
    let response = client.ready().await?.call(request).await?;
    Ok(response.map(Body::new))
}

pub async fn send(client: &mut HyperResilience, url: &str, id: u64) -> Result<StatusCode, String> {
    let outcome = fetch(client, url, Some(id.into())).await;
    outcome.map(|r| r.status()).map_err(|e| e.to_string())
}

/// Leaf calls for one request in an idle system, the leaf down.
pub async fn lone(hops: Hops) -> u64 {
    let (url, leaf) = chain(hops, Duration::ZERO).await;
    let mut client = resilient(hops, Duration::from_secs(5));
    let _ = send(&mut client, &url, 1).await;
    leaf.calls.load(Ordering::SeqCst)
}

/// Leaf calls for `requests` requests one after another, the leaf down all along.
pub async fn steady(hops: Hops, requests: u64) -> u64 {
    let (url, leaf) = chain(hops, Duration::ZERO).await;
    let mut client = resilient(hops, Duration::from_secs(5));
    for id in 0..requests {
        let _ = send(&mut client, &url, id).await;
    }
    leaf.calls.load(Ordering::SeqCst)
}

/// A caller that says it has 100 ms left (the header alone: a proxy, say, that does not hang
/// up at its deadline) sends `requests` requests one after another to a chain whose leaf takes
/// 60 ms to fail: the leaf calls, those that started after their caller's deadline, and the
/// statuses the caller got.
pub async fn late(hops: Hops, requests: u64) -> (usize, usize, Vec<StatusCode>) {
    let (url, leaf) = chain(hops, Duration::from_millis(60)).await;
    let plain = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let left = Duration::from_millis(100);
    let (mut gave_up, mut statuses) = (Vec::new(), Vec::new());
    for id in 0..requests {
        let request = Request::get(&url)
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

//! A call graph over real hyper and axum on 127.0.0.1: client → hop A → hop B → leaf, every hop
//! a real axum app whose handler calls the next through the HTTP preset over hyper-util.
//!
//! * Retry at one hop: the hop next to the failure retries; a hop that gave up answers 503 with
//!   `x-envoy-overloaded` (`http::upstream_failure`), which the hops above do not retry.
//! * The deadline crosses hops: each preset sends the time left
//!   (`x-envoy-expected-rq-timeout-ms`), each hop's `ServerTimeoutLayer` reads it, so that a
//!   handler's own call inherits it and no leaf work starts for a client that has given up.

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
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{
    HyperResilience, OVERLOADED, ServerTimeoutLayer, upstream_failure, upstream_response,
};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

const DEADLINE: &str = "x-envoy-expected-rq-timeout-ms";
const REQUEST_ID: &str = "x-request-id";

fn deadline_header() -> HeaderName {
    HeaderName::from_static(DEADLINE)
}

/// How the hops retry: the presets' defaults (3 attempts, the budget per host), with a short
/// backoff so that the test is quick; `naive` is every hop retrying with no budget and no
/// one-hop rule (tower's plain retry would do the same).
#[derive(Clone, Copy, PartialEq)]
enum Hops {
    Presets,
    Naive,
}

fn resilient(hops: Hops, total: Duration) -> HyperResilience {
    let mut builder = ResilienceLayer::http()
        .total_timeout(total)
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(1), 2.0, Duration::from_millis(4))
                .with_jitter(Jitter::None),
        )
        .deadline_header(deadline_header());
    if hops == Hops::Naive {
        builder = builder.no_budget();
    }
    let hyper = Client::builder(TokioExecutor::new()).build_http();
    builder.build().unwrap().hyper(hyper)
}

struct Hop {
    next: String,
    client: HyperResilience,
    hops: Hops,
}

/// A hop's handler: calls the next hop with the request's id, and answers with what it got
/// (status, the one-hop header, body), or, when its own call failed, as a hop that gave up.
async fn forward(State(hop): State<Arc<Hop>>, headers: HeaderMap) -> Response {
    let mut request = Request::get(&hop.next).body(Full::default()).unwrap();
    if let Some(id) = headers.get(REQUEST_ID) {
        request.headers_mut().insert(REQUEST_ID, id.clone());
    }
    let mut client = hop.client.clone();
    let outcome = client
        .ready()
        .await
        .unwrap()
        .call(request.map(Into::into))
        .await;
    match outcome {
        Ok(response) => {
            let response = match hop.hops {
                Hops::Presets => upstream_response(response),
                Hops::Naive => response,
            };
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut answer = Response::new(Body::from(body));
            *answer.status_mut() = parts.status;
            if let Some(value) = parts.headers.get(OVERLOADED) {
                answer.headers_mut().insert(OVERLOADED, value.clone());
            }
            answer
        }
        Err(err) if hop.hops == Hops::Naive => {
            let mut answer = Response::new(Body::from(err.to_string()));
            *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            answer
        }
        Err(err) => upstream_failure(err.as_ref()),
    }
}

/// What the leaf saw: each request's arrival, by request id.
#[derive(Default)]
struct Leaf {
    calls: AtomicU64,
    arrivals: Mutex<Vec<(u64, Instant)>>,
    work: Duration,
}

async fn leaf(State(leaf): State<Arc<Leaf>>, headers: HeaderMap) -> (StatusCode, &'static str) {
    leaf.calls.fetch_add(1, Ordering::SeqCst);
    let id = (headers.get(REQUEST_ID))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(u64::MAX);
    leaf.arrivals.lock().await.push((id, Instant::now()));
    tokio::time::sleep(leaf.work).await;
    (StatusCode::SERVICE_UNAVAILABLE, "down")
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

fn server_timeout() -> ServerTimeoutLayer {
    ServerTimeoutLayer::new(Duration::from_secs(5))
        .status(StatusCode::GATEWAY_TIMEOUT)
        .deadline_header(deadline_header())
        .margin(Duration::from_millis(2))
}

/// Starts leaf, B and A; the URL of A.
async fn chain(hops: Hops, leaf_work: Duration) -> (String, Arc<Leaf>) {
    let leaf_state = Arc::new(Leaf {
        work: leaf_work,
        ..Leaf::default()
    });
    let leaf_url = serve(
        Router::new()
            .route("/", get(leaf))
            .with_state(leaf_state.clone())
            .layer(server_timeout()),
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
            .layer(server_timeout());
        next = serve(app).await;
    }
    (next, leaf_state)
}

async fn send(client: &mut HyperResilience, url: &str, id: u64) -> Result<StatusCode, String> {
    let mut request = Request::get(url).body(Full::<Bytes>::default()).unwrap();
    request.headers_mut().insert(REQUEST_ID, id.into());
    let outcome = client
        .ready()
        .await
        .unwrap()
        .call(request.map(Into::into))
        .await;
    outcome.map(|r| r.status()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_lone_request_reaches_a_failing_leaf_three_times_not_twenty_seven() {
    let (url, leaf) = chain(Hops::Presets, Duration::ZERO).await;
    let mut client = resilient(Hops::Presets, Duration::from_secs(5));
    let status = send(&mut client, &url, 1).await;
    assert_eq!(status, Ok(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        leaf.calls.load(Ordering::SeqCst),
        3,
        "only B, next to the leaf, retried"
    );

    // The same graph with every hop retrying and nothing to say it already did: 3 × 3 × 3.
    let (url, leaf) = chain(Hops::Naive, Duration::ZERO).await;
    let mut client = resilient(Hops::Naive, Duration::from_secs(5));
    let _ = send(&mut client, &url, 1).await;
    assert_eq!(leaf.calls.load(Ordering::SeqCst), 27);
}

#[tokio::test]
async fn under_a_steady_outage_the_leaf_gets_at_most_1_3_times_the_requests() {
    let (url, leaf) = chain(Hops::Presets, Duration::ZERO).await;
    let mut client = resilient(Hops::Presets, Duration::from_secs(5));
    let requests = 300;
    for id in 0..requests {
        let _ = send(&mut client, &url, id).await;
    }
    let calls = leaf.calls.load(Ordering::SeqCst);
    assert!(
        calls as f64 <= 1.3 * requests as f64,
        "{calls} attempts reached the leaf for {requests} requests"
    );
}

/// A caller says it has 100 ms left (the header alone: it is another proxy, say, that does not
/// hang up at its deadline), the leaf takes 60 ms to fail, and B would retry it for far longer:
/// with the deadline read at each hop and handed to its own calls, no leaf work starts after the
/// caller's deadline, and the caller gets a 504 at it.
#[tokio::test]
async fn no_leaf_work_starts_after_its_caller_gave_up() {
    let (url, leaf) = chain(Hops::Presets, Duration::from_millis(60)).await;
    let plain = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let left = Duration::from_millis(100);
    let mut gave_up = Vec::new();
    for id in 0..10u64 {
        let request = Request::get(&url)
            .header(REQUEST_ID, id)
            .header(DEADLINE, left.as_millis() as u64)
            .body(Full::default())
            .unwrap();
        let start = Instant::now();
        let response = plain.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        gave_up.push(start + left);
    }
    let arrivals = leaf.arrivals.lock().await;
    let late = arrivals
        .iter()
        .filter(|(id, at)| *at >= gave_up[*id as usize])
        .count();
    assert!(
        arrivals.len() >= 10,
        "every request reached the leaf once at least"
    );
    assert!(
        late * 100 <= arrivals.len(),
        "{late} of {} leaf calls started after their caller's deadline",
        arrivals.len()
    );
}

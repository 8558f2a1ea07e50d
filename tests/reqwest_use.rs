//! reqwest as it is used, against a real axum server on 127.0.0.1: a `RequestBuilder` sent
//! through the preset, and the preset as a `reqwest-middleware` middleware, each giving back a
//! `reqwest::Response` whose `.json()` and `.error_for_status()` work as usual.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use http::StatusCode;
use reqwest_middleware::ClientBuilder;
use serde_json::{Value, json};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{HttpResilienceLayer, ReqwestResilience};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

/// Answers 503 to the first `fail` calls of each path, then JSON saying how many calls it took.
async fn serve() -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let flaky = |State(calls): State<Arc<AtomicU32>>, Path(fail): Path<u32>| async move {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= fail {
            Err(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            Ok((
                [("content-type", "application/json")],
                json!({ "calls": n }).to_string(),
            ))
        }
    };
    let app = Router::new()
        .route("/flaky/{fail}", get(flaky).post(flaky))
        .route("/gone", get(|| async { StatusCode::GONE }))
        .route("/echo", post(|body: String| async move { body }))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn layer() -> HttpResilienceLayer {
    ResilienceLayer::http()
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(5), 1.0, Duration::from_millis(5))
                .with_jitter(Jitter::None),
        )
        .no_budget()
        .build()
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn a_request_builder_goes_through_the_preset_and_a_reqwest_response_comes_back() {
    let (base, calls) = serve().await;
    let http = http();
    let resilient: ReqwestResilience<reqwest::Body> = layer().reqwest(http.clone());
    let response = resilient
        .send(http.get(format!("{base}/flaky/2")))
        .await
        .unwrap();
    let body: Value = response.error_for_status().unwrap().json().await.unwrap();
    assert_eq!(body, json!({ "calls": 3 }), "two 503s retried");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // A fatal status comes back as it is, and reqwest's own status check names the URL.
    let gone = resilient
        .send(http.get(format!("{base}/gone")))
        .await
        .unwrap();
    let err = gone.error_for_status().unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::GONE));
    assert_eq!(err.url().map(|u| u.path()), Some("/gone"));

    // The body is replayed as it was built.
    let echoed = resilient
        .send(http.post(format!("{base}/echo")).body("hello"))
        .await
        .unwrap();
    assert_eq!(echoed.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn a_client_with_the_middleware_retries_and_keeps_reqwest_responses() {
    let (base, calls) = serve().await;
    let client = ClientBuilder::new(http()).with(layer()).build();
    let body: Value = client
        .get(format!("{base}/flaky/2"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({ "calls": 3 }));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // A POST is not retried (not idempotent), and its 503 comes back as a response.
    calls.store(0, Ordering::SeqCst);
    let response = client
        .post(format!("{base}/flaky/1"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A reload reaches a client built with the middleware: a clone of the layer is the handle.
#[tokio::test]
async fn a_reload_reaches_the_middleware_from_the_next_request() {
    let (base, calls) = serve().await;
    let handle = layer();
    let client = ClientBuilder::new(http()).with(handle.clone()).build();
    let status = |fail: u32| {
        let request = client.get(format!("{base}/flaky/{fail}"));
        async move { request.send().await.unwrap().status() }
    };
    // Three attempts by default: two 503s are retried.
    assert_eq!(status(2).await, StatusCode::OK);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 3);

    let once = ResilienceLayer::http()
        .max_attempts(1)
        .no_budget()
        .build()
        .unwrap();
    handle.reload(once);
    assert_eq!(status(1).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one attempt after the reload"
    );
}

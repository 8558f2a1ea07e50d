//! tower-tenacity in an axum server: a handler timeout that answers instead of failing, and a
//! gateway handler whose outbound calls go through the resilient hyper client.
//!
//! ```text
//! cargo run --example axum_server            # serves on 127.0.0.1, calls itself, prints, exits
//! cargo run --example axum_server -- --serve # keeps serving (the address is printed)
//! ```
//!
//! Routes:
//! * `/fast`: answers at once;
//! * `/slow`: takes 5 s, so the 1 s server timeout answers 504 for it (and drops it);
//! * `/upstream`: a flaky upstream, 503 two times out of three;
//! * `/gateway`: calls `/upstream` through `ResilienceLayer::http()`, within what is left of the
//!   server's own deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::{Attempts, HttpResilience, ReplayBody, ServerTimeoutLayer};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

type Upstream = HttpResilience<Client<HttpConnector, ReplayBody<Full<Bytes>>>>;

#[derive(Clone)]
struct AppState {
    upstream: Upstream,
    upstream_url: String,
    upstream_calls: Arc<AtomicU64>,
}

async fn fast() -> &'static str {
    "fast\n"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "slow\n"
}

async fn flaky_upstream(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.upstream_calls.fetch_add(1, Ordering::Relaxed) % 3 {
        0 | 1 => (StatusCode::SERVICE_UNAVAILABLE, "busy\n"),
        _ => (StatusCode::OK, "upstream says hi\n"),
    }
}

/// The typical gateway: an outbound call, retried and bounded, inside a handler.
async fn gateway(State(state): State<AppState>) -> (StatusCode, String) {
    let mut upstream = state.upstream.clone();
    let request = Request::get(&state.upstream_url)
        .body(Full::default())
        .expect("a valid request");
    let result: Result<_, BoxError> = async {
        let response = upstream.ready().await?.call(request).await?;
        let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, attempts, body))
    }
    .await;
    match result {
        Ok((status, attempts, body)) => (
            status,
            format!(
                "upstream answered {status} after {attempts} attempt(s): {}",
                String::from_utf8_lossy(&body)
            ),
        ),
        Err(err) => (StatusCode::BAD_GATEWAY, format!("upstream failed: {err}\n")),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let serve_forever = std::env::args().any(|arg| arg == "--serve");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let upstream = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(3))
        .attempt_timeout(Duration::from_millis(500))
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(50), 2.0, Duration::from_millis(500))
                .with_jitter(Jitter::Full),
        )
        .build()?
        .layer(client);
    let state = AppState {
        upstream,
        upstream_url: format!("http://{addr}/upstream"),
        upstream_calls: Arc::default(),
    };
    let app = Router::new()
        .route("/fast", get(fast))
        .route("/slow", get(slow))
        .route("/upstream", get(flaky_upstream))
        .route("/gateway", get(gateway))
        .with_state(state)
        // No HandleErrorLayer needed: the timeout answers, the error type stays Infallible.
        .layer(ServerTimeoutLayer::new(Duration::from_secs(1)).status(StatusCode::GATEWAY_TIMEOUT));
    println!("serving on http://{addr}");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    if serve_forever {
        server.await??;
        return Ok(());
    }

    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    for path in ["/fast", "/slow", "/gateway"] {
        let started = Instant::now();
        let response = client
            .request(Request::get(format!("http://{addr}{path}")).body(Full::default())?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "GET {path:<9} -> {status} in {:>4} ms: {}",
            started.elapsed().as_millis(),
            String::from_utf8_lossy(&body).trim_end()
        );
    }
    server.abort();
    Ok(())
}

//! tower-tenacity around a tonic client: the gRPC preset over a `Channel`.
//!
//! ```text
//! cargo run --example tonic_client                         # against its own flaky health server
//! cargo run --example tonic_client -- http://127.0.0.1:50051   # against yours (grpc.health.v1)
//! ```
//!
//! By default it starts a tonic-health server on 127.0.0.1 behind a layer that answers
//! `UNAVAILABLE` to two calls in three (once with `grpc-retry-pushback-ms`) and stalls now and
//! then, calls `Check` a few times through `ResilienceLayer::grpc()`, and prints what each call
//! came to, with the retries logged as they happen.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use tonic::body::Body;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::BoxError;
use tower::{Layer, Service};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::grpc::GrpcDeadlineLayer;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

/// Fails two calls in three with UNAVAILABLE, and stalls every fifth.
#[derive(Clone)]
struct Flaky<S> {
    inner: S,
    calls: Arc<AtomicU32>,
}

impl<S> Service<Request<Body>> for Flaky<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            if call % 5 == 4 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            if call % 3 != 2 {
                let mut response = Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "14")
                    .header("grpc-message", "busy, try again");
                if call % 6 == 1 {
                    response = response.header("grpc-retry-pushback-ms", "150");
                }
                return Ok(response.body(Body::empty())?);
            }
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[derive(Clone)]
struct FlakyLayer(Arc<AtomicU32>);

impl<S> Layer<S> for FlakyLayer {
    type Service = Flaky<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Flaky {
            inner,
            calls: self.0.clone(),
        }
    }
}

async fn start_server() -> Result<String, BoxError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        let _reporter = reporter;
        let layers = tower::ServiceBuilder::new()
            // The server honours the deadline each call carries in grpc-timeout.
            .layer(GrpcDeadlineLayer::new())
            .layer(FlakyLayer(Arc::default()));
        if let Err(err) = Server::builder()
            .layer(layers)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
        {
            eprintln!("server stopped: {err}");
        }
    });
    Ok(format!("http://{addr}"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            let url = start_server().await?;
            println!("flaky tonic-health server on {url}");
            url
        }
    };
    let channel = Endpoint::from_shared(url)?.connect_lazy();
    let resilient = ResilienceLayer::grpc()
        .total_timeout(Duration::from_secs(3))
        .attempt_timeout(Duration::from_secs(1))
        .max_attempts(4)
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(50), 2.0, Duration::from_millis(500))
                .with_jitter(Jitter::Full),
        )
        .build()?
        .layer(channel);
    let mut health = HealthClient::new(resilient);
    for call in 1..=5 {
        let started = Instant::now();
        let result = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        let took = started.elapsed().as_millis();
        match result {
            Ok(response) => println!(
                "check {call}: {:?} in {took} ms",
                response.into_inner().status()
            ),
            Err(status) => println!(
                "check {call}: {:?}: {} in {took} ms",
                status.code(),
                status.message()
            ),
        }
    }
    Ok(())
}

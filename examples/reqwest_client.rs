//! The HTTP preset over a `reqwest::Client`, against a flaky hyper server of its own on
//! 127.0.0.1 (no network needed).
//!
//! ```text
//! cargo run --example reqwest_client --features reqwest
//! ```
//!
//! The server fails the first two tries of each path with a 503, answers the third, and hashes
//! the body it got; the client sends a GET and a POST with an `Idempotency-Key` and a 32 KiB
//! body, and prints how many attempts each took and what the server saw.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tower::BoxError;
use tower::{Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::Attempts;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let addr = flaky_server().await?;

    // Bring your own reqwest client (TLS, proxies, pools as you like them).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut resilient = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_secs(2))
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(50), 2.0, Duration::from_secs(1))
                .with_jitter(Jitter::Full),
        )
        .build()?
        .reqwest(client);

    let get = Request::get(format!("http://{addr}/report")).body(Full::new(Bytes::new()))?;
    let upload: Bytes = (0..32 * 1024u32).map(|i| (i % 251) as u8).collect();
    let post = Request::post(format!("http://{addr}/upload"))
        .header("idempotency-key", "upload-7f3a")
        .body(Full::new(upload.clone()))?;

    for request in [get, post] {
        let line = format!("{} {}", request.method(), request.uri());
        let response = resilient.ready().await?.call(request).await?;
        let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "{line}: {status} after {attempts} attempt(s); the server says {}",
            String::from_utf8_lossy(&body)
        );
    }
    println!(
        "(the upload was {} bytes, replayed byte for byte)",
        upload.len()
    );
    Ok(())
}

/// Fails the first two requests to each path with 503, then answers with the length of the
/// body it got.
async fn flaky_server() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        u32,
    >::new()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let tries = {
                            let mut seen = seen.lock().unwrap();
                            let tries = seen.entry(path).or_default();
                            *tries += 1;
                            *tries
                        };
                        let body = request.into_body().collect().await?.to_bytes();
                        let mut response = Response::new(Full::new(Bytes::from(format!(
                            "try {tries}, {} bytes",
                            body.len()
                        ))));
                        if tries <= 2 {
                            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

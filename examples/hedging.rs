//! Hedging through the HTTP preset, against a hyper server of its own on 127.0.0.1 that
//! stalls one request in ten for a second (no network needed).
//!
//! ```text
//! cargo run --example hedging
//! ```
//!
//! It sends 200 GETs, 25 at a time, first without hedging and then with a hedge after 50 ms,
//! and prints the median and the 99th percentile of each, and how many requests the server saw.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::BoxError;
use tower::{Layer, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::ReplayBody;
use tower_tenacity::retry::{Event, Hedge};

const CALLS: usize = 200;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    for hedge in [None, Some(Duration::from_millis(50))] {
        let (addr, requests) = stalling_server().await?;
        let hedges = Arc::new(AtomicU64::new(0));
        let counter = hedges.clone();
        let mut builder = ResilienceLayer::http().observer(move |event: &Event| {
            if let Event::Hedge { .. } = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        if let Some(delay) = hedge {
            builder = builder.hedge(Hedge::after(delay));
        }
        let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
        let svc = builder.build()?.layer(client);
        let mut latencies = Vec::new();
        for _ in 0..CALLS / 25 {
            let calls: Vec<_> = (0..25)
                .map(|_| {
                    let svc = svc.clone();
                    let request = Request::get(format!("http://{addr}/")).body(Full::default());
                    tokio::spawn(async move {
                        let start = Instant::now();
                        let response = svc.oneshot(request?).await?;
                        response.into_body().collect().await?;
                        Ok::<_, BoxError>(start.elapsed())
                    })
                })
                .collect();
            for call in calls {
                latencies.push(call.await??);
            }
        }
        latencies.sort_unstable();
        let at = |p: usize| latencies[(latencies.len() * p).div_ceil(100) - 1];
        let label = match hedge {
            None => "without hedging".to_string(),
            Some(delay) => format!("hedging after {delay:?}"),
        };
        println!(
            "{label:<24} p50 {:>8.1?}  p99 {:>8.1?}  requests to the server {} ({} hedges)",
            at(50),
            at(99),
            requests.load(Ordering::SeqCst),
            hedges.load(Ordering::Relaxed),
        );
    }
    Ok(())
}

/// Answers at once, but stalls every tenth request for a second; counts the requests.
async fn stalling_server() -> std::io::Result<(SocketAddr, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n.is_multiple_of(10) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok((addr, requests))
}

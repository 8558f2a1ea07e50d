//! Streamed HTTP response bodies (NDJSON, server-sent events) through `ResilienceLayer::http()`
//! against a real hyper server on 127.0.0.1: the total timeout ends when the head arrives, so a
//! stream longer than both timeouts is delivered whole; `total_timeout_covers_body()` makes the
//! total timeout bound the body too, with a typed error mid-body. These run in real time: the
//! server paces its lines, and what is checked is what arrived, never how long a sleep took.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::{Error, ErrorKind, ResilienceLayer, TimeoutScope};

const LINES: u32 = 12;
const PACE: Duration = Duration::from_millis(50);

/// A server that answers every request at once with a head, then `LINES` NDJSON lines, one
/// every `PACE` (600 ms in all); it counts the requests it got.
async fn ndjson_server() -> (SocketAddr, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU32::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let lines = futures_util::stream::unfold(0, |n| async move {
                        if n == LINES {
                            return None;
                        }
                        tokio::time::sleep(PACE).await;
                        let line = Bytes::from(format!("{{\"n\":{n}}}\n"));
                        Some((Ok::<_, Infallible>(Frame::data(line)), n + 1))
                    });
                    let response = Response::builder()
                        .header("content-type", "application/x-ndjson")
                        .body(StreamBody::new(lines))
                        .unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, requests)
}

/// Timeouts far shorter than the stream: 100 ms per attempt, 250 ms in all (a macro: the
/// builder's type is the crate's own, so no function can return it).
macro_rules! short_timeouts {
    () => {
        ResilienceLayer::http()
            .attempt_timeout(Duration::from_millis(100))
            .total_timeout(Duration::from_millis(250))
    };
}

#[tokio::test]
async fn a_stream_longer_than_both_timeouts_is_delivered_whole() {
    let (addr, requests) = ndjson_server().await;
    let client: Client<HttpConnector, ReplayBody<Empty<Bytes>>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = short_timeouts!().build().unwrap().layer(client);
    let request = Request::get(format!("http://{addr}/events"))
        .body(Empty::new())
        .unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
    assert_eq!(
        lines.len(),
        LINES as usize,
        "every line, past both timeouts"
    );
    assert_eq!(lines.last(), Some(&"{\"n\":11}"));
    assert_eq!(requests.load(Ordering::SeqCst), 1, "sent once");
}

#[tokio::test]
async fn the_opt_in_makes_the_total_timeout_end_the_body_with_a_typed_error() {
    let (addr, requests) = ndjson_server().await;
    let client: Client<HttpConnector, ReplayBody<Empty<Bytes>>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = short_timeouts!()
        .total_timeout_covers_body()
        .build()
        .unwrap()
        .layer(client);
    let url = format!("http://{addr}/events");
    let request = Request::get(&url).body(Empty::new()).unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200, "the head came in time");
    let mut body = response.into_body();
    let mut lines = 0;
    let err: BoxError = loop {
        match body.frame().await {
            Some(Ok(frame)) => lines += u32::from(frame.is_data()),
            Some(Err(err)) => break err,
            None => panic!("the body ended whole, past the total timeout ({lines} lines)"),
        }
    };
    assert!(lines < LINES, "cut short: {lines} lines");
    let err = Error::find(err.as_ref()).expect("this crate's error");
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout {
            scope: TimeoutScope::Total,
            after: Duration::from_millis(250)
        }
    );
    assert_eq!(
        err.to_string(),
        format!("GET {url} exceeded its total deadline of 250ms (attempt 1 of 3)")
    );
    assert!(body.frame().await.is_none(), "and then the body has ended");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "a body timeout is not retried"
    );
}

#[tokio::test]
async fn a_body_that_ends_in_time_is_untouched_by_the_opt_in() {
    let (addr, _) = ndjson_server().await;
    let client: Client<HttpConnector, ReplayBody<Empty<Bytes>>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(30))
        .total_timeout_covers_body()
        .build()
        .unwrap()
        .layer(client);
    let request = Request::get(format!("http://{addr}/events"))
        .body(Empty::new())
        .unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), LINES as usize);
}

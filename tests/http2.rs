//! HTTP/2 failures, classified: a real h2 server on 127.0.0.1 that resets streams, and a real
//! hyper-util client speaking HTTP/2 only, through `ResilienceLayer::http()`.

mod h2_server;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2_server::ResettingServer;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::classify::{Classification, ClassifyOutcome, Reason};
use tower_tenacity::http::{Attempts, HttpClassifier, ReplayBody};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::{Error, ResilienceLayer};

/// How the HTTP classifier sees an error alone, whatever the request (the outcome as a breaker
/// counts it).
fn classify_http_error(err: &BoxError) -> Classification {
    HttpClassifier::new().classify_outcome(Err::<&http::Response<()>, _>(err))
}

/// The first stream to `/refuse-first` is reset with `REFUSED_STREAM`, to `/reset-first` with
/// `INTERNAL_ERROR`, to `/calm-down-first` with `ENHANCE_YOUR_CALM`; every other stream gets a
/// 200 with a body.
async fn start() -> (ResettingServer, SocketAddr) {
    let resets = |path: &str| match path {
        "/refuse-first" => Some(h2::Reason::REFUSED_STREAM),
        "/reset-first" => Some(h2::Reason::INTERNAL_ERROR),
        "/calm-down-first" => Some(h2::Reason::ENHANCE_YOUR_CALM),
        _ => None,
    };
    ResettingServer::start(resets, |mut respond| {
        let mut body = respond.send_response(Response::new(()), false).unwrap();
        let _ = body.send_data(Bytes::from_static(b"fine"), true);
    })
    .await
}

async fn send(method: http::Method, url: String) -> Result<Response<String>, BoxError> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<ReplayBody<Full<Bytes>>>();
    let mut svc = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(5))
        .attempt_timeout(Duration::from_secs(2))
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(5), 1.0, Duration::from_millis(5))
                .with_jitter(Jitter::None),
        )
        .no_budget()
        .build()
        .unwrap()
        .layer(client);
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(b"order #1")))
        .unwrap();
    let response = svc.ready().await?.call(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(
        parts,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// Sends `method` to `path` on a fresh server, and checks that the first stream's reset was
/// retried once: two streams at the server, a 200 with its body after two attempts.
async fn retried_once(method: http::Method, path: &str) {
    let (server, addr) = start().await;
    let response = send(method, format!("http://{addr}{path}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "fine");
    assert_eq!(response.extensions().get::<Attempts>(), Some(&Attempts(2)));
    assert_eq!(server.streams_to(path), 2);
}

#[tokio::test]
async fn a_refused_stream_was_never_processed_so_even_a_post_is_retried() {
    retried_once(http::Method::POST, "/refuse-first").await;
}

#[tokio::test]
async fn a_reset_stream_is_retried_when_the_method_is_idempotent() {
    retried_once(http::Method::PUT, "/reset-first").await;
}

#[tokio::test]
async fn a_reset_stream_may_have_been_acted_on_so_a_post_is_not_retried() {
    let (server, addr) = start().await;
    let err = send(http::Method::POST, format!("http://{addr}/reset-first"))
        .await
        .unwrap_err();
    assert_eq!(server.streams_to("/reset-first"), 1);
    let h2 = find_cause::<h2::Error>(err.as_ref()).expect("the h2 error is kept as the cause");
    assert_eq!(h2.reason(), Some(h2::Reason::INTERNAL_ERROR));
    // Fatal errors come back as they are: there is no error of ours around it.
    assert!(Error::find(err.as_ref()).is_none(), "{err}");
}

#[tokio::test]
async fn enhance_your_calm_reads_as_the_server_throttling() {
    retried_once(http::Method::GET, "/calm-down-first").await;
    // What h2 itself says of that reset, classified directly.
    let (_server, addr) = start().await;
    let reset = first_stream_error(addr, "/calm-down-first").await;
    assert_eq!(reset.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM));
    let reset: BoxError = reset.into();
    assert_eq!(
        classify_http_error(&reset),
        Classification::retryable(Reason::Throttled)
    );
}

/// The error a bare h2 client gets for the first stream to `path` on the server at `addr`.
async fn first_stream_error(addr: SocketAddr, path: &str) -> h2::Error {
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(socket).await.unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://{addr}{path}"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    response.await.unwrap_err()
}

/// The first error of type `T` in `err`'s chain of sources, `err` itself included.
fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

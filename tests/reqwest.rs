//! The HTTP preset over a real `reqwest::Client` (feature `reqwest`), against a real hyper
//! server on 127.0.0.1 (the demo's flaky server): statuses retried, request bodies replayed
//! byte for byte, reqwest's connect errors retried as never sent (a POST too), reqwest's own
//! timeout retried as an attempt timeout.
#![cfg(feature = "reqwest")]

#[path = "../examples/demo_client/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use server::FlakyServer;
use tower::BoxError;
use tower::{Service, ServiceExt};
use tower_tenacity::classify::{Classification, ClassifyOutcome, NotSent, Reason};
use tower_tenacity::http::{Attempts, HttpClassifier, HttpResilienceLayer};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::{Error, ErrorKind, GiveUp, ResilienceLayer};

/// How the HTTP classifier sees an error alone, whatever the request (the outcome as a breaker
/// counts it).
fn classify_http_error(err: &BoxError) -> Classification {
    HttpClassifier::new().classify_outcome(Err::<&http::Response<()>, _>(err))
}

fn fast() -> HttpResilienceLayer {
    ResilienceLayer::http()
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(5), 1.0, Duration::from_millis(5))
                .with_jitter(Jitter::None),
        )
        .no_budget()
        .build()
        .unwrap()
}

async fn send(
    client: reqwest::Client,
    layer: HttpResilienceLayer,
    request: Request<Full<Bytes>>,
) -> Result<(u16, u32, String), BoxError> {
    let mut svc = layer.reqwest(client);
    let response = svc.ready().await?.call(request).await?;
    let status = response.status().as_u16();
    let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
    let body = response.into_body().collect().await?.to_bytes();
    Ok((
        status,
        attempts,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn a_503_is_retried_and_a_post_body_is_replayed_byte_for_byte() {
    let server = FlakyServer::start().await.unwrap();
    let body: Bytes = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let request = Request::post(server.url("/fail/upload/2/503"))
        .header("idempotency-key", "k-1")
        .body(Full::new(body.clone()))
        .unwrap();
    let (status, attempts, text) = send(client(), fast(), request).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(attempts, 3);
    assert_eq!(
        text,
        server::hash(&body),
        "the server got the same bytes the third time"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_post() {
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let request = Request::post(format!("http://127.0.0.1:{port}/x"))
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let err = send(client(), fast(), request).await.unwrap_err();
    let ours = Error::find(err.as_ref()).expect("retry says why it stopped");
    assert_eq!(
        ours.kind(),
        ErrorKind::GaveUp {
            attempts: 3,
            why: GiveUp::Attempts
        }
    );
    assert_eq!(ours.reason(), Some(Reason::NeverSent(NotSent::Connect)));
    assert!(
        find_cause::<reqwest::Error>(err.as_ref()).is_some_and(reqwest::Error::is_connect),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_not_retried() {
    // The reserved `.invalid` TLD: the resolver refuses it locally (RFC 6761).
    let request = Request::get("http://no-such-host.invalid/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = send(client(), fast(), request).await.unwrap_err();
    assert!(
        Error::find(err.as_ref()).is_none(),
        "a fatal error comes as it is, not as retries that ran out: {err:?}"
    );
    assert_eq!(
        classify_http_error(&err),
        Classification::fatal(Reason::NeverSent(NotSent::NoSuchHost))
    );
}

#[tokio::test]
async fn no_error_tells_the_userinfo_or_the_query_of_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://alice:pw-51c0@127.0.0.1:{port}/x?access_token=tok-93ab#frag");
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let err = send(client(), fast(), request).await.unwrap_err();
    let reqwest = find_cause::<reqwest::Error>(err.as_ref()).unwrap();
    assert_eq!(
        reqwest.url().map(|u| u.as_str()),
        Some(format!("http://127.0.0.1:{port}/x").as_str())
    );
    for text in [err.to_string(), format!("{err:?}"), reqwest.to_string()] {
        for secret in ["alice", "pw-51c0", "tok-93ab", "frag"] {
            assert!(!text.contains(secret), "{secret}: {text}");
        }
    }
}

#[tokio::test]
async fn reqwests_own_timeout_is_an_attempt_timeout_and_retried() {
    let server = FlakyServer::start().await.unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let request = Request::get(server.url("/stall/2000"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = send(client, fast(), request).await.unwrap_err();
    let ours = Error::find(err.as_ref()).unwrap();
    assert_eq!(ours.attempts(), Some(3));
    assert_eq!(
        ours.reason(),
        Some(Reason::Timeout(tower_tenacity::TimeoutScope::Attempt))
    );
    assert_eq!(server.stats.requests_to("/stall/2000"), 3);
}

#[tokio::test]
async fn a_404_is_an_answer_and_comes_as_it_is() {
    let server = FlakyServer::start().await.unwrap();
    let request = Request::get(server.url("/status/404"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, attempts, _) = send(client(), fast(), request).await.unwrap();
    assert_eq!((status, attempts), (404, 1), "a 404 is an answer");
}

/// The first error of type `T` in `err`'s chain of sources, `err` itself included.
fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

//! Timeouts that users keep from tower and tower-http, inside this crate's retry, are timeouts:
//! tower's `Elapsed` is an attempt timeout (feature `tower`), and tower-http's 408 answer is a
//! retryable status. Time is paused.
#![cfg(all(feature = "tower", feature = "http"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tower::BoxError;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_tenacity::classify::{
    Classification, ClassifyOutcome, DefaultClassifier, Reason, classify_error,
};
use tower_tenacity::http::{HttpClassifier, ReplayBody};
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
use tower_tenacity::{Error, ErrorKind, ResilienceLayer, TimeoutScope};

/// How the HTTP classifier sees an error alone, whatever the request (the outcome as a breaker
/// counts it).
fn classify_http_error(err: &BoxError) -> Classification {
    HttpClassifier::new().classify_outcome(Err::<&http::Response<()>, _>(err))
}

/// A service that answers its third call at once and stalls the ones before, and how many
/// calls it had.
fn slow_twice() -> (
    impl Service<
        u32,
        Response = u32,
        Error = BoxError,
        Future = impl Future<Output = Result<u32, BoxError>> + Send,
    > + Clone
    + Send,
    Arc<AtomicU32>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = service_fn(move |x: u32| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if call < 2 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok::<_, BoxError>(x)
        }
    });
    (svc, calls)
}

fn quick() -> ExponentialBackoff {
    ExponentialBackoff::new(Duration::from_millis(10), 1.0, Duration::from_millis(10))
        .with_jitter(Jitter::None)
}

#[test]
fn towers_elapsed_is_an_attempt_timeout_anywhere_in_the_chain() {
    let attempt = Classification::retryable(Reason::Timeout(TimeoutScope::Attempt));
    let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
    assert_eq!(classify_error(elapsed.as_ref()), attempt);
    assert_eq!(classify_http_error(&elapsed), attempt);
    let wrapped: BoxError = Box::new(Wrapped(tower::timeout::error::Elapsed::new()));
    assert_eq!(classify_error(wrapped.as_ref()), attempt);
    assert_eq!(classify_http_error(&wrapped), attempt);
}

/// Another layer's error around a cause.
#[derive(Debug)]
struct Wrapped<E>(E);

impl<E> std::fmt::Display for Wrapped<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the layer below failed")
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Wrapped<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn towers_timeout_inside_retry_is_retried() {
    let (svc, calls) = slow_twice();
    let mut svc = ServiceBuilder::new()
        .layer(
            RetryLayer::builder()
                .classifier(DefaultClassifier)
                .backoff(quick())
                .build()
                .unwrap(),
        )
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)))
        .service(svc);
    let started = tokio::time::Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(2020));
}

#[tokio::test(start_paused = true)]
async fn towers_timeout_that_keeps_firing_ends_as_retries_exhausted() {
    let (svc, calls) = slow_twice();
    let mut svc = ServiceBuilder::new()
        .layer(
            RetryLayer::builder()
                .max_attempts(2)
                .backoff(quick())
                .build()
                .unwrap(),
        )
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)))
        .service(svc);
    let err = svc.ready().await.unwrap().call(7).await.unwrap_err();
    let ours = Error::find(err.as_ref()).expect("retry says why it stopped");
    assert!(matches!(ours.kind(), ErrorKind::GaveUp { attempts: 2, .. }));
    assert_eq!(ours.reason(), Some(Reason::Timeout(TimeoutScope::Attempt)));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn tower_https_timeout_answer_is_retried_by_the_http_preset() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = service_fn(move |_: http::Request<ReplayBody<Full<Bytes>>>| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if call < 2 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok::<_, BoxError>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    // tower-http's timeout answers 408 Request Timeout rather than failing.
    #[allow(deprecated)]
    let timed = tower_http::timeout::TimeoutLayer::new(Duration::from_millis(500)).layer(handler);
    let mut svc = ResilienceLayer::http()
        .classifier(HttpClassifier::new())
        .backoff(quick())
        .build()
        .unwrap()
        .layer(timed);
    let request = http::Request::get("http://in-process/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

//! The deadline and tower's `Buffer`: a `Buffer` makes the first call of the service behind it
//! from its worker task, where the deadline's scope is not; with the `Buffer` outside the
//! deadline, everything the deadline bounds sees it on every attempt. Time is paused.
#![cfg(feature = "http")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tenacity::classify::{Classification, Reason, classify_fn};
use tower_tenacity::context::remaining;
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::http::ServerTimeoutLayer;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, Replay, RetryLayer};

/// Makes a request again with its URI (what these tests' requests have).
#[derive(Clone, Copy)]
struct CopyUri;

impl<Res> Replay<Request<()>, Res> for CopyUri {
    fn replay(&self, kept: &Request<()>) -> Option<Request<()>> {
        let mut copy = Request::new(());
        *copy.uri_mut() = kept.uri().clone();
        Some(copy)
    }
}

/// Each call's instant and the time left it saw; every call answers 503.
type Seen = Arc<Mutex<Vec<(Instant, Option<Duration>)>>>;

/// Where the `Buffer` goes: between the deadline and the retry, or outside the deadline.
#[derive(Clone, Copy, PartialEq)]
enum Buffer {
    Inside,
    Outside,
}

async fn run(buffer: Buffer) -> (Seen, Result<Response<()>, BoxError>) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let retry = RetryLayer::builder()
        .classifier(classify_fn(
            |_: &Request<()>, outcome: Result<&Response<()>, &BoxError>| match outcome {
                Ok(response) if response.status() == 503 => {
                    Classification::retryable(Reason::Status(503))
                }
                Ok(_) => Classification::Success,
                Err(_) => Classification::fatal(Reason::Other("error")),
            },
        ))
        .replay(CopyUri)
        .max_attempts(5)
        .no_budget()
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(100), 1.0, Duration::from_millis(100))
                .with_jitter(Jitter::None),
        )
        .build()
        .unwrap();
    let outside = buffer == Buffer::Outside;
    let mut svc = ServiceBuilder::new()
        .option_layer(outside.then(|| tower::buffer::BufferLayer::new(8)))
        .layer(DeadlineLayer::new(Duration::from_millis(350)))
        .option_layer((!outside).then(|| tower::buffer::BufferLayer::new(8)))
        .layer(retry)
        .service_fn(move |_: Request<()>| {
            record.lock().unwrap().push((Instant::now(), remaining()));
            async { Ok::<_, BoxError>(Response::builder().status(503).body(()).unwrap()) }
        });
    let outcome = svc.ready().await.unwrap().call(Request::new(())).await;
    (seen, outcome)
}

#[tokio::test(start_paused = true)]
async fn with_the_buffer_outside_the_deadline_every_attempt_sees_it() {
    let started = Instant::now();
    let (seen, outcome) = run(Buffer::Outside).await;
    let seen = seen.lock().unwrap();
    let offsets: Vec<Duration> = seen.iter().map(|(at, _)| *at - started).collect();
    let ms = Duration::from_millis;
    assert_eq!(offsets, [ms(0), ms(100), ms(200), ms(300)]);
    let left: Vec<Option<Duration>> = seen.iter().map(|(_, left)| *left).collect();
    assert_eq!(
        left,
        [Some(ms(350)), Some(ms(250)), Some(ms(150)), Some(ms(50))],
        "the first attempt, made by the buffer's worker, too"
    );
    // The fifth attempt would start at 400 ms: past the deadline, so not started; the last 503
    // is the answer.
    assert_eq!(outcome.unwrap().status(), 503);
}

#[tokio::test(start_paused = true)]
async fn with_the_buffer_inside_the_first_call_behind_it_sees_no_deadline() {
    let (seen, _) = run(Buffer::Inside).await;
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].1, None,
        "made by the buffer's worker, outside the deadline's scope"
    );
    assert_eq!(
        seen[1].1,
        Some(Duration::from_millis(250)),
        "retries are made while the caller polls, inside it"
    );
}

#[tokio::test(start_paused = true)]
async fn below_the_buffer_the_carried_deadline_is_enforced_too() {
    // A request that comes with its caller's time left written on it (from another task, here
    // through a `Buffer`'s worker) runs under that deadline: the layer that reads it sits below
    // the buffer, in the task that polls the handler.
    let header = http::HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
    let saw: Arc<Mutex<Option<Duration>>> = Arc::default();
    let record = saw.clone();
    let mut svc = ServiceBuilder::new()
        .buffer(8)
        .layer(
            ServerTimeoutLayer::new(Duration::from_secs(60))
                .deadline_header(header.clone())
                .margin(Duration::ZERO),
        )
        .service_fn(move |_: Request<()>| {
            *record.lock().unwrap() = remaining();
            async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, std::convert::Infallible>(Response::new(String::new()))
            }
        });
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(header, http::HeaderValue::from_static("200"));
    let deadline = Instant::now() + Duration::from_millis(200);
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(Instant::now(), deadline, "answered at the carried deadline");
    assert_eq!(*saw.lock().unwrap(), Some(Duration::from_millis(200)));
}

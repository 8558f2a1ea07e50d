//! The HTTP preset's deadline over what happens between attempts: draining a retried response
//! does not hold the call past its deadline.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{Empty, StreamBody};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::{Error, ResilienceLayer, TimeoutScope};

type Endless = StreamBody<futures_util::stream::Pending<Result<Frame<Bytes>, BoxError>>>;

/// A 503 whose body never comes: the retry drains it (for up to 100 ms) while it backs off
/// (10 ms). The deadline (50 ms) falls in between: the call ends there, not when the drain
/// gives up.
#[tokio::test(start_paused = true)]
async fn a_drain_does_not_hold_the_call_past_its_deadline() {
    let layer = ResilienceLayer::http()
        .total_timeout(Duration::from_millis(50))
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(10), 1.0, Duration::from_millis(10))
                .with_jitter(Jitter::None),
        )
        .no_budget()
        .build()
        .unwrap();
    let client = service_fn(|_: Request<ReplayBody<Empty<Bytes>>>| async {
        let body: Endless = StreamBody::new(futures_util::stream::pending());
        let response = Response::builder().status(503).body(body).unwrap();
        Ok::<_, BoxError>(response)
    });
    let mut svc = layer.layer(client);
    let start = Instant::now();
    let request = Request::get("http://example.test/")
        .body(Empty::new())
        .unwrap();
    let err = svc.ready().await.unwrap().call(request).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50), "{err}");
    let error = Error::find(err.as_ref()).expect("ours");
    assert_eq!(error.timeout_scope(), Some(TimeoutScope::Total), "{error}");
}

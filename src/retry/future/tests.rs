use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::{Classification, Reason, classify_fn};
use crate::context::{Bound, enter};
use crate::error::{BoxError, Error, TimeoutScope};
use crate::retry::{ExponentialBackoff, Jitter, RetryLayer};

/// A retry future waiting to send its next attempt when the deadline around it has passed
/// ends the call: it must not return `Pending` trusting a timer that may not be there.
#[tokio::test(start_paused = true)]
async fn past_the_deadline_a_retry_waiting_to_send_ends_the_call() {
    let classifier = classify_fn(|_: &(), outcome: Result<&u16, &BoxError>| match outcome {
        Ok(200) => Classification::Success,
        _ => Classification::Retryable {
            reason: Reason::Status(503),
            after: None,
        },
    });
    let layer = RetryLayer::builder()
        .classifier(classifier)
        .no_budget()
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(10), 1.0, Duration::from_millis(10))
                .with_jitter(Jitter::None),
        )
        .build()
        .unwrap();
    let mut calls = 0;
    let mut svc = layer.layer(tower::service_fn(move |()| {
        calls += 1;
        let status = if calls == 1 { 503 } else { 200 };
        async move { Ok::<u16, BoxError>(status) }
    }));
    // A deadline the backoff ends just before; by the time the task runs again it has passed.
    let deadline = Instant::now() + Duration::from_micros(10_500);
    let mut cx = Context::from_waker(Waker::noop());
    let bound = Bound::Fixed(deadline, Duration::from_micros(10_500));
    let mut future = pin!(enter(bound, || svc.call(())));
    let first = enter(bound, || future.as_mut().poll(&mut cx));
    assert!(first.is_pending(), "backing off");
    tokio::time::advance(Duration::from_millis(20)).await;
    let polled = enter(bound, || future.as_mut().poll(&mut cx));
    let Poll::Ready(Err(err)) = polled else {
        panic!("pending with nothing to wake it, or sent past the deadline: {polled:?}");
    };
    let error = Error::find(err.as_ref()).expect("ours");
    assert_eq!(error.timeout_scope(), Some(TimeoutScope::Total), "{error}");
    assert_eq!(error.attempts(), Some(1));
}

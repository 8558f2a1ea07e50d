//! The retry loop: what is retried, when, how often, and what the caller gets when it stops.
//! Time is paused: every instant asserted here is exact.

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reply, Script, StatusClassifier, Step, ms, secs};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::GiveUp;
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter, Replay, RetryLayer};
use tower_tenacity::timeout::TimeoutLayer;
use tower_tenacity::{Error, ErrorKind, TimeoutScope};
use tower_test::mock;

fn fixed(delay: Duration) -> ExponentialBackoff {
    ExponentialBackoff::new(delay, 1.0, delay).with_jitter(Jitter::None)
}

/// The retry layer's builder as most tests start it (a macro: the builder's type is the
/// crate's own, so no function can return it).
macro_rules! builder {
    () => {
        RetryLayer::builder()
            .classifier(StatusClassifier)
            .no_budget()
            .backoff(fixed(ms(100)))
    };
}

/// Never makes a request again.
#[derive(Clone, Copy)]
struct NoReplay;

impl<Req, Res> Replay<Req, Res> for NoReplay {
    fn replay(&self, _kept: &Req) -> Option<Req> {
        None
    }
}

/// Makes requests again with a closure.
#[derive(Clone, Copy)]
struct ReplayWith<F>(F);

impl<Req, Res, F: Fn(&Req) -> Option<Req>> Replay<Req, Res> for ReplayWith<F> {
    fn replay(&self, kept: &Req) -> Option<Req> {
        (self.0)(kept)
    }
}

fn events() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |event: &Event| sink.lock().unwrap().push(*event))
}

/// Why the retry loop gave up, as its one give-up event says.
fn give_up(seen: &Mutex<Vec<Event>>) -> Option<GiveUp> {
    seen.lock().unwrap().iter().find_map(|e| match e {
        Event::GiveUp { why, .. } => Some(*why),
        _ => None,
    })
}

async fn call<S: Service<&'static str>>(svc: &mut S) -> Result<S::Response, S::Error> {
    svc.ready().await?.call("req").await
}

fn ours(err: &BoxError) -> &Error {
    Error::find(err.as_ref()).unwrap_or_else(|| panic!("not one of ours: {err}"))
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_until_success() {
    let script = Script::new(
        [
            Step::Fail(io::ErrorKind::ConnectionReset),
            Step::Fail(io::ErrorKind::ConnectionRefused),
        ],
        Step::Reply(200),
    );
    let mut svc = builder!().build().unwrap().layer(script.clone());
    let reply = call(&mut svc).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(script.call_offsets(), [ms(0), ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn fatal_errors_are_returned_unchanged_after_one_attempt() {
    let script = Script::always(Step::Fail(io::ErrorKind::PermissionDenied));
    let mut svc = builder!().build().unwrap().layer(script.clone());
    let err = call(&mut svc).await.unwrap_err();
    assert_eq!(script.calls(), 1);
    let io = err
        .downcast_ref::<io::Error>()
        .expect("the inner error itself");
    assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
}

#[tokio::test(start_paused = true)]
async fn exhausted_errors_say_attempts_limit_and_cause() {
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionRefused));
    let mut svc = builder!()
        .max_attempts(4)
        .build()
        .unwrap()
        .layer(script.clone());
    let err = call(&mut svc).await.unwrap_err();
    assert_eq!(script.calls(), 4);
    let error = ours(&err);
    assert_eq!(
        error.kind(),
        ErrorKind::GaveUp {
            attempts: 4,
            why: GiveUp::Attempts
        }
    );
    assert_eq!(error.attempts(), Some(4));
    assert_eq!(
        error.to_string(),
        "request failed: connection refused (attempt 4 of 4)"
    );
    let cause = std::error::Error::source(error).expect("the last cause is kept");
    assert_eq!(
        cause.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_response_is_returned_as_it_is() {
    let script = Script::always(Step::Reply(503));
    let mut svc = builder!().build().unwrap().layer(script.clone());
    let reply = call(&mut svc).await.unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(script.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn fatal_responses_are_not_retried() {
    let script = Script::always(Step::Reply(404));
    let (seen, observer) = events();
    let mut svc = builder!()
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    assert_eq!(call(&mut svc).await.unwrap().status, 404);
    assert_eq!(script.calls(), 1);
    assert_eq!(give_up(&seen), Some(GiveUp::Fatal));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_before_an_attempt_that_would_start_too_late() {
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionReset));
    let mut svc = builder!()
        .max_attempts(100)
        .backoff(fixed(secs(1)))
        .max_elapsed(ms(3500))
        .build()
        .unwrap()
        .layer(script.clone());
    let start = Instant::now();
    let err = call(&mut svc).await.unwrap_err();
    // Attempts at 0, 1, 2, 3 s; the next would start at 4 s > 3.5 s, so retry stops at 3 s.
    assert_eq!(script.call_offsets(), [secs(0), secs(1), secs(2), secs(3)]);
    assert_eq!(start.elapsed(), secs(3));
    assert_eq!(
        ours(&err).kind(),
        ErrorKind::GaveUp {
            attempts: 4,
            why: GiveUp::Elapsed
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_hint_replaces_the_backoff() {
    let script = Script::new([Step::Hint(secs(7))], Step::Reply(200));
    let (seen, observer) = events();
    let mut svc = builder!()
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    assert_eq!(call(&mut svc).await.unwrap().status, 200);
    assert_eq!(script.call_offsets(), [secs(0), secs(7)]);
    let retry = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            Event::Retry { delay, hinted, .. } => Some((*delay, *hinted)),
            _ => None,
        })
        .unwrap();
    assert_eq!(retry, (secs(7), true));
}

#[tokio::test(start_paused = true)]
async fn a_hint_over_the_cap_ends_the_retries_at_once() {
    let script = Script::always(Step::Hint(secs(90)));
    let (seen, observer) = events();
    let mut svc = builder!()
        .max_retry_after(secs(60))
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    let start = Instant::now();
    let reply = call(&mut svc).await.unwrap();
    assert_eq!(
        reply,
        Reply {
            status: 503,
            retry_after: Some(secs(90))
        }
    );
    assert_eq!(script.calls(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        give_up(&seen),
        Some(GiveUp::RetryAfter {
            requested: secs(90),
            cap: secs(60)
        })
    );
}

/// A cap of "no cap" and a server asking for the longest wait there is: the wait is far
/// beyond any clock, and the layer neither panics on the arithmetic nor gives up; the caller's
/// own deadline (here, dropping the call) is what ends it.
#[tokio::test(start_paused = true)]
async fn an_endless_hint_under_no_cap_waits_without_panicking() {
    let script = Script::always(Step::Hint(Duration::MAX));
    let (seen, observer) = events();
    let mut svc = builder!()
        .max_retry_after(Duration::MAX)
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    let waited = tokio::time::timeout(secs(3600), call(&mut svc)).await;
    assert!(waited.is_err(), "still waiting out the hint an hour later");
    assert_eq!(script.calls(), 1);
    let delay = seen.lock().unwrap().iter().find_map(|e| match e {
        Event::Retry { delay, .. } => Some(*delay),
        _ => None,
    });
    assert_eq!(delay, Some(Duration::MAX));
}

/// The same for a schedule whose delays are beyond any clock: a `max_elapsed` still ends the
/// retries, with its own reason.
#[tokio::test(start_paused = true)]
async fn an_unbounded_backoff_meets_max_elapsed_without_panicking() {
    let script = Script::always(Step::Reply(503));
    let (seen, observer) = events();
    let backoff =
        ExponentialBackoff::new(secs(u64::MAX), 2.0, Duration::MAX).with_jitter(Jitter::None);
    let mut svc = builder!()
        .backoff(backoff)
        .max_attempts(10)
        .max_elapsed(secs(60))
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    assert_eq!(call(&mut svc).await.unwrap().status, 503);
    assert_eq!(script.calls(), 1);
    assert_eq!(give_up(&seen), Some(GiveUp::Elapsed));
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_deadline_fails_fast() {
    let script = Script::always(Step::Hint(secs(20)));
    let retry = builder!().build().unwrap();
    let mut svc = DeadlineLayer::new(secs(10)).layer(retry.layer(script.clone()));
    let start = Instant::now();
    let reply = call(&mut svc).await.unwrap();
    assert_eq!(reply.status, 503, "the last response comes back at once");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(script.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_never_sleeps_past_the_deadline() {
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionReset));
    let retry = builder!()
        .max_attempts(10)
        .backoff(fixed(secs(3)))
        .build()
        .unwrap();
    let mut svc = DeadlineLayer::new(secs(5)).layer(retry.layer(script.clone()));
    let start = Instant::now();
    let err = call(&mut svc).await.unwrap_err();
    // Attempt 2 at 3 s fails; a 3 s backoff would end at 6 s, past the 5 s deadline: stop now.
    assert_eq!(script.call_offsets(), [secs(0), secs(3)]);
    assert_eq!(start.elapsed(), secs(3));
    let error = ours(&err);
    assert_eq!(
        error.kind(),
        ErrorKind::GaveUp {
            attempts: 2,
            why: GiveUp::Deadline
        }
    );
    assert_eq!(
        error.to_string(),
        "request failed: connection reset (attempt 2 of 10; not retried: the backoff would reach the deadline)"
    );
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_are_retried() {
    let script = Script::new([Step::Stall, Step::Stall], Step::Reply(200));
    let retry = builder!().build().unwrap();
    let mut svc = retry.layer(TimeoutLayer::new(secs(2)).layer(script.clone()));
    let start = Instant::now();
    assert_eq!(call(&mut svc).await.unwrap().status, 200);
    assert_eq!(script.call_offsets(), [ms(0), ms(2100), ms(4200)]);
    assert_eq!(start.elapsed(), ms(4200));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_an_attempt_and_never_overshoots() {
    let script = Script::always(Step::Stall);
    let retry = builder!().max_attempts(5).build().unwrap();
    let mut svc = DeadlineLayer::new(secs(5))
        .layer(retry.layer(TimeoutLayer::new(secs(2)).layer(script.clone())));
    let start = Instant::now();
    let err = call(&mut svc).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(5), "exactly the deadline");
    assert_eq!(script.call_offsets(), [ms(0), ms(2100), ms(4200)]);
    let error = ours(&err);
    assert_eq!(
        error.kind(),
        ErrorKind::Timeout {
            scope: TimeoutScope::Total,
            after: secs(5)
        }
    );
    assert_eq!(
        error.to_string(),
        "request exceeded its total deadline of 5s (attempt 3 of 5)"
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_timeout_reads_as_such() {
    let script = Script::always(Step::Stall);
    let retry = builder!().build().unwrap();
    let mut svc = retry.layer(TimeoutLayer::new(secs(2)).layer(script.clone()));
    let err = call(&mut svc).await.unwrap_err();
    let error = ours(&err);
    assert_eq!(
        error.to_string(),
        "request timed out after 2s (attempt 3 of 3)"
    );
    assert_eq!(error.timeout_scope(), Some(TimeoutScope::Attempt));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_is_sent_once_and_says_so() {
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionReset));
    let (seen, observer) = events();
    let mut svc = builder!()
        .replay(NoReplay)
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    let err = call(&mut svc).await.unwrap_err();
    assert_eq!(script.calls(), 1);
    assert_eq!(
        ours(&err).kind(),
        ErrorKind::GaveUp {
            attempts: 1,
            why: GiveUp::NotReplayable
        }
    );
    assert!(
        ours(&err)
            .to_string()
            .ends_with("(attempt 1 of 3; not retried: the request cannot be sent again)")
    );
    assert_eq!(give_up(&seen), Some(GiveUp::NotReplayable));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_can_no_longer_be_copied_stops_the_retries() {
    let script = Script::always(Step::Reply(503));
    // The first copy (kept before sending) works; none after it does.
    let copies = Arc::new(Mutex::new(0));
    let counter = copies.clone();
    let replay = ReplayWith(move |req: &&'static str| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        (*n == 1).then_some(*req)
    });
    let (seen, observer) = events();
    let mut svc = builder!()
        .replay(replay)
        .observer(observer)
        .build()
        .unwrap()
        .layer(script.clone());
    assert_eq!(call(&mut svc).await.unwrap().status, 503);
    assert_eq!(script.calls(), 1);
    assert_eq!(give_up(&seen), Some(GiveUp::NotReplayable));
}

#[tokio::test(start_paused = true)]
async fn retry_waits_for_readiness_before_reissuing() {
    let (mock, mut handle) = mock::pair::<String, Reply>();
    let mut svc = builder!().build().unwrap().layer(mock);
    handle.allow(1);
    let task = tokio::spawn(async move { svc.ready().await?.call("req".to_owned()).await });

    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, "req");
    respond.send_error(io::Error::from(io::ErrorKind::ConnectionReset));

    // Well past the backoff, the service is still not ready: no second request may arrive.
    tokio::time::sleep(secs(5)).await;
    let early = tokio::time::timeout(secs(5), handle.next_request()).await;
    assert!(early.is_err(), "no attempt before the service is ready");

    handle.allow(1);
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, "req", "the retried request is the same");
    respond.send_response(Reply {
        status: 200,
        retry_after: None,
    });
    assert_eq!(task.await.unwrap().unwrap().status, 200);
}

#[tokio::test(start_paused = true)]
async fn readiness_errors_surface() {
    let (mock, mut handle) = mock::pair::<String, Reply>();
    let mut svc = builder!().build().unwrap().layer(mock);
    handle.allow(1);
    let task = tokio::spawn(async move { svc.ready().await?.call("req".to_owned()).await });
    let (_, respond) = handle.next_request().await.unwrap();
    handle.send_error("circuit open");
    respond.send_error(io::Error::from(io::ErrorKind::ConnectionReset));
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "circuit open");
}

#[tokio::test(start_paused = true)]
async fn readiness_errors_surface_from_the_layer_itself() {
    let (mock, mut handle) = mock::pair::<String, Reply>();
    let mut svc = builder!().build().unwrap().layer(mock);
    handle.send_error("not ready");
    match ServiceExt::<String>::ready(&mut svc).await {
        Err(err) => assert_eq!(err.to_string(), "not ready"),
        Ok(_) => panic!("poll_ready should fail"),
    }
}

/// The three layers around any `Send + Sync` service box as a `BoxCloneSyncService`, and their
/// calls can be spawned.
#[tokio::test(start_paused = true)]
async fn the_stack_boxes_and_its_calls_spawn() {
    let script = Script::new(
        [Step::Fail(io::ErrorKind::ConnectionReset)],
        Step::Reply(200),
    );
    let retry = builder!().build().unwrap();
    let svc = DeadlineLayer::new(secs(10))
        .layer(retry.layer(TimeoutLayer::new(secs(2)).layer(script.clone())));
    let boxed: tower::util::BoxCloneSyncService<&'static str, Reply, BoxError> =
        tower::util::BoxCloneSyncService::new(svc);
    let reply = tokio::spawn(boxed.oneshot("req")).await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(script.calls(), 2);
}

/// An error type this crate knows nothing of (as `reqwest::Error` is): the default classifier
/// reads its cause chain like any other, with no trait to implement.
#[derive(Debug)]
struct ForeignError(io::Error);

impl std::fmt::Display for ForeignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a foreign client failed")
    }
}

impl std::error::Error for ForeignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn the_default_classifier_reads_a_foreign_error_type() {
    let calls = Arc::new(Mutex::new(0u32));
    let counter = calls.clone();
    let foreign = tower::service_fn(move |_: ()| {
        let call = {
            let mut calls = counter.lock().unwrap();
            *calls += 1;
            *calls
        };
        async move {
            match call {
                1 => Err(ForeignError(io::ErrorKind::ConnectionReset.into())),
                2 => Err(ForeignError(io::ErrorKind::PermissionDenied.into())),
                _ => Ok("never"),
            }
        }
    });
    let mut svc = RetryLayer::builder()
        .no_budget()
        .backoff(fixed(ms(10)))
        .build()
        .unwrap()
        .layer(foreign);
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        *calls.lock().unwrap(),
        2,
        "the reset retried, the refusal fatal"
    );
    let foreign = err
        .downcast_ref::<ForeignError>()
        .expect("passed through as it is");
    assert_eq!(foreign.0.kind(), io::ErrorKind::PermissionDenied);
}

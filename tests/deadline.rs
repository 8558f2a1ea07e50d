//! A deadline arms no timer of its own while a timer inside it (an attempt timeout, a backoff
//! sleep, a tighter deadline) will wake the task first. These tests check that it still fires on
//! time whenever that promise does not hold: a layer in between that lets go of the timer, a
//! looser timer inside, deadlines nested either way round.

mod common;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Script, StatusClassifier, Step, call, ms, secs};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service};
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
use tower_tenacity::timeout::TimeoutLayer;
use tower_tenacity::{Error, TimeoutScope};

/// A layer that polls its inner future once, drops it, and then waits for nothing: whatever
/// timer the inner future armed is gone, though the call is still pending.
#[derive(Clone)]
struct Abandon<S>(S);

impl<S: Service<()>> Service<()> for Abandon<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Abandoned<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: ()) -> Self::Future {
        Abandoned(Some(Box::pin(self.0.call(request))))
    }
}

struct Abandoned<F>(Option<Pin<Box<F>>>);

impl<F: Future> Future for Abandoned<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Some(mut inner) = self.0.take() {
            if let Poll::Ready(out) = inner.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            drop(inner);
        }
        Poll::Pending
    }
}

/// Checks that the call fails with this crate's timeout error of `scope`, exactly `after` from
/// its start (rather than hanging: a minute without an answer fails the test).
async fn fails_with<S>(svc: &mut S, scope: TimeoutScope, after: Duration)
where
    S: Service<(), Error = BoxError>,
    S::Response: std::fmt::Debug,
{
    let start = Instant::now();
    let outcome = tokio::time::timeout(secs(60), call(svc)).await;
    let err = outcome
        .expect("no timer fired")
        .expect_err("the call was meant to fail");
    let error = err.downcast::<Error>().expect("one of this crate's errors");
    assert_eq!(error.timeout_scope(), Some(scope), "{error}");
    assert_eq!(start.elapsed(), after, "{error}");
}

/// Retries up to `max_attempts` after 200 ms each time, with no budget in the way.
fn retry_every_200ms(max_attempts: u32) -> RetryLayer<StatusClassifier> {
    RetryLayer::builder()
        .classifier(StatusClassifier)
        .max_attempts(max_attempts)
        .backoff(ExponentialBackoff::new(ms(200), 1.0, ms(200)).with_jitter(Jitter::None))
        .no_budget()
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_dropped_attempt_timer_leaves_the_deadline_to_fire() {
    let inner = TimeoutLayer::new(ms(500)).layer(Script::always(Step::Stall));
    let mut svc = DeadlineLayer::new(secs(1)).layer(Abandon(inner));
    fails_with(&mut svc, TimeoutScope::Total, secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_backoff_timer_leaves_the_deadline_to_fire() {
    let failing = Script::always(Step::Fail(io::ErrorKind::ConnectionReset));
    let inner = retry_every_200ms(3).layer(failing);
    let mut svc = DeadlineLayer::new(secs(1)).layer(Abandon(inner));
    fails_with(&mut svc, TimeoutScope::Total, secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_tighter_of_deadline_and_attempt_timeout_fires() {
    let cases = [
        (secs(10), secs(1), TimeoutScope::Attempt),
        (secs(1), secs(10), TimeoutScope::Total),
    ];
    for (total, attempt, fired) in cases {
        let script = Script::always(Step::Stall);
        let mut svc = DeadlineLayer::new(total).layer(TimeoutLayer::new(attempt).layer(script));
        fails_with(&mut svc, fired, secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn nested_deadlines_fire_at_the_tighter_one_either_way_round() {
    for (outer, inner) in [(secs(10), secs(1)), (secs(1), secs(10))] {
        let timed_out = TimeoutLayer::new(secs(5)).layer(Script::always(Step::Stall));
        let mut svc = DeadlineLayer::new(outer).layer(DeadlineLayer::new(inner).layer(timed_out));
        fails_with(&mut svc, TimeoutScope::Total, secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_loop_under_a_deadline_ends_at_the_deadline() {
    // Attempt timeouts (300 ms) and backoffs (200 ms) each wake the task before the deadline;
    // the attempt that starts at 1.0 s would run past it, so the deadline fires at 1.2 s.
    let script = Script::always(Step::Stall);
    let attempts = TimeoutLayer::new(ms(300)).layer(script.clone());
    let mut svc = DeadlineLayer::new(ms(1200)).layer(retry_every_200ms(10).layer(attempts));
    fails_with(&mut svc, TimeoutScope::Total, ms(1200)).await;
    assert_eq!(script.call_offsets(), [ms(0), ms(500), ms(1000)]);
}

/// A backoff that ends a fraction of a millisecond before the deadline passes the "ends
/// before the deadline" check, but tokio's timer fires on whole milliseconds: the sleep wakes
/// at the deadline itself. No attempt may start then, whatever the timer's resolution.
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_at_the_deadline_after_a_backoff_that_wakes_late() {
    for backoff_micros in [299_001, 299_500, 299_999] {
        let script = Script::always(Step::Reply(503));
        let backoff = Duration::from_micros(backoff_micros);
        let retry = RetryLayer::builder()
            .classifier(StatusClassifier)
            .no_budget()
            .backoff(ExponentialBackoff::new(backoff, 1.0, backoff).with_jitter(Jitter::None))
            .build()
            .unwrap();
        let mut svc = DeadlineLayer::new(ms(300)).layer(retry.layer(script.clone()));
        let started = Instant::now();
        let err = call(&mut svc).await.unwrap_err();
        let err = Error::find(err.as_ref()).expect("the deadline's error");
        assert_eq!(err.timeout_scope(), Some(TimeoutScope::Total), "{err}");
        assert_eq!(started.elapsed(), ms(300));
        assert_eq!(
            script.call_offsets(),
            [Duration::ZERO],
            "backoff of {backoff:?}: nothing sent at or after the deadline"
        );
    }
}

/// The same when the service is slow to become ready: readiness comes at the deadline itself,
/// and the attempt is not sent then.
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_when_readiness_comes_at_the_deadline() {
    let script = Script::always(Step::Reply(503));
    let retry = RetryLayer::builder()
        .classifier(StatusClassifier)
        .no_budget()
        .backoff(ExponentialBackoff::new(ms(100), 1.0, ms(100)).with_jitter(Jitter::None))
        .build()
        .unwrap();
    let slow_ready = SlowReady {
        inner: script.clone(),
        called: Arc::new(AtomicBool::new(false)),
        sleep: None,
    };
    let mut svc = DeadlineLayer::new(ms(300)).layer(retry.layer(slow_ready));
    let started = Instant::now();
    let err = call(&mut svc).await.unwrap_err();
    assert_eq!(
        Error::find(err.as_ref()).and_then(Error::timeout_scope),
        Some(TimeoutScope::Total)
    );
    assert_eq!(started.elapsed(), ms(300));
    assert_eq!(script.call_offsets(), [Duration::ZERO]);
}

/// Ready at once until its first call (in any clone); after that, ready 200 ms after being
/// asked.
struct SlowReady<S> {
    inner: S,
    called: Arc<AtomicBool>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: Clone> Clone for SlowReady<S> {
    fn clone(&self) -> Self {
        SlowReady {
            inner: self.inner.clone(),
            called: self.called.clone(),
            sleep: None,
        }
    }
}

impl<S: Service<()>> Service<()> for SlowReady<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.called.load(Ordering::SeqCst) {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(ms(200))));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ()) -> Self::Future {
        self.called.store(true, Ordering::SeqCst);
        self.sleep = None;
        self.inner.call(request)
    }
}

/// A stack built without a total deadline bounds each attempt and nothing more: a stalled
/// service is tried `max_attempts` times, each cut by the attempt timeout.
#[tokio::test(start_paused = true)]
async fn without_a_total_deadline_only_the_attempts_bound_a_call() {
    let script = Script::always(Step::Stall);
    let mut svc = tower_tenacity::ResilienceLayer::builder(StatusClassifier)
        .no_total_timeout()
        .attempt_timeout(secs(4))
        .backoff(ExponentialBackoff::new(secs(1), 1.0, secs(1)).with_jitter(Jitter::None))
        .no_budget()
        .build()
        .unwrap()
        .layer(script.clone());
    let started = Instant::now();
    let err = call(&mut svc).await.unwrap_err();
    let err = Error::find(err.as_ref()).unwrap();
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(err.timeout_scope(), Some(TimeoutScope::Attempt), "{err}");
    assert_eq!(
        started.elapsed(),
        secs(14),
        "3 × 4 s and 2 × 1 s, past the 10 s default"
    );
    assert_eq!(script.call_offsets(), [secs(0), secs(5), secs(10)]);
}

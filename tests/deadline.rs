//! A deadline arms no timer of its own while a timer inside it (an attempt timeout, a backoff
//! sleep, a tighter deadline) will wake the task first. These tests check that it still fires on
//! time whenever that promise does not hold: a layer in between that lets go of the timer, a
//! looser timer inside, deadlines nested either way round.

mod common;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Script, StatusClassifier, Step, call, ms, secs};
use tokio::time::Instant;
use tower::{Layer, Service};
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
use tower_tenacity::timeout::{DeadlineLayer, TimeoutLayer};
use tower_tenacity::{BoxError, Error, TimeoutScope};

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

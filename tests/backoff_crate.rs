//! The optional `backoff` feature: any `backoff::backoff::Backoff` drives the delays.

mod common;

use std::io;
use std::time::Duration;

use common::{Script, Step, ms};
use tower::Layer;
use tower_tenacity::retry::RetryLayer;
use tower_tenacity::{Error, ErrorKind, GiveUp};

/// 30 ms, then 70 ms, then the schedule is over.
#[derive(Clone, Default)]
struct TwoSteps(usize);

impl backoff::backoff::Backoff for TwoSteps {
    fn next_backoff(&mut self) -> Option<Duration> {
        self.0 += 1;
        [ms(30), ms(70)].get(self.0 - 1).copied()
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}

#[tokio::test(start_paused = true)]
async fn a_backoff_crate_schedule_sets_the_delays_and_its_end_stops_retrying() {
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionReset));
    let mut svc = RetryLayer::builder()
        .max_attempts(10)
        .no_budget()
        .backoff_schedule(TwoSteps::default())
        .build()
        .unwrap()
        .layer(script.clone());
    let err = common::call(&mut svc).await.unwrap_err();
    assert_eq!(script.call_offsets(), [ms(0), ms(30), ms(100)]);
    assert_eq!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::GaveUp {
            attempts: 3,
            why: GiveUp::Elapsed
        }
    );
}

#[tokio::test(start_paused = true)]
async fn every_request_starts_the_schedule_afresh() {
    let script = Script::new(
        [
            Step::Fail(io::ErrorKind::ConnectionReset),
            Step::Reply(200),
            Step::Fail(io::ErrorKind::ConnectionReset),
        ],
        Step::Reply(200),
    );
    let mut svc = RetryLayer::builder()
        .no_budget()
        .backoff_schedule(TwoSteps::default())
        .build()
        .unwrap()
        .layer(script.clone());
    for _ in 0..2 {
        let reply = common::call(&mut svc).await.unwrap();
        assert_eq!(reply.status, 200);
    }
    // Both first retries waited the schedule's first step.
    assert_eq!(script.call_offsets(), [ms(0), ms(30), ms(30), ms(60)]);
}

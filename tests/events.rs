//! What operators read: a `tracing` event per attempt, per retry (attempt, delay, reason) and
//! at give-up, and the same as data through the observer hook.

mod common;

use std::io;
use std::sync::{Arc, Mutex};

use common::{Buffer, Script, StatusClassifier, Step, ms};
use tower::Layer;
use tower_tenacity::Attempt;
use tower_tenacity::GiveUp;
use tower_tenacity::classify::{Classification, Reason};
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter, RetryLayer};
use tracing::Instrument;

fn layer(observer: impl Fn(&Event) + Send + Sync + 'static) -> RetryLayer<StatusClassifier> {
    RetryLayer::builder()
        .classifier(StatusClassifier)
        .no_budget()
        .backoff(ExponentialBackoff::new(ms(100), 2.0, ms(1000)).with_jitter(Jitter::None))
        .observer(observer)
        .build()
        .unwrap()
}

fn log() -> &'static Buffer {
    common::global_log()
}

#[tokio::test(start_paused = true)]
async fn each_attempt_retry_and_give_up_is_a_tracing_event() {
    let buffer = log();
    let script = Script::always(Step::Fail(io::ErrorKind::ConnectionRefused));
    let mut svc = layer(|_: &Event| {}).layer(script);
    let call = async { common::call(&mut svc).await.unwrap_err() };
    // The span tells this test's lines from the other tests'.
    call.instrument(tracing::info_span!("traced")).await;

    let log = buffer.text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("traced:")).collect();
    let log = lines.join("\n");
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("attempt attempt="), 3, "{log}");
    assert_eq!(count("attempt finished"), 3, "{log}");
    assert_eq!(count("retrying"), 2, "{log}");
    assert!(
        log.contains("INFO")
            && log.contains(
                "retrying attempt=1 max_attempts=3 delay_ms=100 reason=connection refused"
            ),
        "{log}"
    );
    assert!(log.contains("delay_ms=200"), "{log}");
    assert!(
        log.contains("WARN") && log.contains("giving up attempt=3 max_attempts=3 why=attempts exhausted reason=connection refused"),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_the_same_story_as_data() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let script = Script::new([Step::Reply(503)], Step::Reply(200));
    let mut svc = layer(move |event: &Event| sink.lock().unwrap().push(*event)).layer(script);
    let reply = common::call(&mut svc).await.unwrap();
    assert_eq!(reply.status, 200);

    let first = Attempt { number: 1, max: 3 };
    let second = Attempt { number: 2, max: 3 };
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            Event::Attempt { attempt: first },
            Event::Outcome {
                attempt: first,
                classification: Classification::retryable(Reason::Status(503)),
                // Timed, since an observer reads it; the script answers at once.
                elapsed: Some(ms(0)),
            },
            Event::Retry {
                attempt: first,
                delay: ms(100),
                reason: Reason::Status(503),
                hinted: false
            },
            Event::Attempt { attempt: second },
            Event::Outcome {
                attempt: second,
                classification: Classification::Success,
                elapsed: Some(ms(0)),
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn give_up_events_name_the_limit() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut svc = layer(move |event: &Event| sink.lock().unwrap().push(*event))
        .layer(Script::always(Step::Reply(503)));
    common::call(&mut svc).await.unwrap();
    let last = *events.lock().unwrap().last().unwrap();
    assert_eq!(
        last,
        Event::GiveUp {
            attempt: Attempt { number: 3, max: 3 },
            why: GiveUp::Attempts,
            reason: Some(Reason::Status(503)),
        }
    );
}

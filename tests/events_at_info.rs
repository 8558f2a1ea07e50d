//! With a subscriber at INFO, the level operators run at, retries and give-ups are logged
//! (the quiet-path check must not skip them). Its own binary: the subscriber is global.

mod common;

use std::io;

use common::{Buffer, Script, Step, ms};
use tower::Layer;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};

#[tokio::test(start_paused = true)]
async fn retries_and_give_ups_reach_an_info_subscriber() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    let mut svc = RetryLayer::builder()
        .no_budget()
        .backoff(ExponentialBackoff::new(ms(100), 2.0, ms(1000)).with_jitter(Jitter::None))
        .build()
        .unwrap()
        .layer(Script::always(Step::Fail(io::ErrorKind::ConnectionReset)));
    common::call(&mut svc).await.unwrap_err();
    let log = buffer.text();
    assert_eq!(log.matches(" INFO ").count(), 2, "{log}");
    assert_eq!(log.matches("retrying attempt=").count(), 2, "{log}");
    assert_eq!(log.matches("giving up attempt=3").count(), 1, "{log}");
    assert!(!log.contains("TRACE") && !log.contains("DEBUG"), "{log}");
}

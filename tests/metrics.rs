//! The `metrics` feature against a real hyper server on 127.0.0.1 (the demo's flaky server),
//! read back through `metrics-util`'s debugging recorder: the HTTP preset's attempts by outcome
//! and reason, its retries, the attempts' latency and the breaker's rejections, each with the
//! host its state is kept under; and the admission layer's and the throttle's rejections.

#[path = "../examples/demo_client/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics::{SharedString, Unit};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use server::FlakyServer;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
use tower_tenacity::breaker::BreakerConfig;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::throttle::{Throttle, ThrottleLayer};

type Snapshot = Vec<(CompositeKey, Option<Unit>, Option<SharedString>, DebugValue)>;

/// What was recorded since the last look (reading drains the recorder).
fn snapshot(snapshotter: &Snapshotter) -> Snapshot {
    snapshotter.snapshot().into_vec()
}

/// The metric `name` whose labels include every one of `labels`: counts summed, and how many
/// histogram samples.
fn read(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> (u64, usize) {
    let (mut count, mut samples) = (0, 0);
    for (key, _, _, value) in snapshot {
        let key = key.key();
        if key.name() != name {
            continue;
        }
        let has = |(k, v): &(&str, &str)| key.labels().any(|l| l.key() == *k && l.value() == *v);
        if !labels.iter().all(has) {
            continue;
        }
        match value {
            DebugValue::Counter(n) => count += *n,
            DebugValue::Histogram(values) => samples += values.len(),
            DebugValue::Gauge(_) => {}
        }
    }
    (count, samples)
}

#[test]
fn the_layers_record_what_happened() {
    // One recorder for this test binary, which has this one test.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = FlakyServer::start().await.unwrap();
        let scope = server.url("").trim_end_matches('/').to_owned();
        let layer = ResilienceLayer::http()
            .backoff(
                ExponentialBackoff::new(Duration::from_millis(2), 1.0, Duration::from_millis(2))
                    .with_jitter(Jitter::None),
            )
            .circuit_breaker(
                BreakerConfig::new()
                    .consecutive_failures(4)
                    .break_duration(Duration::from_millis(20)),
            )
            .build()
            .unwrap();
        let mut client = layer.hyper(Client::builder(TokioExecutor::new()).build_http());
        // Two 503s, then a success: three attempts, two retries.
        let request = Request::get(server.url("/fail/m/2/503"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let host = [("tenacity.scope", scope.as_str())];
        let seen = snapshot(&snapshotter);
        let retryable = [("outcome", "retryable"), ("reason", "HTTP status 503")];
        assert_eq!(read(&seen, "tenacity.attempts", &retryable).0, 2);
        assert_eq!(
            read(&seen, "tenacity.attempts", &[("outcome", "success")]).0,
            1
        );
        assert_eq!(read(&seen, "tenacity.attempts", &host).0, 3, "by host");
        assert_eq!(read(&seen, "tenacity.retries", &host).0, 2);
        assert_eq!(read(&seen, "tenacity.attempt.duration", &host).1, 3);
        // Four 503s in a row open the circuit; the next attempt is turned away.
        let request = Request::get(server.url("/status/503"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let _ = client.ready().await.unwrap().call(request).await;
        let request = Request::get(server.url("/status/503"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let _ = client.ready().await.unwrap().call(request).await;
        let seen = snapshot(&snapshotter);
        let opened = [("from", "closed"), ("to", "open")];
        assert_eq!(read(&seen, "tenacity.breaker.transitions", &opened).0, 1);
        assert!(read(&seen, "tenacity.rejected", &[("layer", "breaker")]).0 >= 1);
        let gave_up = read(&seen, "tenacity.give_ups", &[("why", "attempts")]).0;
        assert!(gave_up >= 1, "{gave_up}");

        // The server's admission limit turns the second call in flight away.
        let limit = AdaptiveLimit::aimd(Duration::from_secs(1))
            .initial(1)
            .bounds(1, 1);
        let mut admission = AdmissionLayer::new(limit)
            .unwrap()
            .layer(service_fn(|()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, tower::BoxError>(())
            }));
        let first = admission.call(());
        let second = admission.call(());
        let (first, second) = tokio::join!(first, second);
        assert!(first.is_ok() && second.is_err());
        let seen = snapshot(&snapshotter);
        assert_eq!(
            read(&seen, "tenacity.rejected", &[("layer", "admission")]).0,
            1
        );

        // A throttle over a dependency that accepts nothing turns calls away.
        let mut throttled = ThrottleLayer::new(Throttle::new().seed(2), DefaultClassifier)
            .unwrap()
            .layer(service_fn(|()| async {
                Err::<(), tower::BoxError>(
                    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
                )
            }));
        for _ in 0..50 {
            let _ = throttled.ready().await.unwrap().call(()).await;
        }
        let seen = snapshot(&snapshotter);
        assert!(read(&seen, "tenacity.rejected", &[("layer", "throttle")]).0 > 10);
    });
}

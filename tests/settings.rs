//! The presets' settings as data (feature `serde`): a document (JSON here; TOML and YAML go
//! through their own serde crates) builds the preset, durations are humantime strings, a field
//! a preset does not have is an error that names it, and a value out of range is the builder's
//! error, naming the field.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::grpc::GrpcResilienceLayer;
use tower_tenacity::http::{HttpResilienceLayer, ReplayBody};

fn http(document: &str) -> Result<HttpResilienceLayer, String> {
    serde_json::from_str(document).map_err(|err| err.to_string())
}

/// Every setting of the document reaches the layer: it is the layer the builder makes with the
/// same settings, down to what `Debug` shows of it (the retry settings, the budget, the hedge,
/// the breaker's, the HTTP options).
#[test]
fn every_setting_of_the_http_preset_is_read() {
    use http::HeaderName;
    use tower_tenacity::breaker::BreakerConfig;
    use tower_tenacity::retry::{ExponentialBackoff, Hedge, Jitter, RetryBudget};

    let ms = Duration::from_millis;
    let document = r#"{
            "total_timeout": "3s",
            "attempt_timeout": "750ms",
            "max_attempts": 5,
            "max_elapsed": "2s",
            "max_retry_after": "1m",
            "seed": 7,
            "backoff": { "initial": "10ms", "multiplier": 3.0, "max": "1s", "jitter": "decorrelated" },
            "budget": { "ratio": 0.1, "floor": 3, "window": "10s" },
            "hedge": { "percentile": 95.0, "floor": "5ms", "max_in_flight": 3 },
            "breaker": { "consecutive_failures": 4, "break_duration": "2s", "max_break": "30s", "probes": 2 },
            "replay_cap": 1024,
            "attempt_header": "x-attempt",
            "deadline_header": "x-envoy-expected-rq-timeout-ms",
            "total_timeout_covers_body": true,
            "retry_unsafe_methods": true
        }"#;
    let from_document = http(document).unwrap();
    assert_eq!(
        from_document.stack().total_timeout(),
        Some(Duration::from_secs(3))
    );
    assert_eq!(from_document.stack().attempt_timeout(), ms(750));
    assert_eq!(from_document.stack().retry().max_attempts(), 5);
    assert!(from_document.breaker().is_on());
    let from_builder = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(3))
        .attempt_timeout(ms(750))
        .max_attempts(5)
        .max_elapsed(Duration::from_secs(2))
        .max_retry_after(Duration::from_secs(60))
        .seed(7)
        .backoff(
            ExponentialBackoff::new(ms(10), 3.0, Duration::from_secs(1))
                .with_jitter(Jitter::Decorrelated),
        )
        .budget(RetryBudget::new(0.1, 3, Duration::from_secs(10)).unwrap())
        .hedge(Hedge::learned(95.0).floor(ms(5)).max_in_flight(3))
        .replay_cap(1024)
        .attempt_header(HeaderName::from_static("x-attempt"))
        .deadline_header(HeaderName::from_static("x-envoy-expected-rq-timeout-ms"))
        .total_timeout_covers_body()
        .retry_unsafe_methods()
        .circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(4)
                .break_duration(Duration::from_secs(2))
                .max_break(Duration::from_secs(30))
                .probes(2),
        )
        .build()
        .unwrap();
    assert_eq!(format!("{from_document:?}"), format!("{from_builder:?}"));
    // And the comparison sees a difference of one setting, the breaker's included.
    let fewer_probes = http(&document.replace(r#""probes": 2"#, r#""probes": 1"#)).unwrap();
    assert_ne!(format!("{fewer_probes:?}"), format!("{from_builder:?}"));
}

#[test]
fn a_field_a_preset_does_not_have_is_named() {
    for (document, field) in [
        (r#"{ "max_attemps": 3 }"#, "unknown field `max_attemps`"),
        (
            r#"{ "backoff": { "initial": "1s", "multiplier": 2.0, "max": "2s", "jiter": "full" } }"#,
            "unknown field `jiter`",
        ),
        (
            r#"{ "breaker": { "failure_rate": 0.5 } }"#,
            "unknown field `failure_rate`",
        ),
        (r#"{ "attempt_timeout": "soon" }"#, "\"soon\""),
        (r#"{ "attempt_timeout": 3 }"#, "a duration such as"),
    ] {
        let err = http(document).unwrap_err();
        assert!(err.contains(field), "{document}: {err}");
    }
    let grpc = serde_json::from_str::<GrpcResilienceLayer>(r#"{ "deadline_header": "x" }"#);
    let err = grpc.unwrap_err().to_string();
    assert!(
        err.contains("deadline_header is not a setting of this preset"),
        "{err}"
    );
    let core = serde_json::from_str::<ResilienceLayer>(r#"{ "breaker": { "probes": 1 } }"#);
    assert!(core.unwrap_err().to_string().contains("breaker"));
}

#[test]
fn a_value_out_of_range_is_the_builders_error_naming_the_field() {
    for (document, field) in [
        (
            r#"{ "backoff": { "initial": "10s", "multiplier": 2.0, "max": "1s" } }"#,
            "backoff.initial",
        ),
        (
            r#"{ "budget": { "ratio": -1.0, "floor": 1, "window": "1s" } }"#,
            "budget.ratio",
        ),
        (
            r#"{ "total_timeout": "1s", "attempt_timeout": "2s" }"#,
            "attempt_timeout",
        ),
        (
            r#"{ "hedge": { "after": "10ms", "percentile": 90.0 } }"#,
            "set exactly one of hedge.after, hedge.percentile",
        ),
        (
            r#"{ "attempt_header": "not a header" }"#,
            "attempt_header is not a valid header name",
        ),
        (
            r#"{ "budget": { "ratio": 0.1, "floor": 1, "window": "1s" }, "no_budget": true }"#,
            "set at most one of budget, no_budget",
        ),
        (
            r#"{ "total_timeout": "1s", "no_total_timeout": true }"#,
            "set at most one of total_timeout, no_total_timeout",
        ),
        (
            r#"{ "hedge": { "after": "10ms", "floor": "1ms" } }"#,
            "hedge.floor only applies with hedge.percentile",
        ),
        (
            r#"{ "backoff": { "initial": "1s", "multiplier": 2.0, "max": "2s", "jitter": { "spread": 2.0 } } }"#,
            "backoff.jitter must be between 0 and 1",
        ),
    ] {
        let err = http(document).unwrap_err();
        assert!(err.contains(field), "{document}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_preset_read_from_settings_behaves_as_they_say() {
    let layer = http(r#"{ "max_attempts": 4, "no_budget": true, "backoff": { "initial": "1ms", "multiplier": 1.0, "max": "1ms", "jitter": "none" } }"#).unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let client = service_fn(move |_: Request<ReplayBody<Empty<Bytes>>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            Ok::<_, tower::BoxError>(
                Response::builder()
                    .status(503)
                    .body(Full::<Bytes>::default())
                    .unwrap(),
            )
        }
    });
    let mut svc = layer.layer(client);
    let request = Request::get("http://127.0.0.1/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "max_attempts from the document"
    );
}

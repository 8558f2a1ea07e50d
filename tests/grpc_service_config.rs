//! The gRPC preset reading a gRPC service config (gRFC A6), against a real tonic server on
//! 127.0.0.1 (tonic-health's service) through a real `Channel`: each method gets its entry,
//! A6's retry throttling counts as grpc-go's own test has it, pushback is exact, hedging and
//! the entry's timeout apply.

mod a6;
mod grpc_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grpc_support::{front, serve_health};
use http::{Request, Response};
use tonic::Code;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::{BoxError, Layer, Service};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::grpc::GrpcResilienceLayer;
use tower_tenacity::retry::Event;

/// What the server does with its call number `n` (from 0) to `path`.
#[derive(Clone, Copy)]
enum Answer {
    Serve,
    Fail(Code, Option<&'static str>),
    Stall(Duration),
}

/// The server's record: each call's path, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A health server on 127.0.0.1 that answers as `script` says; what it saw.
async fn start(script: impl Fn(u32, &str) -> Answer + Send + Sync + 'static) -> (SocketAddr, Seen) {
    let (script, seen, count) = (
        Arc::new(script),
        Seen::default(),
        Arc::new(AtomicU32::new(0)),
    );
    let record = seen.clone();
    let scripted = front(move |request: Request<Body>, mut routes: Routes| {
        let path = request.uri().path().to_owned();
        let answer = script(count.fetch_add(1, Ordering::SeqCst), &path);
        record.lock().unwrap().push(path);
        async move {
            match answer {
                Answer::Fail(code, pushback) => {
                    let mut response = Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", (code as i32).to_string());
                    if let Some(pushback) = pushback {
                        response = response.header("grpc-retry-pushback-ms", pushback);
                    }
                    return Ok(response.body(Body::empty()).unwrap());
                }
                Answer::Stall(stall) => tokio::time::sleep(stall).await,
                Answer::Serve => {}
            }
            routes.call(request).await.map_err(Into::into)
        }
    });
    (serve_health(scripted).await, seen)
}

fn client(
    layer: &GrpcResilienceLayer,
    addr: SocketAddr,
) -> HealthClient<tower_tenacity::grpc::GrpcResilience<tonic::transport::Channel>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    HealthClient::new(layer.layer(channel))
}

async fn check<S>(client: &mut HealthClient<S>) -> Result<(), tonic::Status>
where
    S: tonic::client::GrpcService<Body>,
    S::Error: Into<BoxError>,
    S::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let request = HealthCheckRequest {
        service: String::new(),
    };
    client.check(request).await.map(|_| ())
}

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";

/// A retry policy for the health service's `Check` (or the whole service, `method` empty).
fn retry_entry(method: &str, attempts: u32, codes: &str) -> String {
    format!(
        r#"{{ "name": [{{ "service": "grpc.health.v1.Health", "method": "{method}" }}],
             "retryPolicy": {{ "maxAttempts": {attempts}, "initialBackoff": "0.01s",
               "maxBackoff": "0.01s", "backoffMultiplier": 1, "retryableStatusCodes": {codes} }} }}"#
    )
}

/// A service config of these `methodConfig` entries, and more top-level fields (`rest`, from
/// its leading comma) when there are any.
fn config(entries: &[&str], rest: &str) -> String {
    format!(r#"{{ "methodConfig": [ {} ]{rest} }}"#, entries.join(", "))
}

/// The gRPC preset built with a service config.
fn configured(config: &str) -> GrpcResilienceLayer {
    ResilienceLayer::grpc()
        .service_config(config)
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_method_gets_its_own_entry() {
    let (addr, seen) = start(|_, _| Answer::Fail(Code::Unavailable, None)).await;
    let check_entry = retry_entry("Check", 3, r#"["UNAVAILABLE"]"#);
    let layer = configured(&config(&[r#"{ "name": [{}] }"#, &check_entry], ""));
    let mut health = client(&layer, addr);
    let status = check(&mut health).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::Unavailable);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [CHECK, CHECK, CHECK, WATCH],
        "Check's entry retries, the default does not"
    );
}

#[tokio::test]
async fn an_entry_retries_its_codes_only() {
    let (addr, seen) = start(|_, _| Answer::Fail(Code::Internal, None)).await;
    let entry = retry_entry("", 4, r#"["UNAVAILABLE"]"#);
    let layer = configured(&config(&[&entry], ""));
    let status = check(&mut client(&layer, addr)).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(seen.lock().unwrap().len(), 1);

    let (addr, seen) = start(|n, _| match n {
        0 | 1 => Answer::Fail(Code::Internal, None),
        _ => Answer::Serve,
    })
    .await;
    let entry = retry_entry("", 4, r#"["internal", 14]"#);
    let layer = configured(&config(&[&entry], ""));
    check(&mut client(&layer, addr)).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// grpc-go's `TestRetryThrottling` (`a6`), over a real server and a service config.
#[tokio::test]
async fn retry_throttling_counts_as_grpc_go_tests_it() {
    let (addr, seen) = start(|n, _| {
        if a6::ANSWERED.contains(&n) {
            Answer::Serve
        } else {
            Answer::Fail(Code::Unavailable, None)
        }
    })
    .await;
    let entry = retry_entry("", 4, r#"["UNAVAILABLE"]"#);
    let throttling = r#", "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.5 }"#;
    let layer = configured(&config(&[&entry], throttling));
    let mut health = client(&layer, addr);
    for (call, (ok, count)) in a6::CALLS.into_iter().enumerate() {
        let outcome = check(&mut health).await;
        assert_eq!(outcome.is_ok(), ok, "call {}: {outcome:?}", call + 1);
        assert_eq!(seen.lock().unwrap().len(), count, "call {}", call + 1);
    }
}

/// A pushback sets the delay exactly, 0 included; a negative one ends the retries.
#[tokio::test]
async fn pushback_is_exact_and_a_negative_one_ends_retrying() {
    for (pushback, calls, delays) in [
        ("0", 2, vec![Duration::ZERO]),
        ("30", 2, vec![Duration::from_millis(30)]),
        ("-1", 1, vec![]),
    ] {
        let (addr, seen) = start(move |n, _| match n {
            0 => Answer::Fail(Code::Unavailable, Some(pushback)),
            _ => Answer::Serve,
        })
        .await;
        let config = r#"{ "methodConfig": [{ "name": [{}], "retryPolicy": { "maxAttempts": 3,
            "initialBackoff": "5s", "maxBackoff": "5s", "backoffMultiplier": 1,
            "retryableStatusCodes": ["UNAVAILABLE"] } }] }"#;
        let retries = Arc::new(Mutex::new(Vec::new()));
        let sink = retries.clone();
        let layer = ResilienceLayer::grpc()
            .observer(move |event: &Event| {
                if let Event::Retry { delay, hinted, .. } = event {
                    assert!(hinted);
                    sink.lock().unwrap().push(*delay);
                }
            })
            .service_config(config)
            .build()
            .unwrap();
        let outcome = check(&mut client(&layer, addr)).await;
        assert_eq!(outcome.is_ok(), calls == 2, "pushback {pushback}");
        assert_eq!(seen.lock().unwrap().len(), calls, "pushback {pushback}");
        assert_eq!(*retries.lock().unwrap(), delays, "pushback {pushback}");
    }
}

/// A hedging entry sends the next attempt after its delay, and the first answer wins; an
/// entry's timeout is the call's deadline.
#[tokio::test]
async fn hedging_and_the_timeout_of_an_entry_apply() {
    let (addr, seen) = start(|n, _| match n {
        0 => Answer::Stall(Duration::from_secs(30)),
        _ => Answer::Serve,
    })
    .await;
    let config = r#"{ "methodConfig": [{ "name": [{ "service": "grpc.health.v1.Health" }],
        "hedgingPolicy": { "maxAttempts": 2, "hedgingDelay": "0.05s" } }] }"#;
    let hedges = Arc::new(AtomicU32::new(0));
    let counted = hedges.clone();
    let layer = ResilienceLayer::grpc()
        .observer(move |event: &Event| {
            if let Event::Hedge { .. } = event {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .service_config(config)
        .build()
        .unwrap();
    // The first call stalls for 30 s: the hedge sent after 50 ms answers.
    check(&mut client(&layer, addr)).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(
        hedges.load(Ordering::SeqCst),
        1,
        "the entry's hedging sent it"
    );

    let (addr, _) = start(|_, _| Answer::Stall(Duration::from_secs(30))).await;
    let layer = configured(r#"{ "methodConfig": [{ "name": [{}], "timeout": "0.2s" }] }"#);
    let status = check(&mut client(&layer, addr)).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("total deadline of 200ms"),
        "the entry's timeout, not the attempt timeout: {status:?}"
    );
}

#[test]
fn an_invalid_config_is_refused_when_the_layer_is_built() {
    let err = ResilienceLayer::grpc()
        .service_config(r#"{ "retryThrottling": { "maxTokens": 1001, "tokenRatio": 0.1 } }"#)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "service_config");
    assert!(err.to_string().contains("maxTokens"), "{err}");
}

/// A service config read again is swapped in on the running client.
#[tokio::test]
async fn a_reload_brings_a_new_service_config() {
    let (addr, seen) = start(|_, _| Answer::Fail(Code::Unavailable, None)).await;
    let layer = |attempts: u32| {
        let entry = retry_entry("Check", attempts, r#"["UNAVAILABLE"]"#);
        ResilienceLayer::grpc()
            .no_budget()
            .service_config(&config(&[&entry], ""))
            .build()
            .unwrap()
    };
    let first = layer(2);
    let mut health = client(&first, addr);
    check(&mut health).await.unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 2);
    first.reload(layer(4));
    check(&mut health).await.unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 2 + 4);
}

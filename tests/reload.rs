//! Settings swapped on a running stack (`reload`): services made before take them at their next
//! call, clones included; a call in flight keeps the settings it started with; the budget and
//! the circuits carry over when their settings are the same and start afresh when not. The core
//! preset on a paused clock, the HTTP preset over a real hyper server on 127.0.0.1.

#[path = "../examples/demo_client/server.rs"]
mod server;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use server::FlakyServer;
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::BreakerConfig;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::http::{HttpResilience, HttpResilienceLayer, ReplayBody};
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryBudget};
use tower_tenacity::{Error, ErrorKind, GiveUp, ResilienceBuilder, ResilienceLayer, TimeoutScope};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The core preset as these tests start it: no jitter, no budget unless given.
fn core() -> ResilienceBuilder {
    ResilienceLayer::builder(DefaultClassifier)
        .backoff(ExponentialBackoff::new(ms(10), 1.0, ms(10)).with_jitter(Jitter::None))
        .no_budget()
}

/// A service whose every call fails with a reset connection (retryable), counting its calls.
fn failing() -> (
    Arc<AtomicU32>,
    impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let svc = service_fn(move |_: u32| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<u32, BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into()) }
    });
    (calls, svc)
}

fn kind(err: &BoxError) -> Option<ErrorKind> {
    Error::find(err.as_ref()).map(Error::kind)
}

/// Whether `err` says the retry budget ran out.
fn budget_spent(err: &BoxError) -> bool {
    matches!(
        kind(err),
        Some(ErrorKind::GaveUp {
            why: GiveUp::Budget,
            ..
        })
    )
}

#[tokio::test(start_paused = true)]
async fn attempts_and_timeouts_change_on_a_running_stack_and_its_clones() {
    let (calls, inner) = failing();
    let layer = core().max_attempts(2).build().unwrap();
    let mut svc = layer.layer(inner);
    let mut twin = svc.clone();
    svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 2);

    // A clone of the layer reloads the services of the original, and their clones.
    layer
        .clone()
        .reload(core().max_attempts(4).build().unwrap());
    svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 4);
    twin.ready().await.unwrap().call(3).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 4);
    // And a service made after the reload starts with the new settings.
    let (late_calls, late_inner) = failing();
    let mut late = layer.layer(late_inner);
    late.ready().await.unwrap().call(4).await.unwrap_err();
    assert_eq!(late_calls.load(Ordering::SeqCst), 4);

    // The timeouts too: a stalled service is cut at the new attempt timeout and total.
    let stalled = service_fn(|_: u32| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<u32, BoxError>(0)
    });
    let mut svc = layer.layer(stalled);
    layer.reload(
        core()
            .max_attempts(2)
            .attempt_timeout(ms(100))
            .total_timeout(ms(150))
            .build()
            .unwrap(),
    );
    let start = Instant::now();
    let err = svc.ready().await.unwrap().call(5).await.unwrap_err();
    assert_eq!(
        kind(&err),
        Some(ErrorKind::Timeout {
            scope: TimeoutScope::Total,
            after: ms(150)
        })
    );
    assert_eq!(start.elapsed(), ms(150));
}

#[tokio::test(start_paused = true)]
async fn a_reload_can_go_back_to_the_first_settings() {
    let (calls, inner) = failing();
    let layer = core().max_attempts(2).build().unwrap();
    let first = layer.clone();
    let mut svc = layer.layer(inner);
    layer.reload(core().max_attempts(4).build().unwrap());
    svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 4);
    layer.reload(first);
    svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_in_flight_keeps_the_settings_it_started_with() {
    let (calls, inner) = failing();
    let layer = core().max_attempts(3).build().unwrap();
    let mut svc = layer.layer(inner);
    let in_flight = svc.ready().await.unwrap().call(1);
    layer.reload(core().max_attempts(1).build().unwrap());
    in_flight.await.unwrap_err();
    assert_eq!(
        calls.swap(0, Ordering::SeqCst),
        3,
        "the call started with 3"
    );
    svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the next call has 1");
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_stays_open_unless_the_breaker_settings_change() {
    let breaker = || {
        BreakerConfig::new()
            .consecutive_failures(2)
            .break_duration(Duration::from_secs(30))
    };
    let (calls, inner) = failing();
    let layer = core()
        .max_attempts(2)
        .circuit_breaker(breaker())
        .build()
        .unwrap();
    let mut svc = layer.layer(inner);
    svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 2, "two failures open it");

    // Other settings change; the breaker's do not: its circuit is the same, and open.
    layer.reload(
        core()
            .max_attempts(3)
            .circuit_breaker(breaker())
            .build()
            .unwrap(),
    );
    let err = svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(
        Error::find(err.as_ref()).unwrap().is_circuit_open(),
        "{err}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing reached the service"
    );

    // New thresholds are a new circuit, closed.
    layer.reload(
        core()
            .max_attempts(3)
            .circuit_breaker(breaker().consecutive_failures(5))
            .build()
            .unwrap(),
    );
    svc.ready().await.unwrap().call(3).await.unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "sent again, three attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_stays_spent_unless_its_settings_change() {
    // No ratio: one retry per minute from the floor, and nothing earned.
    let budget = || RetryBudget::new(0.0, 1, Duration::from_secs(60)).unwrap();
    let build = |attempts: u32, budget: RetryBudget| {
        ResilienceLayer::builder(DefaultClassifier)
            .backoff(ExponentialBackoff::new(ms(10), 1.0, ms(10)).with_jitter(Jitter::None))
            .max_attempts(attempts)
            .budget(budget)
            .build()
            .unwrap()
    };
    let (calls, inner) = failing();
    let layer = build(3, budget());
    let mut svc = layer.layer(inner);
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert!(budget_spent(&err), "{err}");
    assert_eq!(
        calls.swap(0, Ordering::SeqCst),
        2,
        "one retry, from the floor"
    );

    // The same budget settings: still spent, so the next call is not retried (even though a
    // copy of the new layer is kept, and shares its configuration).
    let next = build(4, budget());
    let _kept = next.clone();
    layer.reload(next);
    let err = svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(budget_spent(&err), "{err}");
    assert_eq!(calls.swap(0, Ordering::SeqCst), 1);

    // A budget with other settings starts full.
    layer.reload(build(
        4,
        RetryBudget::new(0.0, 2, Duration::from_secs(60)).unwrap(),
    ));
    svc.ready().await.unwrap().call(3).await.unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two retries, from the new floor"
    );
}

/// The preset over a hyper-util client, as the HTTP tests use it.
type Http = HttpResilience<Client<HttpConnector, ReplayBody<Empty<Bytes>>>>;

/// The HTTP preset with `attempts`, 1 ms between them and no budget, and with `breaker` a
/// circuit per host that opens after two failures in a row.
fn http(attempts: u32, breaker: bool) -> (HttpResilienceLayer, Http) {
    let builder = ResilienceLayer::http()
        .max_attempts(attempts)
        .backoff(ExponentialBackoff::new(ms(1), 1.0, ms(1)).with_jitter(Jitter::None))
        .no_budget();
    let layer = match breaker {
        false => builder.build().unwrap(),
        true => (builder.circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(2)
                .break_duration(Duration::from_secs(60)),
        ))
        .build()
        .unwrap(),
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    let svc = layer.layer(client);
    (layer, svc)
}

/// A GET of the server's `/status/503` through `svc`.
async fn get_503(svc: &mut Http, server: &FlakyServer) -> Result<StatusCode, BoxError> {
    let request = Request::get(server.url("/status/503"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = svc.ready().await?.call(request).await?;
    Ok(response.status())
}

/// The HTTP preset over a hyper-util client and a real server: a reload changes how often a
/// 503 is tried, for the client already in use.
#[tokio::test]
async fn the_http_preset_takes_new_settings_over_a_real_server() {
    let server = FlakyServer::start().await.unwrap();
    let (layer, mut svc) = http(2, false);
    assert_eq!(get_503(&mut svc, &server).await.unwrap(), 503);
    assert_eq!(server.stats.requests_to("/status/503"), 2);

    layer.reload(http(4, false).0);
    assert_eq!(get_503(&mut svc, &server).await.unwrap(), 503);
    assert_eq!(server.stats.requests_to("/status/503"), 2 + 4);
}

/// The HTTP preset keeps each host's circuit across a reload that leaves the breaker's
/// settings as they were.
#[tokio::test]
async fn the_http_preset_keeps_each_hosts_circuit() {
    let server = FlakyServer::start().await.unwrap();
    let (layer, mut svc) = http(2, true);
    assert_eq!(get_503(&mut svc, &server).await.unwrap(), 503);
    assert_eq!(server.stats.requests_to("/status/503"), 2);

    layer.reload(http(3, true).0);
    let err = get_503(&mut svc, &server).await.unwrap_err();
    assert!(
        Error::find(err.as_ref()).unwrap().is_circuit_open(),
        "{err}"
    );
    assert_eq!(server.stats.requests_to("/status/503"), 2, "nothing sent");

    // The same thresholds over another cap on hosts: new circuits, closed.
    let fewer_hosts = ResilienceLayer::http()
        .max_attempts(3)
        .backoff(ExponentialBackoff::new(ms(1), 1.0, ms(1)).with_jitter(Jitter::None))
        .no_budget()
        .circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(2)
                .break_duration(Duration::from_secs(60))
                .max_keys(10),
        )
        .build()
        .unwrap();
    layer.reload(fewer_hosts);
    get_503(&mut svc, &server).await.unwrap_err();
    assert_eq!(
        server.stats.requests_to("/status/503"),
        2 + 2,
        "sent again, until the new circuit opened in its turn"
    );
}

/// Each host's budget is kept across a reload that leaves its settings and the cap on hosts
/// as they were, and starts afresh with a new cap (which the HTTP preset takes from the breaker).
#[tokio::test]
async fn the_http_preset_keeps_each_hosts_budget_unless_the_cap_on_hosts_changes() {
    let server = FlakyServer::start().await.unwrap();
    let build = |max_keys: usize| {
        ResilienceLayer::http()
            .max_attempts(3)
            .backoff(ExponentialBackoff::new(ms(1), 1.0, ms(1)).with_jitter(Jitter::None))
            // No ratio: one retry a minute from the floor, and nothing earned.
            .budget(RetryBudget::new(0.0, 1, Duration::from_secs(60)).unwrap())
            .circuit_breaker(
                BreakerConfig::new()
                    .consecutive_failures(100)
                    .max_keys(max_keys),
            )
            .build()
            .unwrap()
    };
    let layer = build(1024);
    let mut svc = layer.layer(Client::builder(TokioExecutor::new()).build_http());
    get_503(&mut svc, &server).await.unwrap();
    assert_eq!(server.stats.requests_to("/status/503"), 2, "one retry");

    layer.reload(build(1024));
    get_503(&mut svc, &server).await.unwrap();
    assert_eq!(
        server.stats.requests_to("/status/503"),
        2 + 1,
        "the host's budget is still spent"
    );

    layer.reload(build(10));
    get_503(&mut svc, &server).await.unwrap();
    assert_eq!(
        server.stats.requests_to("/status/503"),
        3 + 2,
        "a new cap on hosts: a new budget, full"
    );
}

/// The throttle's thresholds change in place, keeping what its window counted; its window
/// does not.
#[tokio::test(start_paused = true)]
async fn the_throttles_thresholds_change_in_place() {
    use tower_tenacity::throttle::{Throttle, ThrottleLayer};

    let (calls, inner) = failing();
    let layer = ThrottleLayer::new(Throttle::new().seed(3), DefaultClassifier).unwrap();
    let mut svc = layer.layer(inner);
    let mut throttled = async |n: u32| {
        let mut rejected = 0;
        for i in 0..n {
            let err = svc.ready().await.unwrap().call(i).await.unwrap_err();
            rejected += u32::from(matches!(kind(&err), Some(ErrorKind::Throttled { .. })));
        }
        rejected
    };
    // Nothing is accepted: after a few requests, most are turned away.
    let rejected = throttled(200).await;
    assert!(rejected > 150, "{rejected} of 200 throttled");
    assert_eq!(calls.swap(0, Ordering::SeqCst), 200 - rejected);

    // No rejection at all now, with the same window: every request is sent.
    layer
        .clone()
        .reload(Throttle::new().seed(3).max_rejection(0.0))
        .unwrap();
    assert_eq!(throttled(50).await, 0);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 50);

    // Back to the cap of 0.9: the window still holds the failures, so rejections resume at once,
    // and the first rejection counts all 250 requests (a new window would count a few).
    layer.reload(Throttle::new().seed(3)).unwrap();
    let mut first = None;
    for i in 0..10 {
        let err = svc.ready().await.unwrap().call(i).await.unwrap_err();
        if let Some(ErrorKind::Throttled { requests, accepts }) = kind(&err) {
            first = Some((i, requests, accepts));
            break;
        }
    }
    let (at, requests, accepts) = first.expect("a rejection within 10 calls at 0.9");
    assert!(
        requests >= 250,
        "{requests} requests in the window at call {at}"
    );
    assert_eq!(accepts, 0);

    let err = layer
        .reload(Throttle::new().seed(3).window(Duration::from_secs(60)))
        .unwrap_err();
    assert_eq!(err.field(), "throttle.window");
    assert!(layer.reload(Throttle::new().seed(3).k(0.5)).is_err());
}

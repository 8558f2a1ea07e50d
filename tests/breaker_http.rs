//! The HTTP preset's circuit breaker and per-host state against real hyper servers on
//! 127.0.0.1, through a real hyper-util client. These run in real time: breaks are short, and
//! the tests wait for a break to end by watching the circuit's state, never by timing a sleep.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::BoxError;
use tower::{Layer, ServiceExt};
use tower_tenacity::breaker::{BreakerConfig, BreakerHandle, CircuitState};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryBudget};
use tower_tenacity::{Error, ResilienceLayer};

type Body = Full<Bytes>;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A server that answers its first `fails` requests 503 and the rest 200, after `delay`,
/// counting requests.
struct Toggle {
    addr: SocketAddr,
    fails: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl Toggle {
    async fn start(fails: u64, delay: Duration) -> Toggle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, requests) = (Arc::new(AtomicU64::new(fails)), Arc::new(AtomicU64::new(0)));
        let (fails, count) = (state.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (fails, count) = (fails.clone(), count.clone());
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    let (fails, count) = (fails.clone(), count.clone());
                    async move {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        let status = if n >= fails.load(Ordering::SeqCst) {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        };
                        let mut response = Response::new(Body::new(Bytes::from_static(b"hi")));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Toggle {
            addr,
            fails: state,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answers every request from now on.
    fn come_back(&self) {
        self.fails.store(0, Ordering::SeqCst);
    }
}

fn get(url: &str) -> Request<Body> {
    Request::get(url).body(Body::default()).unwrap()
}

fn client() -> Client<HttpConnector, ReplayBody<Body>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn wait_until_not_open(handle: &BreakerHandle) {
    while handle.snapshot().state == CircuitState::Open {
        tokio::time::sleep(ms(5)).await;
    }
}

fn is_open_circuit(err: &BoxError) -> bool {
    Error::find(err.as_ref()).is_some_and(Error::is_circuit_open)
}

/// A server goes down: after three failures the circuit opens and calls fail at once without
/// reaching it; the break ends and, of ten calls at once, exactly one probes; the server is back,
/// the probe closes the circuit, and all traffic flows again.
#[tokio::test]
async fn a_server_that_goes_down_is_cut_off_probed_and_used_again() {
    let server = Toggle::start(u64::MAX, ms(50)).await;
    let layer = ResilienceLayer::http()
        .max_attempts(1)
        .circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(3)
                .break_duration(ms(300))
                .break_jitter(0.0),
        )
        .build()
        .unwrap();
    let handle = layer.breaker().handle();
    let svc = layer.layer(client());
    for _ in 0..3 {
        let response = svc.clone().oneshot(get(&server.url())).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(server.requests(), 3);
    assert_eq!(handle.snapshot().state, CircuitState::Open);

    for _ in 0..20 {
        let err = svc.clone().oneshot(get(&server.url())).await.unwrap_err();
        assert!(is_open_circuit(&err), "{err}");
        assert!(
            err.to_string().starts_with("GET http://127.0.0.1:"),
            "{err}"
        );
    }
    assert_eq!(server.requests(), 3, "no traffic while the circuit is open");

    server.come_back();
    wait_until_not_open(&handle).await;
    let calls: Vec<_> = (0..10)
        .map(|_| tokio::spawn(svc.clone().oneshot(get(&server.url()))))
        .collect();
    let mut answered = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                answered += 1;
            }
            Err(err) => assert!(is_open_circuit(&err), "{err}"),
        }
    }
    assert_eq!(answered, 1, "one probe");
    assert_eq!(server.requests(), 4);
    assert_eq!(handle.snapshot().state, CircuitState::Closed);

    for _ in 0..10 {
        let response = svc.clone().oneshot(get(&server.url())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(server.requests(), 14, "full traffic after recovery");
}

/// Two servers through one client: the one that is down opens only its own circuit and spends
/// only its own retry budget, so the other's retries still have theirs.
#[tokio::test]
async fn one_host_down_opens_only_its_circuit_and_spends_only_its_budget() {
    let down = Toggle::start(u64::MAX, ms(0)).await;
    let flaky = Toggle::start(1, ms(0)).await;
    // Two retries per hour for each host, and nothing earned by requests.
    let budget = RetryBudget::new(0.0, 2, Duration::from_secs(3600)).unwrap();
    let layer = ResilienceLayer::http()
        .budget(budget)
        .backoff(ExponentialBackoff::new(ms(5), 1.0, ms(5)).with_jitter(Jitter::None))
        .circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(4)
                .break_duration(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let handle = layer.breaker().handle();
    let svc = layer.layer(client());

    // Three attempts (two retries: the host's budget), then one more call whose retry the
    // budget refuses: four failures in a row open the host's circuit.
    let response = svc.clone().oneshot(get(&down.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = svc.clone().oneshot(get(&down.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.requests(), 4);
    let err = svc.clone().oneshot(get(&down.url())).await.unwrap_err();
    assert!(is_open_circuit(&err), "{err}");
    assert_eq!(down.requests(), 4);

    // The other host fails once, and its retry is paid from its own budget.
    let response = svc.clone().oneshot(get(&flaky.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(flaky.requests(), 2, "one retry, from the host's own budget");

    let mut states: Vec<_> = (handle.snapshots().into_iter())
        .map(|s| (s.key.unwrap(), s.state))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (format!("http://{}", down.addr), CircuitState::Open),
        (format!("http://{}", flaky.addr), CircuitState::Closed),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(states, expected);
}

/// Under the HTTP preset without a breaker, a host that is down still spends only its own
/// budget: the budget per host does not depend on the breaker.
#[tokio::test]
async fn the_budget_is_per_host_without_a_breaker_too() {
    let down = Toggle::start(u64::MAX, ms(0)).await;
    let flaky = Toggle::start(1, ms(0)).await;
    let budget = RetryBudget::new(0.0, 1, Duration::from_secs(3600)).unwrap();
    let layer = ResilienceLayer::http()
        .budget(budget)
        .backoff(ExponentialBackoff::new(ms(5), 1.0, ms(5)).with_jitter(Jitter::None))
        .build()
        .unwrap();
    assert!(!layer.breaker().is_on());
    let svc = layer.layer(client());
    let response = svc.clone().oneshot(get(&down.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.requests(), 2, "one retry: the host's whole budget");
    let response = svc.clone().oneshot(get(&flaky.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(flaky.requests(), 2, "one retry, from the host's own budget");
    // The down host's budget is spent: its next failure is not retried.
    let response = svc.clone().oneshot(get(&down.url())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.requests(), 3);
}

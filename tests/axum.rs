//! A real axum app on 127.0.0.1 behind the server-side timeout: slow handlers are answered
//! for (and dropped), fast ones are untouched, and a handler's outbound call through the
//! resilient client stays within the server's deadline.

#[path = "../examples/demo_client/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::classify::{Classification, ClassifyOutcome, Reason};
use tower_tenacity::http::{HttpClassifier, ReplayBody, ServerTimeoutLayer};
use tower_tenacity::retry::{ExponentialBackoff, Jitter};

/// Sets its flag when dropped: proof that the handler's future went away.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn fetch(url: String) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(Request::get(url).body(Full::default()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_slow_handler_is_answered_for_and_dropped() {
    let dropped = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route(
            "/slow",
            get(|State(dropped): State<Arc<AtomicBool>>| async move {
                let _guard = Dropped(dropped);
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        .route("/fast", get(|| async { "quick" }))
        .with_state(dropped.clone())
        .layer(ServerTimeoutLayer::new(Duration::from_millis(100)));
    let addr = serve(app).await;

    let (status, body) = fetch(format!("http://{addr}/slow")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "request timed out");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the handler future was dropped"
    );

    assert_eq!(
        fetch(format!("http://{addr}/fast")).await,
        (StatusCode::OK, "quick".into())
    );
}

#[tokio::test]
async fn the_answer_is_configurable() {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        .layer(
            ServerTimeoutLayer::new(Duration::from_millis(50))
                .status(StatusCode::GATEWAY_TIMEOUT)
                .body("upstream took too long"),
        );
    let addr = serve(app).await;
    let (status, body) = fetch(format!("http://{addr}/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body, "upstream took too long");
}

/// The HTTP classifier's verdicts on an axum app's answers: what a server-side layer of your own
/// (or a test) can ask of it, with no client involved.
#[tokio::test]
async fn responses_carry_their_classification() {
    let app = Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/busy",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }),
        )
        .route("/gone", get(|| async { (StatusCode::GONE, "gone") }));
    let classifier = HttpClassifier::new();
    let mut svc = app;
    let mut classify = async |path: &str| {
        let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        let response = ServiceExt::<Request<axum::body::Body>>::ready(&mut svc)
            .await
            .unwrap()
            .call(request)
            .await
            .unwrap();
        classifier.classify_outcome(Ok(&response))
    };
    assert_eq!(classify("/ok").await, Classification::Success);
    assert_eq!(
        classify("/busy").await,
        Classification::retryable(Reason::Status(503))
    );
    assert_eq!(
        classify("/gone").await,
        Classification::fatal(Reason::Status(410))
    );
}

#[tokio::test]
async fn an_outbound_call_knows_the_server_deadline() {
    // The upstream stalls. The outbound client alone would allow 10 s: attempts of 100 ms with
    // 250 ms between them. Inside the gateway's 300 ms deadline, the first attempt times out at
    // 100 ms and a 250 ms backoff would end past the deadline, so the client gives up at once
    // and the handler answers for itself, before the server's timeout has to.
    let upstream = server::FlakyServer::start().await.unwrap();
    let client: Client<HttpConnector, ReplayBody<Full<Bytes>>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resilient = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_millis(100))
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(250), 1.0, Duration::from_millis(250))
                .with_jitter(Jitter::None),
        )
        .build()
        .unwrap()
        .layer(client);
    let target = upstream.url("/stall/5000");
    let app = Router::new()
        .route(
            "/proxy",
            get(move || {
                let mut resilient = resilient.clone();
                let target = target.clone();
                async move {
                    let request = Request::get(target).body(Full::default()).unwrap();
                    let result: Result<_, BoxError> =
                        async { resilient.ready().await?.call(request).await }.await;
                    match result {
                        Ok(response) => (response.status(), String::new()),
                        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()),
                    }
                }
            }),
        )
        .layer(
            ServerTimeoutLayer::new(Duration::from_millis(300)).status(StatusCode::GATEWAY_TIMEOUT),
        );
    let addr = serve(app).await;
    let (status, body) = fetch(format!("http://{addr}/proxy")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.ends_with("timed out after 100ms (attempt 1 of 3; not retried: the backoff would reach the deadline)"),
        "{body}"
    );
    assert_eq!(
        upstream.stats.requests_to("/stall/5000"),
        1,
        "no second attempt"
    );
}

/// A caller with too little time left is answered at once, and the handler is never called;
/// one with time left runs the handler under it, whatever the layer's own timeout; a header
/// that is not a number of milliseconds is ignored.
#[tokio::test]
async fn the_callers_deadline_is_read_and_too_little_is_refused_at_once() {
    use std::sync::atomic::AtomicU64;
    let called = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/",
            get(|State(called): State<Arc<AtomicU64>>| async move {
                called.fetch_add(1, Ordering::SeqCst);
                let left = tower_tenacity::context::remaining().unwrap();
                left.as_millis().to_string()
            }),
        )
        .with_state(called.clone())
        .layer(
            ServerTimeoutLayer::new(Duration::from_secs(5))
                .deadline_header(http::HeaderName::from_static("x-left-ms"))
                .margin(Duration::from_millis(5))
                .min_remaining(Duration::from_millis(20)),
        );
    let addr = serve(app).await;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let ask = async |left: &str| {
        let request = Request::get(format!("http://{addr}/"))
            .header("x-left-ms", left)
            .body(Full::default())
            .unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    // 24 ms less the 5 ms margin is under the 20 ms minimum.
    let (status, _) = ask("24").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(called.load(Ordering::SeqCst), 0, "the handler never ran");
    // 1 s less the margin: the handler sees at most 995 ms, not the layer's 5 s.
    let (status, body) = ask("1000").await;
    assert_eq!(status, StatusCode::OK);
    let seen: u64 = body.parse().unwrap();
    assert!((900..=995).contains(&seen), "the handler saw {seen} ms");
    // Not a number: the layer's own timeout.
    let (status, body) = ask("soon").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.parse::<u64>().unwrap() > 4_000, "{body}");
    assert_eq!(called.load(Ordering::SeqCst), 2);
}

/// The attempt crosses the hop: the HTTP preset sends its number on a retry, and a handler
/// behind `ServerTimeoutLayer::attempt_header` reads it from the call context. A first attempt
/// carries none, and a value that is not a number from 1 up is ignored.
#[tokio::test]
async fn the_callers_attempt_is_read_into_the_handlers_context() {
    const ATTEMPT: http::HeaderName = http::HeaderName::from_static("x-envoy-attempt-count");
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                match tower_tenacity::context::attempt() {
                    // A first attempt fails, so that the preset retries it.
                    None => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    Some(attempt) => (StatusCode::OK, attempt.to_string()),
                }
            }),
        )
        .layer(ServerTimeoutLayer::new(Duration::from_secs(5)).attempt_header(ATTEMPT));
    let addr = serve(app).await;
    let no_wait = ExponentialBackoff::new(Duration::from_millis(1), 1.0, Duration::from_millis(1))
        .with_jitter(Jitter::None);
    let preset = ResilienceLayer::http()
        .attempt_header(ATTEMPT)
        .backoff(no_wait)
        .build()
        .unwrap()
        .hyper(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>());
    let request = Request::get(format!("http://{addr}/"))
        .body(Full::default())
        .unwrap();
    let response = preset.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "2", "the handler saw the retry as attempt 2");
    // Sent by hand: what is not a whole number from 1 up is no attempt.
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    for (value, status) in [("7", 200), ("0", 503), ("-1", 503), ("99999999999", 503)] {
        let request = Request::get(format!("http://{addr}/"))
            .header(ATTEMPT, value)
            .body(Full::default())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), status, "{value}");
    }
}

/// The caller's attempt is in scope only while the server layer calls and polls its handler:
/// code around the layer, in the same task, sees none before, between and after.
#[tokio::test]
async fn the_callers_attempt_stays_with_the_handler() {
    use tower_tenacity::context::attempt;
    let handler = tower::service_fn(|_: Request<()>| async {
        tokio::task::yield_now().await;
        Ok::<_, std::convert::Infallible>(http::Response::new(format!("{:?}", attempt())))
    });
    let mut server = ServerTimeoutLayer::new(Duration::from_secs(5))
        .attempt_header(http::HeaderName::from_static("x-attempt"))
        .layer(handler);
    let request = Request::get("/").header("x-attempt", "3").body(()).unwrap();
    let mut future = std::pin::pin!(server.call(request));
    assert_eq!(attempt(), None, "after the call");
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert_eq!(attempt(), None, "between polls");
    let std::task::Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        panic!("the handler answers on its second poll");
    };
    assert_eq!(response.into_body(), "Some(3)");
    assert_eq!(attempt(), None, "after the answer");
}

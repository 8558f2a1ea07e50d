//! The HTTP stack against a real hyper server on 127.0.0.1 (the demo's flaky server), through a
//! real hyper-util client. These run in real time, so every delay is short, and timing is
//! checked through the retry events (the delay the loop chose), never by measuring a sleep; the
//! tests that time a response body talk to the same server over an in-memory pipe instead, on
//! tokio's paused clock, where the gaps are exact.

#[path = "../examples/demo_client/pipe.rs"]
mod pipe;
#[path = "../examples/demo_client/server.rs"]
mod server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use server::FlakyServer;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::GiveUp;
use tower_tenacity::classify::{NotSent, Reason};
use tower_tenacity::http::{Attempts, HttpResilience, HttpResilienceLayer, Idempotent, ReplayBody};
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter};
use tower_tenacity::{Error, ErrorKind, ResilienceLayer, TimeoutScope};

type Body = Full<Bytes>;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The HTTP preset's builder as these tests start it (a macro: the builder's type is the
/// crate's own, so no function can return it).
macro_rules! fast {
    () => {
        ResilienceLayer::http()
            .total_timeout(Duration::from_secs(5))
            .attempt_timeout(ms(500))
            .backoff(ExponentialBackoff::new(ms(10), 1.0, ms(10)).with_jitter(Jitter::None))
            .no_budget()
    };
}

/// Sends `request` through the preset that `builder` builds, over a fresh client.
macro_rules! send {
    ($builder:expr, $request:expr $(,)?) => {
        send_through($builder.build().unwrap(), $request)
    };
}

struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    fn new() -> (Self, impl Fn(&Event) + Send + Sync + 'static) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        (Recorder(events), move |e: &Event| {
            sink.lock().unwrap().push(*e)
        })
    }

    fn give_up(&self) -> Option<GiveUp> {
        self.0.lock().unwrap().iter().find_map(|e| match e {
            Event::GiveUp { why, .. } => Some(*why),
            _ => None,
        })
    }

    fn retry_delays(&self) -> Vec<(Duration, bool)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Retry { delay, hinted, .. } => Some((*delay, *hinted)),
                _ => None,
            })
            .collect()
    }
}

/// The preset over a hyper-util client.
type Preset = HttpResilience<Client<HttpConnector, ReplayBody<Body>>>;

async fn send_through(
    layer: HttpResilienceLayer,
    request: Request<Body>,
) -> Result<<Preset as Service<Request<Body>>>::Response, BoxError> {
    let client: Client<HttpConnector, ReplayBody<Body>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = layer.layer(client);
    svc.ready().await?.call(request).await
}

/// Sends `request` through `layer` to the demo's server over an in-memory pipe, for the tests
/// that time a body: on tokio's paused clock, the pipe delivers at once and only the server's
/// own sleeps take time.
async fn send_piped(
    layer: HttpResilienceLayer,
    request: Request<Body>,
) -> Result<<Preset as Service<Request<Body>>>::Response, BoxError> {
    let handler = server::Handler::new(0);
    let connector = pipe::PipeConnector::new(move |io| handler.serve(io));
    let client: Client<pipe::PipeConnector, ReplayBody<Body>> =
        Client::builder(TokioExecutor::new()).build(connector);
    layer.layer(client).oneshot(request).await
}

fn get(url: String) -> Request<Body> {
    Request::get(url).body(Body::default()).unwrap()
}

fn post(url: String, body: impl Into<Bytes>) -> Request<Body> {
    Request::post(url).body(Full::new(body.into())).unwrap()
}

/// A URL on 127.0.0.1 where nothing listens: every connection to it is refused.
fn refused(path: &str) -> String {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    format!("http://127.0.0.1:{port}{path}")
}

async fn text<B>(response: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A first-try success carries no `Attempts` (none is allocated for it); one that was retried
/// says how many attempts it took.
#[tokio::test]
async fn only_a_retried_response_carries_its_attempt_count() {
    let server = FlakyServer::start().await.unwrap();
    let first_try = send!(fast!(), get(server.url("/ok"))).await.unwrap();
    assert_eq!(first_try.status(), 200);
    assert_eq!(first_try.extensions().get::<Attempts>(), None);
    let retried = send!(fast!(), get(server.url("/fail/count/1/503")))
        .await
        .unwrap();
    assert_eq!(retried.extensions().get::<Attempts>(), Some(&Attempts(2)));
}

#[tokio::test]
async fn a_503_is_retried_until_the_server_recovers() {
    let server = FlakyServer::start().await.unwrap();
    let response = send!(fast!(), get(server.url("/fail/a/2/503")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.extensions().get::<Attempts>(), Some(&Attempts(3)));
    assert_eq!(server.stats.requests_to("/fail/a/2/503"), 3);
}

#[tokio::test]
async fn the_last_response_is_returned_when_attempts_run_out() {
    let server = FlakyServer::start().await.unwrap();
    let response = send!(fast!(), get(server.url("/status/502")))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.extensions().get::<Attempts>(), Some(&Attempts(3)));
    let response = send!(fast!(), get(server.url("/status/404")))
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "fatal statuses come back at once");
    assert_eq!(server.stats.requests_to("/status/404"), 1);
}

#[tokio::test]
async fn a_stalled_attempt_times_out_and_the_error_names_the_request() {
    let server = FlakyServer::start().await.unwrap();
    let url = server.url("/stall/5000");
    let err = send!(
        fast!().attempt_timeout(ms(100)).max_attempts(2),
        get(url.clone()),
    )
    .await
    .unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(
        error.to_string(),
        format!("GET {url} timed out after 100ms (attempt 2 of 2)")
    );
    assert_eq!(error.timeout_scope(), Some(TimeoutScope::Attempt));
    assert_eq!(server.stats.requests_to("/stall/5000"), 2);
}

#[tokio::test]
async fn the_total_deadline_names_the_request_too() {
    let server = FlakyServer::start().await.unwrap();
    let url = server.url("/stall/5000");
    // Attempts time out at about 100 and 210 ms; the one after is waiting when 250 ms are up
    // (the second one, should the machine be slow enough).
    let err = send!(
        fast!().total_timeout(ms(250)).attempt_timeout(ms(100)),
        get(url.clone()),
    )
    .await
    .unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(error.timeout_scope(), Some(TimeoutScope::Total), "{error}");
    let attempt = error.attempt().map(|a| a.number);
    assert!(matches!(attempt, Some(2 | 3)), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "GET {url} exceeded its total deadline of 250ms (attempt {} of 3)",
            attempt.unwrap()
        )
    );
}

#[tokio::test]
async fn a_reset_connection_is_retried_for_get_but_not_for_post() {
    let server = FlakyServer::start().await.unwrap();
    let err = send!(fast!(), get(server.url("/reset"))).await.unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(
        error.kind(),
        ErrorKind::GaveUp {
            attempts: 3,
            why: GiveUp::Attempts
        }
    );
    assert_eq!(error.reason(), Some(Reason::Reset));
    assert_eq!(server.stats.requests_to("/reset"), 3);

    let err = send!(fast!(), post(server.url("/reset"), "order"))
        .await
        .unwrap_err();
    assert!(
        Error::find(err.as_ref()).is_none(),
        "a fatal error comes back unwrapped: {err}"
    );
    assert_eq!(
        server.stats.requests_to("/reset"),
        4,
        "the POST was sent once"
    );
}

#[tokio::test]
async fn post_is_retried_only_with_a_key_an_opt_in_or_a_layer_setting() {
    let server = FlakyServer::start().await.unwrap();

    let plain = send!(fast!(), post(server.url("/fail/plain/1/503"), "x")).await;
    assert_eq!(plain.unwrap().status(), 503);
    assert_eq!(server.stats.requests_to("/fail/plain/1/503"), 1);

    let mut keyed = post(server.url("/fail/keyed/1/503"), "x");
    keyed
        .headers_mut()
        .insert("idempotency-key", "c0ffee".parse().unwrap());
    assert_eq!(send!(fast!(), keyed).await.unwrap().status(), 200);
    assert_eq!(server.stats.requests_to("/fail/keyed/1/503"), 2);

    let mut marked = post(server.url("/fail/marked/1/503"), "x");
    marked.extensions_mut().insert(Idempotent);
    assert_eq!(send!(fast!(), marked).await.unwrap().status(), 200);

    let layer_wide = fast!().retry_unsafe_methods();
    let response = send!(layer_wide, post(server.url("/fail/layer/1/503"), "x")).await;
    assert_eq!(response.unwrap().status(), 200);
}

#[tokio::test]
async fn a_request_never_sent_is_retried_whatever_its_method() {
    let (events, observer) = Recorder::new();
    let err = send!(fast!().observer(observer), post(refused("/orders"), "x"))
        .await
        .unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(error.attempts(), Some(3));
    assert_eq!(error.reason(), Some(Reason::NeverSent(NotSent::Connect)));
    assert_eq!(events.retry_delays().len(), 2);
}

#[tokio::test]
async fn a_body_over_the_cap_is_retried_while_no_attempt_has_sent_it() {
    let (events, observer) = Recorder::new();
    let request = post(refused("/upload"), vec![7u8; 4096]);
    let err = send!(fast!().replay_cap(1024).observer(observer), request)
        .await
        .unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(error.attempts(), Some(3), "refused each time, never sent");
    assert_eq!(error.reason(), Some(Reason::NeverSent(NotSent::Connect)));
    assert_eq!(events.retry_delays().len(), 2);
}

#[tokio::test]
async fn replayed_bodies_are_byte_identical() {
    let server = FlakyServer::start().await.unwrap();
    let body: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut request = post(server.url("/fail/replay/2/503"), body.clone());
    request.extensions_mut().insert(Idempotent);
    let response = send!(fast!(), request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(text(response).await, server::hash(&body));
    assert_eq!(server.stats.requests_to("/fail/replay/2/503"), 3);
}

#[tokio::test]
async fn streamed_bodies_are_replayed_too() {
    type Chunks = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;
    let server = FlakyServer::start().await.unwrap();
    let chunks: Vec<Bytes> = (0..8u8).map(|i| Bytes::from(vec![i; 1000])).collect();
    let whole: Vec<u8> = chunks.iter().flatten().copied().collect();
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> =
        chunks.into_iter().map(|c| Ok(Frame::data(c))).collect();
    let body: Chunks = StreamBody::new(futures_util::stream::iter(frames));
    let mut request = Request::put(server.url("/fail/stream/1/503"))
        .body(body)
        .unwrap();
    request.extensions_mut().insert(Idempotent);

    let client: Client<HttpConnector, ReplayBody<Chunks>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = fast!().build().unwrap().layer(client);
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(text(response).await, server::hash(&whole));
    assert_eq!(server.stats.requests_to("/fail/stream/1/503"), 2);
}

#[tokio::test]
async fn a_body_over_the_replay_cap_is_sent_once_and_says_why() {
    let server = FlakyServer::start().await.unwrap();
    let (events, observer) = Recorder::new();
    let mut request = post(server.url("/fail/big/1/503"), vec![7u8; 4096]);
    request.extensions_mut().insert(Idempotent);
    let response = send!(fast!().replay_cap(1024).observer(observer), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.stats.requests_to("/fail/big/1/503"), 1);
    assert_eq!(events.give_up(), Some(GiveUp::NotReplayable));
}

#[tokio::test]
async fn retry_after_in_seconds_replaces_the_backoff() {
    let server = FlakyServer::start().await.unwrap();
    let (events, observer) = Recorder::new();
    let response = send!(
        fast!().max_attempts(2).observer(observer),
        get(server.url("/retry-after/1")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(events.retry_delays(), [(Duration::from_secs(1), true)]);
}

#[tokio::test]
async fn retry_after_dates_are_read_and_capped() {
    let server = FlakyServer::start().await.unwrap();
    // A date 30 s ahead is over a 10 s cap: no retry, and the event says what was asked.
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let path = format!(
        "/retry-after/{}",
        date.replace(' ', "%20").replace(',', "%2C")
    );
    let (events, observer) = Recorder::new();
    let response = send!(
        fast!()
            .max_retry_after(Duration::from_secs(10))
            .observer(observer),
        get(server.url(&path)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(server.stats.requests_to(&path), 1);
    match events.give_up() {
        Some(GiveUp::RetryAfter { requested, cap }) => {
            assert!(requested > Duration::from_secs(28) && requested <= Duration::from_secs(30));
            assert_eq!(cap, Duration::from_secs(10));
        }
        other => panic!("expected the cap to stop it, got {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_in_the_past_is_zero_and_garbage_is_ignored() {
    let server = FlakyServer::start().await.unwrap();
    let (events, observer) = Recorder::new();
    let past = "/retry-after/Sun%2C%2006%20Nov%201994%2008%3A49%3A37%20GMT";
    send!(
        fast!().max_attempts(2).observer(observer),
        get(server.url(past)),
    )
    .await
    .unwrap();
    assert_eq!(events.retry_delays(), [(Duration::ZERO, true)]);

    let (events, observer) = Recorder::new();
    send!(
        fast!().max_attempts(2).observer(observer),
        get(server.url("/retry-after/tomorrow-ish")),
    )
    .await
    .unwrap();
    assert_eq!(
        events.retry_delays(),
        [(ms(10), false)],
        "the normal backoff"
    );
}

#[tokio::test]
async fn retries_can_tell_the_server_their_number() {
    let server = FlakyServer::start().await.unwrap();
    let builder = fast!().attempt_header(http::HeaderName::from_static("x-attempt"));
    let response = send!(builder, get(server.url("/fail/h/1/503")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = server.stats.last_headers.lock().unwrap()["/fail/h/1/503"].clone();
    assert_eq!(headers["x-attempt"], "2");
}

#[tokio::test]
async fn methods_named_in_errors_are_the_callers() {
    let server = FlakyServer::start().await.unwrap();
    let url = server.url("/stall/5000");
    let request = Request::builder()
        .method(Method::DELETE)
        .uri(url.clone())
        .body(Body::default())
        .unwrap();
    let err = send!(fast!().attempt_timeout(ms(50)).max_attempts(1), request)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("DELETE {url} timed out")),
        "{err}"
    );
}

#[tokio::test]
async fn an_incoming_request_body_is_forwarded_and_replayed() {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    // A gateway: a real hyper server whose handler sends the very `Request<Incoming>` it got to
    // the upstream through the resilient client, and answers with the upstream's answer.
    let upstream = FlakyServer::start().await.unwrap();
    let client: Client<HttpConnector, ReplayBody<Incoming>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resilient = fast!()
        .retry_unsafe_methods()
        .build()
        .unwrap()
        .layer(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = listener.local_addr().unwrap();
    let target = upstream.url("/fail/gateway/2/503");
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = service_fn(move |mut request: Request<Incoming>| {
            let mut resilient = resilient.clone();
            *request.uri_mut() = target.parse().unwrap();
            async move {
                let upstream = match resilient.ready().await {
                    Ok(svc) => svc.call(request).await,
                    Err(err) => Err(err),
                };
                let answer = match upstream {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        match body.collect().await {
                            Ok(bytes) => Response::from_parts(parts, Full::new(bytes.to_bytes())),
                            Err(_) => bad_gateway(),
                        }
                    }
                    Err(_) => bad_gateway(),
                };
                Ok::<_, std::convert::Infallible>(answer)
            }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });

    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 239) as u8).collect();
    let plain: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let response = plain
        .request(post(format!("http://{gateway}/upload"), body.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(text(response).await, server::hash(&body));
    assert_eq!(upstream.stats.requests_to("/fail/gateway/2/503"), 3);
}

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = http::StatusCode::BAD_GATEWAY;
    response
}

#[tokio::test]
async fn a_retried_response_is_drained_so_its_connection_is_reused() {
    let server = FlakyServer::start().await.unwrap();
    let client: Client<HttpConnector, ReplayBody<Body>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = fast!().build().unwrap().layer(client);
    for key in ["a", "b", "c"] {
        // The 503's body is still arriving when retry lets it go.
        let url = server.url(&format!("/fail-drip/{key}/1"));
        let response = svc.ready().await.unwrap().call(get(url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(text(response).await, "recovered");
    }
    let stats = &server.stats;
    assert_eq!(stats.requests.load(std::sync::atomic::Ordering::Relaxed), 6);
    assert_eq!(
        stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "every attempt went over the one pooled connection"
    );
}

#[tokio::test]
async fn an_answer_before_the_body_was_sent_is_not_retried() {
    type Channel =
        StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>>;
    let server = FlakyServer::start().await.unwrap();
    // The first chunk goes out; the rest never comes while the server answers 503 unread.
    let (more, rest) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    let first = futures_util::stream::once(async { Ok(Frame::data(Bytes::from_static(b"part"))) });
    let rest = futures_util::stream::unfold(rest, |mut rest| async move {
        rest.recv().await.map(|frame| (frame, rest))
    });
    let body: Channel = StreamBody::new(Box::pin(futures_util::StreamExt::chain(first, rest)));
    let request = Request::put(server.url("/status/503")).body(body).unwrap();

    let (events, observer) = Recorder::new();
    let client: Client<HttpConnector, ReplayBody<Channel>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut svc = fast!().observer(observer).build().unwrap().layer(client);
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.stats.requests_to("/status/503"), 1);
    assert_eq!(events.give_up(), Some(GiveUp::NotReplayable));
    drop(more);
}

/// What axum state and spawned tasks need: the preset over a hyper-util client is
/// `Clone + Send + Sync + 'static` with `Send` futures, so it boxes as a
/// `BoxCloneSyncService`, and a call can be spawned.
#[tokio::test]
async fn the_preset_boxes_and_its_calls_spawn() {
    let server = FlakyServer::start().await.unwrap();
    let client: Client<HttpConnector, ReplayBody<Body>> =
        Client::builder(TokioExecutor::new()).build_http();
    let svc = fast!().build().unwrap().layer(client);
    let boxed: tower::util::BoxCloneSyncService<
        Request<Body>,
        <Preset as Service<Request<Body>>>::Response,
        BoxError,
    > = tower::util::BoxCloneSyncService::new(svc);
    let call = tokio::spawn(boxed.clone().oneshot(get(server.url("/fail/boxed/1/503"))));
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.extensions().get::<Attempts>(), Some(&Attempts(2)));
}

/// tower-http's body timeout does the job of the crate's former `BodyTimeoutLayer` idle timeout
/// on the preset's response bodies: a drip-fed body trips it, a patient reader gets all of it
/// (the demo's server over a pipe, on the paused clock: the gaps are exact).
#[tokio::test(start_paused = true)]
async fn a_drip_fed_body_trips_the_idle_timeout() {
    use tower_http::timeout::{TimeoutBody, TimeoutError};

    let response = send_piped(
        fast!().build().unwrap(),
        get(PIPED.to_owned() + "/drip/5/300"),
    )
    .await
    .unwrap();
    let start = tokio::time::Instant::now();
    let body = TimeoutBody::new(ms(299), response.into_body());
    let err = body.collect().await.unwrap_err();
    assert!(err.is::<TimeoutError>(), "{err}");
    assert_eq!(start.elapsed(), ms(299), "the first gap is 300 ms");

    // A reader patient for one gap gets all of it.
    let response = send_piped(
        fast!().build().unwrap(),
        get(PIPED.to_owned() + "/drip/3/300"),
    )
    .await
    .unwrap();
    let body = TimeoutBody::new(ms(301), response.into_body());
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"drip\ndrip\ndrip\n");
}

/// The host the piped tests name: any will do, the pipe goes to the demo's server.
const PIPED: &str = "http://flaky.test";

/// A body slower than the whole call's budget is cut by the preset's total timeout when it
/// covers the body, with the error that says so.
#[tokio::test(start_paused = true)]
async fn a_slow_body_trips_the_total_body_timeout() {
    let url = PIPED.to_owned() + "/drip/10/40";
    let layer = fast!()
        .total_timeout(ms(100))
        .attempt_timeout(ms(100))
        .total_timeout_covers_body()
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let response = send_piped(layer, get(url.clone())).await.unwrap();
    let err = response.into_body().collect().await.unwrap_err();
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(
        error.kind(),
        ErrorKind::Timeout {
            scope: TimeoutScope::Total,
            after: ms(100)
        }
    );
    assert_eq!(
        error.to_string(),
        format!("GET {url} exceeded its total deadline of 100ms (attempt 1 of 3)")
    );
    assert_eq!(start.elapsed(), ms(100), "cut at the deadline, not after");
}

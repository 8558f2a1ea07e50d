//! The gRPC preset against a real tonic server on 127.0.0.1 (tonic-health's service, which
//! ships generated code), through a real `tonic::transport::Channel`. A fault-injecting layer on
//! the server fails or stalls calls and records the `grpc-timeout` each one carried.

mod grpc_support;
mod h2_server;

use grpc_support::{decode_grpc_timeout, serve_health, tonic_body};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use h2_server::ResettingServer;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tonic::Code;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::BoxError;
use tower::{Layer, Service, ServiceBuilder};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::grpc::{GrpcClassifier, GrpcDeadlineLayer, GrpcResilienceLayer};
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter, RetryBudget};

/// What the server's fault layer does and saw.
#[derive(Default)]
struct Faults {
    /// Fail this many calls before letting them through.
    fail: AtomicU32,
    code: Mutex<Option<Code>>,
    pushback: Mutex<Option<&'static str>>,
    stall: Mutex<Option<Duration>>,
    /// Stall the next call only, this long.
    stall_once: Mutex<Option<Duration>>,
    /// How the failures are sent.
    form: Mutex<Form>,
    /// The headers of every call, in order.
    seen: Mutex<Vec<HeaderMap>>,
}

/// How an injected failure reaches the client.
#[derive(Clone, Copy, Default, PartialEq)]
enum Form {
    /// The status in the headers, nothing else (Trailers-Only).
    #[default]
    HeadersOnly,
    /// Headers, then trailers with the status, and no message between.
    NoMessage,
    /// The real answer's message, then trailers with the status in place of its own.
    AfterMessage,
}

impl Faults {
    fn failing(n: u32, code: Code) -> Arc<Faults> {
        let faults = Faults::default();
        faults.fail.store(n, Ordering::SeqCst);
        *faults.code.lock().unwrap() = Some(code);
        Arc::new(faults)
    }

    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn header(&self, call: usize, name: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        seen.get(call)?
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

#[derive(Clone)]
struct FaultLayer(Arc<Faults>);

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            faults: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct FaultService<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S> Service<Request<Body>> for FaultService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let faults = self.faults.clone();
        faults.seen.lock().unwrap().push(request.headers().clone());
        let failing = faults
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let stall = faults
            .stall_once
            .lock()
            .unwrap()
            .take()
            .or(*faults.stall.lock().unwrap());
        let form = *faults.form.lock().unwrap();
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let code = faults.code.lock().unwrap().unwrap_or(Code::Unavailable);
            if failing && form == Form::NoMessage {
                let response = Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Body::new(StreamBody::new(futures_util::stream::iter([
                        Ok::<_, std::convert::Infallible>(Frame::trailers(status_headers(code))),
                    ]))))
                    .unwrap();
                return Ok(response);
            }
            if failing && form == Form::AfterMessage {
                let response = inner.call(request).await.map_err(Into::into)?;
                return Ok(response.map(|body| {
                    Body::new(body.map_frame(move |frame| match frame.into_trailers() {
                        Ok(_) => Frame::trailers(status_headers(code)),
                        Err(frame) => frame,
                    }))
                }));
            }
            if failing {
                let mut response = Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", (code as i32).to_string())
                    .header("grpc-message", "injected");
                if let Some(pushback) = *faults.pushback.lock().unwrap() {
                    response = response.header("grpc-retry-pushback-ms", pushback);
                }
                return Ok(response.body(Body::empty()).unwrap());
            }
            if let Some(stall) = stall {
                tokio::time::sleep(stall).await;
            }
            inner.call(request).await.map_err(Into::into)
        })
    }
}

/// `grpc-status` and a message, as trailers.
fn status_headers(code: Code) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
    headers.insert("grpc-message", "injected".parse().unwrap());
    headers
}

async fn start(faults: Arc<Faults>, deadline: Option<GrpcDeadlineLayer>) -> SocketAddr {
    // The deadline's bodies are tonic's again, so that the stack has one body type either way.
    let deadline = deadline.map(|layer| {
        ServiceBuilder::new()
            .map_response(tonic_body)
            .layer(layer)
            .into_inner()
    });
    let layers = ServiceBuilder::new()
        .option_layer(deadline)
        .layer(FaultLayer(faults))
        .into_inner();
    serve_health(layers).await
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// The gRPC preset's builder as these tests start it (a macro: the builder's type is the
/// crate's own, so no function can return it).
macro_rules! fast {
    () => {
        ResilienceLayer::grpc()
            .total_timeout(Duration::from_secs(5))
            .attempt_timeout(Duration::from_secs(1))
            .backoff(
                ExponentialBackoff::new(Duration::from_millis(20), 1.0, Duration::from_millis(20))
                    .with_jitter(Jitter::None),
            )
            .no_budget()
    };
}

/// A health check through the preset that `builder` builds.
macro_rules! check {
    ($builder:expr, $addr:expr, $timeout:expr $(,)?) => {
        check_through($builder.build().unwrap(), $addr, $timeout)
    };
}

async fn check_through(
    layer: GrpcResilienceLayer,
    addr: SocketAddr,
    timeout: Option<Duration>,
) -> Result<ServingStatus, tonic::Status> {
    let resilient = layer.layer(channel(addr));
    let mut client = HealthClient::new(resilient);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let response = client.check(request).await?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn unavailable_is_retried_until_it_succeeds() {
    let faults = Faults::failing(2, Code::Unavailable);
    let addr = start(faults.clone(), None).await;
    assert_eq!(
        check!(fast!(), addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(faults.calls(), 3);
    assert_eq!(faults.header(0, "grpc-previous-rpc-attempts"), None);
    assert_eq!(
        faults.header(1, "grpc-previous-rpc-attempts").as_deref(),
        Some("1")
    );
    assert_eq!(
        faults.header(2, "grpc-previous-rpc-attempts").as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn unavailable_in_trailers_that_end_a_body_with_no_message_is_retried() {
    let faults = Faults::failing(2, Code::Unavailable);
    *faults.form.lock().unwrap() = Form::NoMessage;
    let addr = start(faults.clone(), None).await;
    assert_eq!(
        check!(fast!(), addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(faults.calls(), 3);
}

/// Once a message has arrived the RPC is committed (gRFC A6): the status in its trailers
/// reaches the caller as sent, and the call is not made again.
#[tokio::test]
async fn unavailable_in_trailers_after_a_message_is_not_retried() {
    let faults = Faults::failing(1, Code::Unavailable);
    *faults.form.lock().unwrap() = Form::AfterMessage;
    let addr = start(faults.clone(), None).await;
    let status = check!(fast!(), addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "injected", "the server's own status");
    assert_eq!(faults.calls(), 1);
}

#[tokio::test]
async fn a_fatal_code_is_not_retried_and_reaches_the_caller() {
    let faults = Faults::failing(5, Code::PermissionDenied);
    let addr = start(faults.clone(), None).await;
    let status = check!(fast!(), addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(faults.calls(), 1);
}

#[tokio::test]
async fn retries_that_run_out_return_the_last_status() {
    let faults = Faults::failing(5, Code::Unavailable);
    let addr = start(faults.clone(), None).await;
    let status = check!(fast!(), addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(faults.calls(), 3);
}

#[tokio::test]
async fn pushback_sets_the_delay_or_forbids_the_retry() {
    let faults = Faults::failing(1, Code::Unavailable);
    *faults.pushback.lock().unwrap() = Some("70");
    let addr = start(faults.clone(), None).await;
    let delays = Arc::new(Mutex::new(Vec::new()));
    let sink = delays.clone();
    let builder = fast!().observer(move |event: &Event| {
        if let Event::Retry { delay, hinted, .. } = event {
            sink.lock().unwrap().push((*delay, *hinted));
        }
    });
    assert_eq!(
        check!(builder, addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(*delays.lock().unwrap(), [(Duration::from_millis(70), true)]);

    let refusing = Faults::failing(1, Code::Unavailable);
    *refusing.pushback.lock().unwrap() = Some("-1");
    let addr = start(refusing.clone(), None).await;
    let status = check!(fast!(), addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(refusing.calls(), 1, "a negative pushback means no retry");
}

#[tokio::test]
async fn a_deadline_surfaces_as_deadline_exceeded() {
    let faults = Arc::new(Faults::default());
    *faults.stall.lock().unwrap() = Some(Duration::from_secs(5));
    let addr = start(faults.clone(), None).await;
    let builder = fast!()
        .total_timeout(Duration::from_millis(300))
        .attempt_timeout(Duration::from_millis(200));
    let status = check!(builder, addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .ends_with("exceeded its total deadline of 300ms (attempt 2 of 3)"),
        "{status:?}"
    );
}

#[tokio::test]
async fn grpc_timeout_shrinks_across_attempts() {
    let faults = Faults::failing(2, Code::Unavailable);
    let addr = start(faults.clone(), None).await;
    let builder = fast!().backoff(
        ExponentialBackoff::new(Duration::from_millis(50), 1.0, Duration::from_millis(50))
            .with_jitter(Jitter::None),
    );
    check!(builder, addr, None).await.unwrap();
    let budgets: Vec<Duration> = (0..3)
        .map(|call| {
            let value = faults
                .header(call, "grpc-timeout")
                .expect("every attempt carries one");
            decode_grpc_timeout(value.as_bytes()).unwrap()
        })
        .collect();
    assert!(budgets[0] <= Duration::from_secs(5), "{budgets:?}");
    assert!(
        budgets[1] + Duration::from_millis(50) <= budgets[0],
        "{budgets:?}"
    );
    assert!(
        budgets[2] + Duration::from_millis(50) <= budgets[1],
        "{budgets:?}"
    );
}

#[tokio::test]
async fn the_callers_own_timeout_is_never_exceeded() {
    let faults = Arc::new(Faults::default());
    let addr = start(faults.clone(), None).await;
    check!(fast!(), addr, Some(Duration::from_millis(800)))
        .await
        .unwrap();
    let sent = decode_grpc_timeout(faults.header(0, "grpc-timeout").unwrap().as_bytes()).unwrap();
    assert!(sent <= Duration::from_millis(800), "{sent:?}");
}

#[tokio::test]
async fn the_server_answers_deadline_exceeded_within_its_cap() {
    let faults = Arc::new(Faults::default());
    *faults.stall.lock().unwrap() = Some(Duration::from_secs(5));
    let deadline = GrpcDeadlineLayer::new().max(Duration::from_millis(100));
    let addr = start(faults.clone(), Some(deadline)).await;
    // The caller asks for 2 s; the server gives no request more than 100 ms and says so.
    let status = check!(fast!(), addr, Some(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "deadline exceeded",
        "the server's own answer"
    );
    assert_eq!(faults.calls(), 1, "DEADLINE_EXCEEDED is not retried");
}

#[tokio::test(start_paused = true)]
async fn the_server_honours_an_incoming_grpc_timeout() {
    // No network here: a client's own channel times out on the same header, first.
    let stalled = tower::service_fn(|_: Request<Body>| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, BoxError>(Response::new(Body::empty()))
    });
    let mut server = GrpcDeadlineLayer::new().layer(stalled);
    let request = Request::builder()
        .header("grpc-timeout", "150m")
        .body(Body::empty())
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = tower::ServiceExt::oneshot(&mut server, request)
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(150));
    assert_eq!(response.headers()["grpc-status"], "4");
    assert_eq!(response.headers()["content-type"], "application/grpc");
}

/// A request whose caller has too little time left is answered `DEADLINE_EXCEEDED` at once,
/// and its handler is never called.
#[tokio::test(start_paused = true)]
async fn the_server_refuses_at_once_a_request_with_too_little_time_left() {
    let called = Arc::new(AtomicU32::new(0));
    let count = called.clone();
    let handler = tower::service_fn(move |_: Request<Body>| {
        count.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(Response::new(Body::empty())) }
    });
    let mut server = GrpcDeadlineLayer::new()
        .min_remaining(Duration::from_millis(20))
        .layer(handler);
    for (timeout, refused) in [("0m", true), ("19m", true), ("20m", false), ("1S", false)] {
        let request = Request::builder()
            .header("grpc-timeout", timeout)
            .body(Body::empty())
            .unwrap();
        let started = tokio::time::Instant::now();
        let response = tower::ServiceExt::oneshot(&mut server, request)
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "{timeout}");
        let status = response.headers().get("grpc-status");
        assert_eq!(status.is_some_and(|s| s == "4"), refused, "{timeout}");
    }
    assert_eq!(
        called.load(Ordering::SeqCst),
        2,
        "only the requests with time were served"
    );
}

/// A margin comes off the caller's time before anything else: the handler, and the calls it
/// makes, get what is left, and a request left with nothing is refused at once.
#[tokio::test(start_paused = true)]
async fn the_servers_margin_comes_off_the_callers_time() {
    let handler = tower::service_fn(|_: Request<Body>| async {
        let left = tower_tenacity::context::remaining().unwrap();
        let mut response = Response::new(Body::empty());
        let millis = left.as_millis().to_string();
        response
            .headers_mut()
            .insert("x-left-ms", millis.parse().unwrap());
        Ok::<_, BoxError>(response)
    });
    let mut server = GrpcDeadlineLayer::new()
        .margin(Duration::from_millis(10))
        .layer(handler);
    let mut ask = async |timeout: &str| {
        let request = Request::builder()
            .header("grpc-timeout", timeout)
            .body(Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(&mut server, request)
            .await
            .unwrap()
    };
    assert_eq!(ask("100m").await.headers()["x-left-ms"], "90");
    assert_eq!(
        ask("10m").await.headers()["grpc-status"],
        "4",
        "nothing left"
    );
}

/// The caller's attempt crosses the hop: a handler behind `GrpcDeadlineLayer` in a real tonic
/// server reads it from the call context (`grpc-previous-rpc-attempts` plus one), none on the
/// first attempt.
#[tokio::test]
async fn the_callers_attempt_is_read_into_the_handlers_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let handler = grpc_support::front(move |request: Request<Body>, routes| {
        let record = record.clone();
        async move {
            let attempt = tower_tenacity::context::attempt();
            record.lock().unwrap().push(attempt);
            if attempt.is_none() {
                // The first attempt fails, so that the preset retries it.
                let unavailable = Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "14")
                    .body(Body::empty())
                    .unwrap();
                return Ok(unavailable);
            }
            tower::ServiceExt::oneshot(routes, request)
                .await
                .map_err(Into::into)
        }
    });
    let layers = ServiceBuilder::new()
        .map_response(tonic_body)
        .layer(GrpcDeadlineLayer::new())
        .layer(handler)
        .into_inner();
    let addr = serve_health(layers).await;
    assert_eq!(
        check!(fast!(), addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(*seen.lock().unwrap(), [None, Some(2)]);
}

#[tokio::test]
async fn budget_exhaustion_says_so() {
    // Nothing listens there: every attempt is refused, and a budget of no retries stops it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let builder = fast!().budget(RetryBudget::new(0.0, 0, Duration::from_secs(60)).unwrap());
    let status = check!(builder, addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("retry budget exhausted"),
        "{status:?}"
    );
}

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// A bare HTTP/2 server that resets the first stream with `reset` and answers `Health/Check`
/// with `SERVING` by hand after that.
async fn resetting_server(reset: h2::Reason) -> (SocketAddr, ResettingServer) {
    let (server, addr) = ResettingServer::start(
        move |_| Some(reset),
        |mut respond| {
            let head = Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let mut body = respond.send_response(head, false).unwrap();
            // One uncompressed message: HealthCheckResponse { status: SERVING }.
            let message = bytes::Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]);
            body.send_data(message, false).unwrap();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            body.send_trailers(trailers).unwrap();
        },
    )
    .await;
    (addr, server)
}

#[tokio::test]
async fn a_refused_stream_is_retried_whatever_the_codes() {
    let (addr, server) = resetting_server(h2::Reason::REFUSED_STREAM).await;
    let builder = fast!().classifier(GrpcClassifier::new().no_retry_on(Code::Unavailable));
    assert_eq!(
        check!(builder, addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(server.streams_to(HEALTH_CHECK), 2);
}

#[tokio::test]
async fn a_reset_stream_is_the_status_the_grpc_spec_gives_it() {
    // INTERNAL_ERROR is INTERNAL: not retried by default.
    let (addr, server) = resetting_server(h2::Reason::INTERNAL_ERROR).await;
    let status = check!(fast!(), addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(server.streams_to(HEALTH_CHECK), 1);

    // ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED: retried when that code is.
    let (addr, server) = resetting_server(h2::Reason::ENHANCE_YOUR_CALM).await;
    let builder = fast!().classifier(GrpcClassifier::new().retry_on(Code::ResourceExhausted));
    assert_eq!(
        check!(builder, addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(server.streams_to(HEALTH_CHECK), 2);
}

/// A tonic client over the preset can be called from a spawned task: the preset and its
/// futures are `Send`.
#[tokio::test]
async fn calls_through_the_preset_spawn() {
    let faults = Faults::failing(1, Code::Unavailable);
    let addr = start(faults.clone(), None).await;
    let status = tokio::spawn(async move { check!(fast!(), addr, None).await })
        .await
        .unwrap();
    assert_eq!(status.unwrap(), ServingStatus::Serving);
    assert_eq!(faults.calls(), 2);
}

/// UNAVAILABLE opens the preset's circuit; a tonic client then gets UNAVAILABLE at once, with a
/// message naming the open circuit, and the server sees no more calls.
#[tokio::test]
async fn unavailable_opens_the_circuit_and_tonic_sees_unavailable() {
    let faults = Faults::failing(u32::MAX, Code::Unavailable);
    let addr = start(faults.clone(), None).await;
    let layer = fast!()
        .circuit_breaker(
            tower_tenacity::breaker::BreakerConfig::new()
                .consecutive_failures(3)
                .break_duration(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let handle = layer.breaker().handle();
    let mut client = HealthClient::new(layer.layer(channel(addr)));
    let request = || HealthCheckRequest {
        service: String::new(),
    };
    let status = client.check(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(faults.calls(), 3);
    assert_eq!(
        handle.snapshot().state,
        tower_tenacity::breaker::CircuitState::Open
    );
    let status = client.check(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("the circuit is open for"),
        "{}",
        status.message()
    );
    assert_eq!(faults.calls(), 3, "no call reached the server");
}

/// A unary call that stalls is hedged: the hedge (with `grpc-previous-rpc-attempts`) answers,
/// its status reaches the tonic client, and the stalled attempt is cancelled.
#[tokio::test]
async fn a_stalled_unary_call_is_hedged() {
    let faults = Faults::failing(0, Code::Unavailable);
    *faults.stall_once.lock().unwrap() = Some(Duration::from_secs(30));
    let addr = start(faults.clone(), None).await;
    let builder = fast!().hedge(tower_tenacity::retry::Hedge::after(Duration::from_millis(
        50,
    )));
    let started = std::time::Instant::now();
    assert_eq!(
        check!(builder, addr, None).await.unwrap(),
        ServingStatus::Serving
    );
    assert!(started.elapsed() < Duration::from_secs(5), "not the stall");
    assert_eq!(faults.calls(), 2);
    assert_eq!(faults.header(0, "grpc-previous-rpc-attempts"), None);
    assert_eq!(
        faults.header(1, "grpc-previous-rpc-attempts").as_deref(),
        Some("1")
    );
}

/// A fatal status from the hedge wins as well: it reaches the client as it is.
#[tokio::test]
async fn the_winning_hedges_status_reaches_the_client() {
    let faults = Faults::failing(0, Code::PermissionDenied);
    *faults.stall_once.lock().unwrap() = Some(Duration::from_secs(30));
    let addr = start(faults.clone(), None).await;
    // The first call stalls (it is not failing); make the second fail fatally.
    let second = faults.clone();
    tokio::spawn(async move {
        while second.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        second.fail.store(1, Ordering::SeqCst);
    });
    let builder = fast!().hedge(tower_tenacity::retry::Hedge::after(Duration::from_millis(
        50,
    )));
    let status = check!(builder, addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(faults.calls(), 2);
}

//! Streaming RPCs through the gRPC preset against a real tonic server on 127.0.0.1: a
//! server-streaming `Watch` flows as it does over the bare channel, past the attempt timeout;
//! the RPC's deadline, when one is set, ends the stream on both sides; client-streaming and
//! bidi calls work and are sent once. These run in real time: the test paces the server's
//! messages, and what is checked is which messages arrived and how often the server was called.
#![cfg(feature = "grpc")]

mod grpc_support;

use grpc_support::{decode_grpc_timeout, tonic_body};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use http::{Request, Response};
use tokio::sync::{mpsc, oneshot};
use tonic::body::Body;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status, Streaming};
use tonic_health::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthReporter;
use tonic_prost::ProstCodec;
use tower::BoxError;
use tower::{Layer, Service, ServiceBuilder};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::grpc::GrpcDeadlineLayer;

/// What the server saw: the headers of each call, and when a response body went away.
#[derive(Default)]
struct Seen {
    calls: Mutex<Vec<http::HeaderMap>>,
    /// Told when a response body of the server is dropped (the stream ended or was cancelled).
    dropped: Mutex<Option<oneshot::Sender<()>>>,
}

impl Seen {
    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn calls_to(&self, path: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.get("x-test-path").is_some_and(|p| p == path))
            .count()
    }

    fn header(&self, call: usize, name: &str) -> Option<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .get(call)?
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Resolves when the next response body the server sends is dropped.
    fn next_drop(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        *self.dropped.lock().unwrap() = Some(tx);
        rx
    }
}

/// Records calls and the end of response bodies, on the server.
#[derive(Clone)]
struct Record<S> {
    inner: S,
    seen: Arc<Seen>,
}

/// A response body that tells `Seen` when it is dropped.
struct Watched {
    inner: Body,
    on_drop: Option<oneshot::Sender<()>>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(tx) = self.on_drop.take() {
            let _ = tx.send(());
        }
    }
}

impl http_body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl<S> Service<Request<Body>> for Record<S>
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
        let mut headers = request.headers().clone();
        headers.insert("x-test-path", request.uri().path().parse().unwrap());
        self.seen.calls.lock().unwrap().push(headers);
        let on_drop = self.seen.dropped.lock().unwrap().take();
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let response = inner.call(request).await.map_err(Into::into)?;
            Ok(response.map(|inner| Body::new(Watched { inner, on_drop })))
        })
    }
}

/// A tonic service with a client-streaming and a bidi method, made by hand (tonic-health's
/// messages, tonic's server codegen helpers): `Collect` counts the names it was sent (and
/// fails with UNAVAILABLE if one is "fail"); `Echo` answers every name with its length.
#[derive(Clone)]
struct Names;

impl NamedService for Names {
    const NAME: &'static str = "test.Names";
}

const COLLECT: &str = "/test.Names/Collect";
const ECHO: &str = "/test.Names/Echo";

type EchoStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn answer(count: usize) -> HealthCheckResponse {
    HealthCheckResponse {
        status: i32::try_from(count).unwrap(),
    }
}

impl Service<Request<Body>> for Names {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
        Box::pin(async move {
            Ok(match request.uri().path() {
                COLLECT => {
                    let collect = tower::service_fn(
                        |req: tonic::Request<Streaming<HealthCheckRequest>>| async {
                            let mut names = req.into_inner();
                            let mut count = 0;
                            while let Some(name) = names.message().await? {
                                if name.service == "fail" {
                                    return Err(Status::unavailable("told to fail"));
                                }
                                count += 1;
                            }
                            Ok(tonic::Response::new(answer(count)))
                        },
                    );
                    grpc.client_streaming(collect, request).await
                }
                ECHO => {
                    let echo = tower::service_fn(
                        |req: tonic::Request<Streaming<HealthCheckRequest>>| async {
                            let names = req.into_inner();
                            let lengths: EchoStream = Box::pin(
                                names.map(|name| name.map(|name| answer(name.service.len()))),
                            );
                            Ok::<_, Status>(tonic::Response::new(lengths))
                        },
                    );
                    grpc.streaming(echo, request).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

struct TestServer {
    addr: SocketAddr,
    health: HealthReporter,
    seen: Arc<Seen>,
}

/// tonic-health and the `Names` service on 127.0.0.1, behind `Record` and, if given, the
/// server-side deadline layer.
async fn start(deadline: Option<GrpcDeadlineLayer>) -> TestServer {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    let deadline = deadline.map(|layer| {
        ServiceBuilder::new()
            .map_response(tonic_body)
            .layer(layer)
            .into_inner()
    });
    tokio::spawn(async move {
        let layers = ServiceBuilder::new()
            .layer(tower::layer::layer_fn(move |inner| Record {
                inner,
                seen: record.clone(),
            }))
            .option_layer(deadline);
        Server::builder()
            .layer(layers)
            .add_service(health_service)
            .add_service(Names)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    TestServer { addr, health, seen }
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

const WAIT: Duration = Duration::from_secs(10);

/// The next message of a stream, within a generous bound (a hang fails the test).
async fn next<T>(stream: &mut Streaming<T>) -> Result<Option<T>, Status> {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("the stream went quiet")
}

fn watch_request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

/// The default gRPC preset (2 s per attempt, no total deadline) against the bare channel, over
/// the same 2.6 s of status changes: the same messages arrive, none held back.
#[tokio::test]
async fn a_watch_streams_through_the_default_preset_as_over_the_bare_channel() {
    const CHANGES: usize = 13;
    let server = start(None).await;
    let mut bare = HealthClient::new(channel(server.addr));
    let preset = ResilienceLayer::grpc()
        .build()
        .unwrap()
        .layer(channel(server.addr));
    let mut resilient = HealthClient::new(preset);
    let mut bare = bare.watch(watch_request()).await.unwrap().into_inner();
    let mut resilient = tokio::time::timeout(WAIT, resilient.watch(watch_request()))
        .await
        .expect("the response comes with its first message")
        .unwrap()
        .into_inner();
    let mut received = [Vec::new(), Vec::new()];
    for change in 0..=CHANGES {
        if change > 0 {
            // Past the attempt timeout in all: 13 × 200 ms.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let status = if change % 2 == 1 {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            server.health.set_service_status("", status).await;
        }
        for (stream, seen) in [&mut bare, &mut resilient].into_iter().zip(&mut received) {
            let message = next(stream).await.unwrap().expect("the stream goes on");
            seen.push(message.status);
        }
    }
    assert_eq!(received[0].len(), CHANGES + 1);
    assert_eq!(
        received[1], received[0],
        "the same messages as the bare channel"
    );
    assert_eq!(
        server.seen.calls(),
        2,
        "one Watch each, the resilient one not retried"
    );
}

/// With a total deadline, the client's stream ends with DEADLINE_EXCEEDED when it passes, and
/// the server was told it (`grpc-timeout`) and sees its stream cancelled.
#[tokio::test]
async fn an_explicit_deadline_ends_the_stream_on_the_client_and_cancels_it_on_the_server() {
    let server = start(None).await;
    let dropped = server.seen.next_drop();
    let preset = ResilienceLayer::grpc()
        .total_timeout(Duration::from_millis(600))
        .build()
        .unwrap()
        .layer(channel(server.addr));
    let mut client = HealthClient::new(preset);
    let mut stream = client.watch(watch_request()).await.unwrap().into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        first.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .ends_with("exceeded its total deadline of 600ms (attempt 1 of 3)"),
        "{status:?}"
    );
    let told =
        decode_grpc_timeout(server.seen.header(0, "grpc-timeout").unwrap().as_bytes()).unwrap();
    assert!(told <= Duration::from_millis(600), "{told:?}");
    drop(stream);
    tokio::time::timeout(WAIT, dropped)
        .await
        .expect("the server's stream is cancelled")
        .unwrap();
}

/// A server with `GrpcDeadlineLayer` ends a stream itself when the caller's `grpc-timeout`
/// passes, with DEADLINE_EXCEEDED trailers: here the client is a bare channel, which does not
/// cut streams.
#[tokio::test]
async fn the_server_ends_a_stream_at_the_deadline_it_was_told() {
    let server = start(Some(GrpcDeadlineLayer::new())).await;
    let mut client = HealthClient::new(channel(server.addr));
    let mut request = tonic::Request::new(watch_request());
    request.set_timeout(Duration::from_millis(400));
    let mut stream = client.watch(request).await.unwrap().into_inner();
    assert!(next(&mut stream).await.unwrap().is_some());
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "deadline exceeded",
        "the server's own trailers"
    );
}

fn names(list: &[&str]) -> Vec<HealthCheckRequest> {
    list.iter()
        .map(|name| HealthCheckRequest {
            service: (*name).to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn a_client_stream_goes_through_once() {
    let server = start(None).await;
    let preset = ResilienceLayer::grpc()
        .build()
        .unwrap()
        .layer(channel(server.addr));
    let mut grpc = tonic::client::Grpc::new(preset);
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(futures_util::stream::iter(names(&["a", "b", "c"])));
    let answer: tonic::Response<HealthCheckResponse> = grpc
        .client_streaming(
            request,
            PathAndQuery::from_static(COLLECT),
            ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(answer.into_inner().status, 3);
    assert_eq!(server.seen.calls_to(COLLECT), 1);
}

/// A client stream longer than the replay cap cannot be sent again: its UNAVAILABLE is the
/// caller's, and the server saw it once.
#[tokio::test]
async fn a_client_stream_over_the_replay_cap_is_never_sent_twice() {
    let server = start(None).await;
    let preset = ResilienceLayer::grpc()
        .replay_cap(16)
        .build()
        .unwrap()
        .layer(channel(server.addr));
    let mut grpc = tonic::client::Grpc::new(preset);
    grpc.ready().await.unwrap();
    let long = ["a name long enough to pass the cap", "another", "fail"];
    let request = tonic::Request::new(futures_util::stream::iter(names(&long)));
    let status = grpc
        .client_streaming::<_, _, HealthCheckResponse, _>(
            request,
            PathAndQuery::from_static(COLLECT),
            ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(server.seen.calls_to(COLLECT), 1, "sent once");
}

/// A bidi call whose answers come while the client is still sending, over longer than the
/// attempt timeout: each answer arrives as it is sent, and the call is made once.
#[tokio::test]
async fn a_bidi_stream_flows_both_ways_past_the_attempt_timeout() {
    let server = start(None).await;
    let preset = ResilienceLayer::grpc()
        .attempt_timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .layer(channel(server.addr));
    let mut grpc = tonic::client::Grpc::new(preset);
    grpc.ready().await.unwrap();
    let (tx, rx) = mpsc::channel::<HealthCheckRequest>(4);
    let outgoing = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|name| (name, rx))
    });
    tx.send(names(&["a"]).remove(0)).await.unwrap();
    let response: tonic::Response<Streaming<HealthCheckResponse>> = grpc
        .streaming(
            tonic::Request::new(outgoing),
            PathAndQuery::from_static(ECHO),
            ProstCodec::default(),
        )
        .await
        .unwrap();
    let mut answers = response.into_inner();
    assert_eq!(next(&mut answers).await.unwrap().unwrap().status, 1);
    for name in ["bb", "ccc", "dddd"] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(names(&[name]).remove(0)).await.unwrap();
        let answer = next(&mut answers).await.unwrap().unwrap();
        assert_eq!(answer.status as usize, name.len());
    }
    drop(tx);
    assert!(next(&mut answers).await.unwrap().is_none(), "ends with OK");
    assert_eq!(server.seen.calls_to(ECHO), 1, "sent once");
}

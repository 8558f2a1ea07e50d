//! The demo's flaky server: a real hyper HTTP/1 server on 127.0.0.1 that fails the ways real
//! servers do. The integration tests use it too.
//!
//! What each request gets is decided by its path:
//!
//! | path | answer |
//! |---|---|
//! | `/ok` | 200 `ok` |
//! | `/status/{code}` | that status |
//! | `/retry-after/{value}` | 429 with `Retry-After: {value}` (seconds or a date, URL-encoded) |
//! | `/stall/{ms}` | 200 after `ms` milliseconds |
//! | `/reset` | the connection is closed with no answer |
//! | `/drip/{chunks}/{ms}` | 200, a body of `chunks` lines, one every `ms` milliseconds |
//! | `/hash` | 200, the request body's length and hash (`len=…;hash=…`) |
//! | `/fail/{key}/{n}/{code}` | `code` for the first `n` requests with that key, then 200 with the body's hash |
//! | `/fail-drip/{key}/{n}` | 503 with a body drip-fed over 15 ms for the first `n` requests, then 200 |
//! | `/demo/{id}` | a random fault or a success, as the demo mix below says |
//!
//! Every answer carries `x-request-count` (requests so far) and the server counts connections.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::{Ready, ready};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt};
use tower_tenacity::testing::FaultLayer;

/// What the server has seen.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// Requests per path, for tests that count attempts.
    pub per_path: Mutex<HashMap<String, u64>>,
    /// Headers seen per path: the last request's, for tests of what a retry sends.
    pub last_headers: Mutex<HashMap<String, http::HeaderMap>>,
}

impl Stats {
    pub fn requests_to(&self, path: &str) -> u64 {
        self.per_path
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// A running flaky server; it stops when dropped.
pub struct FlakyServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for FlakyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FlakyServer {
    /// Starts the server on a free port of 127.0.0.1, with a random demo mix.
    pub async fn start() -> std::io::Result<FlakyServer> {
        FlakyServer::start_seeded(fastrand::u64(..)).await
    }

    /// Starts the server on a free port of 127.0.0.1, its demo mix drawn from `seed`.
    pub async fn start_seeded(seed: u64) -> std::io::Result<FlakyServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handler = Handler::new(seed);
        let stats = handler.stats.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    handler.serve(stream);
                }
            }
        });
        Ok(FlakyServer { addr, stats, task })
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// What serves the server's connections, over TCP or over an in-memory pipe.
#[derive(Clone)]
pub struct Handler {
    pub stats: Arc<Stats>,
    failures: Arc<Mutex<HashMap<String, u64>>>,
    demo: Demo,
}

impl Handler {
    /// A handler whose demo mix is drawn from `seed`; its fault windows count from now.
    pub fn new(seed: u64) -> Handler {
        Handler {
            stats: Arc::default(),
            failures: Arc::default(),
            demo: demo_faults(seed),
        }
    }

    /// Serves one connection on a task of its own.
    pub fn serve<IO>(&self, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let handler = self.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let Handler {
                    stats,
                    failures,
                    demo,
                } = handler.clone();
                handle(request, stats, failures, demo)
            });
            // Errors here are the faults we inject (and clients going away).
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}

/// A fault that closes the connection without an answer.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected reset")
    }
}

impl std::error::Error for Reset {}

type Reply = Response<ServerBody>;

async fn handle(
    request: Request<Incoming>,
    stats: Arc<Stats>,
    failures: Arc<Mutex<HashMap<String, u64>>>,
    demo: Demo,
) -> Result<Reply, Reset> {
    let count = stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let path = request.uri().path().to_owned();
    *stats
        .per_path
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    stats
        .last_headers
        .lock()
        .unwrap()
        .insert(path.clone(), request.headers().clone());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut reply = match segments.as_slice() {
        ["ok"] => text(StatusCode::OK, "ok"),
        ["status", code] => status(code.parse().unwrap_or(500)),
        ["retry-after", value] => {
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            let mut reply = text(StatusCode::TOO_MANY_REQUESTS, "slow down");
            if let Ok(value) = value.parse() {
                reply.headers_mut().insert(http::header::RETRY_AFTER, value);
            }
            reply
        }
        ["stall", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            text(StatusCode::OK, "late")
        }
        ["reset"] => return Err(Reset),
        ["drip", chunks, ms] => drip(chunks.parse().unwrap_or(1), ms.parse().unwrap_or(0)),
        ["hash"] => text(StatusCode::OK, hash(&read_body(request).await?)),
        ["fail", key, n, code] => {
            // The body is read in full either way, and hashed for the success.
            let body = read_body(request).await?;
            if fails_now(&failures, key, n) {
                status(code.parse().unwrap_or(503))
            } else {
                text(StatusCode::OK, hash(&body))
            }
        }
        ["fail-drip", key, n] => {
            if fails_now(&failures, &format!("drip-{key}"), n) {
                let mut reply = drip(3, 5);
                *reply.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                reply
            } else {
                text(StatusCode::OK, "recovered")
            }
        }
        ["demo", _] => demo.oneshot(()).await.map_err(|_| Reset)?,
        _ => status(404),
    };
    reply.headers_mut().insert("x-request-count", count.into());
    Ok(reply)
}

/// The demo's answers: faults from the crate's fault-injection kit, and "fine" for the rest.
type Demo = <FaultLayer<Reply> as Layer<Faulty>>::Service;

/// The demo's answers with the first layer of faults.
type Faulty =
    <FaultLayer<Reply> as Layer<ServiceFn<fn(()) -> Ready<Result<Reply, Infallible>>>>>::Service;

fn fine(_: ()) -> Ready<Result<Reply, Infallible>> {
    ready(Ok(text(StatusCode::OK, "fine")))
}

/// The demo mix, in words, for the demo's header.
pub const DEMO_MIX: &str = "5-40 ms to answer; 6.5% 503, 0.5% 429 + Retry-After: 1, 4% stall 3 s, \
     3% reset, 3% drip-fed body (300 ms); an outage (all 503) from 8 s to 10 s";

/// The demo mix, drawn afresh for every request (so a retry meets new luck) from `seed`; see
/// [`DEMO_MIX`]. Every answer takes 5 to 40 ms; the outage counts from when this is called.
fn demo_faults(seed: u64) -> Demo {
    let slow_down = || {
        let mut reply = text(StatusCode::TOO_MANY_REQUESTS, "slow down");
        reply
            .headers_mut()
            .insert(http::header::RETRY_AFTER, "1".parse().unwrap());
        reply
    };
    let faults = FaultLayer::builder()
        .seed(seed)
        .respond(1.0, || status(503))
        .during(Duration::from_secs(8), Duration::from_secs(10))
        .respond(0.065, || status(503))
        .respond(0.005, slow_down)
        .latency(0.04, Duration::from_secs(3))
        .error(0.03, std::io::ErrorKind::ConnectionReset)
        .respond(0.03, || drip(6, 50))
        .build()
        .expect("a valid fault plan");
    let answer_time = FaultLayer::builder()
        .seed(seed.wrapping_add(1))
        .latency_between(1.0, Duration::from_millis(5), Duration::from_millis(40))
        .build()
        .expect("a valid latency plan");
    answer_time.layer(faults.layer(tower::service_fn(
        fine as fn(()) -> Ready<Result<Reply, Infallible>>,
    )))
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Reset> {
    Ok(request
        .into_body()
        .collect()
        .await
        .map_err(|_| Reset)?
        .to_bytes())
}

/// Counts a request under `key`: whether it is one of the first `n`, which fail.
fn fails_now(failures: &Mutex<HashMap<String, u64>>, key: &str, n: &str) -> bool {
    let mut failures = failures.lock().unwrap();
    let seen = failures.entry(key.to_owned()).or_default();
    *seen += 1;
    *seen <= n.parse().unwrap_or(0)
}

/// `len=…;hash=…` of a body, for checking that replayed bytes are the bytes.
pub fn hash(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("len={};hash={:016x}", body.len(), hasher.finish())
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(ServerBody::Full(Some(body.into())));
    *reply.status_mut() = status;
    reply
}

fn status(code: u16) -> Reply {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(
        status,
        status.canonical_reason().unwrap_or("status").to_owned(),
    )
}

fn drip(chunks: u32, ms: u64) -> Reply {
    Response::new(ServerBody::Drip {
        left: chunks,
        every: Duration::from_millis(ms),
        sleep: Box::pin(tokio::time::sleep(Duration::from_millis(ms))),
    })
}

/// A whole body, or one drip-fed a line at a time.
pub enum ServerBody {
    Full(Option<Bytes>),
    Drip {
        left: u32,
        every: Duration,
        sleep: Pin<Box<tokio::time::Sleep>>,
    },
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            ServerBody::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            ServerBody::Drip { left, every, sleep } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *left -= 1;
                let next = tokio::time::Instant::now() + *every;
                sleep.as_mut().reset(next);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"drip\n")))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServerBody::Full(body) => body.is_none(),
            ServerBody::Drip { left, .. } => *left == 0,
        }
    }
}

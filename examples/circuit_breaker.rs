//! The HTTP preset with a circuit breaker, against a hyper server of its own on 127.0.0.1 that
//! goes down and comes back (no network needed).
//!
//! ```text
//! cargo run --example circuit_breaker
//! ```
//!
//! The server answers 503 for a while. Each call makes two attempts; after four failures in a
//! row the circuit opens, and calls fail at once without reaching the server, saying how long
//! the break still lasts (a break that ends within the call's deadline would be waited out by
//! retry; this one, 2 s, is longer than the 1 s deadline). The server comes back; the first
//! call after the break probes, its success closes the circuit, and traffic flows again. Every
//! change of state is printed as it happens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::breaker::{BreakerConfig, Transition};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::{Error, ResilienceLayer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = Server::start().await?;
    let layer = ResilienceLayer::http()
        .total_timeout(Duration::from_secs(1))
        .attempt_timeout(Duration::from_millis(300))
        .max_attempts(2)
        .circuit_breaker(
            BreakerConfig::new()
                .consecutive_failures(4)
                .break_duration(Duration::from_secs(2))
                .break_jitter(0.0)
                .observer(|t: &Transition<'_>| {
                    let key = t.key.unwrap_or("");
                    println!("  circuit {key}: {} -> {} ({})", t.from, t.to, t.cause);
                }),
        )
        .build()?;
    let breaker = layer.breaker().handle();
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let svc = layer.layer(client);
    let url = format!("http://{}/", server.addr);

    println!("The server is down:");
    send(&svc, &url, &server, 1..=5).await?;
    println!("{}", breaker.snapshot());

    println!("\nThe server is back; after the break the first call probes:");
    server.up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    send(&svc, &url, &server, 6..=8).await?;
    println!("{}", breaker.snapshot());
    Ok(())
}

/// Sends the calls numbered `calls`, one at a time, and prints what each came to.
async fn send<S>(
    svc: &S,
    url: &str,
    server: &Server,
    calls: std::ops::RangeInclusive<u32>,
) -> Result<(), BoxError>
where
    S: Service<Request<Full<Bytes>>, Error = BoxError> + Clone,
    S::Response: HasStatus,
{
    for call in calls {
        let request = Request::get(url).body(Full::default())?;
        match svc.clone().oneshot(request).await {
            Ok(response) => println!("call {call}: {}", response.status()),
            Err(err) => {
                let open = Error::find(err.as_ref()).is_some_and(Error::is_circuit_open);
                println!("call {call}: {err} (circuit open: {open})");
            }
        }
    }
    println!("the server saw {} requests", server.requests());
    Ok(())
}

/// A response's status, whatever its body.
trait HasStatus {
    fn status(&self) -> StatusCode;
}

impl<B> HasStatus for Response<B> {
    fn status(&self) -> StatusCode {
        Response::status(self)
    }
}

/// Answers 503 until `up` is set, then 200; counts the requests it gets.
struct Server {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

impl Server {
    async fn start() -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, requests) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (state, count) = (up.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, count) = (state.clone(), count.clone());
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let status = if state.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
                    *response.status_mut() = status;
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(Server { addr, up, requests })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

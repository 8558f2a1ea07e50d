//! What a URI hides in plain sight stays out of what the stack tells: userinfo
//! (`alice:password@`) and query values (`?access_token=…`) appear in no error (`Display` or
//! `Debug`), no `tracing` event, no future's `Debug` and no per-host key's name; and one host is
//! one key whatever the case of its name (RFC 3986: `Example.com` is `example.com`). Against a
//! real hyper server on 127.0.0.1.
#![cfg(feature = "hyper")]

#[path = "../examples/demo_client/server.rs"]
mod server;

mod common;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use server::FlakyServer;
use tokio::net::TcpStream;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::breaker::{BreakerConfig, CircuitState, Transition};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::{Error, ResilienceLayer};

use common::Buffer;

const PASSWORD: &str = "pw-4f7a9e";
const TOKEN: &str = "tok-8c1d2b";

type Body = Full<Bytes>;

fn log() -> &'static Buffer {
    common::global_log()
}

/// Opens the circuit of a host after `failures` failures in a row; the keys of its transitions
/// are kept.
fn breaker(failures: u32, keys: &Arc<Mutex<Vec<String>>>) -> BreakerConfig {
    let keys = keys.clone();
    BreakerConfig::new()
        .no_failure_ratio()
        .consecutive_failures(failures)
        .break_duration(Duration::from_secs(30))
        .observer(move |t: &Transition<'_>| {
            keys.lock().unwrap().push(t.key.unwrap_or("").to_owned());
        })
}

/// The preset's builder as these tests start it (a macro: the builder's type is the crate's
/// own, so no function can return it).
macro_rules! preset {
    () => {
        ResilienceLayer::http()
            .backoff(
                ExponentialBackoff::new(Duration::from_millis(5), 1.0, Duration::from_millis(5))
                    .with_jitter(Jitter::None),
            )
            .no_budget()
    };
}

/// Connects to one address whatever the host asked for, so that any name reaches the server.
#[derive(Clone)]
struct ToServer(SocketAddr);

impl tower::Service<Uri> for ToServer {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let addr = self.0;
        Box::pin(async move { TcpStream::connect(addr).await.map(TokioIo::new) })
    }
}

fn client_to(server: &FlakyServer) -> Client<ToServer, ReplayBody<Body>> {
    Client::builder(TokioExecutor::new()).build(ToServer(server.addr))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in ["alice", PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "{secret} in the {what}: {text}");
    }
}

#[tokio::test]
async fn userinfo_and_query_values_reach_no_error_event_or_key() {
    let log = log();
    let server = FlakyServer::start().await.unwrap();
    let port = server.addr.port();
    let path = "/status/503";
    let uri = format!("http://alice:{PASSWORD}@127.0.0.1:{port}{path}?access_token={TOKEN}&x=1");
    let keys = Arc::new(Mutex::new(Vec::new()));
    // Two 503s open the circuit; the third attempt is turned away by it.
    let layer = preset!()
        .circuit_breaker(breaker(2, &keys))
        .build()
        .unwrap();
    let mut svc = layer.layer(client_to(&server));

    let future = svc.ready().await.unwrap().call(get(&uri));
    assert_no_secret("future's Debug", &format!("{future:?}"));
    let err: BoxError = future.await.unwrap_err();
    assert_eq!(server.stats.requests_to(path), 2);

    let display = err.to_string();
    assert!(
        display.starts_with(&format!("GET http://127.0.0.1:{port}{path} ")),
        "the request is named by scheme, host, port and path: {display}"
    );
    assert!(Error::find(err.as_ref()).is_some_and(Error::is_circuit_open));
    assert_no_secret("error's Display", &display);
    assert_no_secret("error's Debug", &format!("{err:?}"));

    // The host's key, by its name (`http::ByAuthority`'s unit tests check the key of such a URI).
    let name = format!("http://127.0.0.1:{port}");
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys, [name], "the circuit that opened is named by its key");

    // This crate's events; hyper-util's own TRACE lines name its pool's keys as written.
    let log: String = log
        .text()
        .lines()
        .filter(|line| line.contains(" tower_tenacity::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(log.contains("circuit opened"), "{log}");
    assert!(
        log.contains(&format!("key=\"http://127.0.0.1:{port}\"")),
        "{log}"
    );
    assert_no_secret("tracing events", &log);
}

/// `Example.com`, `example.com` and `EXAMPLE.COM:80` are one host: one circuit. Two failures,
/// one to each spelling, open it; a call to the third spelling is turned away.
#[tokio::test]
async fn one_host_whatever_the_case_of_its_name_is_one_circuit() {
    log();
    let server = FlakyServer::start().await.unwrap();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let layer = preset!()
        .max_attempts(1)
        .circuit_breaker(breaker(2, &keys))
        .build()
        .unwrap();
    let handle = layer.breaker().handle();
    let svc = layer.layer(client_to(&server));

    for uri in [
        "http://Example.com/status/503",
        "http://example.com/status/503",
    ] {
        let response = svc.clone().oneshot(get(uri)).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(handle.snapshot().state, CircuitState::Open);
    let err = svc
        .clone()
        .oneshot(get("http://EXAMPLE.COM:80/ok"))
        .await
        .unwrap_err();
    assert!(
        Error::find(err.as_ref()).is_some_and(Error::is_circuit_open),
        "{err}"
    );
    assert_eq!(server.stats.requests_to("/ok"), 0, "turned away unsent");
    assert_eq!(*keys.lock().unwrap(), ["http://example.com:80"]);
}

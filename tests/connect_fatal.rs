//! Connections no retry can make are not retried: a TLS certificate the client does not trust
//! (unknown issuer, name mismatch) and a host name that does not resolve are fatal at the first
//! attempt, and named. A rustls server on 127.0.0.1 with an rcgen certificate; a name under the
//! reserved `.invalid` TLD, which the resolver refuses locally (RFC 6761), with no traffic.
#![cfg(feature = "hyper")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::GiveUp;
use tower_tenacity::ResilienceLayer;
use tower_tenacity::classify::{Classification, ClassifyOutcome, NotSent, Reason};
use tower_tenacity::http::{HttpClassifier, ReplayBody};
use tower_tenacity::retry::{Event, ExponentialBackoff, Jitter};

/// How the HTTP classifier sees an error alone, whatever the request (the outcome as a breaker
/// counts it).
fn classify_http_error(err: &BoxError) -> Classification {
    HttpClassifier::new().classify_outcome(Err::<&http::Response<()>, _>(err))
}

type Body = Full<Bytes>;

/// Sends one GET through the HTTP preset (three attempts) over `client`; the error, and the
/// reason of the give-up event.
async fn fail<C>(client: Client<C, ReplayBody<Body>>, url: &str) -> (BoxError, Option<Reason>)
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let give_up = Arc::new(Mutex::new(None));
    let seen = give_up.clone();
    let layer = ResilienceLayer::http()
        .max_attempts(3)
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(5), 1.0, Duration::from_millis(5))
                .with_jitter(Jitter::None),
        )
        .no_budget()
        .observer(move |event: &Event| {
            if let Event::GiveUp { why, reason, .. } = event {
                assert_eq!(*why, GiveUp::Fatal, "{event:?}");
                *seen.lock().unwrap() = *reason;
            }
        })
        .build()
        .unwrap();
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let err = layer.layer(client).oneshot(request).await.unwrap_err();
    let reason = *give_up.lock().unwrap();
    (err, reason)
}

#[path = "common/tls.rs"]
mod self_signed;

fn fatal(how: NotSent) -> Classification {
    Classification::fatal(Reason::NeverSent(how))
}

/// A rustls server on 127.0.0.1 whose certificate is for `good.test` only, counting the
/// connections it accepts; its URL and its certificate.
async fn tls_server(accepted: Arc<AtomicU32>) -> (String, CertificateDer<'static>) {
    let (acceptor, cert, _) = self_signed::self_signed("good.test");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            // The client gives up in the handshake: nothing more to serve.
            let _ = acceptor.accept(tcp).await;
        }
    });
    (url, cert)
}

fn https_client(roots: RootCertStore) -> Client<HttpsConnector<HttpConnector>, ReplayBody<Body>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

#[tokio::test]
async fn an_untrusted_certificate_is_fatal_at_the_first_attempt_and_named() {
    let accepted = Arc::new(AtomicU32::new(0));
    let (url, cert) = tls_server(accepted.clone()).await;

    // No root trusts the self-signed certificate.
    let (err, reason) = fail(https_client(RootCertStore::empty()), &url).await;
    assert_eq!(
        accepted.swap(0, Ordering::SeqCst),
        1,
        "one attempt: {err:?}"
    );
    assert_eq!(classify_http_error(&err), fatal(NotSent::UnknownIssuer));
    let reason = reason.expect("the give-up names why");
    assert_eq!(reason.to_string(), "TLS certificate: unknown issuer");

    // Trusted, but for good.test, not for 127.0.0.1.
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let (err, reason) = fail(https_client(roots), &url).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one attempt: {err:?}");
    assert_eq!(classify_http_error(&err), fatal(NotSent::NameMismatch));
    let reason = reason.expect("the give-up names why");
    assert_eq!(reason.to_string(), "TLS certificate: name mismatch");
}

/// hyper-util's own connector, counting the connections asked of it.
#[derive(Clone)]
struct Counting {
    inner: HttpConnector,
    calls: Arc<AtomicU32>,
}

impl Service<Uri> for Counting {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(self.inner.call(uri))
    }
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_fatal_at_the_first_attempt_and_named() {
    let calls = Arc::new(AtomicU32::new(0));
    let connector = Counting {
        inner: HttpConnector::new(),
        calls: calls.clone(),
    };
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let (err, reason) = fail(client, "http://no-such-host.invalid/").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one attempt: {err:?}");
    assert_eq!(classify_http_error(&err), fatal(NotSent::NoSuchHost));
    assert_eq!(
        reason.map(|r| r.to_string()).as_deref(),
        Some("no such host")
    );
}

//! What the gRPC tests share: a health server behind a test's layer, reading a `grpc-timeout`
//! back (with a decoder of its own, so that the crate's encoder is checked against something
//! other than itself), and tonic's body again.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower::{BoxError, Layer, Service};

/// A layer for a test server that hands each request, with a clone of tonic's routes, to
/// `answer`, which serves it, fails it or holds it as the test scripts: the wrapper service a
/// test would otherwise write out.
pub fn front<F, Fut>(answer: F) -> impl Layer<Routes, Service = Front<F>> + Clone
where
    F: Fn(Request<Body>, Routes) -> Fut + Clone,
    Fut: Future<Output = Result<Response<Body>, BoxError>> + Send + 'static,
{
    tower::layer::layer_fn(move |routes| Front {
        routes,
        answer: answer.clone(),
    })
}

/// See [`front`].
#[derive(Clone)]
pub struct Front<F> {
    routes: Routes,
    answer: F,
}

impl<F, Fut> Service<Request<Body>> for Front<F>
where
    F: Fn(Request<Body>, Routes) -> Fut,
    Fut: Future<Output = Result<Response<Body>, BoxError>> + Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Fut;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<Request<Body>>::poll_ready(&mut self.routes, cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Fut {
        (self.answer)(request, self.routes.clone())
    }
}

/// tonic-health's server on 127.0.0.1 behind `layer`, serving for the rest of the test: its
/// address.
pub async fn serve_health<L, ResBody>(layer: L) -> SocketAddr
where
    L: Layer<Routes> + Clone + Send + 'static,
    L::Service: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    <L::Service as Service<Request<Body>>>::Future: Send,
    <L::Service as Service<Request<Body>>>::Error: Into<BoxError> + Send,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = TcpIncoming::from(listener);
    tokio::spawn(async move {
        let _keep = reporter;
        Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// A `grpc-timeout` value read back (digits and a unit), as the server saw it.
pub fn decode_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A response with tonic's body again, whatever body a layer put on it.
pub fn tonic_body<B>(response: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(Body::new)
}

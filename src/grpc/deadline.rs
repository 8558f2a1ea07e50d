//! Deadline propagation: `grpc-timeout` out on every attempt, and honoured on the way in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::timeout::{Budgeted, Polled, remaining};

/// The request header that carries a gRPC deadline.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Reads a `grpc-timeout` value: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::grpc::{decode_grpc_timeout, encode_grpc_timeout};
///
/// assert_eq!(decode_grpc_timeout(b"1500m"), Some(Duration::from_millis(1500)));
/// assert_eq!(decode_grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
/// assert_eq!(decode_grpc_timeout(b"123456789S"), None, "more than 8 digits");
/// assert_eq!(decode_grpc_timeout(encode_grpc_timeout(Duration::from_millis(250)).as_bytes()),
///            Some(Duration::from_millis(250)));
/// ```
pub fn decode_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
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

/// Writes a duration as a `grpc-timeout` value, in the finest unit that fits 8 digits
/// (rounding down, so the server never gets more time than there is).
pub fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let (amount, unit) = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ]
    .into_iter()
    .map(|(per, unit)| (nanos / per, unit))
    .find(|(amount, _)| *amount <= MAX)
    .unwrap_or((MAX, "H"));
    HeaderValue::from_str(&format!("{amount}{unit}"))
        .expect("digits and a letter are a valid header")
}

/// Sends the time left before the enclosing deadline as `grpc-timeout` on every attempt,
/// never more than a `grpc-timeout` the caller set. Goes inside the retry layer, so that each
/// attempt tells the server what is left now.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTimeoutLayer;

impl<S> Layer<S> for GrpcTimeoutLayer {
    type Service = GrpcTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTimeout { inner }
    }
}

/// Sets `grpc-timeout`; see [`GrpcTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTimeout<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for GrpcTimeout<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(left) = remaining() {
            let caller = request
                .headers()
                .get(GRPC_TIMEOUT)
                .and_then(|v| decode_grpc_timeout(v.as_bytes()));
            let timeout = caller.map_or(left, |caller| caller.min(left));
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, encode_grpc_timeout(timeout));
        }
        self.inner.call(request)
    }
}

/// Server side: runs each request under the deadline its `grpc-timeout` asks for (capped by
/// `max`, if set), and when it passes, drops the handler and answers `DEADLINE_EXCEEDED` as a
/// trailers-only response. Calls the handler makes through a resilient client see the time
/// left. Requests without `grpc-timeout` run as they are.
///
/// ```
/// use tower_tenacity::grpc::GrpcDeadlineLayer;
///
/// let layer = GrpcDeadlineLayer::new();
/// # let _ = layer;
/// // tonic::transport::Server::builder().layer(layer)…
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcDeadlineLayer {
    max: Option<Duration>,
}

impl GrpcDeadlineLayer {
    /// Honours every `grpc-timeout` as it comes.
    pub const fn new() -> Self {
        GrpcDeadlineLayer { max: None }
    }

    /// Never gives a request more than `max`, whatever it asks for.
    pub const fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }
}

impl<S> Layer<S> for GrpcDeadlineLayer {
    type Service = GrpcDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcDeadline {
            inner,
            max: self.max,
        }
    }
}

/// Honours `grpc-timeout`; see [`GrpcDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct GrpcDeadline<S> {
    inner: S,
    max: Option<Duration>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcDeadline<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = GrpcDeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let asked = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|v| decode_grpc_timeout(v.as_bytes()));
        let budget = match (asked, self.max) {
            (Some(asked), Some(max)) => Some(asked.min(max)),
            (asked, max) => asked.or(max),
        };
        GrpcDeadlineFuture {
            inner: Budgeted::call(budget, &mut None, || self.inner.call(request)),
        }
    }
}

pin_project! {
    /// The future of a [`GrpcDeadline`] call.
    #[derive(Debug)]
    pub struct GrpcDeadlineFuture<F> {
        #[pin]
        inner: Budgeted<F>,
    }
}

impl<F, ResB, E> Future for GrpcDeadlineFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Default,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll(cx, &mut None) {
            Polled::Ready(out) => Poll::Ready(out),
            // The handler's future is dropped with this one.
            Polled::Expired => Poll::Ready(Ok(deadline_exceeded())),
            Polled::Pending => Poll::Pending,
        }
    }
}

/// A trailers-only gRPC answer with status `DEADLINE_EXCEEDED`.
fn deadline_exceeded<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        "grpc-status",
        HeaderValue::from(tonic::Code::DeadlineExceeded as i32),
    );
    headers.insert(
        "grpc-message",
        HeaderValue::from_static("deadline exceeded"),
    );
    response
}

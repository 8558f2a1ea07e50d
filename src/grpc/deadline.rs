//! Deadline propagation: `grpc-timeout` out on every attempt, and honoured on the way in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::{enter_callers_attempt, remaining};
use crate::deadline::{Enforcer, Polled, UnderDeadline};
use crate::http::{Alarm, whole_number};

/// The request header that carries a gRPC deadline.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Reads a `grpc-timeout` value: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub(crate) fn decode_grpc_timeout(value: &[u8]) -> Option<Duration> {
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
pub(crate) fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
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
/// `max`, if set), its response stream included. When the deadline passes before the handler
/// answers, the handler is dropped and the answer is `DEADLINE_EXCEEDED`, trailers-only; when
/// it passes while a response streams, the stream is dropped and ends with `DEADLINE_EXCEEDED`
/// trailers. Calls the handler makes through a resilient client see the time left. Requests
/// without `grpc-timeout` (and no `max`) run as they are. A request whose `grpc-timeout` is
/// zero, or under [`min_remaining`](Self::min_remaining), is answered `DEADLINE_EXCEEDED` at
/// once, without calling the handler: nobody would wait for its work. A
/// [`margin`](Self::margin) comes off the caller's time first, for the answer's way back.
///
/// The caller's attempt (`grpc-previous-rpc-attempts`, which a gRPC client sends on retries
/// and hedges) is in scope while the handler runs: [`context::attempt`](crate::context::attempt).
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
    min_remaining: Duration,
    margin: Duration,
}

impl GrpcDeadlineLayer {
    /// Honours every `grpc-timeout` as it comes.
    pub const fn new() -> Self {
        GrpcDeadlineLayer {
            max: None,
            min_remaining: Duration::ZERO,
            margin: Duration::ZERO,
        }
    }

    /// Takes `margin` off the caller's `grpc-timeout`, for the answer's way back (default
    /// zero): the handler, and the calls it makes, get what is left.
    pub const fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Answers `DEADLINE_EXCEEDED` at once to a request whose `grpc-timeout`, less the margin,
    /// is under `min` (default zero: only one with no time at all).
    pub const fn min_remaining(mut self, min: Duration) -> Self {
        self.min_remaining = min;
        self
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
            layer: *self,
        }
    }
}

/// Honours `grpc-timeout`; see [`GrpcDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct GrpcDeadline<S> {
    inner: S,
    layer: GrpcDeadlineLayer,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcDeadline<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<GrpcDeadlineBody<ResB>>;
    type Error = S::Error;
    type Future = GrpcDeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let GrpcDeadlineLayer {
            max,
            min_remaining,
            margin,
        } = self.layer;
        let asked = (request.headers().get(GRPC_TIMEOUT))
            .and_then(|v| decode_grpc_timeout(v.as_bytes()))
            .map(|asked| asked.saturating_sub(margin));
        if asked.is_some_and(|asked| asked.is_zero() || asked < min_remaining) {
            tracing::debug!("gRPC request refused: its caller's deadline leaves too little time");
            return GrpcDeadlineFuture {
                inner: None,
                attempt: None,
            };
        }
        let budget = match (asked, max) {
            (Some(asked), Some(max)) => Some(asked.min(max)),
            (asked, max) => asked.or(max),
        };
        let attempt = callers_attempt(request.headers());
        let _attempt = enter_callers_attempt(attempt);
        GrpcDeadlineFuture {
            inner: Some(UnderDeadline::call(budget, Enforcer::Timer, || {
                self.inner.call(request)
            })),
            attempt,
        }
    }
}

pin_project! {
    /// The future of a [`GrpcDeadline`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct GrpcDeadlineFuture<F> {
        // `None`: answered at once.
        #[pin]
        inner: Option<UnderDeadline<F>>,
        // The caller's attempt, in scope while the handler runs.
        attempt: Option<u32>,
    }
}

/// The caller's attempt: one more than the `grpc-previous-rpc-attempts` it sent, if it did.
fn callers_attempt(headers: &HeaderMap) -> Option<u32> {
    let previous = whole_number(headers.get("grpc-previous-rpc-attempts")?.as_bytes(), 10)?;
    u32::try_from(previous).ok()?.checked_add(1)
}

impl<F, ResB, E> Future for GrpcDeadlineFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<GrpcDeadlineBody<ResB>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _attempt = enter_callers_attempt(self.attempt);
        let Some(mut inner) = self.as_mut().project().inner.as_pin_mut() else {
            return Poll::Ready(Ok(deadline_exceeded()));
        };
        match inner.as_mut().poll(cx) {
            Polled::Ready(Ok(response)) => {
                let alarm = inner
                    .as_ref()
                    .get_ref()
                    .deadline()
                    .map(|(at, _)| Alarm::new(at));
                Poll::Ready(Ok(response.map(|body| GrpcDeadlineBody {
                    inner: Some(body),
                    alarm: alarm.map(Box::new),
                })))
            }
            Polled::Ready(Err(err)) => Poll::Ready(Err(err)),
            // The handler's future is dropped with this one.
            Polled::Expired => Poll::Ready(Ok(deadline_exceeded())),
            Polled::Pending => Poll::Pending,
        }
    }
}

pin_project! {
    /// A response body under the request's `grpc-timeout`; see [`GrpcDeadlineLayer`].
    pub struct GrpcDeadlineBody<B> {
        #[pin]
        inner: Option<B>,
        alarm: Option<Box<Alarm>>,
    }
}

/// An empty body with no deadline over it: what a layer outside this one (an
/// [`AdmissionLayer`](crate::admission::AdmissionLayer) turning a request away) answers with.
impl<B: Default> Default for GrpcDeadlineBody<B> {
    fn default() -> Self {
        GrpcDeadlineBody {
            inner: Some(B::default()),
            alarm: None,
        }
    }
}

impl<B> fmt::Debug for GrpcDeadlineBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcDeadlineBody")
            .field("ended", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for GrpcDeadlineBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        // Checked before the stream is polled too: a stream that always has a message ready
        // would otherwise never be cut.
        let passed = this.alarm.as_ref().is_some_and(|alarm| alarm.passed());
        if !passed {
            if let Poll::Ready(frame) = inner.poll_frame(cx) {
                return Poll::Ready(frame);
            }
            if !this.alarm.as_mut().is_some_and(|alarm| alarm.rang(cx)) {
                return Poll::Pending;
            }
        }
        *this.alarm = None;
        this.inner.set(None);
        Poll::Ready(Some(Ok(Frame::trailers(deadline_exceeded_status()))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// `grpc-status: 4` and its message, as trailers or in a trailers-only answer.
fn deadline_exceeded_status() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "grpc-status",
        HeaderValue::from(tonic::Code::DeadlineExceeded as i32),
    );
    headers.insert(
        "grpc-message",
        HeaderValue::from_static("deadline exceeded"),
    );
    headers
}

/// A trailers-only gRPC answer with status `DEADLINE_EXCEEDED`.
fn deadline_exceeded<B>() -> Response<GrpcDeadlineBody<B>> {
    let body = GrpcDeadlineBody {
        inner: None,
        alarm: None,
    };
    let mut response = Response::new(body);
    *response.headers_mut() = deadline_exceeded_status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_digits_and_a_unit() {
        assert_eq!(
            decode_grpc_timeout(b"1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(decode_grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(
            decode_grpc_timeout(b"123456789S"),
            None,
            "more than 8 digits"
        );
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_time() {
        for millis in [0, 1, 250, 1_500, 99_999_999, 3_600_000_000] {
            let timeout = Duration::from_millis(millis);
            let decoded = decode_grpc_timeout(encode_grpc_timeout(timeout).as_bytes());
            assert_eq!(decoded, Some(timeout), "{timeout:?}");
        }
    }
}

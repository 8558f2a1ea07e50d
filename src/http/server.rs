//! Server side: a timeout that answers rather than fails.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::HeaderName;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::enter_callers_attempt;
use crate::deadline::{Enforcer, Polled, UnderDeadline};

/// The server-side form of [`TimeoutLayer`](crate::timeout::TimeoutLayer) and
/// [`DeadlineLayer`](crate::deadline::DeadlineLayer): a handler that runs too long is dropped
/// and the client gets an answer (503 by default, or 504, with a short text body), so the
/// service keeps its `Infallible` error type and fits an axum `Router` with no
/// `HandleErrorLayer`.
///
/// The handler runs under the deadline, so a resilient client it calls (the
/// [HTTP preset](crate::ResilienceLayer::http), say) sees the time left and never waits past it.
///
/// With [`deadline_header`](Self::deadline_header), the deadline also comes from the caller:
/// the time it has left, in milliseconds, as the HTTP preset's
/// [`deadline_header`](crate::ResilienceBuilder::deadline_header) sends it (Envoy's
/// `x-envoy-expected-rq-timeout-ms` convention). The handler then runs under the shorter of
/// this layer's timeout and what the caller has left less a [`margin`](Self::margin) (for the
/// answer's way back), so that its own calls inherit it with no code in the handler; and a
/// request with less than [`min_remaining`](Self::min_remaining) left is answered `504` at
/// once, without calling the handler: nobody would wait for its work.
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use http::{HeaderName, StatusCode};
/// use tower_tenacity::http::ServerTimeoutLayer;
///
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "done" }))
///     .layer(
///         ServerTimeoutLayer::new(Duration::from_secs(5))
///             .status(StatusCode::GATEWAY_TIMEOUT)
///             .deadline_header(HeaderName::from_static("x-envoy-expected-rq-timeout-ms"))
///             .min_remaining(Duration::from_millis(20)),
///     );
/// ```
#[derive(Debug, Clone)]
pub struct ServerTimeoutLayer {
    timeout: Duration,
    status: StatusCode,
    body: &'static str,
    deadline_header: Option<HeaderName>,
    attempt_header: Option<HeaderName>,
    margin: Duration,
    min_remaining: Duration,
}

impl ServerTimeoutLayer {
    /// Answers `503 Service Unavailable` to a request whose handler takes longer than `timeout`.
    pub const fn new(timeout: Duration) -> Self {
        ServerTimeoutLayer {
            timeout,
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: "request timed out",
            deadline_header: None,
            attempt_header: None,
            margin: Duration::from_millis(5),
            min_remaining: Duration::ZERO,
        }
    }

    /// Answers with `status` instead (504 Gateway Timeout suits a proxy).
    pub const fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Answers with `body` instead of "request timed out".
    pub const fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }

    /// Reads the caller's time left, in milliseconds, from `header` (off by default). A value
    /// that is not a number of milliseconds is ignored.
    pub fn deadline_header(mut self, header: HeaderName) -> Self {
        self.deadline_header = Some(header);
        self
    }

    /// Reads the caller's attempt number from `header` (off by default), as the HTTP preset's
    /// [`attempt_header`](crate::ResilienceBuilder::attempt_header) sends it on retries (Envoy's
    /// name for it is `x-envoy-attempt-count`), so that the handler can ask for it with
    /// [`context::attempt`](crate::context::attempt). A value that is not a whole number from 1
    /// up is ignored.
    pub fn attempt_header(mut self, header: HeaderName) -> Self {
        self.attempt_header = Some(header);
        self
    }

    /// Takes `margin` off the caller's time left, for the answer's way back (default 5 ms).
    pub const fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Answers `504` at once, without calling the handler, when the caller has less than this
    /// left after the margin (default zero: only when nothing is left).
    pub const fn min_remaining(mut self, min_remaining: Duration) -> Self {
        self.min_remaining = min_remaining;
        self
    }

    /// The handler's budget for `headers`: this layer's timeout, or less when the caller has
    /// less left; `None` when the caller has too little left to start.
    fn budget(&self, headers: &http::HeaderMap) -> Option<Duration> {
        let Some(left) = (self.deadline_header.as_ref())
            .and_then(|name| headers.get(name))
            .and_then(|value| parse_millis(value.as_bytes()))
        else {
            return Some(self.timeout);
        };
        let left = left.saturating_sub(self.margin);
        if left.is_zero() || left < self.min_remaining {
            return None;
        }
        Some(self.timeout.min(left))
    }
}

/// The caller's attempt number, when the layer reads one and the request has a readable one.
fn callers_attempt(header: Option<&HeaderName>, headers: &http::HeaderMap) -> Option<u32> {
    let number = whole_number(headers.get(header?)?.as_bytes(), 10)?;
    u32::try_from(number).ok().filter(|n| *n > 0)
}

/// Whole milliseconds (at most 12 digits: 30 years).
fn parse_millis(value: &[u8]) -> Option<Duration> {
    whole_number(value, 12).map(Duration::from_millis)
}

/// A header's whole number: ASCII digits only, at most `max_digits` of them (19 at most, so
/// that it fits).
pub(crate) fn whole_number(value: &[u8], max_digits: usize) -> Option<u64> {
    if value.is_empty() || value.len() > max_digits.min(19) || !value.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

impl<S> Layer<S> for ServerTimeoutLayer {
    type Service = ServerTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTimeout {
            inner,
            config: self.clone(),
        }
    }
}

/// Answers requests whose handler runs too long; see [`ServerTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct ServerTimeout<S> {
    inner: S,
    config: ServerTimeoutLayer,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ServerTimeout<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Error = Infallible>,
    ResB: From<&'static str>,
{
    type Response = Response<ResB>;
    type Error = Infallible;
    type Future = ServerTimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let config = &self.config;
        let Some(budget) = config.budget(request.headers()) else {
            tracing::debug!("request refused: its caller's deadline leaves too little time");
            return ServerTimeoutFuture {
                inner: None,
                answer: (StatusCode::GATEWAY_TIMEOUT, "deadline too close to start"),
                timeout: Duration::ZERO,
                attempt: None,
            };
        };
        let attempt = callers_attempt(config.attempt_header.as_ref(), request.headers());
        let _attempt = enter_callers_attempt(attempt);
        ServerTimeoutFuture {
            inner: Some(UnderDeadline::call(Some(budget), Enforcer::Timer, || {
                self.inner.call(request)
            })),
            answer: (config.status, config.body),
            timeout: budget,
            attempt,
        }
    }
}

pin_project! {
    /// The future of a [`ServerTimeout`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ServerTimeoutFuture<F> {
        // `None`: answered at once.
        #[pin]
        inner: Option<UnderDeadline<F>>,
        answer: (StatusCode, &'static str),
        timeout: Duration,
        // The caller's attempt, in scope while the handler runs.
        attempt: Option<u32>,
    }
}

impl<F, ResB> Future for ServerTimeoutFuture<F>
where
    F: Future<Output = Result<Response<ResB>, Infallible>>,
    ResB: From<&'static str>,
{
    type Output = Result<Response<ResB>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (status, body) = *this.answer;
        let _attempt = enter_callers_attempt(*this.attempt);
        if let Some(inner) = this.inner.as_pin_mut() {
            match inner.poll(cx) {
                Polled::Ready(out) => return Poll::Ready(out),
                Polled::Pending => return Poll::Pending,
                Polled::Expired => {}
            }
            tracing::warn!(
                timeout_ms = this.timeout.as_millis() as u64,
                status = status.as_u16(),
                "handler timed out"
            );
        }
        let mut response = Response::new(ResB::from(body));
        *response.status_mut() = status;
        // The handler's future, if any, is dropped with this one.
        Poll::Ready(Ok(response))
    }
}

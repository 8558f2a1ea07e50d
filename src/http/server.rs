//! Server side: a timeout that answers rather than fails.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

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
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use http::StatusCode;
/// use tower_tenacity::http::ServerTimeoutLayer;
///
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "done" }))
///     .layer(ServerTimeoutLayer::new(Duration::from_secs(5)).status(StatusCode::GATEWAY_TIMEOUT));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeoutLayer {
    timeout: Duration,
    status: StatusCode,
    body: &'static str,
}

impl ServerTimeoutLayer {
    /// Answers `503 Service Unavailable` to a request whose handler takes longer than `timeout`.
    pub const fn new(timeout: Duration) -> Self {
        ServerTimeoutLayer {
            timeout,
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: "request timed out",
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
}

impl<S> Layer<S> for ServerTimeoutLayer {
    type Service = ServerTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTimeout {
            inner,
            config: *self,
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
        let timeout = Some(self.config.timeout);
        ServerTimeoutFuture {
            inner: UnderDeadline::call(timeout, Enforcer::Timer, || self.inner.call(request)),
            config: self.config,
        }
    }
}

pin_project! {
    /// The future of a [`ServerTimeout`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ServerTimeoutFuture<F> {
        #[pin]
        inner: UnderDeadline<F>,
        config: ServerTimeoutLayer,
    }
}

impl<F, ResB> Future for ServerTimeoutFuture<F>
where
    F: Future<Output = Result<Response<ResB>, Infallible>>,
    ResB: From<&'static str>,
{
    type Output = Result<Response<ResB>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.inner.as_mut().poll(cx) {
            Polled::Ready(out) => return Poll::Ready(out),
            Polled::Pending => return Poll::Pending,
            Polled::Expired => {}
        }
        tracing::warn!(
            timeout_ms = this.config.timeout.as_millis() as u64,
            status = this.config.status.as_u16(),
            "handler timed out"
        );
        let mut response = Response::new(ResB::from(this.config.body));
        *response.status_mut() = this.config.status;
        // The handler's future is dropped with this one.
        Poll::Ready(Ok(response))
    }
}

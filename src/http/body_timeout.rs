//! Time limits for response bodies that arrive as streams.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error, TimeoutScope};

/// Bounds how long a response body may take: `idle` between two frames, `total` for all of it.
///
/// The headers arriving in time is the attempt timeout's business; a server that then
/// drip-feeds the body, or stops half-way, is this layer's. Its expiry is an [`Error`] of kind
/// [`Timeout`](crate::ErrorKind::Timeout) with scope [`BodyIdle`](TimeoutScope::BodyIdle) or
/// [`BodyTotal`](TimeoutScope::BodyTotal), from the body's `poll_frame`.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::http::BodyTimeoutLayer;
///
/// let layer = BodyTimeoutLayer::new()
///     .idle(Duration::from_millis(500))
///     .total(Duration::from_secs(30));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyTimeoutLayer {
    idle: Option<Duration>,
    total: Option<Duration>,
}

impl BodyTimeoutLayer {
    /// No limits yet.
    pub const fn new() -> Self {
        BodyTimeoutLayer {
            idle: None,
            total: None,
        }
    }

    /// The longest wait between two frames (`None`: no limit).
    pub fn idle(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.idle = idle.into();
        self
    }

    /// The longest the whole body may take, from its first poll (`None`: no limit).
    pub fn total(mut self, total: impl Into<Option<Duration>>) -> Self {
        self.total = total.into();
        self
    }

    /// Puts these limits on one body.
    pub fn wrap<B>(&self, body: B) -> TimeoutBody<B> {
        TimeoutBody {
            inner: body,
            idle_timer: None,
            total_timer: None,
            idle: self.idle,
            total: self.total,
        }
    }
}

impl<S> Layer<S> for BodyTimeoutLayer {
    type Service = BodyTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyTimeout {
            inner,
            limits: *self,
        }
    }
}

/// Puts body time limits on every response; see [`BodyTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct BodyTimeout<S> {
    inner: S,
    limits: BodyTimeoutLayer,
}

impl<S, Req, B> Service<Req> for BodyTimeout<S>
where
    S: Service<Req, Response = Response<B>>,
{
    type Response = Response<TimeoutBody<B>>;
    type Error = S::Error;
    type Future = BodyTimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        BodyTimeoutFuture {
            inner: self.inner.call(request),
            limits: self.limits,
        }
    }
}

pin_project! {
    /// The future of a [`BodyTimeout`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct BodyTimeoutFuture<F> {
        #[pin]
        inner: F,
        limits: BodyTimeoutLayer,
    }
}

impl<F, B, E> Future for BodyTimeoutFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TimeoutBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.inner
            .poll(cx)
            .map_ok(|response| response.map(|body| this.limits.wrap(body)))
    }
}

pin_project! {
    /// A body with time limits; see [`BodyTimeoutLayer`].
    #[derive(Debug)]
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        // Armed when the body is found pending, cleared by every frame.
        #[pin]
        idle_timer: Option<Sleep>,
        // Armed at the first poll.
        #[pin]
        total_timer: Option<Sleep>,
        idle: Option<Duration>,
        total: Option<Duration>,
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        if let (Some(total), None) = (*this.total, this.total_timer.as_ref().as_pin_ref()) {
            this.total_timer.set(Some(tokio::time::sleep(total)));
        }
        // The total timer is looked at before the body: a body that always has a frame ready
        // (a server faster than its reader) never returns `Pending`.
        if let Some(total_timer) = this.total_timer.as_mut().as_pin_mut()
            && total_timer.poll(cx).is_ready()
        {
            let after = this.total.unwrap_or_default();
            return Poll::Ready(Some(Err(
                Error::timeout(TimeoutScope::BodyTotal, after).into()
            )));
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            this.idle_timer.set(None);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(idle) = *this.idle {
            if this.idle_timer.is_none() {
                this.idle_timer.set(Some(tokio::time::sleep(idle)));
            }
            if let Some(idle_timer) = this.idle_timer.as_mut().as_pin_mut()
                && idle_timer.poll(cx).is_ready()
            {
                return Poll::Ready(Some(Err(
                    Error::timeout(TimeoutScope::BodyIdle, idle).into()
                )));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

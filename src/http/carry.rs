//! The deadline carried across a task boundary in an `http::Request`: [`CarryDeadlineLayer`].

use std::task::{Context, Poll};

use http::Request;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::current_deadline;
use crate::deadline::future::DeadlineFuture;
use crate::deadline::{Enforcer, UnderDeadline};
use crate::error::BoxError;

/// The deadline of a call, as a request extension: what [`CarryDeadlineLayer`] writes above a
/// task boundary and reads below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarriedDeadline(pub Instant);

/// Carries the deadline across tower's `Buffer` (or any hop to another task) in the request.
///
/// A deadline is found by the layers below it in the same task (see
/// [`remaining`](crate::context::remaining)); a `Buffer` calls the service behind it from its
/// worker task, where nothing is found. Put this layer on both sides of the `Buffer`. Above it,
/// where a deadline is in scope, it writes the deadline into the request as a
/// [`CarriedDeadline`] extension; below it, where none is, it reads the extension and runs the
/// call under that deadline, as a [`DeadlineLayer`](crate::deadline::DeadlineLayer) would. A
/// request with neither goes through as it is.
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_tenacity::http::CarryDeadlineLayer;
/// use tower_tenacity::deadline::DeadlineLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = ServiceBuilder::new()
///     .layer(DeadlineLayer::new(Duration::from_secs(5)))
///     .layer(CarryDeadlineLayer::new())
///     .buffer(64)
///     .layer(CarryDeadlineLayer::new())
///     .service_fn(|_: http::Request<()>| async {
///         // Sees the deadline, though the buffer's worker task made this call.
///         Ok::<_, tower::BoxError>(tower_tenacity::context::remaining())
///     });
/// # let mut svc = svc;
/// # use tower::{Service, ServiceExt};
/// # let left = svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
/// # assert!(left.is_some());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CarryDeadlineLayer {
    _private: (),
}

impl CarryDeadlineLayer {
    /// A layer for either side of a task boundary.
    pub const fn new() -> Self {
        CarryDeadlineLayer { _private: () }
    }
}

impl<S> Layer<S> for CarryDeadlineLayer {
    type Service = CarryDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CarryDeadline { inner }
    }
}

/// Carries the deadline in the request; see [`CarryDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct CarryDeadline<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for CarryDeadline<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let now = Instant::now();
        let budget = match current_deadline(now) {
            // Above the boundary: write it down for the other side.
            Some(deadline) => {
                request.extensions_mut().insert(CarriedDeadline(deadline));
                None
            }
            // Below it: run under what was written.
            None => request
                .extensions()
                .get::<CarriedDeadline>()
                .map(|carried| carried.0.saturating_duration_since(now)),
        };
        let future = UnderDeadline::call(budget, Enforcer::Timer, || self.inner.call(request));
        DeadlineFuture::new(future)
    }
}

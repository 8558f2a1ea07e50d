use std::time::Duration;

use tower_layer::Layer;

use super::Timeout;

/// Applies a per-attempt timeout to the service it wraps.
///
/// Placed inside a [`RetryLayer`](crate::retry::RetryLayer) it bounds each attempt, and its
/// expiry is classified as retryable.
///
/// It fails the call with an error, as tower's own `Timeout` does. On an axum `Router`, whose
/// services must not fail (`Infallible`), that does not compile ("the trait bound
/// `Infallible: From<BoxError>` is not satisfied"): use
/// [`ServerTimeoutLayer`](crate::http::ServerTimeoutLayer) there, which answers 503 or 504
/// instead.
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::{timeout::TimeoutLayer, Error, ErrorKind, TimeoutScope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let slow = service_fn(|_: ()| async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok::<_, std::convert::Infallible>(())
/// });
/// let mut svc = TimeoutLayer::new(Duration::from_secs(2)).layer(slow);
/// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// let err = Error::find(err.as_ref()).unwrap();
/// assert_eq!(
///     err.kind(),
///     ErrorKind::Timeout { scope: TimeoutScope::Attempt, after: Duration::from_secs(2) }
/// );
/// assert_eq!(err.to_string(), "request timed out after 2s");
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// A layer that fails each call that takes longer than `timeout`.
    pub const fn new(timeout: Duration) -> Self {
        TimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.timeout)
    }
}

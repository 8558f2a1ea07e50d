use std::time::Duration;

use tower_layer::Layer;

use super::Deadline;

/// Applies one total budget to everything the wrapped service does for a call: attempts,
/// backoff sleeps, and whatever else is inside.
///
/// It cancels the call when the budget is spent, and tells a retry layer inside how much time
/// is left, so that retry never sleeps past it.
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use tower_tenacity::{deadline::DeadlineLayer, Error, ErrorKind, TimeoutScope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let slow = service_fn(|_: ()| async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok::<_, std::convert::Infallible>(())
/// });
/// let mut svc = DeadlineLayer::new(Duration::from_secs(10)).layer(slow);
/// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// assert_eq!(
///     Error::find(err.as_ref()).unwrap().kind(),
///     ErrorKind::Timeout { scope: TimeoutScope::Total, after: Duration::from_secs(10) }
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    budget: Duration,
}

impl DeadlineLayer {
    /// A layer that fails each call whose whole run takes longer than `budget`.
    pub const fn new(budget: Duration) -> Self {
        DeadlineLayer { budget }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline::new(inner, self.budget)
    }
}

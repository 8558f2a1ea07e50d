//! tower 0.5's own timeout and retry, set up as tower's documentation builds them: the
//! baseline both benchmarks measure this crate against.

use std::sync::Arc;
use std::time::Duration;

use tower::BoxError;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, RetryLayer as TowerRetryLayer};
use tower::timeout::TimeoutLayer as TowerTimeoutLayer;
use tower::util::rng::HasherRng;
use tower::{Service, ServiceBuilder};

/// A tower retry policy as tower's docs build one: backoff, a budget, an attempt cap.
#[derive(Clone)]
struct TowerPolicy {
    backoff: ExponentialBackoff,
    budget: Option<Arc<TpsBudget>>,
    retries_left: u32,
}

impl TowerPolicy {
    fn new(realistic: bool) -> Self {
        let mut maker = ExponentialBackoffMaker::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            if realistic { 1.0 } else { 0.0 },
            HasherRng::new(),
        )
        .expect("valid backoff");
        TowerPolicy {
            backoff: maker.make_backoff(),
            budget: realistic.then(|| Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2))),
            retries_left: 2,
        }
    }
}

impl<Req: Clone, Res, E> Policy<Req, Res, E> for TowerPolicy {
    type Future = <ExponentialBackoff as Backoff>::Future;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                if let Some(budget) = &self.budget {
                    budget.deposit();
                }
                None
            }
            Err(_) => {
                let allowed = self.budget.as_ref().is_none_or(|b| b.withdraw());
                if self.retries_left == 0 || !allowed {
                    return None;
                }
                self.retries_left -= 1;
                Some(self.backoff.next_backoff())
            }
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// tower's `Retry` (3 attempts) over its `Timeout` (2 s per attempt) over `inner`; `realistic`
/// turns on jitter and a budget.
pub fn tower_stack<Req, S>(
    inner: S,
    realistic: bool,
) -> impl Service<Req, Response = S::Response, Error = BoxError> + Clone
where
    Req: Clone,
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    ServiceBuilder::new()
        .layer(TowerRetryLayer::new(TowerPolicy::new(realistic)))
        .layer(TowerTimeoutLayer::new(Duration::from_secs(2)))
        .service(inner)
}

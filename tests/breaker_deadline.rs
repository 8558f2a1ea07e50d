//! The call's deadline running out is the caller's time, not the dependency's answer: an
//! attempt that the deadline cut (its timeout, capped at the deadline, says so) is not counted
//! by the circuit breaker, whatever it counts.

use std::convert::Infallible;
use std::time::Duration;

use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer, CircuitState};
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::timeout::TimeoutLayer;
use tower_tenacity::{Error, TimeoutScope};

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_by_the_deadline_is_not_counted() {
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .count_fatal(true);
    let breaker = CircuitBreakerLayer::new(config).unwrap();
    let handle = breaker.handle();
    let stalls = service_fn(|()| std::future::pending::<Result<(), Infallible>>());
    let attempt = TimeoutLayer::new(Duration::from_secs(1)).layer(stalls);
    let mut svc = DeadlineLayer::new(Duration::from_millis(100)).layer(breaker.layer(attempt));
    let err: BoxError = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let scope = Error::find(err.as_ref()).and_then(Error::timeout_scope);
    assert_eq!(scope, Some(TimeoutScope::Total));
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.state, CircuitState::Closed);
    assert_eq!(snapshot.counts.calls, 0, "not counted at all");
    assert_eq!(snapshot.consecutive_failures, 0);
}

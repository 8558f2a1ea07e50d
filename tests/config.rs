//! Every bad configuration is refused by `build()` with an error naming the field and the
//! bound; none panics.

use std::time::Duration;

use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryBudget, RetryLayer};
use tower_tenacity::{ConfigError, ConfigProblem, ResilienceLayer};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn backoff_error(backoff: ExponentialBackoff) -> ConfigError {
    RetryLayer::builder().backoff(backoff).build().unwrap_err()
}

#[test]
fn initial_above_max() {
    let err = backoff_error(ExponentialBackoff::new(secs(10), 2.0, secs(5)));
    assert_eq!(err.field(), "backoff.initial");
    assert_eq!(
        err.to_string(),
        "invalid configuration: backoff.initial (10s) must not exceed backoff.max (5s)"
    );
}

#[test]
fn floor_above_max() {
    let err = backoff_error(ExponentialBackoff::new(secs(1), 2.0, secs(5)).with_min(secs(6)));
    assert_eq!(err.field(), "backoff.min");
    assert_eq!(
        err.to_string(),
        "invalid configuration: backoff.min (6s) must not exceed backoff.max (5s)"
    );
}

#[test]
fn multiplier_below_one() {
    let err = backoff_error(ExponentialBackoff::new(secs(1), 0.5, secs(5)));
    assert_eq!(err.field(), "backoff.multiplier");
    assert_eq!(
        err.to_string(),
        "invalid configuration: backoff.multiplier must be at least 1, got 0.5"
    );
}

#[test]
fn multiplier_not_a_number() {
    for bad in [f64::NAN, f64::INFINITY] {
        let err = backoff_error(ExponentialBackoff::new(secs(1), bad, secs(5)));
        assert_eq!(err.field(), "backoff.multiplier");
        assert!(matches!(err.problem(), ConfigProblem::NotFinite(_)));
        assert!(err.to_string().contains("must be a finite number"), "{err}");
    }
}

#[test]
fn zero_initial_delay() {
    let err = backoff_error(ExponentialBackoff::new(Duration::ZERO, 2.0, secs(5)));
    assert_eq!(err.field(), "backoff.initial");
    assert_eq!(err.problem(), &ConfigProblem::ZeroDuration);
}

#[test]
fn jitter_out_of_range() {
    for bad in [-0.1, 1.5] {
        let err = backoff_error(ExponentialBackoff::default().with_jitter(Jitter::Spread(bad)));
        assert_eq!(err.field(), "backoff.jitter");
        assert_eq!(
            err.to_string(),
            format!("invalid configuration: backoff.jitter must be between 0 and 1, got {bad}")
        );
    }
    let err = backoff_error(ExponentialBackoff::default().with_jitter(Jitter::Spread(f64::NAN)));
    assert_eq!(err.field(), "backoff.jitter");
}

#[test]
fn zero_attempts() {
    let err = RetryLayer::builder().max_attempts(0).build().unwrap_err();
    assert_eq!(err.field(), "max_attempts");
    assert_eq!(
        err.to_string(),
        "invalid configuration: max_attempts must be at least 1, got 0"
    );
}

#[test]
fn zero_max_elapsed() {
    let err = RetryLayer::builder()
        .max_elapsed(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_elapsed");
}

#[test]
fn budget_out_of_range() {
    let err = RetryBudget::new(f64::NAN, 10, secs(1)).unwrap_err();
    assert_eq!(err.field(), "budget.ratio");
    let err = RetryBudget::new(1e6, 10, secs(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: budget.ratio must be between 0 and 1000, got 1000000"
    );
    let err = RetryBudget::new(0.2, 10, Duration::ZERO).unwrap_err();
    assert_eq!(err.field(), "budget.window");
}

#[test]
fn attempt_timeout_above_total() {
    let err = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(secs(1))
        .attempt_timeout(secs(2))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "attempt_timeout");
    assert_eq!(
        err.to_string(),
        "invalid configuration: attempt_timeout (2s) must not exceed total_timeout (1s)"
    );
}

#[test]
fn zero_timeouts() {
    let err = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "total_timeout");
    let err = ResilienceLayer::builder(DefaultClassifier)
        .attempt_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "attempt_timeout");
}

#[test]
fn the_preset_checks_the_retry_settings_too() {
    let err = ResilienceLayer::builder(DefaultClassifier)
        .max_attempts(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_attempts");
}

#[test]
fn defaults_are_valid() {
    let layer = ResilienceLayer::new(DefaultClassifier);
    assert_eq!(layer.total_timeout(), secs(10));
    assert_eq!(layer.attempt_timeout(), secs(2));
    assert_eq!(layer.retry().max_attempts(), 3);
    assert!(ExponentialBackoff::default().validate().is_ok());
}

//! Every bad configuration is refused by `build()` with an error naming the field and the
//! bound; none panics.

use std::time::Duration;

use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryBudget, RetryLayer};
use tower_tenacity::{ConfigError, ResilienceLayer};

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

// `multiplier_not_a_number` and `zero_initial_delay` match on the problem's type, which is the
// crate's own: they are unit tests in `src/retry/backoff.rs`.

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
    assert_eq!(layer.total_timeout(), Some(secs(10)));
    assert_eq!(layer.attempt_timeout(), secs(2));
    assert_eq!(layer.retry().max_attempts(), 3);
    assert!(ExponentialBackoff::default().validate().is_ok());
}

#[test]
fn a_total_set_alone_gets_an_attempt_timeout_that_fits() {
    // Each of the 3 attempts gets a third of a short total; a long total keeps the 2 s default.
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(secs(1))
        .build()
        .unwrap();
    assert_eq!(layer.total_timeout(), Some(secs(1)));
    assert_eq!(layer.attempt_timeout(), secs(1) / 3);
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(secs(1))
        .max_attempts(1)
        .build()
        .unwrap();
    assert_eq!(layer.attempt_timeout(), secs(1));
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(secs(60))
        .build()
        .unwrap();
    assert_eq!(layer.attempt_timeout(), secs(2));
}

#[test]
fn an_attempt_timeout_set_alone_gets_a_total_that_fits() {
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .attempt_timeout(secs(20))
        .build()
        .unwrap();
    assert_eq!(layer.attempt_timeout(), secs(20));
    assert_eq!(layer.total_timeout(), Some(secs(60)), "3 attempts of 20 s");
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .attempt_timeout(secs(1))
        .build()
        .unwrap();
    assert_eq!(
        layer.total_timeout(),
        Some(secs(10)),
        "the default fits already"
    );
}

#[test]
fn no_total_deadline_in_every_preset() {
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .no_total_timeout()
        .build()
        .unwrap();
    assert_eq!(layer.total_timeout(), None);
    assert_eq!(layer.attempt_timeout(), secs(2));
    // The last setting wins.
    let layer = ResilienceLayer::builder(DefaultClassifier)
        .no_total_timeout()
        .total_timeout(secs(4))
        .build()
        .unwrap();
    assert_eq!(layer.total_timeout(), Some(secs(4)));
    #[cfg(feature = "http")]
    {
        let http = ResilienceLayer::http().no_total_timeout().build().unwrap();
        assert_eq!(http.stack().total_timeout(), None);
        assert_eq!(
            ResilienceLayer::http()
                .build()
                .unwrap()
                .stack()
                .total_timeout(),
            Some(secs(10))
        );
    }
    #[cfg(feature = "grpc")]
    {
        let grpc = ResilienceLayer::grpc().no_total_timeout().build().unwrap();
        assert_eq!(grpc.stack().total_timeout(), None);
    }
}

#[cfg(feature = "grpc")]
#[test]
fn the_grpc_preset_has_no_total_deadline_unless_asked_and_fits_one_that_is() {
    let default = ResilienceLayer::grpc().build().unwrap();
    assert_eq!(default.stack().total_timeout(), None, "gRPC's own default");
    assert_eq!(default.stack().attempt_timeout(), secs(2));
    let short = ResilienceLayer::grpc()
        .total_timeout(secs(1))
        .build()
        .expect("a total alone never conflicts with a default");
    assert_eq!(short.stack().total_timeout(), Some(secs(1)));
    assert_eq!(short.stack().attempt_timeout(), secs(1) / 3);
    let err = ResilienceLayer::grpc()
        .total_timeout(secs(1))
        .attempt_timeout(secs(2))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "attempt_timeout", "two values the user set do");
}

#[test]
fn the_presets_have_the_constructors_tower_users_look_for() {
    let layer = ResilienceLayer::default();
    assert_eq!(layer.total_timeout(), Some(secs(10)));
    #[cfg(feature = "http")]
    {
        use tower_tenacity::http::HttpResilienceLayer;
        let defaults = ResilienceLayer::http().build().unwrap();
        for layer in [HttpResilienceLayer::new(), HttpResilienceLayer::default()] {
            assert_eq!(
                layer.stack().total_timeout(),
                defaults.stack().total_timeout()
            );
            assert_eq!(
                layer.stack().attempt_timeout(),
                defaults.stack().attempt_timeout()
            );
        }
    }
    #[cfg(feature = "grpc")]
    {
        use tower_tenacity::grpc::GrpcResilienceLayer;
        for layer in [GrpcResilienceLayer::new(), GrpcResilienceLayer::default()] {
            assert_eq!(layer.stack().total_timeout(), None);
            assert_eq!(layer.stack().attempt_timeout(), secs(2));
        }
    }
}

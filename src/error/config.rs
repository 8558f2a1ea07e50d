//! The error of a builder that refused its configuration.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A configuration that a builder refused: names the field ([`field`](Self::field)), and in its
/// message the value and the bound it broke.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::retry::{ExponentialBackoff, RetryLayer};
///
/// let err = RetryLayer::builder()
///     .backoff(ExponentialBackoff::new(Duration::from_secs(10), 2.0, Duration::from_secs(5)))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), "backoff.initial");
/// assert_eq!(err.to_string(), "invalid configuration: backoff.initial (10s) must not exceed backoff.max (5s)");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    field: &'static str,
    problem: ConfigProblem,
}

/// What was wrong with a [`ConfigError`]'s field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigProblem {
    /// A number that must be finite was NaN or infinite.
    NotFinite(f64),
    /// A number fell outside its range.
    OutOfRange {
        /// The value given.
        value: f64,
        /// The smallest value allowed.
        min: f64,
        /// The largest value allowed.
        max: f64,
    },
    /// A count that must be at least one was zero.
    Zero,
    /// A duration that must be positive was zero.
    ZeroDuration,
    /// A duration was larger than another that bounds it.
    Exceeds {
        /// The value given.
        value: Duration,
        /// The name of the bounding field.
        bound: &'static str,
        /// The bounding field's value.
        limit: Duration,
    },
    /// A setting this preset does not take (in a settings document).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    NotHere,
    /// Two settings of which exactly one must be set.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    ExactlyOne,
    /// Two settings that exclude each other: either, or neither.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    AtMostOne,
    /// A setting that only applies with another one, which is not set.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    Needs(&'static str),
    /// A header name that is not one.
    #[cfg_attr(not(all(feature = "serde", feature = "http")), allow(dead_code))]
    NotAHeader,
    /// A setting that a reload cannot change on a running layer.
    FixedOnceBuilt,
    /// A gRPC service config that gRFC A6 calls invalid: where, and why.
    #[cfg(all(feature = "grpc", feature = "serde"))]
    ServiceConfig(Box<str>),
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, problem: ConfigProblem) -> Self {
        ConfigError { field, problem }
    }

    /// `field` names a header that cannot be one.
    #[cfg(all(feature = "serde", feature = "http"))]
    pub(crate) fn not_a_header(field: &'static str) -> Self {
        ConfigError::new(field, ConfigProblem::NotAHeader)
    }

    /// Exactly one of the settings `fields` names must be set.
    #[cfg(feature = "serde")]
    pub(crate) fn exactly_one(fields: &'static str) -> Self {
        ConfigError::new(fields, ConfigProblem::ExactlyOne)
    }

    /// At most one of the settings `fields` names may be set.
    #[cfg(feature = "serde")]
    pub(crate) fn at_most_one(fields: &'static str) -> Self {
        ConfigError::new(fields, ConfigProblem::AtMostOne)
    }

    /// `field` only applies with `other`, which is not set.
    #[cfg(feature = "serde")]
    pub(crate) fn needs(field: &'static str, other: &'static str) -> Self {
        ConfigError::new(field, ConfigProblem::Needs(other))
    }

    /// `field` is not a setting of this preset (a settings document named it).
    #[cfg(feature = "serde")]
    pub(crate) fn not_here(field: &'static str) -> Self {
        ConfigError::new(field, ConfigProblem::NotHere)
    }

    /// The field that was refused, dotted like `backoff.initial`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What was wrong with it: the message says it to a person, this to the crate's tests.
    #[cfg(test)]
    pub(crate) fn problem(&self) -> &ConfigProblem {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        write!(f, "invalid configuration: ")?;
        match &self.problem {
            ConfigProblem::NotFinite(v) => write!(f, "{field} must be a finite number, got {v}"),
            ConfigProblem::OutOfRange { value, min, max } if max.is_infinite() => {
                write!(f, "{field} must be at least {min}, got {value}")
            }
            ConfigProblem::OutOfRange { value, min, max } => {
                write!(f, "{field} must be between {min} and {max}, got {value}")
            }
            ConfigProblem::Zero => write!(f, "{field} must be at least 1, got 0"),
            ConfigProblem::ZeroDuration => write!(f, "{field} must be longer than zero"),
            ConfigProblem::NotHere => write!(f, "{field} is not a setting of this preset"),
            ConfigProblem::ExactlyOne => write!(f, "set exactly one of {field}"),
            ConfigProblem::AtMostOne => {
                write!(f, "set at most one of {field}: they exclude each other")
            }
            ConfigProblem::Needs(other) => {
                write!(
                    f,
                    "{field} only applies with {other}: set {other}, or leave {field} out"
                )
            }
            ConfigProblem::NotAHeader => write!(f, "{field} is not a valid header name"),
            #[cfg(all(feature = "grpc", feature = "serde"))]
            ConfigProblem::ServiceConfig(why) => write!(f, "{field}: {why}"),
            ConfigProblem::FixedOnceBuilt => {
                write!(
                    f,
                    "{field} is fixed when the layer is built: build a new layer to change it"
                )
            }
            ConfigProblem::Exceeds {
                value,
                bound,
                limit,
            } => {
                write!(f, "{field} ({value:?}) must not exceed {bound} ({limit:?})")
            }
        }
    }
}

impl StdError for ConfigError {}

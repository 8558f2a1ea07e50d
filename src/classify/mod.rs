//! Classification: the one decision, made once per outcome, that drives everything else.
//!
//! Every outcome of an attempt, `Ok(response)` or `Err(error)`, is given to a [`Classify`]
//! implementation, which answers with a [`Classification`]: success, retryable (with a
//! [`Reason`] and an optional server hint of how long to wait), or fatal. The retry loop, the
//! error that reaches the caller and the events that operators read are all derived from that
//! answer, so changing behaviour means changing the classifier, never the loop.
//!
//! Classifiers see the request as well as the outcome, because whether a failure may be retried
//! often depends on what was asked (an HTTP `POST` is not retried where a `GET` is).
//!
//! ```
//! use std::io;
//! use tower::BoxError;
//! use tower_tenacity::classify::{classify_fn, Classification, Classify, NotSent, Reason};
//!
//! // "Not found" is an answer, not a failure; "busy" is worth another try.
//! let classifier = classify_fn(|_req: &String, outcome: Result<&u16, &BoxError>| match outcome {
//!     Ok(200 | 404) => Classification::Success,
//!     Ok(503) => Classification::retryable(Reason::Status(503)),
//!     Ok(code) => Classification::fatal(Reason::Status(*code)),
//!     Err(err) => tower_tenacity::classify::classify_error(err.as_ref()),
//! });
//! let req = "GET /".to_string();
//! assert!(classifier.classify(&req, Ok(&503)).is_retryable());
//! let refused: BoxError = io::Error::from(io::ErrorKind::ConnectionRefused).into();
//! let never_sent = Reason::NeverSent(NotSent::ConnectionRefused);
//! assert_eq!(classifier.classify(&req, Err(&refused)).reason(), Some(never_sent));
//! assert_eq!(never_sent.to_string(), "connection refused");
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use crate::error::causes;
use crate::error::{BoxError, Error, ErrorKind, TimeoutScope};
pub use crate::error::{NotSent, Reason};

mod closures;
mod connect;

pub use self::closures::{classify_fn, outcome_fn};

#[cfg(any(feature = "hyper", feature = "reqwest"))]
pub(crate) use self::connect::classify_connect_error;

/// The verdict on one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// The call did what was asked: return it.
    Success,
    /// The call failed in a way that another attempt may fix.
    Retryable {
        /// Why it failed.
        reason: Reason,
        /// How long the server asked the client to wait (`Retry-After`, gRPC pushback). When
        /// present it replaces the computed backoff, within `max_retry_after`.
        after: Option<Duration>,
    },
    /// The call failed and another attempt would fail the same way.
    Fatal {
        /// Why it failed.
        reason: Reason,
    },
}

impl Classification {
    /// A retryable failure with no server hint.
    pub const fn retryable(reason: Reason) -> Self {
        Classification::Retryable {
            reason,
            after: None,
        }
    }

    /// A retryable failure for which the server asked to wait `after`.
    pub const fn retry_after(reason: Reason, after: Duration) -> Self {
        Classification::Retryable {
            reason,
            after: Some(after),
        }
    }

    /// A failure that is not worth retrying.
    pub const fn fatal(reason: Reason) -> Self {
        Classification::Fatal { reason }
    }

    /// `true` for [`Classification::Success`].
    pub const fn is_success(&self) -> bool {
        matches!(self, Classification::Success)
    }

    /// `true` for [`Classification::Retryable`].
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Classification::Retryable { .. })
    }

    /// `true` for [`Classification::Fatal`].
    pub const fn is_fatal(&self) -> bool {
        matches!(self, Classification::Fatal { .. })
    }

    /// Why the outcome failed; `None` on success.
    pub const fn reason(&self) -> Option<Reason> {
        match self {
            Classification::Success => None,
            Classification::Retryable { reason, .. } | Classification::Fatal { reason } => {
                Some(*reason)
            }
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Classification::Success => f.write_str("success"),
            Classification::Retryable {
                reason,
                after: Some(after),
            } => write!(f, "retryable ({reason}; wait {after:?} asked for)"),
            Classification::Retryable {
                reason,
                after: None,
            } => write!(f, "retryable ({reason})"),
            Classification::Fatal { reason } => write!(f, "fatal ({reason})"),
        }
    }
}

/// Decides what one outcome means.
///
/// `request` is the request as it was sent (the copy that retry keeps), `outcome` what the
/// service answered. Errors come as a `tower::BoxError`, as every tower layer returns them: a retry
/// layer turns the inner service's error into one before asking (a `BoxError` stays as it is),
/// so that one classifier serves any error type, foreign ones (`reqwest::Error`) included, and
/// reads its cause chain (see [`classify_error`]). Implementations must be cheap
/// and must not panic: they run on every call.
///
/// A retry layer's classifier is shared by all its calls (one copy per wrapped service, behind
/// an `Arc`), so a `Sync` classifier is what keeps its futures `Send`.
pub trait Classify<Req, Res> {
    /// Classifies one outcome of `request`.
    fn classify(&self, request: &Req, outcome: Result<&Res, &BoxError>) -> Classification;

    /// Whether `request` is safe to send twice at once, asked before a
    /// [hedge](crate::retry::Hedge) (hedging is off unless asked for). By default every
    /// request is; [`HttpClassifier`](crate::http::HttpClassifier) says yes only for an
    /// idempotent request, as it retries.
    fn may_hedge(&self, request: &Req) -> bool {
        let _ = request;
        true
    }
}

impl<Req, Res, C> Classify<Req, Res> for Arc<C>
where
    C: Classify<Req, Res> + ?Sized,
{
    fn classify(&self, request: &Req, outcome: Result<&Res, &BoxError>) -> Classification {
        (**self).classify(request, outcome)
    }

    fn may_hedge(&self, request: &Req) -> bool {
        (**self).may_hedge(request)
    }
}

impl<Req, Res, C> Classify<Req, Res> for &C
where
    C: Classify<Req, Res> + ?Sized,
{
    fn classify(&self, request: &Req, outcome: Result<&Res, &BoxError>) -> Classification {
        (**self).classify(request, outcome)
    }

    fn may_hedge(&self, request: &Req) -> bool {
        (**self).may_hedge(request)
    }
}

/// Decides what an outcome says about the service, whatever the request was: what a
/// [circuit breaker](crate::breaker) counts. A breaker judges the dependency, not the request,
/// so a 503 to a `POST` counts as a failure even though retry will not repeat the `POST`.
///
/// The crate's classifiers implement it as [`Classify`] does, without the request's part (for
/// [`HttpClassifier`](crate::http::HttpClassifier), idempotency). For a classifier of your own,
/// implement it beside [`Classify`], or build one of a closure with [`outcome_fn`], which is
/// both.
pub trait ClassifyOutcome<Res> {
    /// Classifies one outcome.
    fn classify_outcome(&self, outcome: Result<&Res, &BoxError>) -> Classification;
}

impl<Res, C: ClassifyOutcome<Res> + ?Sized> ClassifyOutcome<Res> for Arc<C> {
    fn classify_outcome(&self, outcome: Result<&Res, &BoxError>) -> Classification {
        (**self).classify_outcome(outcome)
    }
}

impl<Res, C: ClassifyOutcome<Res> + ?Sized> ClassifyOutcome<Res> for &C {
    fn classify_outcome(&self, outcome: Result<&Res, &BoxError>) -> Classification {
        (**self).classify_outcome(outcome)
    }
}

impl<Res> ClassifyOutcome<Res> for DefaultClassifier {
    fn classify_outcome(&self, outcome: Result<&Res, &BoxError>) -> Classification {
        match outcome {
            Ok(_) => Classification::Success,
            Err(err) => classify_error(err.as_ref()),
        }
    }
}

/// The classifier for any service: every `Ok` is a success; an error is retryable when
/// [`classify_error`] finds a transient cause in it, fatal otherwise.
///
/// It works for a service with any error type that tower accepts (`Into<BoxError>`: any
/// `std::error::Error + Send + Sync + 'static`, foreign ones included, and `BoxError`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

impl<Req, Res> Classify<Req, Res> for DefaultClassifier {
    fn classify(&self, _request: &Req, outcome: Result<&Res, &BoxError>) -> Classification {
        match outcome {
            Ok(_) => Classification::Success,
            Err(err) => classify_error(err.as_ref()),
        }
    }
}

/// Classifies an error by the first cause in its chain that says something:
///
/// * a [circuit breaker](crate::breaker)'s rejection was never sent: retryable
///   ([`NotSent::CircuitOpen`]) with the rest of the break as the hint, or fatal while the
///   circuit is held open;
/// * this crate's per-attempt timeout is retryable ([`Reason::Timeout`]); a total-deadline
///   timeout is fatal, since no time is left to retry in; with the `tower` feature (on by
///   default), tower's own `timeout::error::Elapsed` is an attempt timeout too;
/// * an [`io::Error`] of a transient kind is retryable: `ConnectionRefused` as
///   [`Reason::NeverSent`], `ConnectionReset`, `ConnectionAborted` and `BrokenPipe` as
///   [`Reason::Reset`], `TimedOut`, `NotConnected` and `UnexpectedEof` as [`Reason::Io`];
/// * an [`io::Error`] that says a connection cannot be made is fatal and named: a host name
///   that does not resolve ([`NotSent::NoSuchHost`]), a server certificate that is not trusted
///   ([`NotSent::UnknownIssuer`], [`NotSent::NameMismatch`], [`NotSent::BadCertificate`]);
/// * anything else is fatal ([`Reason::Io`] for other I/O errors, [`Reason::Other`] beyond).
pub fn classify_error(err: &(dyn StdError + 'static)) -> Classification {
    for cause in causes(err) {
        if let Some(ours) = cause.downcast_ref::<Error>() {
            match ours.kind() {
                ErrorKind::Timeout {
                    scope: TimeoutScope::Attempt,
                    ..
                } => return Classification::retryable(Reason::Timeout(TimeoutScope::Attempt)),
                // No time left (total), or the answer already came (body): not retried here.
                ErrorKind::Timeout { scope, .. } => {
                    return Classification::fatal(Reason::Timeout(scope));
                }
                // Never sent: worth another try once the break is over, unless an operator
                // holds the circuit open.
                ErrorKind::CircuitOpen { held: true, .. } => {
                    return Classification::fatal(Reason::NeverSent(NotSent::CircuitOpen));
                }
                ErrorKind::CircuitOpen { remaining, .. } => {
                    return Classification::Retryable {
                        reason: Reason::NeverSent(NotSent::CircuitOpen),
                        after: remaining,
                    };
                }
                // A server shedding load: another attempt now would add to what it sheds.
                ErrorKind::Overloaded { .. } => {
                    return Classification::fatal(Reason::NeverSent(NotSent::Overloaded));
                }
                // The client's own fast failure under overload: retrying it would undo it.
                ErrorKind::Throttled { .. } => {
                    return Classification::fatal(Reason::NeverSent(NotSent::Throttled));
                }
                // Retries that already ran out below us are final here too.
                _ => return Classification::fatal(ours.reason().unwrap_or(Reason::Other("error"))),
            }
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return match connect::lasting_failure(io) {
                Some(how) => Classification::fatal(Reason::NeverSent(how)),
                None => classify_io(io.kind()),
            };
        }
        // A `tower::timeout::Timeout` kept inside retry bounds one attempt, as ours does.
        #[cfg(feature = "tower")]
        if cause.is::<tower::timeout::error::Elapsed>() {
            return Classification::retryable(Reason::Timeout(TimeoutScope::Attempt));
        }
    }
    Classification::fatal(Reason::Other("error"))
}

/// Classifies an I/O error kind as [`classify_error`] does.
pub(crate) fn classify_io(kind: io::ErrorKind) -> Classification {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => {
            Classification::retryable(Reason::NeverSent(NotSent::ConnectionRefused))
        }
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            Classification::retryable(Reason::Reset)
        }
        K::TimedOut | K::NotConnected | K::UnexpectedEof => {
            Classification::retryable(Reason::Io(kind))
        }
        other => Classification::fatal(Reason::Io(other)),
    }
}

#[cfg(test)]
mod tests;

//! The one error type that this crate's layers return, and the configuration error.
//!
//! Every layer's service has `BoxError` as its error type, so that layers stack with each other
//! and with tower's own. An error that one of our layers *made* is an [`Error`]: downcast the
//! `BoxError` to it (or use [`Error::find`], which also looks through wrappers) and ask
//! [`Error::kind`] what happened. Errors of the wrapped service pass through unchanged, or, when
//! retry gave up on them, as the [`source`](std::error::Error::source) of an [`Error`] that says
//! why retrying stopped.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

mod config;
mod reason;

pub use self::config::ConfigError;
pub(crate) use self::config::ConfigProblem;
pub use self::reason::{NotSent, Reason};
pub(crate) use self::reason::{causes, find_cause};

/// A type-erased error, as tower uses it: what every layer of this crate returns. The same type
/// as `tower::BoxError`, which is the name users write.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutScope {
    /// One attempt ran longer than the per-attempt timeout ([`TimeoutLayer`](crate::timeout::TimeoutLayer)).
    Attempt,
    /// The whole call, attempts and backoff included, ran out of its total budget
    /// ([`DeadlineLayer`](crate::deadline::DeadlineLayer)).
    Total,
}

/// What an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A timeout fired: `after` is the configured duration of the one that did.
    Timeout {
        /// Per attempt or total.
        scope: TimeoutScope,
        /// The configured timeout that elapsed.
        after: Duration,
    },
    /// The last attempt failed with a retryable error, and retrying stopped: `why` says which
    /// limit was reached, or that the budget had no retry left, or that the request could not
    /// be made again.
    GaveUp {
        /// Attempts made, the first included.
        attempts: u32,
        /// Why retrying stopped (never [`GiveUp::Fatal`]: a fatal error is returned as it is).
        why: GiveUp,
    },
    /// A [circuit breaker](crate::breaker) rejected the call without sending it: the
    /// dependency has been failing.
    CircuitOpen {
        /// How long the break still lasts; `None` while the circuit is half-open with every
        /// probe out, or held open.
        remaining: Option<Duration>,
        /// Held open by hand, until an operator releases it.
        held: bool,
    },
    /// A server's [admission](crate::admission) limit turned the call away at once: it had
    /// `limit` calls in flight already. Fatal: retrying a server that sheds load would add to
    /// the load it sheds.
    Overloaded {
        /// The limit of calls in flight when it was turned away.
        limit: u64,
    },
    /// Adaptive [throttling](crate::throttle) rejected the call without sending it: the
    /// dependency has accepted too little of what it was sent.
    Throttled {
        /// Requests counted in the throttle's window when it rejected this one.
        requests: u64,
        /// Of those, how many the dependency accepted.
        accepts: u64,
    },
}

/// Why the retry loop stopped on a failed outcome: the one vocabulary of the retry events and
/// of [`ErrorKind::GaveUp`], with one phrase for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUp {
    /// The classifier called the outcome fatal.
    Fatal,
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next attempt would have started after `max_elapsed`.
    Elapsed,
    /// The backoff before the next attempt would have reached the total deadline.
    Deadline,
    /// The server (or an open circuit) asked to wait longer than `max_retry_after` allows.
    RetryAfter {
        /// What the server asked for.
        requested: Duration,
        /// The configured cap.
        cap: Duration,
    },
    /// The [`RetryBudget`](crate::retry::RetryBudget) had no retry to give.
    Budget,
    /// The request could not be made again (see [`Replay`](crate::retry::Replay)).
    NotReplayable,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Fatal => f.write_str("fatal failure"),
            GiveUp::Attempts => f.write_str("attempts exhausted"),
            GiveUp::Elapsed => f.write_str("the retry time limit was reached"),
            GiveUp::Deadline => f.write_str("the backoff would reach the deadline"),
            GiveUp::RetryAfter { requested, cap } => write!(
                f,
                "the wait asked for ({requested:?}) is over the {cap:?} cap"
            ),
            GiveUp::Budget => f.write_str("retry budget exhausted"),
            GiveUp::NotReplayable => f.write_str("the request cannot be sent again"),
        }
    }
}

/// The error made by this crate's layers.
///
/// `Display` reads as one sentence a user can act on, for example
/// `request timed out after 2s (attempt 3 of 3)`; [`kind`](Self::kind) says the same as data, and
/// [`source`](StdError::source) keeps the cause that the last attempt failed with.
///
/// ```
/// use std::time::Duration;
/// use tower::BoxError;
/// use tower_tenacity::{Error, ErrorKind, TimeoutScope};
///
/// fn describe(err: &BoxError) -> String {
///     match Error::find(err.as_ref()).map(Error::kind) {
///         Some(ErrorKind::Timeout { scope: TimeoutScope::Total, after }) => {
///             format!("gave up: the {after:?} budget is spent")
///         }
///         Some(ErrorKind::GaveUp { attempts, why }) => format!("failed {attempts} times: {why}"),
///         _ => err.to_string(),
///     }
/// }
/// # let err: BoxError = "plain".into();
/// # assert_eq!(describe(&err), "plain");
/// ```
pub struct Error {
    kind: ErrorKind,
    attempt: Option<Attempt>,
    reason: Option<Reason>,
    subject: Option<Box<str>>,
    source: Option<BoxError>,
}

/// "Attempt `number` of `max`": where in the retry loop an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// The attempt, counting from 1.
    pub number: u32,
    /// How many attempts were allowed.
    pub max: u32,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            attempt: None,
            reason: None,
            subject: None,
            source: None,
        }
    }

    pub(crate) fn timeout(scope: TimeoutScope, after: Duration) -> Self {
        Error::new(ErrorKind::Timeout { scope, after })
    }

    pub(crate) fn with_attempt(mut self, attempt: Option<Attempt>) -> Self {
        self.attempt = attempt;
        self
    }

    pub(crate) fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    pub(crate) fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// Names what was called in the message, for example `GET http://host/x`, in place of the
    /// word "request".
    pub fn with_subject(mut self, subject: impl Into<Box<str>>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// What happened.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The attempt this error is about, when a retry layer was involved.
    pub fn attempt(&self) -> Option<Attempt> {
        self.attempt
    }

    /// How many attempts were made in all, when known.
    pub fn attempts(&self) -> Option<u32> {
        match self.kind {
            ErrorKind::GaveUp { attempts, .. } => Some(attempts),
            ErrorKind::Timeout { .. }
            | ErrorKind::CircuitOpen { .. }
            | ErrorKind::Throttled { .. }
            | ErrorKind::Overloaded { .. } => self.attempt.map(|a| a.number),
        }
    }

    /// Why the classifier called the last outcome a failure, when a retry layer classified it.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// Whether a timeout fired, either directly or as the last cause of retries that ran out.
    pub fn timeout_scope(&self) -> Option<TimeoutScope> {
        match self.kind {
            ErrorKind::Timeout { scope, .. } => Some(scope),
            _ => self.last_timeout().map(|(scope, _)| scope),
        }
    }

    /// The first [`Error`] in `err`'s cause chain, `err` itself included.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
        find_cause::<Error>(err)
    }

    /// Whether a circuit breaker turned the call away, either directly or at the last attempt
    /// of retries that stopped.
    pub fn is_circuit_open(&self) -> bool {
        matches!(
            (self.kind, self.last_kind()),
            (ErrorKind::CircuitOpen { .. }, _) | (_, Some(ErrorKind::CircuitOpen { .. }))
        )
    }

    /// The kind of the error the last attempt failed with, when it was one of ours.
    fn last_kind(&self) -> Option<ErrorKind> {
        let source = self.source.as_deref()?;
        Some(source.downcast_ref::<Error>()?.kind)
    }

    fn last_timeout(&self) -> Option<(TimeoutScope, Duration)> {
        match self.last_kind()? {
            ErrorKind::Timeout { scope, after } => Some((scope, after)),
            _ => None,
        }
    }
}

impl TryFrom<BoxError> for Error {
    type Error = BoxError;

    /// Takes the [`Error`] out of a `BoxError` that holds one; gives the box back otherwise.
    fn try_from(err: BoxError) -> Result<Self, BoxError> {
        err.downcast::<Error>().map(|boxed| *boxed)
    }
}

fn write_timeout(f: &mut fmt::Formatter<'_>, scope: TimeoutScope, after: Duration) -> fmt::Result {
    match scope {
        TimeoutScope::Attempt => write!(f, "timed out after {after:?}"),
        TimeoutScope::Total => write!(f, "exceeded its total deadline of {after:?}"),
    }
}

fn write_open(f: &mut fmt::Formatter<'_>, remaining: Option<Duration>, held: bool) -> fmt::Result {
    f.write_str("not sent: the circuit is ")?;
    match (held, remaining) {
        (true, _) => f.write_str("held open"),
        (false, Some(remaining)) => write!(f, "open for {remaining:?} more"),
        (false, None) => f.write_str("half-open and its probes are out"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = self.subject.as_deref().unwrap_or("request");
        write!(f, "{subject} ")?;
        match self.kind {
            ErrorKind::Timeout { scope, after } => write_timeout(f, scope, after)?,
            ErrorKind::CircuitOpen { remaining, held } => write_open(f, remaining, held)?,
            ErrorKind::Overloaded { limit } => write!(
                f,
                "not served: the server is at its limit of {limit} calls in flight"
            )?,
            ErrorKind::Throttled { requests, accepts } => write!(
                f,
                "not sent: throttled by the client (the dependency accepted {accepts} of the last {requests} requests)"
            )?,
            ErrorKind::GaveUp { .. } => match (self.last_kind(), self.reason) {
                (Some(ErrorKind::Timeout { scope, after }), _) => write_timeout(f, scope, after)?,
                (Some(ErrorKind::CircuitOpen { remaining, held }), _) => {
                    write_open(f, remaining, held)?
                }
                (_, Some(reason)) => write!(f, "failed: {reason}")?,
                (_, None) => f.write_str("failed")?,
            },
        }
        // Running out of attempts needs no note: "(attempt 3 of 3)" says it.
        let note = match self.kind {
            ErrorKind::GaveUp { why, .. } if why != GiveUp::Attempts => Some(why),
            _ => None,
        };
        match (self.attempt, note) {
            (Some(a), Some(why)) => {
                write!(
                    f,
                    " (attempt {} of {}; not retried: {why})",
                    a.number, a.max
                )
            }
            (Some(a), None) => write!(f, " (attempt {} of {})", a.number, a.max),
            (None, Some(why)) => write!(f, " (not retried: {why})"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(attempt) = &self.attempt {
            d.field("attempt", attempt);
        }
        if let Some(reason) = &self.reason {
            d.field("reason", reason);
        }
        if let Some(subject) = &self.subject {
            d.field("subject", subject);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

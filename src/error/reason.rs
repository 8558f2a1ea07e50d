//! Why an outcome was a failure ([`Reason`]), and the cause-chain helpers every classifier and
//! [`Error::find`](super::Error::find) read errors with.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::iter;

use super::TimeoutScope;

/// Why an outcome was a failure.
///
/// `Display` gives a short phrase ("connection refused", "HTTP status 503") that suits both log
/// lines and the keys of a metrics table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// One of this crate's timeouts fired.
    Timeout(TimeoutScope),
    /// The connection broke while the request was in flight (reset, aborted, broken pipe).
    Reset,
    /// Another I/O error, by kind.
    Io(io::ErrorKind),
    /// An HTTP response status.
    Status(u16),
    /// A gRPC status (`grpc-status`): its code, like 14, and its name, like `UNAVAILABLE`, as
    /// the gRPC classifier gives them.
    Grpc {
        /// The status code.
        code: u8,
        /// The code's name.
        name: &'static str,
    },
    /// The server said it is overloaded or rate limiting.
    Throttled,
    /// The request was provably not sent, so retrying it is safe whatever it is; how that is
    /// known is the [`NotSent`].
    NeverSent(NotSent),
    /// Anything else; the text names it.
    Other(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Timeout(TimeoutScope::Attempt) => f.write_str("attempt timed out"),
            Reason::Timeout(TimeoutScope::Total) => f.write_str("deadline exceeded"),
            Reason::Reset => f.write_str("connection reset"),
            Reason::Io(kind) => write!(f, "I/O error: {kind}"),
            Reason::Status(code) => write!(f, "HTTP status {code}"),
            Reason::Grpc { name, .. } => write!(f, "gRPC status {name}"),
            Reason::Throttled => f.write_str("throttled"),
            Reason::NeverSent(how) => how.fmt(f),
            Reason::Other(text) => f.write_str(text),
        }
    }
}

/// How a request is known not to have been sent: [`Reason::NeverSent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotSent {
    /// The server refused the connection (an I/O error of kind `ConnectionRefused`).
    ConnectionRefused,
    /// The client could not make the connection (its connect error: refused, unreachable, a
    /// resolver that failed for now), for a reason another attempt may not meet.
    Connect,
    /// An HTTP/2 server refused the stream (`REFUSED_STREAM`): it did not process it.
    StreamRefused,
    /// A [circuit breaker](crate::breaker) rejected the call.
    CircuitOpen,
    /// A server's [admission](crate::admission) limit turned the call away before doing any
    /// work. Fatal: the server sheds load, and a retry would add to it.
    Overloaded,
    /// Adaptive [throttling](crate::throttle) rejected the call. Fatal: it is the client's
    /// own way of failing fast.
    Throttled,
    /// The host's name does not resolve (DNS: no such name, or no address for it). Fatal: the
    /// next attempt would ask the same resolver the same question.
    NoSuchHost,
    /// The server's TLS certificate is not signed by an authority the client trusts (a
    /// self-signed or private CA's certificate, say). Fatal.
    UnknownIssuer,
    /// The server's TLS certificate is for another name than the one asked for. Fatal.
    NameMismatch,
    /// The server's TLS certificate was refused for another reason (expired, revoked, …). Fatal.
    BadCertificate,
}

impl fmt::Display for NotSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSent::ConnectionRefused => "connection refused",
            NotSent::Connect => "could not connect",
            NotSent::StreamRefused => "stream refused by the server",
            NotSent::CircuitOpen => "circuit open",
            NotSent::Throttled => "throttled by the client",
            NotSent::Overloaded => "turned away by the server's admission limit",
            NotSent::NoSuchHost => "no such host",
            NotSent::UnknownIssuer => "TLS certificate: unknown issuer",
            NotSent::NameMismatch => "TLS certificate: name mismatch",
            NotSent::BadCertificate => "TLS certificate refused",
        })
    }
}

/// Iterates over `err` and its chain of [`source`](StdError::source)s.
pub(crate) fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    iter::successors(Some(err), |&e| e.source())
}

/// The first error of type `T` in `err`'s cause chain, `err` itself included.
pub(crate) fn find_cause<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    causes(err).find_map(|cause| cause.downcast_ref::<T>())
}

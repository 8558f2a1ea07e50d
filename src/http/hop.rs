//! Retry at one hop: how a server that called a dependency through this crate answers when that
//! call failed, so that its own callers do not retry what it already retried.

use std::error::Error as StdError;

use http::{HeaderValue, Response, StatusCode};

use super::HttpClassifier;
use crate::error::{Error, ErrorKind, GiveUp, TimeoutScope};

/// The response header that says "this hop already retried; do not retry it": Envoy's
/// `x-envoy-overloaded`, which Envoy puts on the 503s it sheds. The HTTP classifier calls a
/// retryable response that carries it fatal, so a call graph retries at the hop next to the
/// failure and nowhere above it. (The breaker and the throttle still count it as a failure.)
pub const OVERLOADED: &str = "x-envoy-overloaded";

/// The answer a server sends when its own call through this crate failed with `err`, in a
/// handler (`Err(err) => return upstream_failure(err.as_ref())`):
///
/// * `504 Gateway Timeout` when the deadline passed (the caller's, if the server reads it: see
///   [`ServerTimeoutLayer::deadline_header`](super::ServerTimeoutLayer::deadline_header));
/// * `503 Service Unavailable` with [`OVERLOADED`] when this hop gave up on a dependency that
///   kept failing (retries spent, the budget empty, a circuit open, throttled): the caller's
///   retry layer does not retry it, since this hop already did;
/// * `502 Bad Gateway` otherwise (a fatal answer or error from the dependency).
///
/// The body is the error's sentence, which names the request without its query or userinfo.
///
/// ```
/// use tower_tenacity::Error;
/// use tower_tenacity::http::{upstream_failure, OVERLOADED};
///
/// # fn failed() -> tower::BoxError { "no".into() }
/// let err = failed();
/// let response: http::Response<String> = upstream_failure(err.as_ref());
/// assert_eq!(response.status(), 502);
/// assert!(!response.headers().contains_key(OVERLOADED));
/// ```
pub fn upstream_failure<B: From<String>>(err: &(dyn StdError + 'static)) -> Response<B> {
    let ours = Error::find(err);
    let status = match ours {
        Some(ours) if ours.timeout_scope() == Some(TimeoutScope::Total) => {
            StatusCode::GATEWAY_TIMEOUT
        }
        Some(ours) if retried_here(ours) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut response = Response::new(B::from(err.to_string()));
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(OVERLOADED, HeaderValue::from_static("true"));
    }
    response
}

/// A response a server's own call returned through this crate, made ready to pass on: one that
/// the HTTP classifier would retry (a 429, 500, 502, 503, 504 or 408) gets [`OVERLOADED`],
/// since this hop's retry layer already retried it as far as its limits allowed, and its
/// callers must not multiply that. Any other response is passed on as it is.
///
/// ```
/// use tower_tenacity::http::{upstream_response, OVERLOADED};
///
/// let busy = http::Response::builder().status(503).body(()).unwrap();
/// assert!(upstream_response(busy).headers().contains_key(OVERLOADED));
/// let gone = http::Response::builder().status(404).body(()).unwrap();
/// assert!(!upstream_response(gone).headers().contains_key(OVERLOADED));
/// ```
pub fn upstream_response<B>(mut response: Response<B>) -> Response<B> {
    if HttpClassifier::new()
        .classify_status(&response)
        .is_retryable()
    {
        response
            .headers_mut()
            .insert(OVERLOADED, HeaderValue::from_static("true"));
    }
    response
}

/// Whether `err` says this hop retried its dependency as far as it could, or was stopped from
/// calling it at all: what its callers must not multiply. (A request this hop could not send
/// again was not retried here: its caller may.)
pub(crate) fn retried_here(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::GaveUp { why, .. } => why != GiveUp::NotReplayable,
        ErrorKind::CircuitOpen { .. } | ErrorKind::Throttled { .. } => true,
        ErrorKind::Timeout { .. } | ErrorKind::Overloaded { .. } => false,
    }
}

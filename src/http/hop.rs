//! Retry at one hop: how a server that called a dependency through this crate answers when that
//! call failed, so that its own callers do not retry what it already retried.

use std::error::Error as StdError;

use http::{HeaderValue, Response, StatusCode};

use super::HttpClassifier;
use crate::error::{BoxError, Error, ErrorKind, GiveUp, TimeoutScope};

/// The response header that says "this hop already retried; do not retry it": Envoy's
/// `x-envoy-overloaded`, which Envoy puts on the 503s it sheds. The HTTP classifier calls a
/// retryable response that carries it fatal, so a call graph retries at the hop next to the
/// failure and nowhere above it. (The breaker and the throttle still count it as a failure.)
pub(crate) const OVERLOADED: &str = "x-envoy-overloaded";

/// The answer a server passes on for its own call through this crate, in a handler
/// (`return upstream(client.call(request).await)`), so that its callers do not retry what it
/// already retried:
///
/// * a response is passed on as it is, and one the HTTP classifier would retry (a 429, 500,
///   502, 503, 504 or 408, which this hop's retry layer already retried as far as its limits
///   allowed) gets `x-envoy-overloaded: true`, which the HTTP classifier does not retry;
/// * an error becomes `504 Gateway Timeout` when the deadline passed or left no time for
///   another attempt (the caller's, if the
///   server reads it: see
///   [`ServerTimeoutLayer::deadline_header`](super::ServerTimeoutLayer::deadline_header));
///   `503 Service Unavailable` with `x-envoy-overloaded` when this hop gave up on a dependency
///   that kept failing (retries spent, the budget empty, a circuit open, throttled) or was
///   turned away by its admission limit; `502 Bad Gateway` otherwise. Its body is the error's
///   sentence, which names the request without its query or userinfo.
///
/// ```
/// use tower_tenacity::http::upstream;
///
/// let busy = http::Response::builder().status(503).body(String::new()).unwrap();
/// assert_eq!(upstream(Ok(busy)).headers()["x-envoy-overloaded"], "true");
/// let gone = http::Response::builder().status(404).body(String::new()).unwrap();
/// assert!(upstream(Ok(gone)).headers().get("x-envoy-overloaded").is_none());
/// let failed: http::Response<String> = upstream(Err("no route".into()));
/// assert_eq!(failed.status(), 502);
/// ```
pub fn upstream<B: From<String>>(outcome: Result<Response<B>, BoxError>) -> Response<B> {
    match outcome {
        Ok(response)
            if HttpClassifier::new()
                .classify_status(&response)
                .is_retryable() =>
        {
            overloaded(response)
        }
        Ok(response) => response,
        Err(err) => failure(err.as_ref()),
    }
}

/// The answer for a call that failed with `err`.
fn failure<B: From<String>>(err: &(dyn StdError + 'static)) -> Response<B> {
    let ours = Error::find(err);
    let status = match ours {
        // The deadline passed, or was too near for another attempt.
        Some(ours)
            if ours.timeout_scope() == Some(TimeoutScope::Total)
                || matches!(
                    ours.kind(),
                    ErrorKind::GaveUp {
                        why: GiveUp::Deadline,
                        ..
                    }
                ) =>
        {
            StatusCode::GATEWAY_TIMEOUT
        }
        Some(ours) if retried_here(ours) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut response = Response::new(B::from(err.to_string()));
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return overloaded(response);
    }
    response
}

fn overloaded<B>(mut response: Response<B>) -> Response<B> {
    response
        .headers_mut()
        .insert(OVERLOADED, HeaderValue::from_static("true"));
    response
}

/// Whether `err` says this hop retried its dependency as far as it could, or was stopped from
/// calling it at all: what its callers must not multiply. (A request this hop could not send
/// again was not retried here: its caller may.)
pub(crate) fn retried_here(err: &Error) -> bool {
    match err.kind() {
        // Stopped for want of time, or never retried: not this hop's retrying to multiply.
        ErrorKind::GaveUp { why, .. } => !matches!(why, GiveUp::NotReplayable | GiveUp::Deadline),
        // Stopped from calling it: a circuit open, the throttle, an admission limit that turned
        // the call away in-process (the dependency is overloaded).
        ErrorKind::CircuitOpen { .. }
        | ErrorKind::Throttled { .. }
        | ErrorKind::Overloaded { .. } => true,
        ErrorKind::Timeout { .. } => false,
    }
}

//! [`HttpClassifier`]: which HTTP outcomes are retried, and which requests may be.

use std::error::Error as StdError;
use std::fmt;
use std::time::SystemTime;

use http::{Request, Response, StatusCode};

use super::OVERLOADED;

#[cfg(any(feature = "hyper", feature = "reqwest"))]
use crate::classify::classify_connect_error;
use crate::classify::{Classification, Classify, ClassifyOutcome, Reason, causes, classify_error};
use crate::error::{BoxError, Error, ErrorKind, TimeoutScope};

/// The header that makes a non-idempotent request safe to retry (the IETF `Idempotency-Key`
/// draft, as payment APIs use it).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A request extension that marks one request as safe to retry whatever its method.
///
/// ```
/// use tower_tenacity::http::Idempotent;
///
/// let mut request = http::Request::post("http://127.0.0.1/orders").body(()).unwrap();
/// request.extensions_mut().insert(Idempotent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Idempotent;

/// Classifies HTTP outcomes for retry.
///
/// Responses: 1xx–3xx are successes. 500, 502, 503, 504, 408 and 429 are retryable (the set is
/// configurable), with the server's `Retry-After` on 429 and 503 as the hint; every other 4xx
/// and 5xx is a fatal response, returned to the caller as it is.
///
/// Errors: a connection that could not be made (hyper-util's `is_connect`, or a refused
/// connection) means the request was never sent ([`Reason::NeverSent`]), which is safe to retry
/// for any method, and so does an HTTP/2 stream the server refused (`REFUSED_STREAM`, with the
/// `http2` feature). A connection that no retry can make is fatal and named: a host name that
/// does not resolve, a server certificate that is not trusted (see
/// [`classify_error`](crate::classify::classify_error)). An incomplete message, a canceled request, a reset connection or stream,
/// or this crate's attempt timeout are retryable too, but the server may have acted on the
/// request. The first cause in an error's chain that says something decides: with the
/// `reqwest` feature a `reqwest::Error` (its timeout is an attempt timeout, a status error goes
/// by its status), with `http2` an HTTP/2 error (`ENHANCE_YOUR_CALM` is the server throttling,
/// [`Reason::Throttled`]), then what `classify_error` finds. An error alone, whatever the
/// request, is classified by [`classify_outcome`](ClassifyOutcome::classify_outcome).
///
/// Idempotency (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried. POST,
/// PATCH, CONNECT and unknown methods only when the request carries an `Idempotency-Key`
/// header or the [`Idempotent`] extension, when the classifier was built with
/// [`retry_unsafe_methods`](Self::retry_unsafe_methods), or when the failure proves the request
/// was never sent.
///
/// ```
/// use http::{Method, Request, Response, StatusCode};
/// use tower_tenacity::classify::{Classify, Reason};
/// use tower_tenacity::http::HttpClassifier;
///
/// let classifier = HttpClassifier::new();
/// let get = Request::get("http://127.0.0.1/").body(()).unwrap();
/// let post = Request::post("http://127.0.0.1/").body(()).unwrap();
/// let busy = Response::builder().status(503).body(String::new()).unwrap();
/// let retry = |req: &Request<()>| {
///     classifier.classify(req, Ok(&busy)).is_retryable()
/// };
/// assert!(retry(&get));
/// assert!(!retry(&post), "a POST may have been acted on");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HttpClassifier {
    retryable: StatusSet,
    retry_unsafe: bool,
}

impl Default for HttpClassifier {
    fn default() -> Self {
        HttpClassifier::new()
    }
}

impl fmt::Debug for HttpClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClassifier")
            .field("retryable", &self.retryable)
            .field("retry_unsafe", &self.retry_unsafe)
            .finish()
    }
}

impl HttpClassifier {
    /// Retries 500, 502, 503, 504, 408 and 429, and only idempotent requests.
    pub fn new() -> Self {
        let mut retryable = StatusSet::default();
        for code in [500, 502, 503, 504, 408, 429] {
            retryable.insert(code);
        }
        HttpClassifier {
            retryable,
            retry_unsafe: false,
        }
    }

    /// Also retries responses with `status`.
    pub fn retry_on(mut self, status: StatusCode) -> Self {
        self.retryable.insert(status.as_u16());
        self
    }

    /// Never retries responses with `status`.
    pub fn no_retry_on(mut self, status: StatusCode) -> Self {
        self.retryable.remove(status.as_u16());
        self
    }

    /// Retries POST, PATCH and other non-idempotent requests as if they were idempotent (for a
    /// server known to deduplicate).
    pub fn retry_unsafe_methods(mut self, retry: bool) -> Self {
        self.retry_unsafe = retry;
        self
    }

    /// Whether responses with `status` are retried.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.retryable.contains(status.as_u16())
    }

    /// Whether `request` may be sent again after a failure that it may have caused: its method
    /// is idempotent by `http::Method::is_idempotent` (GET, HEAD, OPTIONS, TRACE, QUERY, PUT,
    /// DELETE), it carries an `Idempotency-Key` or the [`Idempotent`] extension, or the
    /// classifier retries unsafe methods.
    pub fn may_retry<B>(&self, request: &Request<B>) -> bool {
        self.retry_unsafe
            || request.method().is_idempotent()
            || request.headers().contains_key(IDEMPOTENCY_KEY)
            || request.extensions().get::<Idempotent>().is_some()
    }

    /// Classifies a response by its status alone (and its `Retry-After`), without the request:
    /// what the server side uses, where every request is its own.
    pub fn classify_status<ResB>(&self, response: &Response<ResB>) -> Classification {
        let status = response.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return Classification::Success;
        }
        let reason = Reason::Status(status.as_u16());
        if !self.retryable.contains(status.as_u16()) {
            return Classification::fatal(reason);
        }
        let hint = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                super::retry_after::retry_after(response.headers(), SystemTime::now())
            }
            _ => None,
        };
        Classification::Retryable {
            reason,
            after: hint,
        }
    }
}

impl<ResB> ClassifyOutcome<Response<ResB>> for HttpClassifier {
    /// The status or the error alone: a 503 counts as a failure whatever the method.
    fn classify_outcome(&self, outcome: Result<&Response<ResB>, &BoxError>) -> Classification {
        match outcome {
            Ok(response) => self.classify_status(response),
            Err(err) => classify_http_error(err.as_ref()),
        }
    }
}

impl<B, ResB> Classify<Request<B>, Response<ResB>> for HttpClassifier {
    fn classify(
        &self,
        request: &Request<B>,
        outcome: Result<&Response<ResB>, &BoxError>,
    ) -> Classification {
        match self.classify_outcome(outcome) {
            Classification::Retryable { reason, .. }
                if !matches!(reason, Reason::NeverSent(_)) && !self.may_retry(request) =>
            {
                Classification::fatal(reason)
            }
            // The server already retried its own call and gave up (one hop retries, the one
            // next to the failure): not retried here. Still a failure for the breaker and the
            // throttle, which read the status alone.
            Classification::Retryable { reason, .. }
                if outcome.is_ok_and(|response| response.headers().contains_key(OVERLOADED)) =>
            {
                Classification::fatal(reason)
            }
            other => other,
        }
    }

    /// Hedged only when it would be retried: an idempotent request (see
    /// [`may_retry`](Self::may_retry)).
    fn may_hedge(&self, request: &Request<B>) -> bool {
        self.may_retry(request)
    }
}

/// Classifies an error from an HTTP client by the first cause in its chain that says something:
/// with the `reqwest` feature, `reqwest::Error`s (connect errors as [`Reason::NeverSent`],
/// reqwest's timeout as an attempt timeout, status errors by status); with the `hyper` feature,
/// hyper-util's connect errors as [`Reason::NeverSent`] (retryable, unless their cause is a name
/// that does not resolve or a certificate that is not trusted: fatal), hyper's incomplete messages and
/// canceled requests as [`Reason::Reset`]; with the `http2` feature HTTP/2 errors (a refused
/// stream as [`Reason::NeverSent`], `ENHANCE_YOUR_CALM` as [`Reason::Throttled`], other resets
/// from the server as [`Reason::Reset`], h2's I/O errors by kind), then as [`classify_error`]
/// does (this crate's timeouts, I/O errors).
pub(crate) fn classify_http_error(err: &(dyn StdError + 'static)) -> Classification {
    for cause in causes(err) {
        #[cfg(feature = "reqwest")]
        if let Some(reqwest) = cause.downcast_ref::<reqwest::Error>() {
            if let Some(classification) = classify_reqwest_error(reqwest) {
                return classification;
            }
            continue;
        }
        #[cfg(feature = "hyper")]
        if let Some(client) = cause.downcast_ref::<hyper_util::client::legacy::Error>() {
            if client.is_connect() {
                return classify_connect_error(client);
            }
            continue;
        }
        #[cfg(feature = "hyper")]
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed() {
                return Classification::retryable(Reason::Reset);
            }
            continue;
        }
        #[cfg(feature = "http2")]
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            if let Some(classification) = classify_h2_error(h2) {
                return classification;
            }
            continue;
        }
        if let Some(ours) = cause.downcast_ref::<Error>()
            && let ErrorKind::Timeout {
                scope: TimeoutScope::Attempt,
                ..
            } = ours.kind()
        {
            return Classification::retryable(Reason::Timeout(TimeoutScope::Attempt));
        }
    }
    classify_error(err)
}

/// A `reqwest::Error`, if it says something more than its causes do: a connect error was never
/// sent (and is fatal if no retry can mend it), reqwest's own timeout bounded the attempt, a status error (`error_for_status`) is
/// retryable for 408, 429, 500, 502, 503 and 504.
#[cfg(feature = "reqwest")]
fn classify_reqwest_error(err: &reqwest::Error) -> Option<Classification> {
    if err.is_connect() {
        return Some(classify_connect_error(err));
    }
    if err.is_timeout() {
        return Some(Classification::retryable(Reason::Timeout(
            TimeoutScope::Attempt,
        )));
    }
    let status = err.status()?.as_u16();
    let reason = Reason::Status(status);
    Some(match status {
        408 | 429 | 500 | 502 | 503 | 504 => Classification::retryable(reason),
        _ => Classification::fatal(reason),
    })
}

/// An HTTP/2 error, if it says something (RFC 9113 §8.7): a stream the server refused was never
/// processed, whatever its method; `ENHANCE_YOUR_CALM` is the server throttling; h2's I/O errors
/// are classified by kind (h2 does not give them as a `source()`), and any other reset or
/// `GOAWAY` from the server is a reset: the request may have been acted on. Errors h2 raised
/// itself (a protocol violation it detected, a misuse) say nothing here.
#[cfg(feature = "http2")]
fn classify_h2_error(err: &h2::Error) -> Option<Classification> {
    if let Some(io) = err.get_io() {
        return Some(crate::classify::classify_io(io.kind()));
    }
    if !err.is_remote() {
        return None;
    }
    Some(match err.reason() {
        Some(h2::Reason::REFUSED_STREAM) => {
            Classification::retryable(Reason::NeverSent(crate::classify::NotSent::StreamRefused))
        }
        Some(h2::Reason::ENHANCE_YOUR_CALM) => Classification::retryable(Reason::Throttled),
        _ => Classification::retryable(Reason::Reset),
    })
}

/// Statuses 100–599 as a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct StatusSet([u64; 8]);

impl StatusSet {
    fn index(code: u16) -> Option<(usize, u64)> {
        let offset = code.checked_sub(100).filter(|o| *o < 500)?;
        Some((usize::from(offset / 64), 1 << (offset % 64)))
    }

    fn insert(&mut self, code: u16) {
        if let Some((word, bit)) = StatusSet::index(code) {
            self.0[word] |= bit;
        }
    }

    fn remove(&mut self, code: u16) {
        if let Some((word, bit)) = StatusSet::index(code) {
            self.0[word] &= !bit;
        }
    }

    fn contains(&self, code: u16) -> bool {
        StatusSet::index(code).is_some_and(|(word, bit)| self.0[word] & bit != 0)
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((100..600).filter(|code| self.contains(*code)))
            .finish()
    }
}

#[cfg(test)]
mod tests;

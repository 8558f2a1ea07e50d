//! [`GrpcClassifier`]: which gRPC outcomes are retried (gRFC A6).

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use tonic::Code;

use super::peek::PeekedTrailers;
use crate::classify::{Classification, Classify, ClassifyOutcome, Reason, causes};
use crate::error::BoxError;
use crate::http::classify_http_error;

/// The header a gRPC server uses to push back: milliseconds to wait, or a negative or
/// unreadable value for "do not retry" (gRFC A6).
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// Classifies gRPC outcomes for retry.
///
/// The status is read from `grpc-status` in the response headers (a trailers-only response) or
/// in the trailers, which the gRPC preset peeks at for unary responses (see
/// the preset's trailer peeking). `OK` is a success; the retryable codes
/// (`UNAVAILABLE` by default) are retried; every other code is fatal and reaches the caller as
/// the status it is. A server's `grpc-retry-pushback-ms` is the delay before the next attempt,
/// and a negative or unreadable one means no retry (still a failure to a circuit breaker or a
/// throttle, which judge the dependency). A stream the server reset has the code the
/// gRPC spec gives its HTTP/2 error (`INTERNAL_ERROR` is `INTERNAL`, `CANCEL` is `CANCELLED`,
/// `ENHANCE_YOUR_CALM` is `RESOURCE_EXHAUSTED`, a `GOAWAY` is `UNAVAILABLE`), classified as
/// that status. Other transport errors are classified as for HTTP: a connection never made or a
/// stream the server refused was never processed, and is retried whatever the codes.
///
/// ```
/// use tonic::Code;
/// use tower_tenacity::grpc::GrpcClassifier;
///
/// let classifier = GrpcClassifier::new().retry_on(Code::ResourceExhausted);
/// assert!(classifier.retries(Code::Unavailable));
/// assert!(classifier.retries(Code::ResourceExhausted));
/// assert!(!classifier.retries(Code::Internal));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GrpcClassifier {
    retryable: u32,
}

impl Default for GrpcClassifier {
    fn default() -> Self {
        GrpcClassifier::new()
    }
}

impl fmt::Debug for GrpcClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<Code> = (0..17)
            .map(Code::from_i32)
            .filter(|code| self.retries(*code))
            .collect();
        f.debug_struct("GrpcClassifier")
            .field("retryable", &codes)
            .finish()
    }
}

impl GrpcClassifier {
    /// Retries `UNAVAILABLE` only.
    pub fn new() -> Self {
        GrpcClassifier {
            retryable: 1 << Code::Unavailable as u32,
        }
    }

    /// Also retries `code`.
    pub fn retry_on(mut self, code: Code) -> Self {
        self.retryable |= 1 << code as u32;
        self
    }

    /// Never retries `code`.
    pub fn no_retry_on(mut self, code: Code) -> Self {
        self.retryable &= !(1 << code as u32);
        self
    }

    /// Whether `code` is retried.
    pub fn retries(&self, code: Code) -> bool {
        code != Code::Ok && self.retryable & (1 << code as u32) != 0
    }

    /// `refusal` is what a server's "do not retry" (a negative or unreadable pushback) makes of
    /// a retryable status: fatal for the retry loop, which must not send it again; a failure
    /// still for the breaker and the throttle, which judge the dependency (a server shedding
    /// load, or a hop that gave up on its own dependency, is not a healthy answer).
    fn classify_status(
        &self,
        code: Code,
        metadata: &[&HeaderMap],
        refusal: Refusal,
    ) -> Classification {
        if code == Code::Ok {
            return Classification::Success;
        }
        let reason = grpc_reason(code);
        if !self.retries(code) {
            return Classification::fatal(reason);
        }
        match metadata.iter().find_map(|headers| headers.get(PUSHBACK)) {
            None => Classification::retryable(reason),
            Some(value) => match (pushback(value.as_bytes()), refusal) {
                (Some(after), _) => Classification::retry_after(reason, after),
                (None, Refusal::Fatal) => Classification::fatal(reason),
                (None, Refusal::Failure) => Classification::retryable(reason),
            },
        }
    }

    /// The classification of `outcome`, with a server's refusal to be retried made `refusal`.
    fn judge<ResB>(
        &self,
        outcome: Result<&Response<ResB>, &BoxError>,
        refusal: Refusal,
    ) -> Classification {
        match outcome {
            Ok(response) => match response_status(response) {
                None => Classification::Success,
                Some(code) => {
                    let trailers = response.extensions().get::<PeekedTrailers>();
                    match trailers {
                        Some(PeekedTrailers(trailers)) => {
                            self.classify_status(code, &[response.headers(), trailers], refusal)
                        }
                        None => self.classify_status(code, &[response.headers()], refusal),
                    }
                }
            },
            Err(err) => {
                let err = err.as_ref();
                match causes(err).find_map(|cause| cause.downcast_ref::<tonic::Status>()) {
                    Some(status) => {
                        let metadata = [status.metadata().as_ref()];
                        self.classify_status(status.code(), &metadata, refusal)
                    }
                    None => match causes(err)
                        .find_map(|cause| cause.downcast_ref::<h2::Error>())
                        .and_then(h2_code)
                    {
                        Some(code) => self.classify_status(code, &[], refusal),
                        None => classify_http_error(err),
                    },
                }
            }
        }
    }
}

/// The gRPC code of a stream the server reset or sent away, as the gRPC over HTTP/2 spec maps
/// them (`PROTOCOL-HTTP2.md`, "Errors"): the code then decides, as for any status. `None` for a
/// refused stream (never processed: retried as never sent, whatever the codes, like gRPC's
/// transparent retry), for h2's I/O errors and for errors h2 raised itself, which are classified
/// as for HTTP.
fn h2_code(err: &h2::Error) -> Option<Code> {
    if !err.is_remote() {
        return None;
    }
    if err.is_go_away() {
        // Streams after the server's last one were not processed; gRPC calls that UNAVAILABLE.
        return Some(Code::Unavailable);
    }
    Some(match err.reason()? {
        h2::Reason::REFUSED_STREAM => return None,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Internal,
    })
}

/// A pushback value as a delay; `None` for a negative or unreadable one.
fn pushback(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let millis: i64 = text.parse().ok()?;
    u64::try_from(millis).ok().map(Duration::from_millis)
}

/// The gRPC status of a response: `grpc-status` in its headers or in peeked trailers, or, for
/// an HTTP error status with neither, the code gRPC maps it to. `None` when the status is still
/// in a body not read yet (a streaming response).
pub fn response_status<B>(response: &Response<B>) -> Option<Code> {
    if let Some(code) = status_in(response.headers()) {
        return Some(code);
    }
    if let Some(PeekedTrailers(trailers)) = response.extensions().get::<PeekedTrailers>() {
        return Some(status_in(trailers).unwrap_or(Code::Unknown));
    }
    match response.status() {
        StatusCode::OK => None,
        // The HTTP to gRPC mapping of the gRPC spec (doc/http-grpc-status-mapping.md).
        StatusCode::BAD_REQUEST => Some(Code::Internal),
        StatusCode::UNAUTHORIZED => Some(Code::Unauthenticated),
        StatusCode::FORBIDDEN => Some(Code::PermissionDenied),
        StatusCode::NOT_FOUND => Some(Code::Unimplemented),
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Some(Code::Unavailable),
        _ => Some(Code::Unknown),
    }
}

fn status_in(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    let code: i32 = std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Code::from_i32(code))
}

impl<B, ResB> Classify<Request<B>, Response<ResB>> for GrpcClassifier {
    fn classify(
        &self,
        _request: &Request<B>,
        outcome: Result<&Response<ResB>, &BoxError>,
    ) -> Classification {
        self.judge(outcome, Refusal::Fatal)
    }
}

impl<ResB> ClassifyOutcome<Response<ResB>> for GrpcClassifier {
    fn classify_outcome(&self, outcome: Result<&Response<ResB>, &BoxError>) -> Classification {
        self.judge(outcome, Refusal::Failure)
    }
}

/// What a retryable status that its server said not to retry is: see
/// `GrpcClassifier::classify_status`.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Fatal,
    Failure,
}

/// The [`Reason`] of a gRPC status code: its number and name.
pub fn grpc_reason(code: Code) -> Reason {
    let number = code as i32;
    let name = usize::try_from(number)
        .ok()
        .and_then(|i| GRPC_CODES.get(i))
        .copied()
        .unwrap_or("UNKNOWN");
    Reason::Grpc {
        code: u8::try_from(number).unwrap_or(u8::MAX),
        name,
    }
}

/// The names of the gRPC status codes, by number.
pub(crate) const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BoxError;

    fn response(headers: &[(&'static str, &str)]) -> Response<()> {
        let mut builder = Response::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn classify(response: &Response<()>) -> Classification {
        let request = Request::new(());
        Classify::classify(&GrpcClassifier::new(), &request, Ok(response))
    }

    #[test]
    fn codes_from_headers() {
        assert!(classify(&response(&[("grpc-status", "0")])).is_success());
        assert_eq!(
            classify(&response(&[("grpc-status", "14")])),
            Classification::retryable(grpc_reason(Code::Unavailable))
        );
        assert_eq!(
            classify(&response(&[("grpc-status", "13")])),
            Classification::fatal(grpc_reason(Code::Internal))
        );
        assert!(
            classify(&response(&[])).is_success(),
            "status still in the body"
        );
    }

    #[test]
    fn pushback_is_a_delay_or_a_refusal() {
        assert_eq!(
            classify(&response(&[("grpc-status", "14"), (PUSHBACK, "250")])),
            Classification::retry_after(grpc_reason(Code::Unavailable), Duration::from_millis(250))
        );
        for refusal in ["-1", "soon", ""] {
            let refused = response(&[("grpc-status", "14"), (PUSHBACK, refusal)]);
            assert!(classify(&refused).is_fatal(), "{refusal:?}");
            // Not retried, but a failure all the same to the breaker and the throttle, which
            // judge the dependency: a server that sheds load is not a healthy one.
            let judged = GrpcClassifier::new().classify_outcome(Ok(&refused));
            assert_eq!(
                judged,
                Classification::retryable(grpc_reason(Code::Unavailable)),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn peeked_trailers_count() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "14".parse().unwrap());
        trailers.insert(PUSHBACK, "10".parse().unwrap());
        let mut response = response(&[]);
        response.extensions_mut().insert(PeekedTrailers(trailers));
        assert_eq!(
            classify(&response),
            Classification::retry_after(grpc_reason(Code::Unavailable), Duration::from_millis(10))
        );
    }

    #[test]
    fn statuses_in_errors_count() {
        let request = Request::new(());
        let err: BoxError = Box::new(tonic::Status::unavailable("down"));
        let outcome: Result<&Response<()>, &BoxError> = Err(&err);
        assert!(
            GrpcClassifier::new()
                .classify(&request, outcome)
                .is_retryable()
        );
        assert_eq!(
            grpc_reason(Code::Unavailable).to_string(),
            "gRPC status UNAVAILABLE"
        );
    }
}

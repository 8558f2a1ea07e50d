//! Responses for [`FaultBuilder::respond`](super::FaultBuilder::respond): an HTTP status, a
//! gRPC status.

use std::time::Duration;

use http::Response;

/// Makes HTTP responses with `status` and, if given, a `Retry-After` of whole seconds
/// (rounded up), with an empty body.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::testing::{http_status, FaultLayer};
///
/// let busy = http_status::<String>(503, Some(Duration::from_secs(2)));
/// let response = busy();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "2");
/// let layer = FaultLayer::builder().respond(0.1, busy).build().unwrap();
/// # let _ = layer;
/// ```
pub fn http_status<B: Default>(
    status: u16,
    retry_after: Option<Duration>,
) -> impl Fn() -> Response<B> + Clone + Send + Sync + 'static {
    move || {
        let mut response = Response::new(B::default());
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(after) = retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Makes gRPC responses that end the call with `code` at once (Trailers-Only, as a server
/// does), with `grpc-retry-pushback-ms` when `pushback` is given.
///
/// ```
/// use tower_tenacity::testing::grpc_status;
///
/// let unavailable = grpc_status::<String>(tonic::Code::Unavailable, None);
/// assert_eq!(unavailable().headers()["grpc-status"], "14");
/// ```
#[cfg(feature = "grpc")]
pub fn grpc_status<B: Default>(
    code: tonic::Code,
    pushback: Option<Duration>,
) -> impl Fn() -> Response<B> + Clone + Send + Sync + 'static {
    move || {
        let mut response = Response::new(B::default());
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", (code as i32).into());
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("injected fault"),
        );
        if let Some(pushback) = pushback {
            let millis = u64::try_from(pushback.as_millis()).unwrap_or(u64::MAX);
            headers.insert("grpc-retry-pushback-ms", millis.into());
        }
        response
    }
}

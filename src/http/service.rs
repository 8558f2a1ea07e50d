//! What the HTTP stack tells: the attempt count on a retried response ([`Attempts`]), the request
//! named in errors, and the attempt number told to the server on retries ([`AttemptHeader`]).

use std::fmt;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderValue, Method, Request, Uri};
use tower_layer::Layer;
use tower_service::Service;

use crate::context::{current_attempt, remaining};
use crate::error::{BoxError, Error};

/// How many attempts a response took, the successful one included: a response extension that
/// the HTTP stack ([`ResilienceLayer::http`](crate::ResilienceLayer::http)) puts on a response
/// that took more than one. A response without it took one: read it as below. (An extension
/// map is allocated on its first insert; a first-try success, the common case, costs none.)
///
/// ```
/// # use tower_tenacity::http::Attempts;
/// # let response = http::Response::new(());
/// let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
/// # assert_eq!(attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempts(pub u32);

/// `err` with the request it is about named in it (`GET http://host:port/path`), when it is one
/// of this crate's errors; any other error is the caller's to read as it is.
pub(crate) fn named(err: BoxError, method: &Method, uri: &Uri) -> BoxError {
    match Error::try_from(err) {
        Ok(ours) => ours.with_subject(Named { method, uri }.to_string()).into(),
        Err(other) => other,
    }
}

/// A request as errors, events and `Debug` output name it: its method, scheme, host, port and
/// path. Never its userinfo (`user:password@`) or its query (`?access_token=…`): error messages
/// and logs travel further than credentials should. Written only when something is written: a
/// call that succeeds formats nothing.
pub(crate) struct Named<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, Url(self.uri))
    }
}

/// A URL as errors, events and spans (`url.full`) show it: scheme, host, port and path, never
/// the userinfo or the query.
pub(crate) struct Url<'a>(pub(crate) &'a Uri);

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.0.scheme() {
            write!(f, "{scheme}://")?;
        }
        if let Some(host) = self.0.host() {
            f.write_str(host)?;
        }
        if let Some(port) = self.0.port_u16() {
            write!(f, ":{port}")?;
        }
        f.write_str(self.0.path())
    }
}

/// Tells the server what the call context says of each attempt: which attempt it is, in a
/// header, on retries only (the first attempt goes out as the caller made it), and, when asked,
/// the time left before the deadline in whole milliseconds (Envoy's
/// `x-envoy-expected-rq-timeout-ms` convention). Goes inside the retry layer, so that each
/// attempt says what is left when it is sent.
#[derive(Debug, Clone)]
pub struct AttemptHeaderLayer {
    header: Option<HeaderName>,
    previous: bool,
    deadline: Option<HeaderName>,
}

impl AttemptHeaderLayer {
    /// Sends the attempt number (2, 3, …) in `header`, and the time left in `deadline` (in
    /// milliseconds); `None` sends nothing.
    pub fn new(header: Option<HeaderName>, deadline: Option<HeaderName>) -> Self {
        AttemptHeaderLayer {
            header,
            previous: false,
            deadline,
        }
    }

    /// Sends the number of attempts before this one (1, 2, …) in `header`, as gRPC's
    /// `grpc-previous-rpc-attempts` wants.
    #[cfg(feature = "grpc")]
    pub fn previous_attempts(header: HeaderName) -> Self {
        AttemptHeaderLayer {
            header: Some(header),
            previous: true,
            deadline: None,
        }
    }
}

impl<S> Layer<S> for AttemptHeaderLayer {
    type Service = AttemptHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptHeader {
            inner,
            header: self.header.clone(),
            previous: self.previous,
            deadline: self.deadline.clone(),
        }
    }
}

/// Adds the attempt header; see [`AttemptHeaderLayer`].
#[derive(Debug, Clone)]
pub struct AttemptHeader<S> {
    inner: S,
    header: Option<HeaderName>,
    previous: bool,
    deadline: Option<HeaderName>,
}

impl<S, B> Service<Request<B>> for AttemptHeader<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        use tracing::Instrument;
        let attempt = current_attempt();
        // One span per attempt, a child of the call's (OpenTelemetry's HTTP conventions: a
        // resent request says how many times it was resent).
        let span = tracing::info_span!(
            "HTTP attempt",
            otel.kind = "client",
            http.request.resend_count = attempt.map(|a| a.number - 1).filter(|n| *n > 0),
        );
        if let Some(header) = &self.header
            && let Some(attempt) = attempt.filter(|a| a.number > 1)
        {
            let value = attempt.number - u32::from(self.previous);
            request
                .headers_mut()
                .insert(header.clone(), HeaderValue::from(value));
        }
        if let Some(header) = &self.deadline
            && let Some(left) = remaining()
        {
            let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            request
                .headers_mut()
                .insert(header.clone(), HeaderValue::from(millis));
        }
        let future = if span.is_disabled() {
            self.inner.call(request)
        } else {
            span.in_scope(|| self.inner.call(request))
        };
        future.instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(method: Method, uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        Named {
            method: &method,
            uri: &uri,
        }
        .to_string()
    }

    #[test]
    fn a_request_is_named_without_its_userinfo_or_query() {
        let cases = [
            (
                "http://alice:pw@Host:8080/a/b?access_token=t#f",
                "GET http://Host:8080/a/b",
            ),
            ("https://host/?q=1", "GET https://host/"),
            ("http://host", "GET http://host/"),
            ("http://[::1]:3000/x", "GET http://[::1]:3000/x"),
            ("/only/a/path?secret=1", "GET /only/a/path"),
        ];
        for (uri, name) in cases {
            assert_eq!(named(Method::GET, uri), name, "{uri}");
        }
    }
}

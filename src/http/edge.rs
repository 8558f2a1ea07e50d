//! The HTTP edge of the presets, outside retry: [`HttpEdge`], one layer for both presets.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::deadline_body::{BodyBound, DeadlineBody};
use super::replay::ReplayBody;
use super::service::{Attempts, Named, Url, named};
use crate::deadline::{Enforcer, UnderDeadline};
use crate::error::{Attempt, BoxError};

/// The edge of the HTTP and gRPC presets, around their retry layer: each request's body made a
/// [`ReplayBody`] (buffered up to `replay_cap` for retries), the call under its total deadline
/// (if there is one; over the response body too, if asked), the attempts it took put on a
/// response that took more than one ([`Attempts`]), and the request named in this crate's errors
/// (`GET http://…`).
#[derive(Debug, Clone)]
pub struct HttpEdge<S> {
    inner: S,
    replay_cap: usize,
    total: Option<Duration>,
    covers_body: bool,
    max_attempts: u32,
}

impl<S> HttpEdge<S> {
    pub(crate) fn new(
        inner: S,
        replay_cap: usize,
        total: Option<Duration>,
        covers_body: bool,
        max_attempts: u32,
    ) -> Self {
        HttpEdge {
            inner,
            replay_cap,
            total,
            covers_body,
            max_attempts,
        }
    }

    /// The service inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, ResB> Service<Request<B>> for HttpEdge<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
{
    type Response = Response<DeadlineBody<ResB>>;
    type Error = BoxError;
    type Future = HttpEdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let subject = Subject {
            method: request.method().clone(),
            uri: request.uri().clone(),
        };
        // The call's span (OpenTelemetry's HTTP client conventions; the URL without its
        // userinfo or query), entered while the call is made and polled: the attempts' spans
        // are its children. Nothing is formatted unless a subscriber wants the span.
        let span = tracing::info_span!(
            "HTTP request",
            otel.kind = "client",
            http.request.method = %subject.method,
            server.address = subject.uri.host(),
            server.port = subject.uri.port_u16(),
            url.full = %Url(&subject.uri),
            http.response.status_code = tracing::field::Empty,
        );
        let cap = self.replay_cap;
        let request = request.map(|body| ReplayBody::new(body, cap));
        // The stack inside (retry, every attempt's timeout) ends the call at the deadline.
        let enforcer = Enforcer::Inside;
        let inner = {
            // With no subscriber for it the span is disabled: entering it would be for nothing.
            // A guard rather than `in_scope`'s closure, so that the future is built in place.
            let _entered = (!span.is_disabled()).then(|| span.enter());
            UnderDeadline::call(self.total, enforcer, || self.inner.call(request))
        };
        HttpEdgeFuture {
            inner,
            subject,
            covers_body: self.covers_body,
            max_attempts: self.max_attempts,
            span,
        }
    }
}

/// The request an edge future is about, for its errors: kept as it came (two reference counts,
/// no copy) and named ([`Named`]) only when an error needs it.
struct Subject {
    method: Method,
    uri: Uri,
}

impl Subject {
    fn named(&self) -> Named<'_> {
        Named {
            method: &self.method,
            uri: &self.uri,
        }
    }
}

pin_project! {
    /// The future of an [`HttpEdge`] call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct HttpEdgeFuture<F> {
        #[pin]
        inner: UnderDeadline<F>,
        subject: Subject,
        covers_body: bool,
        max_attempts: u32,
        span: tracing::Span,
    }
}

impl<F> fmt::Debug for HttpEdgeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEdgeFuture")
            .field("request", &format_args!("{}", self.subject.named()))
            .finish_non_exhaustive()
    }
}

impl<F, ResB, E> Future for HttpEdgeFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<DeadlineBody<ResB>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let outcome = ready!(this.inner.as_mut().poll_deadline(cx));
        let subject = &*this.subject;
        match outcome {
            Ok(response) => {
                this.span
                    .record("http.response.status_code", response.status().as_u16());
                let bound = if *this.covers_body {
                    // The attempt that answered, as retry marked the response.
                    let attempt = Attempt {
                        number: response.extensions().get::<Attempts>().map_or(1, |a| a.0),
                        max: *this.max_attempts,
                    };
                    BodyBound::of(this.inner.as_ref().get_ref(), Some(attempt))
                        .map(|bound| bound.with_subject(subject.named().to_string()))
                } else {
                    None
                };
                Poll::Ready(Ok(response.map(|body| DeadlineBody::new(body, bound))))
            }
            Err(err) => Poll::Ready(Err(named(err, &subject.method, &subject.uri))),
        }
    }
}

//! The HTTP edges of the resilient stack: request bodies made replayable on the way in, the
//! attempt count put on the response and the request named in errors on the way out, and the
//! attempt number told to the server on retries.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderValue, Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::replay::ReplayBody;
use crate::context::{current_attempt, observe_attempt};
use crate::error::{BoxError, Error};

/// How many attempts a response took, the successful one included: a response extension put
/// there by the HTTP stack ([`ResilienceLayer::http`](crate::ResilienceLayer::http)).
///
/// ```
/// # use tower_tenacity::http::Attempts;
/// # let response = http::Response::new(());
/// let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
/// # assert_eq!(attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempts(pub u32);

/// Wraps request bodies in [`ReplayBody`] (see [`ReplayBodyLayer`]).
#[derive(Debug, Clone)]
pub struct ReplayBodyService<S> {
    inner: S,
    cap: usize,
}

/// Makes each request's body a [`ReplayBody`] with a `cap`-byte buffer, puts the attempt count
/// on each response ([`Attempts`]) and names the request (`GET http://…`) in this crate's
/// errors. It goes outside the retry layer (and the deadline): the gRPC preset puts it outermost,
/// and [`HttpResilience`](super::HttpResilience) does the same work itself.
#[derive(Debug, Clone, Copy)]
pub struct ReplayBodyLayer {
    cap: usize,
}

impl ReplayBodyLayer {
    /// Buffers at most `cap` bytes of each request body for retries.
    pub const fn new(cap: usize) -> Self {
        ReplayBodyLayer { cap }
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = ReplayBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayBodyService {
            inner,
            cap: self.cap,
        }
    }
}

impl<S, B, ResB> Service<Request<B>> for ReplayBodyService<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ReplayBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let cap = self.cap;
        let request = request.map(|body| ReplayBody::new(body, cap));
        let mut attempt = None;
        let inner = observe_attempt(&mut attempt, || self.inner.call(request));
        ReplayBodyFuture {
            inner,
            method,
            uri,
            attempts: attempt.map_or(1, |a| a.number),
        }
    }
}

pin_project! {
    /// The future of a [`ReplayBodyService`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ReplayBodyFuture<F> {
        #[pin]
        inner: F,
        method: Method,
        uri: Uri,
        attempts: u32,
    }
}

impl<F, ResB, E> Future for ReplayBodyFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut attempt = None;
        let polled = observe_attempt(&mut attempt, || this.inner.poll(cx));
        if let Some(attempt) = attempt {
            *this.attempts = attempt.number;
        }
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(mut response)) => {
                response.extensions_mut().insert(Attempts(*this.attempts));
                Poll::Ready(Ok(response))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(named(err.into(), this.method, this.uri))),
        }
    }
}

/// `err` with the request it is about named in it (`GET http://…`), when it is one of this
/// crate's errors; any other error is the caller's to read as it is.
pub(crate) fn named(err: BoxError, method: &Method, uri: &Uri) -> BoxError {
    match Error::try_from(err) {
        Ok(ours) => ours.with_subject(format!("{method} {uri}")).into(),
        Err(other) => other,
    }
}

/// Tells the server which attempt a request is, in a header, on retries only (the first
/// attempt goes out as the caller made it). Goes inside the retry layer.
#[derive(Debug, Clone)]
pub struct AttemptHeaderLayer {
    header: Option<HeaderName>,
    previous: bool,
}

impl AttemptHeaderLayer {
    /// Sends the attempt number (2, 3, …) in `header`; `None` sends nothing.
    pub fn new(header: Option<HeaderName>) -> Self {
        AttemptHeaderLayer {
            header,
            previous: false,
        }
    }

    /// Sends the number of attempts before this one (1, 2, …) in `header`, as gRPC's
    /// `grpc-previous-rpc-attempts` wants.
    pub fn previous_attempts(header: HeaderName) -> Self {
        AttemptHeaderLayer {
            header: Some(header),
            previous: true,
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
        }
    }
}

/// Adds the attempt header; see [`AttemptHeaderLayer`].
#[derive(Debug, Clone)]
pub struct AttemptHeader<S> {
    inner: S,
    header: Option<HeaderName>,
    previous: bool,
}

impl<S, B> Service<Request<B>> for AttemptHeader<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(header) = &self.header
            && let Some(attempt) = current_attempt().filter(|a| a.number > 1)
        {
            let value = attempt.number - u32::from(self.previous);
            request
                .headers_mut()
                .insert(header.clone(), HeaderValue::from(value));
        }
        self.inner.call(request)
    }
}

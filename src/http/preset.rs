//! The standard HTTP client pipeline: [`ResilienceLayer::http`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::HeaderName;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::classify::HttpClassifier;
use super::deadline_body::{BodyBound, DeadlineBody};
use super::replay::{DEFAULT_REPLAY_CAP, HttpReplay, ReplayBody};
use super::service::{AttemptHeader, AttemptHeaderLayer, Attempts, named};
use crate::deadline::UnderDeadline;
use crate::error::{Attempt, BoxError, ConfigError};
use crate::preset::{ResilienceBuilder, ResilienceLayer};
use crate::retry::{self, Retry};
use crate::timeout::Timeout;

impl ResilienceLayer {
    /// The standard HTTP client pipeline, from one validated configuration:
    ///
    /// ```text
    /// request bodies made replayable (64 KiB)   → attempt count on the response, request named in errors
    ///   → Deadline (10 s in all)
    ///     → Retry (HttpClassifier: 5xx/408/429, idempotent methods, Retry-After; 3 attempts)
    ///       → attempt header on retries (optional)
    ///         → Timeout (2 s per attempt)
    ///           → your client
    /// ```
    ///
    /// The client inside receives `Request<ReplayBody<B>>` for the caller's `Request<B>`; a
    /// hyper-util client is built for that body type.
    ///
    /// The total timeout bounds the call until the response head arrives: attempts, backoff
    /// and the waits for each response. A body that streams after that (server-sent events,
    /// NDJSON, a large download) is read for as long as it lasts, bounded only by what the caller
    /// adds ([`BodyTimeoutLayer`](super::BodyTimeoutLayer) for idle gaps and total time).
    /// [`total_timeout_covers_body`](HttpResilienceBuilder::total_timeout_covers_body) makes
    /// the total timeout bound the body too, as reqwest's `timeout` does: past it, the body
    /// fails with this crate's [`Timeout`](crate::ErrorKind::Timeout) error of scope
    /// [`Total`](crate::TimeoutScope::Total).
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_body_util::Full;
    /// use bytes::Bytes;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower::Layer;
    /// use tower_tenacity::ResilienceLayer;
    /// use tower_tenacity::http::ReplayBody;
    ///
    /// # fn main() -> Result<(), tower_tenacity::ConfigError> {
    /// let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    /// let resilient = ResilienceLayer::http()
    ///     .total_timeout(Duration::from_secs(5))
    ///     .attempt_timeout(Duration::from_secs(1))
    ///     .build()?
    ///     .layer(client);
    /// # let _ = resilient;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http() -> HttpResilienceBuilder {
        ResilienceLayer::builder(HttpClassifier::new())
            .retry_with(|r| r.replay(HttpReplay))
            .with_options(HttpOptions {
                replay_cap: DEFAULT_REPLAY_CAP,
                attempt_header: None,
                covers_body: false,
            })
    }
}

/// The HTTP pipeline; see [`ResilienceLayer::http`].
#[derive(Clone, Debug)]
pub struct HttpResilienceLayer {
    stack: ResilienceLayer<HttpClassifier, HttpReplay>,
    replay_cap: usize,
    attempt_header: Option<HeaderName>,
    covers_body: bool,
}

impl HttpResilienceLayer {
    /// The HTTP pipeline with every default ([`ResilienceLayer::http`] built as it is).
    pub fn new() -> Self {
        ResilienceLayer::http()
            .build()
            .expect("the default HTTP configuration is valid")
    }

    /// The deadline, retry and timeout layers inside.
    pub fn stack(&self) -> &ResilienceLayer<HttpClassifier, HttpReplay> {
        &self.stack
    }
}

/// The retry stack inside an [`HttpResilience`].
type Stack<S> = Retry<AttemptHeader<Timeout<S>>, HttpClassifier, HttpReplay>;

/// The service [`HttpResilienceLayer`] makes of a client `S`: request bodies made replayable,
/// then the deadline, retry, attempt header and attempt timeout of [`ResilienceLayer::http`].
///
/// The edges of the pipeline (the replayable body, the [`Attempts`] extension, the request
/// named in errors) and the deadline are one layer here, so that a call makes one future
/// around the retry rather than two, and so that errors name the request from the copy that
/// retry keeps anyway rather than from one more copy of its URI.
#[derive(Clone, Debug)]
pub struct HttpResilience<S> {
    stack: Stack<S>,
    replay_cap: usize,
    total_timeout: Option<Duration>,
    covers_body: bool,
}

impl<S, B, ResB> Service<Request<B>> for HttpResilience<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Unpin,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
{
    type Response = Response<DeadlineBody<ResB>>;
    type Error = BoxError;
    type Future = HttpResilienceFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.stack.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let cap = self.replay_cap;
        let request = request.map(|body| ReplayBody::new(body, cap));
        let mut attempt = None;
        let inner = UnderDeadline::call(self.total_timeout, &mut attempt, || {
            self.stack.call(request)
        });
        HttpResilienceFuture {
            inner,
            attempt,
            covers_body: self.covers_body,
        }
    }
}

pin_project! {
    /// The future of an [`HttpResilience`] call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct HttpResilienceFuture<S, B>
    where
        AttemptHeader<Timeout<S>>: Service<Request<ReplayBody<B>>>,
    {
        #[pin]
        inner: UnderDeadline<
            retry::ResponseFuture<
                AttemptHeader<Timeout<S>>,
                Request<ReplayBody<B>>,
                HttpClassifier,
                HttpReplay,
            >,
        >,
        attempt: Option<Attempt>,
        covers_body: bool,
    }
}

impl<S, B> fmt::Debug for HttpResilienceFuture<S, B>
where
    AttemptHeader<Timeout<S>>: Service<Request<ReplayBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResilienceFuture")
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResB> Future for HttpResilienceFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Unpin,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
{
    type Output = Result<Response<DeadlineBody<ResB>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match ready!(this.inner.as_mut().poll_deadline(cx, this.attempt)) {
            Ok(mut response) => {
                let attempts = this.attempt.map_or(1, |a| a.number);
                response.extensions_mut().insert(Attempts(attempts));
                let bound = if *this.covers_body {
                    let inner = this.inner.as_ref().get_ref();
                    let kept = inner.running().kept();
                    BodyBound::of(inner, *this.attempt).map(|bound| match kept {
                        Some(kept) => {
                            bound.with_subject(format!("{} {}", kept.method(), kept.uri()))
                        }
                        None => bound,
                    })
                } else {
                    None
                };
                Poll::Ready(Ok(response.map(|body| DeadlineBody::new(body, bound))))
            }
            Err(err) => {
                // Retry always keeps a copy of an HTTP request (its body may not replay, but
                // its head does), and keeps it until its future is dropped.
                let err = match this.inner.as_ref().get_ref().running().kept() {
                    Some(kept) => named(err, kept.method(), kept.uri()),
                    None => err,
                };
                Poll::Ready(Err(err))
            }
        }
    }
}

impl Default for HttpResilienceLayer {
    fn default() -> Self {
        HttpResilienceLayer::new()
    }
}

impl<S: Clone> Layer<S> for HttpResilienceLayer {
    type Service = HttpResilience<S>;

    fn layer(&self, client: S) -> Self::Service {
        let timed = AttemptHeaderLayer::new(self.attempt_header.clone())
            .layer(Timeout::new(client, self.stack.attempt_timeout()));
        HttpResilience {
            stack: self.stack.retry().layer(timed),
            replay_cap: self.replay_cap,
            total_timeout: self.stack.total_timeout(),
            covers_body: self.covers_body,
        }
    }
}

/// What the HTTP preset adds to the settings every preset shares; set through
/// [`HttpResilienceBuilder`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    replay_cap: usize,
    attempt_header: Option<HeaderName>,
    covers_body: bool,
}

/// The configuration of an [`HttpResilienceLayer`]: the settings every preset shares (see
/// [`ResilienceBuilder`]) and the HTTP preset's own, checked by
/// [`build`](ResilienceBuilder::build).
pub type HttpResilienceBuilder = ResilienceBuilder<HttpClassifier, HttpReplay, HttpOptions>;

impl ResilienceBuilder<HttpClassifier, HttpReplay, HttpOptions> {
    /// Retries POST, PATCH and other non-idempotent requests too.
    pub fn retry_unsafe_methods(self) -> Self {
        self.map_classifier(|classifier| classifier.retry_unsafe_methods(true))
    }

    /// Buffers at most `cap` bytes of each request body for retries (default 64 KiB); a larger
    /// body is sent once.
    pub fn replay_cap(mut self, cap: usize) -> Self {
        self.options_mut().replay_cap = cap;
        self
    }

    /// Sends the attempt number in `header` on retries (off by default).
    pub fn attempt_header(mut self, header: HeaderName) -> Self {
        self.options_mut().attempt_header = Some(header);
        self
    }

    /// Makes the total timeout bound the response body too (off by default), as reqwest's
    /// `timeout` does: a body still arriving when it passes fails with this crate's
    /// [`Timeout`](crate::ErrorKind::Timeout) error of scope [`Total`](crate::TimeoutScope::Total),
    /// naming the request, and the connection is let go. Without it the total timeout ends when
    /// the response head arrives, and a stream (server-sent events, NDJSON) flows as long as the
    /// server sends it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::ResilienceLayer;
    ///
    /// let layer = ResilienceLayer::http()
    ///     .total_timeout(Duration::from_secs(30))
    ///     .total_timeout_covers_body()
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn total_timeout_covers_body(mut self) -> Self {
        self.options_mut().covers_body = true;
        self
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<HttpResilienceLayer, ConfigError> {
        let (stack, options) = self.build_with_options()?;
        Ok(HttpResilienceLayer {
            stack,
            replay_cap: options.replay_cap,
            attempt_header: options.attempt_header,
            covers_body: options.covers_body,
        })
    }
}

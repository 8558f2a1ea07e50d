//! The standard HTTP client pipeline: [`ResilienceLayer::http`].

use std::fmt;

use http::header::HeaderName;
use tower_layer::Layer;

use super::classify::HttpClassifier;
use super::replay::{DEFAULT_REPLAY_CAP, HttpReplay};
use super::service::{AttemptHeader, AttemptHeaderLayer, ReplayBodyLayer, ReplayBodyService};
use crate::error::ConfigError;
use crate::preset::{ResilienceBuilder, ResilienceLayer};
use crate::retry::Retry;
use crate::timeout::{Deadline, Timeout};

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
        HttpResilienceBuilder {
            inner: ResilienceLayer::builder(HttpClassifier::new())
                .retry_with(|r| r.replay(HttpReplay)),
            classifier: HttpClassifier::new(),
            replay_cap: DEFAULT_REPLAY_CAP,
            attempt_header: None,
        }
    }
}

/// The HTTP pipeline; see [`ResilienceLayer::http`].
#[derive(Clone)]
pub struct HttpResilienceLayer {
    stack: ResilienceLayer<HttpClassifier, HttpReplay>,
    replay_cap: usize,
    attempt_header: Option<HeaderName>,
}

impl fmt::Debug for HttpResilienceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResilienceLayer")
            .field("stack", &self.stack)
            .field("replay_cap", &self.replay_cap)
            .field("attempt_header", &self.attempt_header)
            .finish()
    }
}

impl HttpResilienceLayer {
    /// The deadline, retry and timeout layers inside.
    pub fn stack(&self) -> &ResilienceLayer<HttpClassifier, HttpReplay> {
        &self.stack
    }
}

/// The service [`HttpResilienceLayer`] makes of a client `S`.
pub type HttpResilience<S> =
    ReplayBodyService<Deadline<Retry<AttemptHeader<Timeout<S>>, HttpClassifier, HttpReplay>>>;

impl<S: Clone> Layer<S> for HttpResilienceLayer {
    type Service = HttpResilience<S>;

    fn layer(&self, client: S) -> Self::Service {
        let timed = AttemptHeaderLayer::new(self.attempt_header.clone())
            .layer(Timeout::new(client, self.stack.attempt_timeout()));
        let retried = self.stack.retry().layer(timed);
        ReplayBodyLayer::new(self.replay_cap)
            .layer(Deadline::new(retried, self.stack.total_timeout()))
    }
}

/// The configuration of an [`HttpResilienceLayer`], checked by [`build`](Self::build).
pub struct HttpResilienceBuilder {
    inner: ResilienceBuilder<HttpClassifier, HttpReplay>,
    classifier: HttpClassifier,
    replay_cap: usize,
    attempt_header: Option<HeaderName>,
}

impl fmt::Debug for HttpResilienceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResilienceBuilder")
            .field("inner", &self.inner)
            .field("classifier", &self.classifier)
            .field("replay_cap", &self.replay_cap)
            .field("attempt_header", &self.attempt_header)
            .finish()
    }
}

crate::preset::forward_resilience_setters!(HttpResilienceBuilder, HttpClassifier, HttpReplay);

impl HttpResilienceBuilder {
    /// Which statuses are retried, and whether unsafe methods are (default:
    /// [`HttpClassifier::new`]).
    pub fn classifier(mut self, classifier: HttpClassifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Retries POST, PATCH and other non-idempotent requests too.
    pub fn retry_unsafe_methods(mut self) -> Self {
        self.classifier = self.classifier.retry_unsafe_methods(true);
        self
    }

    /// Buffers at most `cap` bytes of each request body for retries (default 64 KiB); a larger
    /// body is sent once.
    pub fn replay_cap(mut self, cap: usize) -> Self {
        self.replay_cap = cap;
        self
    }

    /// Sends the attempt number in `header` on retries (off by default).
    pub fn attempt_header(mut self, header: HeaderName) -> Self {
        self.attempt_header = Some(header);
        self
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<HttpResilienceLayer, ConfigError> {
        let classifier = self.classifier;
        let stack = self
            .inner
            .retry_with(|r| r.classifier(classifier))
            .build()?;
        Ok(HttpResilienceLayer {
            stack,
            replay_cap: self.replay_cap,
            attempt_header: self.attempt_header,
        })
    }
}

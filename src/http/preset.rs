//! The standard HTTP client pipeline: [`ResilienceLayer::http`].

use http::header::HeaderName;
use tower_layer::Layer;

use super::ByAuthority;
use super::classify::HttpClassifier;
use super::edge::HttpEdge;
use super::replay::{DEFAULT_REPLAY_CAP, HttpReplay};
use super::service::{AttemptHeader, AttemptHeaderLayer};
use crate::breaker::{CircuitBreaker, CircuitBreakerLayer};
use crate::error::ConfigError;
use crate::preset::{
    Build, Carry, Live, Reload, Reloading, ResilienceBuilder, ResilienceLayer, attempts,
};
use crate::retry::{Retry, RetryLayer};
use crate::timeout::Timeout;

impl ResilienceLayer {
    /// The standard HTTP client pipeline, from one validated configuration:
    ///
    /// ```text
    /// request bodies made replayable (64 KiB)   → attempt count on a retried response, request named in errors
    ///   → Deadline (10 s in all)
    ///     → Retry (HttpClassifier: 5xx/408/429, idempotent methods, Retry-After; 3 attempts;
    ///              a retry budget per host)
    ///       → circuit breaker, a circuit per host (optional)
    ///         → attempt header on retries (optional)
    ///           → Timeout (2 s per attempt)
    ///             → your client
    /// ```
    ///
    /// The retry budget, and the circuits when a breaker is asked for, are kept per host (the
    /// request URI's scheme and authority, [`ByAuthority`]): a host that is down drains only its
    /// own budget and opens only its own circuit.
    ///
    /// The client inside receives `Request<ReplayBody<B>>` for the caller's `Request<B>`; a
    /// hyper-util client is built for that body type.
    ///
    /// The total timeout bounds the call until the response head arrives: attempts, backoff
    /// and the waits for each response. A body that streams after that (server-sent events,
    /// NDJSON, a large download) is read for as long as it lasts, bounded only by what the caller
    /// adds (see [the module](super#response-bodies) for the gaps between frames).
    /// [`total_timeout_covers_body`](ResilienceBuilder::total_timeout_covers_body) makes
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
    pub fn http() -> ResilienceBuilder<HttpClassifier, HttpReplay, HttpOptions> {
        ResilienceLayer::builder(HttpClassifier::new())
            .retry_with(|r| r.replay(HttpReplay))
            .with_options(HttpOptions {
                replay_cap: DEFAULT_REPLAY_CAP,
                attempt_header: None,
                deadline_header: None,
                covers_body: false,
            })
    }
}

/// The HTTP pipeline; see [`ResilienceLayer::http`].
#[derive(Clone, Debug)]
pub struct HttpResilienceLayer {
    stack: ResilienceLayer<HttpClassifier, HttpReplay>,
    retry: RetryLayer<HttpClassifier, HttpReplay, ByAuthority>,
    breaker: CircuitBreakerLayer<HttpClassifier, ByAuthority>,
    options: HttpOptions,
    live: Live<Self>,
}

impl HttpResilienceLayer {
    /// The HTTP pipeline with every default ([`ResilienceLayer::http`] built as it is).
    pub fn new() -> Self {
        ResilienceLayer::http()
            .build()
            .expect("the default HTTP configuration is valid")
    }

    /// The deadline and timeout settings, and the retry settings that each host's retries
    /// follow.
    pub fn stack(&self) -> &ResilienceLayer<HttpClassifier, HttpReplay> {
        &self.stack
    }

    /// The retry layer, with a budget per host.
    pub fn retry(&self) -> &RetryLayer<HttpClassifier, HttpReplay, ByAuthority> {
        &self.retry
    }

    /// The circuit breaker, with a circuit per host (switched off unless
    /// [`circuit_breaker`](ResilienceBuilder::circuit_breaker) was set).
    pub fn breaker(&self) -> &CircuitBreakerLayer<HttpClassifier, ByAuthority> {
        &self.breaker
    }

    /// Swaps the settings of every service this layer (or a clone) made for `next`'s, keeping
    /// each host's budget and circuit where their settings are the same; see
    /// [`ResilienceLayer::reload`], and `guides::configuration` for settings read from a file
    /// again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::ResilienceLayer;
    ///
    /// # fn main() -> Result<(), tower_tenacity::ConfigError> {
    /// let layer = ResilienceLayer::http().build()?;
    /// // … layer.clone().layer(client) …, and later:
    /// layer.reload(ResilienceLayer::http().attempt_timeout(Duration::from_millis(500)).build()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reload(&self, next: Self) {
        self.live.reload(self, next);
    }
}

impl Reload for HttpResilienceLayer {
    fn cell(&mut self) -> &mut Live<Self> {
        &mut self.live
    }
}

impl Carry for HttpResilienceLayer {
    fn carry_state(&mut self, old: &Self) {
        self.retry.carry_state(&old.retry);
        self.breaker.carry_state(&old.breaker);
    }
}

/// The attempts of an [`HttpResilience`]: the circuit breaker, the attempt header and the
/// attempt timeout around the client.
type Attempts<S> = CircuitBreaker<AttemptHeader<Timeout<S>>, HttpClassifier, ByAuthority>;

/// The retry stack inside an [`HttpResilience`].
type Stack<S> = Retry<Attempts<S>, HttpClassifier, HttpReplay, ByAuthority>;

/// The service [`HttpResilienceLayer`] makes of a client `S`: the HTTP edge (request bodies
/// made replayable, the deadline, the attempt count on a retried response, the request named in
/// errors) around retry, the circuit breaker, the attempt header and the attempt timeout of
/// [`ResilienceLayer::http`].
pub type HttpResilience<S> = Reloading<HttpResilienceLayer, S, HttpEdge<Stack<S>>>;

impl Default for HttpResilienceLayer {
    fn default() -> Self {
        HttpResilienceLayer::new()
    }
}

impl HttpResilienceLayer {
    /// The stack over `client` for one call, with the latest settings: for the reqwest
    /// middleware, which makes one per request and so needs no reloading wrapper.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn stack_for_one_call<S: Clone>(&self, client: S) -> HttpEdge<Stack<S>> {
        self.live.build_now(self, client)
    }
}

impl<S: Clone> Layer<S> for HttpResilienceLayer {
    type Service = HttpResilience<S>;

    fn layer(&self, client: S) -> Self::Service {
        self.live.service(self, client)
    }
}

impl<S: Clone> Build<S> for HttpResilienceLayer {
    type Stack = HttpEdge<Stack<S>>;

    fn build(&self, client: S) -> Self::Stack {
        let options = &self.options;
        let around = AttemptHeaderLayer::new(
            options.attempt_header.clone(),
            options.deadline_header.clone(),
        );
        let timeout = self.stack.attempt_timeout();
        HttpEdge::new(
            attempts(&self.retry, &self.breaker, around, timeout, client),
            options.replay_cap,
            self.stack.total_timeout(),
            options.covers_body,
            self.retry.max_attempts(),
        )
    }
}

/// What the HTTP preset adds to the settings every preset shares; set through the builder that
/// [`ResilienceLayer::http`] returns.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    replay_cap: usize,
    attempt_header: Option<HeaderName>,
    deadline_header: Option<HeaderName>,
    covers_body: bool,
}

/// The HTTP preset's own settings: the builder that [`ResilienceLayer::http`] returns.
impl<B: crate::breaker::BreakerSlot<HttpClassifier>>
    ResilienceBuilder<HttpClassifier, HttpReplay, HttpOptions, B>
{
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

    /// Sends the time left before the deadline, in whole milliseconds, in `header` on every
    /// attempt (off by default), so that the server can stop work nobody will wait for and
    /// hand what is left to its own calls: read by
    /// [`ServerTimeoutLayer::deadline_header`](crate::http::ServerTimeoutLayer::deadline_header).
    /// Envoy's name for it is `x-envoy-expected-rq-timeout-ms`; with
    /// [`attempt_header`](Self::attempt_header) set to `x-envoy-attempt-count`, the pair is
    /// Envoy's.
    pub fn deadline_header(mut self, header: HeaderName) -> Self {
        self.options_mut().deadline_header = Some(header);
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
        let parts = self.build_per_key(ByAuthority)?;
        Ok(HttpResilienceLayer {
            stack: parts.stack,
            retry: parts.retry,
            breaker: parts.breaker,
            options: parts.options,
            live: Live::new(),
        })
    }
}

/// The HTTP preset from a document of its settings (feature `serde`): every field of the core
/// preset (timeouts, attempts, backoff, budget, hedge, breaker) and the HTTP preset's own
/// (`replay_cap`, `attempt_header`, `deadline_header`, `total_timeout_covers_body`,
/// `retry_unsafe_methods`). See `guides::configuration`.
///
/// ```
/// use tower_tenacity::http::HttpResilienceLayer;
///
/// let layer: HttpResilienceLayer = serde_json::from_str(r#"{
///     "total_timeout": "10s",
///     "attempt_timeout": "2s",
///     "breaker": { "failure_ratio": 0.5, "break_duration": "5s" },
///     "deadline_header": "x-envoy-expected-rq-timeout-ms"
/// }"#).unwrap();
/// assert!(layer.breaker().is_on());
/// let err = serde_json::from_str::<HttpResilienceLayer>(r#"{ "max_attemps": 3 }"#).unwrap_err();
/// assert!(err.to_string().contains("unknown field `max_attemps`"), "{err}");
/// ```
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for HttpResilienceLayer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::preset::settings::{Settings, header, with_breaker};
        let s = Settings::deserialize(d)?;
        let built = (|| {
            let mut b = s.apply(ResilienceLayer::http())?;
            if let Some(cap) = s.replay_cap {
                b = b.replay_cap(cap);
            }
            if let Some(name) = &s.attempt_header {
                b = b.attempt_header(header(name, "attempt_header")?);
            }
            if let Some(name) = &s.deadline_header {
                b = b.deadline_header(header(name, "deadline_header")?);
            }
            if s.total_timeout_covers_body {
                b = b.total_timeout_covers_body();
            }
            if s.retry_unsafe_methods {
                b = b.retry_unsafe_methods();
            }
            with_breaker(&s, b, |b| b.build(), |b| b.build())
        })();
        built.map_err(serde::de::Error::custom)
    }
}

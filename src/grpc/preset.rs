//! The standard gRPC client pipeline: [`ResilienceLayer::grpc`].

use std::task::{Context, Poll};

use http::Request;
use http::header::HeaderName;
use tower_layer::{Layer, Stack};
use tower_service::Service;

use super::classify::GrpcClassifier;
use super::deadline::{GrpcTimeout, GrpcTimeoutLayer};
use super::peek::{PeekTrailers, PeekTrailersLayer};
use super::status::{GrpcStatus, GrpcStatusLayer};
use crate::breaker::{CircuitBreaker, CircuitBreakerLayer};
use crate::error::{BoxError, ConfigError};
use crate::http::{
    AttemptHeader, AttemptHeaderLayer, ByAuthority, DEFAULT_REPLAY_CAP, HttpEdge, HttpReplay,
    ReplayBody,
};
use crate::preset::{Build, Carry, Live, Reloading, ResilienceBuilder, ResilienceLayer, attempts};
use crate::retry::{Retry, RetryLayer};
use crate::timeout::Timeout;

impl ResilienceLayer {
    /// The standard gRPC client pipeline, for a tonic `Channel` (or any gRPC transport):
    ///
    /// ```text
    /// errors as tonic Status (DEADLINE_EXCEEDED, UNAVAILABLE…), in the response and its body
    ///   → request bodies made replayable (64 KiB)
    ///     → the RPC's deadline, if one is set (none by default, as in gRPC), over the stream too
    ///       → Retry (GrpcClassifier: UNAVAILABLE, pushback; 3 attempts)
    ///         → grpc-previous-rpc-attempts on retries, grpc-timeout = time left
    ///           → Timeout (2 s per attempt, up to the first message)
    ///             → the status read when it comes before any message
    ///               → your channel
    /// ```
    ///
    /// Streams pass through as they come, following gRFC A6: an attempt is committed once its
    /// first message arrives. Until then the status is read from a Trailers-Only response or
    /// from trailers that end the body with no message, and decides on a retry; after it,
    /// nothing is held, nothing is retried, and the status reaches the caller as the server sent
    /// it. So the attempt timeout bounds the wait for the response head and first message,
    /// never the life of a stream. (A client-streaming call whose server answers only at the end
    /// of the upload waits that long for its first message: give it an attempt timeout that
    /// fits.)
    ///
    /// The total timeout is the RPC's deadline, the same on both sides: the server is told the
    /// time left in `grpc-timeout` on every attempt, and a response stream still open when it
    /// passes ends with `DEADLINE_EXCEEDED` (and is cancelled). There is none unless you set one,
    /// as in gRPC itself, so that a default stack never cuts a stream. Request bodies that
    /// cannot be replayed (a client stream longer than the replay cap, a bidi stream still
    /// open when the attempt fails) are sent once, never twice.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tower::ServiceBuilder;
    /// use tower_tenacity::ResilienceLayer;
    /// use tonic_health::pb::health_client::HealthClient;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    /// let resilient = ServiceBuilder::new()
    ///     .layer(ResilienceLayer::grpc().total_timeout(Duration::from_secs(3)).build()?)
    ///     .service(channel);
    /// let mut health = HealthClient::new(resilient);
    /// let answer = health.check(tonic_health::pb::HealthCheckRequest::default()).await?;
    /// # let _ = answer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn grpc() -> ResilienceBuilder<GrpcClassifier, HttpReplay, GrpcOptions> {
        ResilienceLayer::builder(GrpcClassifier::new())
            .default_total(None)
            .retry_with(|r| r.replay(HttpReplay))
            .with_options(GrpcOptions {
                replay_cap: DEFAULT_REPLAY_CAP,
            })
    }
}

/// The gRPC pipeline; see [`ResilienceLayer::grpc`].
#[derive(Clone, Debug)]
pub struct GrpcResilienceLayer {
    stack: ResilienceLayer<GrpcClassifier, HttpReplay>,
    retry: RetryLayer<GrpcClassifier, HttpReplay, ByAuthority>,
    breaker: CircuitBreakerLayer<GrpcClassifier, ByAuthority>,
    options: GrpcOptions,
    live: Live<Self>,
}

/// The service [`GrpcResilienceLayer`] makes of a channel `S`.
pub type GrpcResilience<S> = Reloading<GrpcResilienceLayer, S, GrpcStack<S>>;

/// The stack inside a [`GrpcResilience`], built from the settings in force.
type GrpcStack<S> = GrpcStatus<
    HttpEdge<
        Retry<
            CircuitBreaker<
                AttemptHeader<GrpcTimeout<Timeout<PeekTrailers<TonicBody<S>>>>>,
                GrpcClassifier,
                ByAuthority,
            >,
            GrpcClassifier,
            HttpReplay,
            ByAuthority,
        >,
    >,
>;

impl GrpcResilienceLayer {
    /// The gRPC pipeline with every default ([`ResilienceLayer::grpc`] built as it is).
    pub fn new() -> Self {
        ResilienceLayer::grpc()
            .build()
            .expect("the default gRPC configuration is valid")
    }

    /// The deadline and timeout settings, and the retry settings that each host's retries
    /// follow.
    pub fn stack(&self) -> &ResilienceLayer<GrpcClassifier, HttpReplay> {
        &self.stack
    }

    /// The retry layer, with a budget per host.
    pub fn retry(&self) -> &RetryLayer<GrpcClassifier, HttpReplay, ByAuthority> {
        &self.retry
    }

    /// The circuit breaker, with a circuit per host (switched off unless
    /// [`circuit_breaker`](ResilienceBuilder::circuit_breaker) was set).
    pub fn breaker(&self) -> &CircuitBreakerLayer<GrpcClassifier, ByAuthority> {
        &self.breaker
    }

    /// Swaps the settings of every service this layer (or a clone) made for `next`'s, keeping
    /// each host's budget and circuit where their settings are the same; see
    /// [`ResilienceLayer::reload`].
    pub fn reload(&self, next: Self) {
        let mut next = next;
        let current = self.live.current().unwrap_or_else(|| self.clone());
        next.retry.carry_state(&current.retry);
        next.breaker.carry_state(&current.breaker);
        self.live.swap(next);
    }
}

impl Default for GrpcResilienceLayer {
    fn default() -> Self {
        GrpcResilienceLayer::new()
    }
}

impl<S: Clone> Layer<S> for GrpcResilienceLayer {
    type Service = GrpcResilience<S>;

    fn layer(&self, channel: S) -> Self::Service {
        self.live.service(self, channel)
    }
}

impl<S: Clone> Build<S> for GrpcResilienceLayer {
    type Stack = GrpcStack<S>;

    fn build(&self, channel: S) -> Self::Stack {
        let peeked = PeekTrailersLayer::new().layer(TonicBody { inner: channel });
        let previous = HeaderName::from_static("grpc-previous-rpc-attempts");
        let around = Stack::new(
            GrpcTimeoutLayer,
            AttemptHeaderLayer::previous_attempts(previous),
        );
        let timeout = self.stack.attempt_timeout();
        let retried = attempts(&self.retry, &self.breaker, around, timeout, peeked);
        // The RPC's deadline, if it has one, goes on over the response stream.
        let edge = HttpEdge::new(
            retried,
            self.options.replay_cap,
            self.stack.total_timeout(),
            true,
            self.retry.max_attempts(),
        );
        GrpcStatusLayer.layer(edge)
    }
}

/// Hands a channel the `tonic::body::Body` it takes, made of the replayable body.
#[derive(Debug, Clone)]
pub struct TonicBody<S> {
    inner: S,
}

impl<S, B> Service<Request<ReplayBody<B>>> for TonicBody<S>
where
    S: Service<Request<tonic::body::Body>>,
    B: http_body::Body + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReplayBody<B>>) -> Self::Future {
        self.inner.call(request.map(tonic::body::Body::new))
    }
}

/// What the gRPC preset adds to the settings every preset shares; set through the builder that
/// [`ResilienceLayer::grpc`] returns.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    replay_cap: usize,
}

/// The gRPC preset's own settings: the builder that [`ResilienceLayer::grpc`] returns.
impl<B: crate::breaker::BreakerSlot<GrpcClassifier>>
    ResilienceBuilder<GrpcClassifier, HttpReplay, GrpcOptions, B>
{
    /// Buffers at most `cap` bytes of each request for retries (default 64 KiB); a larger
    /// request (a long client stream) is sent once.
    pub fn replay_cap(mut self, cap: usize) -> Self {
        self.options_mut().replay_cap = cap;
        self
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<GrpcResilienceLayer, ConfigError> {
        let parts = self.build_per_key(ByAuthority)?;
        Ok(GrpcResilienceLayer {
            stack: parts.stack,
            retry: parts.retry,
            breaker: parts.breaker,
            options: parts.options,
            live: Live::new(),
        })
    }
}

/// The gRPC preset from a document of its settings (feature `serde`): the core preset's fields
/// and `replay_cap`. See `guides::configuration`.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for GrpcResilienceLayer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::preset::settings::{Settings, with_breaker};
        let mut s = Settings::deserialize(d)?;
        let cap = s.replay_cap.take();
        let built = (|| {
            s.only_common()?;
            let mut b = s.apply(ResilienceLayer::grpc())?;
            if let Some(cap) = cap {
                b = b.replay_cap(cap);
            }
            with_breaker(&s, b, |b| b.build(), |b| b.build())
        })();
        built.map_err(serde::de::Error::custom)
    }
}

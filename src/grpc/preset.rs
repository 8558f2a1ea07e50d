//! The standard gRPC client pipeline: [`ResilienceLayer::grpc`].

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use tower_layer::{Layer, Stack};

use super::classify::GrpcClassifier;
use super::deadline::{GrpcTimeout, GrpcTimeoutLayer};
use super::methods::{MethodLayers, Methods, Routed};
use super::peek::{PeekTrailers, PeekTrailersLayer};
#[cfg(feature = "serde")]
use super::service_config::ServiceConfig;
use super::status::{GrpcStatus, GrpcStatusLayer};
use super::tonic_body::TonicBody;
use crate::breaker::{CircuitBreaker, CircuitBreakerLayer};
use crate::error::ConfigError;
use crate::http::{
    AttemptHeader, AttemptHeaderLayer, ByAuthority, DEFAULT_REPLAY_CAP, HttpEdge, HttpReplay,
};
use crate::preset::{
    Build, Carry, Live, Reload, Reloading, ResilienceBuilder, ResilienceLayer, attempts,
};
#[cfg(feature = "serde")]
use crate::retry::RetryBudget;
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
                #[cfg(feature = "serde")]
                service_config: None,
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
    // A service config's entries, each with its own stack.
    methods: Option<Arc<Methods>>,
    live: Live<Self>,
}

/// The service [`GrpcResilienceLayer`] makes of a channel `S`.
pub type GrpcResilience<S> = Reloading<GrpcResilienceLayer, S, Routed<GrpcStack<S>>>;

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
    /// [`ResilienceLayer::reload`]. A service config read again is applied this way.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_tenacity::ResilienceLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = ResilienceLayer::grpc().build().unwrap();
    /// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    /// let client = layer.layer(channel); // give it to a generated client, as usual
    /// // Later, the service config as it is now:
    /// let config = r#"{ "methodConfig": [{ "name": [{}], "timeout": "1s" }] }"#;
    /// layer.reload(ResilienceLayer::grpc().service_config(config).build().unwrap());
    /// # let _ = client;
    /// # }
    /// ```
    pub fn reload(&self, next: Self) {
        self.live.reload(self, next);
    }
}

impl Reload for GrpcResilienceLayer {
    fn cell(&mut self) -> &mut Live<Self> {
        &mut self.live
    }
}

impl Carry for GrpcResilienceLayer {
    fn carry_state(&mut self, old: &Self) {
        self.retry.carry_state(&old.retry);
        self.breaker.carry_state(&old.breaker);
        // The entries share the preset's budgets: the ones just carried over, where the same.
        if let Some(methods) = &self.methods {
            let layers = (methods.layers.iter())
                .map(|method| {
                    let mut retry = method.retry.clone();
                    retry.carry_state(&old.retry);
                    MethodLayers { retry, ..*method }
                })
                .collect();
            let index = methods.index.clone();
            self.methods = Some(Arc::new(Methods { index, layers }));
        }
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
    type Stack = Routed<GrpcStack<S>>;

    fn build(&self, channel: S) -> Self::Stack {
        let stack = &self.stack;
        let (total, attempt) = (stack.total_timeout(), stack.attempt_timeout());
        let default = self.stack_of(&self.retry, (total, attempt), channel.clone());
        let methods = (self.methods.iter())
            .flat_map(|methods| &methods.layers)
            .map(|m| self.stack_of(&m.retry, (m.total, m.attempt), channel.clone()))
            .collect();
        Routed::new(default, methods, self.methods.clone())
    }
}

impl GrpcResilienceLayer {
    /// The stack over `channel` with `retry` and the deadline and attempt timeout given: the
    /// preset's own, or a service-config entry's.
    fn stack_of<S: Clone>(
        &self,
        retry: &RetryLayer<GrpcClassifier, HttpReplay, ByAuthority>,
        (total, attempt): (Option<Duration>, Duration),
        channel: S,
    ) -> GrpcStack<S> {
        let peeked = PeekTrailersLayer::new().layer(TonicBody::new(channel));
        let previous = HeaderName::from_static("grpc-previous-rpc-attempts");
        let around = Stack::new(
            GrpcTimeoutLayer,
            AttemptHeaderLayer::previous_attempts(previous),
        );
        let retried = attempts(retry, &self.breaker, around, attempt, peeked);
        // The RPC's deadline, if it has one, goes on over the response stream.
        let edge = HttpEdge::new(
            retried,
            self.options.replay_cap,
            total,
            true,
            retry.max_attempts(),
        );
        GrpcStatusLayer.layer(edge)
    }
}

/// What the gRPC preset adds to the settings every preset shares; set through the builder that
/// [`ResilienceLayer::grpc`] returns.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    replay_cap: usize,
    // A service config as read, checked when the layer is built.
    #[cfg(feature = "serde")]
    service_config: Option<Result<Arc<ServiceConfig>, ConfigError>>,
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

    /// Applies a gRPC service config (feature `serde`; gRFC A6): each `methodConfig` entry's
    /// `timeout` and `retryPolicy` or `hedgingPolicy` to the methods it names (the method's
    /// own entry, else its service's, else the default `{}`), and `retryThrottling` as the
    /// budget, [A6's token bucket](crate::retry::RetryBudget::tokens), one per server name and
    /// shared by every method. A method no entry names keeps this builder's settings; an entry
    /// with neither policy makes one attempt, as A6 has it. Each entry's policy replaces the
    /// builder's retries for its methods: A6's backoff (`initialBackoff` × `backoffMultiplier`
    /// per retry, at most `maxBackoff`, each delay times 0.8 to 1.2), its status codes, and at
    /// most 5 attempts; a pushback sets one delay exactly, and the backoff starts over after it.
    /// The builder's attempt timeout stays, within each entry's `timeout`. A `retryThrottling`
    /// replaces the builder's [`budget`](ResilienceBuilder::budget), whichever was set first.
    ///
    /// The config is checked when the layer is built, and refused whole if any rule of A6 is
    /// broken (gRFC A21), with an error naming where; fields A6 does not define are ignored.
    /// Where this differs from A6: a `backoffMultiplier` under 1 (a backoff that shrinks) is
    /// refused; a delay at `maxBackoff` is jittered down only (0.8 to 1 × the cap, as every
    /// backoff of this crate is capped); a `hedgingDelay` of zero, and the wait after a
    /// non-fatal failure of a hedged call, are a millisecond (the timer's tick); and a
    /// negative pushback ends the retries but takes no token from `retryThrottling`.
    ///
    /// ```
    /// use tower_tenacity::ResilienceLayer;
    ///
    /// let layer = ResilienceLayer::grpc()
    ///     .service_config(r#"{
    ///         "methodConfig": [{
    ///             "name": [{ "service": "helloworld.Greeter" }],
    ///             "timeout": "2s",
    ///             "retryPolicy": {
    ///                 "maxAttempts": 4,
    ///                 "initialBackoff": "0.1s",
    ///                 "maxBackoff": "1s",
    ///                 "backoffMultiplier": 2,
    ///                 "retryableStatusCodes": ["UNAVAILABLE"]
    ///             }
    ///         }],
    ///         "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
    ///     }"#)
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// let refused = ResilienceLayer::grpc()
    ///     .service_config(r#"{ "methodConfig": [{ "name": [{}], "retryPolicy": { "maxAttempts": 1 } }] }"#)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(refused.to_string().contains("maxAttempts must be an integer greater than 1"), "{refused}");
    /// ```
    #[cfg(feature = "serde")]
    pub fn service_config(mut self, json: &str) -> Self {
        self.options_mut().service_config = Some(ServiceConfig::parse(json).map(Arc::new));
        self
    }

    /// Checks the configuration and makes the layer.
    pub fn build(self) -> Result<GrpcResilienceLayer, ConfigError> {
        #[cfg(feature = "serde")]
        let (builder, config) = self.with_throttling()?;
        #[cfg(not(feature = "serde"))]
        let builder = self;
        let parts = builder.build_per_key(ByAuthority)?;
        #[cfg(feature = "serde")]
        let methods = match config {
            Some(config) => Some(Arc::new(super::methods::methods(
                &config,
                &parts.stack,
                &parts.retry,
            )?)),
            None => None,
        };
        #[cfg(not(feature = "serde"))]
        let methods = None;
        Ok(GrpcResilienceLayer {
            stack: parts.stack,
            retry: parts.retry,
            breaker: parts.breaker,
            options: parts.options,
            methods,
            live: Live::new(),
        })
    }

    /// The service config, checked, with its `retryThrottling` made the budget.
    #[cfg(feature = "serde")]
    fn with_throttling(mut self) -> Result<(Self, Option<Arc<ServiceConfig>>), ConfigError> {
        let Some(config) = self.options_mut().service_config.take().transpose()? else {
            return Ok((self, None));
        };
        let builder = match config.throttling {
            Some((max_tokens, ratio)) => self.budget(RetryBudget::tokens(max_tokens, ratio)?),
            None => self,
        };
        Ok((builder, Some(config)))
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

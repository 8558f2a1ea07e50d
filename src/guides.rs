//! Guides: this crate in the stacks Rust services are built of, and coming from other retry
//! crates. Each is a page of docs; the code in them is compiled (and run, where it needs no
//! server).

/// With a hyper-util client (`hyper` feature, on by default).
///
/// The HTTP preset wraps a `hyper_util::client::legacy::Client` built for the replayable body it
/// sends, [`ReplayBody`](crate::http::ReplayBody) of yours. The caller sends `Request<B>` and
/// gets a `Response` whose body is the client's own under the call's deadline (an
/// `http_body::Body` whose errors are `tower::BoxError`s), with the attempts it took as an
/// [`Attempts`](crate::http::Attempts) extension.
///
/// ```no_run
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::{Layer, Service, ServiceExt};
/// use tower_tenacity::http::{Attempts, ReplayBody};
/// use tower::BoxError;
/// use tower_tenacity::ResilienceLayer;
///
/// # async fn run() -> Result<(), BoxError> {
/// let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
/// let mut client = ResilienceLayer::http()
///     .total_timeout(Duration::from_secs(10)) // up to the response head
///     .attempt_timeout(Duration::from_secs(2))
///     .build()?
///     .layer(client);
/// let request = http::Request::get("http://127.0.0.1:8080/report").body(Full::new(Bytes::new()))?;
/// let response = client.ready().await?.call(request).await?;
/// let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
/// let body = response.into_body().collect().await?.to_bytes();
/// # let _ = (attempts, body);
/// # Ok(())
/// # }
/// ```
///
/// Clone the layered client freely: clones share the retry budget and the connection pool. A
/// `POST` is retried only when it is safe: an `Idempotency-Key`, the
/// [`Idempotent`](crate::http::Idempotent) extension, `retry_unsafe_methods()`, or a request
/// that was provably never sent. For an HTTP/2 client, turn on the `http2` feature so that a
/// stream the server refused is retried as never sent.
#[cfg(feature = "hyper")]
pub mod with_hyper_util {}

/// With a `reqwest::Client` (`reqwest` feature).
///
/// `reqwest::Client` is a tower service of `reqwest::Request`;
/// [`HttpResilienceLayer::reqwest`](crate::http::HttpResilienceLayer::reqwest) makes it one of
/// `http::Request`, which is what the HTTP preset sends (so that it can replay
/// bodies and read what it classifies). Build the client as you like it (TLS, proxy, pool): this
/// crate turns none of reqwest's features on.
///
/// ```no_run
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower::{Service, ServiceExt};
/// use tower::BoxError;
/// use tower_tenacity::ResilienceLayer;
///
/// # async fn run() -> Result<(), BoxError> {
/// let client = reqwest::Client::builder().build()?;
/// let mut client = ResilienceLayer::http()
///     .total_timeout(Duration::from_secs(30))
///     .total_timeout_covers_body() // what reqwest's own `timeout` means
///     .build()?
///     .reqwest(client);
/// let request = http::Request::post("http://127.0.0.1:8080/orders")
///     .header("idempotency-key", "order-8812")
///     .body(Full::new(Bytes::from_static(b"{\"sku\":42}")))?;
/// let response = client.ready().await?.call(request).await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// # let _ = body;
/// # Ok(())
/// # }
/// ```
///
/// As reqwest is used, with a `RequestBuilder` and a `reqwest::Response`:
/// [`ReqwestResilience::send`](crate::http::ReqwestResilience) takes the builder and gives back
/// reqwest's response (`.json()`, `.error_for_status()` as usual); and with the
/// `reqwest-middleware` feature, `http::ResilienceMiddleware` puts the whole stack into a
/// `ClientWithMiddleware` in one line:
///
/// ```ignore
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(tower_tenacity::http::ResilienceMiddleware::new(ResilienceLayer::http().build()?))
///     .build();
/// let order: Order = client.get(url).send().await?.error_for_status()?.json().await?;
/// ```
///
/// What it adds to reqwest's own `retry` (a budget, status and error predicates): exponential
/// backoff with jitter, `Retry-After` (both forms, capped), attempt timeouts inside a total
/// deadline that no backoff or attempt outlives, request bodies replayed byte for byte (reqwest
/// can only retry bodies it holds whole), typed errors that say which limit stopped the retries,
/// and `tracing` events for each attempt.
#[cfg(feature = "reqwest")]
pub mod with_reqwest {}

/// With tonic (`grpc` feature).
///
/// The gRPC preset wraps a tonic `Channel`; a generated client takes the layered channel as it
/// takes the bare one.
///
/// ```no_run
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_tenacity::ResilienceLayer;
/// use tonic_health::pb::health_client::HealthClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let channel = ServiceBuilder::new()
///     .layer(ResilienceLayer::grpc().total_timeout(Duration::from_secs(3)).build()?)
///     .service(channel);
/// let mut health = HealthClient::new(channel);
/// let status = health.check(tonic_health::pb::HealthCheckRequest::default()).await?;
/// # let _ = status;
/// # Ok(())
/// # }
/// ```
///
/// The streaming rules (gRFC A6):
///
/// * an attempt is committed once its first message arrives. Before that, a status in a
///   Trailers-Only response or in trailers that end the body with no message is classified
///   (`UNAVAILABLE` retried by default, pushback honoured); after it, the stream is the caller's,
///   never held and never retried, and its status arrives as the server sent it;
/// * the attempt timeout (2 s by default) bounds the wait for the response head and first
///   message, never the life of a stream. A client-streaming call waits for its single answer
///   until the upload ends: give it an attempt timeout that fits;
/// * the total timeout is the RPC's deadline, the same on both sides: sent as `grpc-timeout` on
///   every attempt, and a stream still open when it passes ends with `DEADLINE_EXCEEDED` and is
///   cancelled. There is none unless you set one;
/// * a request stream that cannot be replayed (longer than the replay cap, 64 KiB, or still open
///   when its attempt failed) is sent once.
///
/// On the server, [`GrpcDeadlineLayer`](crate::grpc::GrpcDeadlineLayer) honours the
/// `grpc-timeout` a caller sends, streams included.
#[cfg(feature = "grpc")]
pub mod with_tonic {}

/// In an axum app (`http` feature; no client needed for the server side).
///
/// Two jobs: bound each handler, and make the handler's outbound calls resilient within what is
/// left of that bound.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use http::StatusCode;
/// use tower_tenacity::http::ServerTimeoutLayer;
///
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "done" }))
///     // Answers 504 (not an error: axum's services are `Infallible`) and drops the handler.
///     .layer(ServerTimeoutLayer::new(Duration::from_secs(5)).status(StatusCode::GATEWAY_TIMEOUT));
/// # let _ = app;
/// ```
///
/// [`TimeoutLayer`](crate::timeout::TimeoutLayer) fails a call with an error, as tower's
/// `Timeout` does, so it does not fit a `Router` ("`Infallible: From<BoxError>` is not
/// satisfied"); `ServerTimeoutLayer` answers instead. Handlers run under its deadline, so a
/// resilient client they call (kept in the router's state; the preset's service is
/// `Clone + Send + Sync`) sees the time left and never outlives it. The `axum_server` example
/// does both.
///
/// The client goes in the router's state, by the name of its stack
/// ([`HyperResilience`](crate::http::HyperResilience) for hyper-util, `http::ReqwestResilience`
/// for reqwest); a handler clones it (a few reference counts) and calls it:
///
/// ```
/// # #[cfg(feature = "hyper")] {
/// use std::time::Duration;
/// use axum::{Router, extract::State, routing::get};
/// use bytes::Bytes;
/// use http::StatusCode;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::{Service, ServiceExt};
/// use tower_tenacity::http::{HttpResilienceLayer, HyperResilience, ServerTimeoutLayer};
///
/// #[derive(Clone)]
/// struct AppState {
///     upstream: HyperResilience,
/// }
///
/// async fn report(State(state): State<AppState>) -> Result<String, StatusCode> {
///     let request = http::Request::get("http://127.0.0.1:9/data").body(Full::<Bytes>::default());
///     let mut upstream = state.upstream.clone();
///     let ready = upstream.ready().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
///     let response = ready
///         .call(request.map_err(|_| StatusCode::BAD_REQUEST)?)
///         .await
///         .map_err(|_| StatusCode::BAD_GATEWAY)?;
///     Ok(response.status().to_string())
/// }
///
/// let client = Client::builder(TokioExecutor::new()).build_http();
/// let state = AppState { upstream: HttpResilienceLayer::new().hyper(client) };
/// let app: Router = Router::new()
///     .route("/report", get(report))
///     .layer(ServerTimeoutLayer::new(Duration::from_secs(5)).status(StatusCode::GATEWAY_TIMEOUT))
///     .with_state(state);
/// # let _ = app;
/// # }
/// ```
///
/// tower-http's `TimeoutLayer` answers 408 where this one answers 503 or 504; either works. What
/// this crate adds on the server is the deadline that outbound calls inherit.
#[cfg(feature = "http")]
pub mod in_axum {}

/// Coming from `tower::retry::Policy`, reqwest-retry or backon: what maps to what.
///
/// | there | here |
/// |---|---|
/// | tower: `Policy::retry` deciding from the result | a [`Classify`](crate::classify::Classify) implementation (or [`classify_fn`](crate::classify::classify_fn)): success, retryable (reason, hint) or fatal |
/// | tower: `Policy::clone_request` | [`Replay`](crate::retry::Replay) (`Clone` requests by default; implement it for others); HTTP bodies by [`ReplayBody`](crate::http::ReplayBody) |
/// | tower: `TpsBudget` | [`RetryBudget`](crate::retry::RetryBudget) (ratio plus floor per window, shared by clones) |
/// | tower: `timeout::Timeout` inside `Retry` | [`TimeoutLayer`](crate::timeout::TimeoutLayer) (tower's own is classified the same with the `tower` feature) |
/// | tower: a backoff written into the policy | [`ExponentialBackoff`](crate::retry::ExponentialBackoff) with [`Jitter`](crate::retry::Jitter) |
/// | reqwest-retry: `RetryTransientMiddleware` | the HTTP preset over a `reqwest::Client`, or as a `reqwest-middleware` middleware (`http::ResilienceMiddleware`) |
/// | reqwest-retry: `ExponentialBackoff::builder().build_with_max_retries(n)` | `.max_attempts(n + 1)` (attempts count the first) and `.backoff(..)` |
/// | reqwest-retry: `RetryableStrategy` | a classifier, or [`HttpClassifier`](crate::http::HttpClassifier) `retry_on` / `no_retry_on` |
/// | backon: `ExponentialBuilder` with `with_max_times` | `.backoff(..)` and `.max_attempts(..)` |
/// | backon: `when(..)` | the classifier |
/// | backon: `notify(..)` | an [`Observer`](crate::retry::Observer) or the `tracing` events |
/// | backon: `with_total_delay` | `.retry_with(|r| r.max_elapsed(..))`, or a total timeout |
///
/// Beyond what those do: one total deadline that neither a backoff nor an attempt outlives,
/// server hints (`Retry-After`, gRPC pushback) within a cap, requests that are not safe to send
/// twice never sent twice, and errors that say which limit stopped the retries.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::classify::{classify_fn, classify_error, Classification, Reason};
/// use tower_tenacity::retry::{ExponentialBackoff, Jitter, RetryLayer};
/// use tower::BoxError;
///
/// // A tower `Policy` that retried "busy" replies and transient errors, three times at most:
/// let layer = RetryLayer::builder()
///     .classifier(classify_fn(|_: &String, outcome: Result<&String, &BoxError>| match outcome {
///         Ok(reply) if reply == "busy" => Classification::retryable(Reason::Other("busy")),
///         Ok(_) => Classification::Success,
///         Err(err) => classify_error(err.as_ref()),
///     }))
///     .max_attempts(4)
///     .backoff(ExponentialBackoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(5))
///         .with_jitter(Jitter::Full))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
pub mod migrating {}

/// Testing your resilience stack (`testing` feature): faults on a paused clock.
///
/// Put a [`FaultLayer`](crate::testing::FaultLayer) under your stack, in place of the
/// dependency's failures, and drive it with [`run`](crate::testing::run) on a paused clock. The
/// faults are drawn from a seed, per request in order, so the test is the same on every run and
/// takes no real time; the layer's [`counts`](crate::testing::FaultLayer::counts) say what the
/// dependency saw, which is how "the server saw at most X" is asserted. For an HTTP stack,
/// [`http_status`](crate::testing::http_status) makes a 503 with `Retry-After`.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use tower::{service_fn, Layer};
/// use tower_tenacity::breaker::BreakerConfig;
/// use tower_tenacity::classify::DefaultClassifier;
/// use tower_tenacity::testing::{run, FaultLayer};
/// use tower::BoxError;
/// use tower_tenacity::{Error, ResilienceLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// tokio::time::pause();
/// // The dependency is down from 1 s to 6 s.
/// let faults = FaultLayer::builder()
///     .error(1.0, io::ErrorKind::ConnectionRefused)
///     .during(Duration::from_secs(1), Duration::from_secs(6))
///     .build()?;
/// let dependency = faults.layer(service_fn(|n: u32| async move {
///     tokio::time::sleep(Duration::from_millis(10)).await;
///     Ok::<_, BoxError>(n)
/// }));
/// let stack = ResilienceLayer::builder(DefaultClassifier)
///     .circuit_breaker(BreakerConfig::new().consecutive_failures(5))
///     .build()?
///     .layer(dependency);
///
/// // 1 000 calls, 10 at a time, 10 ms each: about 1 s of traffic before the outage.
/// let report = run(stack, 1000, 10, |i| i as u32).await;
/// let open = report.failed_with(Error::is_circuit_open);
/// assert!(report.succeeded() >= 900, "{} succeeded", report.succeeded());
/// assert!(open > 0, "the breaker turned calls away during the outage");
/// // What the dependency saw: every call that succeeded, plus the failures before the circuit
/// // opened and the probes, not every attempt of every call.
/// let seen = faults.counts();
/// assert!(seen.errors < 100, "{seen:?}");
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "testing")]
pub mod testing_your_stack {}

/// Keeping the system up under overload: where each layer goes, in a client, a server and a
/// middle tier (`http` feature; `hyper` for the client in the example).
///
/// | where | outermost first | what it does under overload |
/// |---|---|---|
/// | client stack | the preset: deadline → retry (budget) → breaker (and a throttle, if set) → attempt timeout | bounds its retries (the budget), stops calling a dependency that is down (the breaker), sends the time it has left (`deadline_header`), does not retry a hop that already did (`x-envoy-overloaded`, a negative gRPC pushback) |
/// | server stack | [`AdmissionLayer`](crate::admission::AdmissionLayer) → [`ServerTimeoutLayer`](crate::http::ServerTimeoutLayer) (reading the caller's deadline) → handler | turns away at once what it cannot serve in time (503 / `UNAVAILABLE`, with `Retry-After` / pushback) and what its caller will not wait for (504) |
/// | middle tier | its server stack, then in the handler the client stack, and [`upstream`](crate::http::upstream) on the way back | hands the caller's deadline to its own calls, and tells its caller not to retry what it already retried: in a call graph, the hop next to the failure retries and no other |
///
/// Client-side adaptive throttling ([`ThrottleLayer`](crate::throttle::ThrottleLayer)) is for a
/// dependency that answers fast that it is overloaded (429s, `RESOURCE_EXHAUSTED`); against one
/// that queues, the server's admission limit is what keeps its goodput up (BENCHMARKS.md's fleet
/// table shows both).
///
/// A middle tier:
///
/// ```
/// # #[cfg(feature = "hyper")] {
/// use std::time::Duration;
/// use axum::{Router, body::Body, extract::State, response::Response, routing::get};
/// use bytes::Bytes;
/// use http::{HeaderName, StatusCode};
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::{Service, ServiceExt};
/// use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
/// use tower_tenacity::http::{upstream, HyperResilience, ServerTimeoutLayer};
/// use tower_tenacity::ResilienceLayer;
///
/// const LEFT: HeaderName = HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
///
/// async fn handler(State(upstream): State<HyperResilience>) -> Response {
///     let request = http::Request::get("http://127.0.0.1:9/data")
///         .body(Full::<Bytes>::default())
///         .unwrap();
///     let mut upstream = upstream.clone();
///     let outcome = match upstream.ready().await {
///         Ok(ready) => ready.call(request).await,
///         Err(err) => Err(err),
///     };
///     // The body streams through; a 503 the preset already retried, or its give-up, says so.
///     tower_tenacity::http::upstream(outcome.map(|response| response.map(Body::new)))
/// }
///
/// let client = Client::builder(TokioExecutor::new()).build_http();
/// let upstream = ResilienceLayer::http()
///     .deadline_header(LEFT)
///     .build()
///     .unwrap()
///     .hyper(client);
/// let app: Router = Router::new()
///     .route("/", get(handler))
///     .with_state(upstream)
///     .layer(
///         ServerTimeoutLayer::new(Duration::from_secs(5))
///             .status(StatusCode::GATEWAY_TIMEOUT)
///             .deadline_header(LEFT)
///             .min_remaining(Duration::from_millis(20)),
///     )
///     .layer(AdmissionLayer::http(AdaptiveLimit::aimd(Duration::from_millis(250))));
/// # let _ = app;
/// # }
/// ```
///
/// `cargo run --release --example chain` runs a client → A → B → leaf chain of such hops over
/// real sockets, beside every hop retrying on its own.
#[cfg(feature = "http")]
pub mod under_overload {}

/// Metrics (`metrics` feature): every layer records through the
/// [`metrics`](https://docs.rs/metrics) facade; install the recorder or exporter you use
/// (Prometheus, StatsD, OpenTelemetry through `metrics-exporter-opentelemetry`…) and the
/// instruments below appear. With no recorder installed each record is a no-op; with the
/// feature off none of it is built. The names follow OpenTelemetry's conventions (lowercase,
/// dotted, the unit not in the name); every instrument has a `tenacity.scope` attribute: the key
/// the call's state is kept under when a layer keeps it per key (for the HTTP and gRPC presets
/// `scheme://host:port`, at most as many as the layer keeps keys, 1 024 by default), empty
/// otherwise.
///
/// | instrument | kind | attributes | what it counts |
/// |---|---|---|---|
/// | `tenacity.attempts` | counter | `outcome` (`success`, `retryable`, `fatal`), `reason` (the classifier's, as its phrase: `HTTP status 503`, `connection refused`, `circuit open`…; empty for a success) | attempts, by how the classifier called their outcome |
/// | `tenacity.attempt.duration` | histogram, seconds | `outcome` | each attempt, from its call to its outcome |
/// | `tenacity.retries` | counter | `reason` | retries planned, by why the attempt failed |
/// | `tenacity.hedges` | counter | `result` (`sent`, `won`, `skipped`) | hedges sent, calls a hedge won, hedges that were due but not sent |
/// | `tenacity.give_ups` | counter | `why` (`fatal`, `attempts`, `elapsed`, `deadline`, `retry_after`, `budget`, `not_replayable`) | calls that stopped on a failure |
/// | `tenacity.budget.denied` | counter | `kind` (`retry`, `hedge`) | retries and hedges the retry budget refused |
/// | `tenacity.deadline.exceeded` | counter | `scope` (`attempt`, `total`) | attempts ended by the attempt timeout or by the call's deadline |
/// | `tenacity.breaker.transitions` | counter | `from`, `to` (`closed`, `open`, `half_open`, `held_open`, `held_closed`) | circuit state changes |
/// | `tenacity.rejected` | counter | `layer` (`breaker`, `throttle`, `admission`) | calls turned away without being sent (an open circuit, adaptive throttling) or served (a server's admission limit) |
///
/// What it costs: a call reads the clock when it sends each attempt and when it ends (for the
/// latency); a success records through handles its key made once, with no allocation; a failed
/// attempt's record builds its labels (the reason, the key), a few small allocations on a path
/// that has failed already.
///
/// The same events reach an [`Observer`](crate::retry::Observer) as data, with the attempt's
/// latency (`Event::Outcome`'s `elapsed`) and the key (`Observer::on_event_in`), for a
/// metrics library of your own.
#[cfg(feature = "metrics")]
pub mod metrics {}

/// Settings in a file (`serde` feature): `ResilienceLayer`, `HttpResilienceLayer` and
/// `GrpcResilienceLayer` deserialize from a document of their settings, through whichever serde
/// format crate reads your file (`toml`, `serde_yaml`, `serde_json`). Every field is optional;
/// durations are humantime strings (`"250ms"`, `"2s"`, `"1m 30s"`); a field a preset does not
/// have is an error that names it; a value out of range is the builder's own error, which names
/// the field and the bound (`invalid configuration: backoff.initial (10s) must not exceed
/// backoff.max (1s)`).
///
/// ```toml
/// total_timeout = "10s"          # or no_total_timeout = true
/// attempt_timeout = "2s"
/// max_attempts = 3
/// max_elapsed = "30s"
/// max_retry_after = "60s"
/// seed = 7                       # reproducible jitter
/// no_budget = false
///
/// [backoff]                      # all four, or none
/// initial = "100ms"
/// multiplier = 2.0
/// max = "5s"
/// jitter = "full"                # none, full, equal, decorrelated
///
/// [budget]                       # all three, or none
/// ratio = 0.2
/// floor = 10
/// window = "1s"
///
/// [hedge]                        # after = "100ms", or percentile = 95.0 (with floor)
/// percentile = 95.0
/// floor = "5ms"
/// max_in_flight = 2
///
/// [breaker]                      # the HTTP and gRPC presets; each field optional
/// failure_ratio = 0.5
/// min_calls = 20
/// window = "30s"
/// consecutive_failures = 5
/// break_duration = "5s"
/// max_break = "60s"
///
/// # The HTTP preset's own (the gRPC preset takes replay_cap only).
/// replay_cap = 65536
/// deadline_header = "x-envoy-expected-rq-timeout-ms"
/// attempt_header = "x-envoy-attempt-count"
/// total_timeout_covers_body = false
/// retry_unsafe_methods = false
/// ```
///
/// ```
/// # fn main() -> Result<(), serde_json::Error> {
/// let layer: tower_tenacity::http::HttpResilienceLayer =
///     serde_json::from_str(r#"{ "attempt_timeout": "1s", "breaker": { "consecutive_failures": 5 } }"#)?;
/// assert!(layer.breaker().is_on());
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "serde")]
pub mod configuration {}

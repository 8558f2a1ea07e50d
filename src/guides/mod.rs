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
/// `reqwest-middleware` feature, the preset's layer is itself a middleware that puts the whole stack into a
/// `ClientWithMiddleware` in one line:
///
/// ```ignore
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ResilienceLayer::http().build()?)
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
/// `grpc-timeout` a caller sends, streams included, and puts the caller's attempt in the call
/// context. Under overload, a tonic server's stack is the same as an axum app's
/// ([`under_overload`]): admission outermost, then the deadline. A request turned away gets
/// `UNAVAILABLE` with a negative pushback, which the gRPC preset does not retry; one whose caller
/// has less than `min_remaining` left after the margin gets `DEADLINE_EXCEEDED` at once; the
/// handler runs under what is left less the margin, and so do the calls it makes through the
/// gRPC preset (their `grpc-timeout` says so). In a middle tier, a handler that
/// returns the status of its own call through the preset passes on a negative pushback when
/// that call was retried as far as it could go: the hop next to the failure retries, and no
/// other.
///
/// ```
/// use std::time::Duration;
/// use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
/// use tower_tenacity::grpc::GrpcDeadlineLayer;
///
/// async fn serve() -> Result<(), Box<dyn std::error::Error>> {
///     let (_reporter, health) = tonic_health::server::health_reporter();
///     tonic::transport::Server::builder()
///         .layer(AdmissionLayer::http(AdaptiveLimit::aimd(Duration::from_millis(250)))?)
///         .layer(
///             GrpcDeadlineLayer::new()
///                 .margin(Duration::from_millis(5))
///                 .min_remaining(Duration::from_millis(20)),
///         )
///         .add_service(health)
///         .serve("127.0.0.1:50051".parse()?)
///         .await?;
///     Ok(())
/// }
/// # let _ = serve;
/// ```
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
/// | reqwest-retry: `RetryTransientMiddleware` | the HTTP preset over a `reqwest::Client`, or as a `reqwest-middleware` middleware (the `HttpResilienceLayer` itself) |
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

// The guides for running a fleet: overload, metrics, settings in a file.
#[cfg(any(feature = "http", feature = "metrics", feature = "serde"))]
mod operations;
#[cfg(any(feature = "http", feature = "metrics", feature = "serde"))]
pub use self::operations::*;

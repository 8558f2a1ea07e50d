//! The guides for operating a fleet of services; re-exported by [`guides`](super).

/// Keeping the system up under overload: where each layer goes, in a client, a server and a
/// middle tier (`http` feature; `hyper` for the client in the example).
///
/// | where | outermost first | what it does under overload |
/// |---|---|---|
/// | client stack | the preset: deadline → retry (budget) → breaker → attempt timeout (a `ThrottleLayer` goes beside the breaker in a stack of your own) | bounds its retries (the budget), stops calling a dependency that is down (the breaker), sends the time it has left (`deadline_header`), does not retry a hop that already did (`x-envoy-overloaded`, a negative gRPC pushback) |
/// | server stack | [`AdmissionLayer`](crate::admission::AdmissionLayer) → [`ServerTimeoutLayer`](crate::http::ServerTimeoutLayer) (reading the caller's deadline) → handler | turns away at once what it cannot serve in time (503 / `UNAVAILABLE`, marked not to be retried) and what its caller will not wait for (504) |
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
///     .layer(AdmissionLayer::http(AdaptiveLimit::aimd(Duration::from_millis(250))).unwrap());
/// # let _ = app;
/// # }
/// ```
///
/// `cargo run --release --example chain` runs a client → A → B → leaf chain of such hops (real
/// hyper and axum, over in-memory pipes on a paused clock), beside every hop retrying on its
/// own. A tonic server's stack is the same, with `grpc::GrpcDeadlineLayer` for the server
/// timeout: see `guides::with_tonic` (feature `grpc`).
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
///
/// # Reading the file again on a running service
///
/// Each preset layer's `reload(next)` swaps the settings of every service it (or a clone of it)
/// made for those of `next`, with no client built again: read the file again, deserialize a
/// new layer, and hand it to the one in use. Each service takes the new settings before its
/// next call, and a call in flight finishes with the settings it started with; until a reload,
/// the check costs one atomic load per call. Each host's retry budget and circuit carry over
/// where their settings are the same (an open circuit stays open through a reload that changes
/// the attempts), and start afresh where they changed. `ThrottleLayer::reload` changes `k` and
/// `max_rejection` in place.
///
/// ```
/// # fn main() -> Result<(), serde_json::Error> {
/// use tower_tenacity::http::HttpResilienceLayer;
///
/// let layer: HttpResilienceLayer = serde_json::from_str(r#"{ "max_attempts": 3 }"#)?;
/// // layer.clone().layer(client) … and when the file changes:
/// layer.reload(serde_json::from_str(r#"{ "max_attempts": 5, "attempt_timeout": "500ms" }"#)?);
/// # Ok(())
/// # }
/// ```
///
/// # A gRPC service config
///
/// With the `grpc` feature too, the gRPC preset reads a gRPC service config, the JSON that
/// gRPC's own clients take (gRFC A6): `ResilienceLayer::grpc().service_config(json)`. Each
/// `methodConfig` entry's `timeout` and `retryPolicy` or `hedgingPolicy` applies to the methods
/// it names, and `retryThrottling` is the budget, A6's token bucket per server name
/// (`RetryBudget::tokens`). A config A6 calls invalid is refused whole when the layer is built,
/// with an error naming where (`methodConfig[1].retryPolicy.maxAttempts must be an integer
/// greater than 1`). The builder's settings stay for the methods no entry names; its breaker,
/// observer and attempt timeout stay for all of them.
///
/// ```
/// use tower_tenacity::ResilienceLayer;
///
/// let layer = ResilienceLayer::grpc()
///     .service_config(r#"{
///         "methodConfig": [{
///             "name": [{ "service": "shop.Orders", "method": "Get" }],
///             "hedgingPolicy": { "maxAttempts": 3, "hedgingDelay": "0.05s" }
///         }]
///     }"#)
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[cfg(feature = "serde")]
pub mod configuration {}

//! Resilience middleware for [tower]: per-attempt timeouts, a total deadline, exponential-backoff
//! retry, a circuit breaker, and one classifier that drives them all.
//!
//! # One idea
//!
//! Every outcome of a call, `Ok(response)` or `Err(error)`, is classified once, by a
//! [`Classify`](classify::Classify) implementation:
//!
//! ```text
//! Success | Retryable { reason, after: Option<Duration> } | Fatal { reason }
//! ```
//!
//! That one answer decides whether the retry loop goes on, what a circuit breaker counts as a
//! failure, what error the caller sees, and what the `tracing` events and the
//! [`Observer`](retry::Observer) report. To change what is retried,
//! change the classifier; the loop stays as it is.
//!
//! # The layers
//!
//! Outermost first, the recommended order:
//!
//! | layer | job |
//! |---|---|
//! | [`DeadlineLayer`](deadline::DeadlineLayer) | one budget for the whole call, attempts and backoff included |
//! | [`RetryLayer`](retry::RetryLayer) | classify, decide, back off, re-issue; attempts, elapsed and budget limits |
//! | [`CircuitBreakerLayer`](breaker::CircuitBreakerLayer) (opt-in) | fail fast while a dependency is down; probe when the break ends |
//! | [`TimeoutLayer`](timeout::TimeoutLayer) | bounds one attempt; its expiry is retryable |
//!
//! Each works alone and around any [`tower::Service`](tower_service::Service).
//! [`ResilienceLayer`] builds them from one validated configuration (the breaker when
//! [`circuit_breaker`](ResilienceBuilder::circuit_breaker) asks for one). The retry budget and
//! the breaker's circuits can be kept per key, bounded in memory ([`scope`]); the HTTP and gRPC
//! presets keep them per host. Retry inside a
//! deadline knows the time left, never starts a backoff that would end past it, and never sends
//! an attempt at or after it.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//! use tower_tenacity::classify::DefaultClassifier;
//! use tower::BoxError;
//! use tower_tenacity::{Error, ErrorKind, ResilienceLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! # tokio::time::pause();
//! // A service that never answers in time.
//! let stuck = service_fn(|_: &'static str| async {
//!     tokio::time::sleep(Duration::from_secs(3600)).await;
//!     Ok::<_, BoxError>("never")
//! });
//! let mut svc = ResilienceLayer::builder(DefaultClassifier)
//!     .total_timeout(Duration::from_secs(10))
//!     .attempt_timeout(Duration::from_secs(2))
//!     .max_attempts(3)
//!     .build()?
//!     .layer(stuck);
//!
//! let err = svc.ready().await?.call("lookup").await.unwrap_err();
//! let err = Error::find(err.as_ref()).expect("one of ours");
//! assert!(matches!(err.kind(), ErrorKind::GaveUp { attempts: 3, .. }));
//! assert_eq!(err.to_string(), "request timed out after 2s (attempt 3 of 3)");
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Every layer's error type is `tower::BoxError`, like tower's own. What a layer of this crate
//! decided is an [`Error`], with [`kind`](Error::kind) saying which timeout fired or which limit
//! stopped the retries, after how many attempts, and the last cause as its
//! [`source`](std::error::Error::source). Bad configuration is a [`ConfigError`] from `build()`,
//! never a panic.
//!
//! # Time
//!
//! All time comes from `tokio::time`, so `tokio::time::pause()` makes tests of this crate, and
//! of code that uses it, deterministic. Jitter is random per request and can be seeded.
//!
//! # HTTP
//!
//! With the `http` feature (on by default), [`ResilienceLayer::http`] is the standard HTTP
//! client pipeline: [`HttpClassifier`](http::HttpClassifier) (5xx, 408 and 429 retried, only for
//! idempotent requests unless told otherwise, `Retry-After` honoured), request bodies buffered
//! for replay as they are sent, the attempt count on a retried response, the request named in errors,
//! and retried responses drained so their connections are reused. The total timeout covers the
//! call up to the response head: a body that streams after that (SSE, NDJSON) flows as long as
//! the server sends it, unless
//! [`total_timeout_covers_body`](ResilienceBuilder::total_timeout_covers_body) asks
//! for the body to be bounded too. See the [`http`] module, and the `demo_client` example,
//! which runs it against a flaky server.
//!
//! # gRPC
//!
//! With the `grpc` feature, `ResilienceLayer::grpc` wraps a tonic `Channel`:
//! gRPC status codes classified from headers or from trailers that come before any message,
//! pushback, `grpc-timeout` set to the time left on every attempt, and errors a tonic client
//! reports as `DEADLINE_EXCEEDED` or `UNAVAILABLE` rather than `UNKNOWN`. Streams pass through:
//! an attempt is committed at its first message (gRFC A6), the attempt timeout bounds only the
//! wait for it, and the total timeout is the RPC's deadline (none unless set). See the `grpc`
//! module.
//!
//! # Features
//!
//! Lean by default (`http`, `hyper`, `tower`); turn on what your stack has.
//!
//! * `http` (on by default): the [`http`] module, on the `http`/`http-body` types alone (no
//!   client): an axum app that only wants [`ServerTimeoutLayer`](http::ServerTimeoutLayer)
//!   needs nothing more.
//! * `hyper` (on by default, implies `http`): hyper's and hyper-util's client errors classified
//!   by [`HttpClassifier`](http::HttpClassifier), for a hyper-util client.
//! * `tower` (on by default): tower's own `timeout::error::Elapsed` is classified as an attempt
//!   timeout by [`classify_error`](classify::classify_error), for a `tower::timeout::Timeout`
//!   kept inside the retry layer.
//! * `http2` (implies `http`): HTTP/2 errors classified too, so that a stream the server refused
//!   is retried as never sent and other stream resets as resets. Turn it on for a hyper-util
//!   client that speaks HTTP/2.
//! * `grpc` (implies `http2`): the `grpc` module, for tonic.
//! * `reqwest` (implies `http`): the HTTP preset over a `reqwest::Client`, and
//!   `reqwest::Error` classified (reqwest without TLS: bring your own).
//! * `backoff`: lets a [`backoff`](https://docs.rs/backoff) crate schedule drive the retry
//!   delays. That crate is unmaintained (RUSTSEC-2025-0012), which is why it is not on by
//!   default.
//!
//! # Guides
//!
//! The [`guides`] module: with hyper-util, with reqwest, with tonic, in an axum app, and coming
//! from `tower::retry::Policy`, reqwest-retry or backon.
//!
//! [tower]: https://docs.rs/tower

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admission;
pub mod breaker;
pub mod classify;
pub mod context;
pub mod deadline;
mod error;
mod gate;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod guides;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "metrics")]
mod metrics;
mod preset;
pub mod retry;
mod rng;
pub mod scope;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod timeout;

pub use crate::error::{Attempt, ConfigError, Error, ErrorKind, GiveUp, TimeoutScope};
pub use crate::preset::{ResilienceBuilder, ResilienceLayer};

// The README's code is compiled and run with the doctests, and so is the guide's.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../GUIDE.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// Futures and builders that are dropped unused warn (`#[must_use]`): a call that is never
/// awaited, a builder that is never built.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// tower_tenacity::retry::RetryLayer::builder().max_attempts(2);
/// ```
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use tower::{Layer, Service, ServiceExt};
/// use tower_tenacity::retry::RetryLayer;
/// type Inner = tower::util::ServiceFn<fn(u32) -> std::future::Ready<Result<u32, std::io::Error>>>;
/// async fn forgot(mut svc: <RetryLayer as Layer<Inner>>::Service) {
///     svc.ready().await.unwrap().call(1);
/// }
/// ```
#[cfg(doctest)]
pub struct MustUseDoctests;

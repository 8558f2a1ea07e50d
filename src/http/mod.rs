//! HTTP done right (feature `http`, on by default): which outcomes and requests are retried,
//! `Retry-After`, request bodies replayed, response bodies bounded in time, and the HTTP preset.
//!
//! Everything here works on `http::Request`/`http::Response`, so it fits a hyper-util client,
//! the outbound calls of an axum handler, or anything else speaking the `http` crate's types.

mod body_timeout;
mod carry;
mod classify;
mod clients;
mod deadline_body;
mod edge;
mod hop;
mod host;
mod preset;
mod replay;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest")]
mod reqwest_use;
mod retry_after;
mod server;
mod service;

pub use self::body_timeout::BodyTimeoutLayer;
pub use self::carry::{CarriedDeadline, CarryDeadlineLayer};
pub use self::classify::classify_http_error;
pub use self::classify::{HttpClassifier, IDEMPOTENCY_KEY, Idempotent};
pub use self::clients::HttpClient;
#[cfg(feature = "hyper")]
pub use self::clients::HyperResilience;
#[cfg(feature = "reqwest")]
pub use self::clients::ReqwestResilience;
#[cfg(feature = "grpc")]
pub(crate) use self::deadline_body::Alarm;
pub use self::deadline_body::{BodyDeadlineLayer, DeadlineBody};
#[cfg(feature = "grpc")]
pub(crate) use self::hop::retried_here;
pub use self::hop::{OVERLOADED, upstream_failure, upstream_response};
pub use self::host::ByAuthority;
pub use self::preset::{HttpResilience, HttpResilienceBuilder, HttpResilienceLayer};
pub use self::replay::HttpReplay;
pub use self::replay::ReplayBody;
#[cfg(feature = "reqwest")]
pub use self::reqwest::Reqwest;
#[cfg(feature = "reqwest-middleware")]
pub use self::reqwest_use::ResilienceMiddleware;
pub use self::retry_after::{parse_retry_after, retry_after};
pub use self::server::{ClassifyResponseLayer, ServerTimeoutLayer};

pub use self::service::Attempts;
#[cfg(feature = "grpc")]
pub(crate) use self::{replay::DEFAULT_REPLAY_CAP, service::AttemptHeaderLayer};
// Services and bodies the layers above make: `pub` types, named by the layers' `Service` types
// and the presets' aliases rather than by path.
#[cfg(feature = "grpc")]
pub(crate) use self::{edge::HttpEdge, service::AttemptHeader};

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
mod host;
mod preset;
mod replay;
#[cfg(feature = "reqwest")]
mod reqwest;
mod retry_after;
mod server;
mod service;

pub use self::body_timeout::{BodyTimeout, BodyTimeoutLayer, TimeoutBody};
pub use self::carry::{CarriedDeadline, CarryDeadline, CarryDeadlineLayer};
pub use self::classify::{HttpClassifier, IDEMPOTENCY_KEY, Idempotent, classify_http_error};
pub use self::clients::HttpClient;
#[cfg(feature = "hyper")]
pub use self::clients::HyperResilience;
#[cfg(feature = "reqwest")]
pub use self::clients::ReqwestResilience;
#[cfg(feature = "grpc")]
pub(crate) use self::deadline_body::Alarm;
pub use self::deadline_body::{BodyDeadline, BodyDeadlineLayer, DeadlineBody};
pub use self::edge::HttpEdge;
pub use self::host::{ByAuthority, HostKey};
pub use self::preset::{HttpOptions, HttpResilience, HttpResilienceBuilder, HttpResilienceLayer};
pub use self::replay::{DEFAULT_REPLAY_CAP, HttpReplay, ReplayBody, ReplayError};
#[cfg(feature = "reqwest")]
pub use self::reqwest::Reqwest;
pub use self::retry_after::{parse_retry_after, retry_after};
pub use self::server::{
    ClassifyResponse, ClassifyResponseLayer, ServerTimeout, ServerTimeoutLayer,
};

pub use self::service::{AttemptHeader, AttemptHeaderLayer, Attempts};

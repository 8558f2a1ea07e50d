//! HTTP done right (feature `http`, on by default): which outcomes and requests are retried,
//! `Retry-After`, request bodies replayed, and the HTTP preset.
//!
//! Everything here works on `http::Request`/`http::Response`, so it fits a hyper-util client,
//! the outbound calls of an axum handler, or anything else speaking the `http` crate's types.
//!
//! # Response bodies
//!
//! The preset's total timeout bounds a call until its response head arrives;
//! [`total_timeout_covers_body`](crate::ResilienceBuilder::total_timeout_covers_body) makes it
//! bound the whole body too, as reqwest's `timeout` does. For a limit on the wait between two
//! frames of a body (a server that stalls mid-stream), put tower-http's
//! `ResponseBodyTimeoutLayer` (feature `timeout`) around the preset: it fails the body with its
//! own `TimeoutError` when one frame takes too long, which is the gap alone, where the covering
//! total timeout is one deadline for all of it and fails with this crate's
//! [`Timeout`](crate::ErrorKind::Timeout) error.

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

pub use self::classify::{HttpClassifier, Idempotent};
#[cfg(feature = "hyper")]
pub use self::clients::HyperResilience;
#[cfg(feature = "reqwest")]
pub use self::clients::ReqwestResilience;
pub(crate) use self::hop::OVERLOADED;
#[cfg(feature = "grpc")]
pub(crate) use self::hop::retried_here;
pub use self::hop::upstream;
pub use self::host::ByAuthority;
pub use self::preset::{HttpResilience, HttpResilienceLayer};
pub use self::replay::ReplayBody;
pub use self::server::ServerTimeoutLayer;
#[cfg(feature = "grpc")]
pub(crate) use self::server::whole_number;
pub use self::service::Attempts;

// The crate's own: the classifier's parts, the preset's replay and options, and the bodies and
// services the layers make, reached through `HttpClassifier`, the presets' builders and
// `Service` types rather than by path. The gRPC preset is built of them too.
#[cfg(feature = "grpc")]
pub(crate) use self::{
    classify::classify_http_error,
    deadline_body::Alarm,
    edge::HttpEdge,
    replay::{DEFAULT_REPLAY_CAP, HttpReplay},
    service::{AttemptHeader, AttemptHeaderLayer},
};

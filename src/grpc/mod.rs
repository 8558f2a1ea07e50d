//! gRPC done right (feature `grpc`): status codes from headers or trailers, server pushback,
//! `grpc-timeout` propagation both ways, errors as tonic [`Status`](tonic::Status), and the gRPC
//! preset [`ResilienceLayer::grpc`](crate::ResilienceLayer::grpc) for a tonic `Channel`.
//!
//! It follows gRFC A6 (client-side retries): `UNAVAILABLE` is retried by default,
//! `grpc-retry-pushback-ms` sets the delay (or, negative, forbids the retry), retries carry
//! `grpc-previous-rpc-attempts`, a retry budget throttles them, and an attempt is committed once
//! its first message arrives, so streams of any kind pass through as they come. See
//! [`ResilienceLayer::grpc`](crate::ResilienceLayer::grpc) for the streaming rules and the
//! deadline.

mod classify;
mod deadline;
mod methods;
mod peek;
mod preset;
#[cfg(feature = "serde")]
mod service_config;
mod status;
mod tonic_body;

pub use self::classify::GrpcClassifier;
pub use self::deadline::GrpcDeadlineLayer;
pub use self::preset::{GrpcResilience, GrpcResilienceLayer};

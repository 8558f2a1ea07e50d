//! The per-attempt timeout: [`TimeoutLayer`] bounds one call of the service it wraps.
//!
//! Put it inside a [`RetryLayer`](crate::retry::RetryLayer), with the total
//! [`DeadlineLayer`](crate::deadline::DeadlineLayer) outside:
//!
//! ```text
//! DeadlineLayer (10s for everything) → RetryLayer → TimeoutLayer (2s per attempt) → service
//! ```
//!
//! An attempt that runs out of its time fails with an [`Error`](crate::Error) whose kind is
//! [`Timeout`](crate::ErrorKind::Timeout) with scope [`Attempt`](crate::TimeoutScope::Attempt),
//! which the default classifier calls retryable. Its timer is armed only when the inner future
//! is pending on its first poll: a call that is ready at once costs neither a timer nor a clock
//! read. Under an enclosing deadline that ends sooner it ends there instead, with the
//! deadline's error (scope [`Total`](crate::TimeoutScope::Total)): an attempt never outlives
//! the call it belongs to, and the presets need no second timer for the deadline.

pub(crate) mod future;
mod layer;
mod service;

pub use self::layer::TimeoutLayer;
// The service the layer makes: reached as the layer's `Service` type, not by path.
pub(crate) use self::service::Timeout;

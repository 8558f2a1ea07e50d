//! The total deadline: [`DeadlineLayer`] bounds a whole call, attempts and backoff included.
//!
//! Put it outside a retry layer, and the per-attempt [`TimeoutLayer`](crate::timeout::TimeoutLayer)
//! inside:
//!
//! ```text
//! DeadlineLayer (10s for everything) → RetryLayer → TimeoutLayer (2s per attempt) → service
//! ```
//!
//! When it fires it cancels whatever is in flight, attempt or backoff, and answers with an
//! [`Error`](crate::Error) of kind [`Timeout`](crate::ErrorKind::Timeout) with scope
//! [`Total`](crate::TimeoutScope::Total). The layers inside see it through the
//! [call context](crate::context): a retry layer never starts a backoff that would end past it
//! nor sends an attempt at or after it, and a gRPC client tells the server the time left.
//!
//! Its timer is armed only when the inner future is pending on its first poll. An attempt
//! timeout inside caps itself at the deadline and reports the deadline's error when that is
//! what it hit (with the attempt a retry in between was on); the presets build their stacks so
//! that this is always so, and their deadline arms no timer at all: one timer per pending
//! attempt.
//!
//! # Where the deadline is seen
//!
//! A deadline is found by the layers below it in the same task, while it calls or polls them
//! (see [`remaining`](crate::context::remaining)): no request type has to carry it. Two things
//! leave that task:
//!
//! * `tokio::spawn`: a future spawned from inside the call runs in a task of its own. It does
//!   not see the deadline, and the deadline cannot cancel it (dropping the call does not stop a
//!   spawned task). Read `remaining()` before spawning and put a `DeadlineLayer` of that budget
//!   inside the spawned work.
//! * tower's `Buffer`: it calls the service behind it from its worker task, and hands the future
//!   back to be polled by the caller. A retry layer behind a `Buffer` still sees the deadline
//!   when it decides on a retry (that happens while the caller polls), but nothing behind it sees
//!   the deadline during the *first* `call`: not a `grpc-timeout` layer, not a service reading
//!   `remaining()`. Put the `Buffer` outside the `DeadlineLayer` (or the preset) instead: the
//!   deadline's owner then runs in the worker's task, beside everything it bounds.

pub(crate) mod future;
mod layer;
mod service;
mod under;

pub use self::layer::DeadlineLayer;
// The service the layer makes: reached as the layer's `Service` type, not by path.
pub(crate) use self::service::Deadline;
#[cfg(feature = "http")]
pub(crate) use self::under::Polled;
pub(crate) use self::under::{Enforcer, UnderDeadline, is_total_timeout};

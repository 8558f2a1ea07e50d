//! The inner services the benchmarks put the stacks around.

use std::future::{Ready, ready};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tower::BoxError;
use tower::{Service, service_fn};

/// Answers at once, with its request, passed through `black_box`: as opaque to the compiler as a
/// real client, so that what a stack does around the call is not left out because nothing in it
/// could see it (the attempt's scope, entered and left around a call that reads nothing, was).
pub fn always_ready()
-> impl Service<u64, Response = u64, Error = BoxError, Future = Ready<Result<u64, BoxError>>> + Clone
{
    service_fn(|n: u64| ready(Ok::<_, BoxError>(std::hint::black_box(n))))
}

/// Fails the first two calls of every three (a reset connection), answers the third.
pub fn fails_twice()
-> impl Service<u64, Response = u64, Error = BoxError, Future = Ready<Result<u64, BoxError>>> + Clone
{
    let calls = Arc::new(AtomicU32::new(0));
    service_fn(move |n: u64| {
        let call = calls.fetch_add(1, Ordering::Relaxed);
        ready(if call % 3 == 2 {
            Ok(n)
        } else {
            Err(io::Error::from(io::ErrorKind::ConnectionReset).into())
        })
    })
}

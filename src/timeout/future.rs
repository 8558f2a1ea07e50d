use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::budgeted::Budgeted;
use super::scope::{after, clock_read, cover, uncover};
use crate::error::{Attempt, BoxError, Error, TimeoutScope};

pin_project! {
    /// The future of a [`Timeout`](super::Timeout) call.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds `inner` pending.
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Its timer may have been an enclosing deadline's reason not to arm one.
            if this.sleep.is_some() {
                uncover();
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, timeout: Duration) -> Self {
        ResponseFuture {
            inner,
            sleep: None,
            timeout,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out.map_err(Into::into));
        }
        if this.sleep.is_none() {
            let now = Instant::now();
            // A deadline around that starts its clock in this poll can take this reading.
            clock_read(now);
            this.sleep
                .set(Some(tokio::time::sleep_until(after(now, *this.timeout))));
        }
        let Some(mut sleep) = this.sleep.as_pin_mut() else {
            return Poll::Pending;
        };
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(
                Error::timeout(TimeoutScope::Attempt, *this.timeout).into()
            ));
        }
        // An enclosing deadline that ends later need not arm a timer of its own.
        cover(sleep.deadline());
        Poll::Pending
    }
}

pin_project! {
    /// The future of a [`Deadline`](super::Deadline) call.
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: Budgeted<F>,
        attempt: Option<Attempt>,
    }
}

impl<F> DeadlineFuture<F> {
    pub(crate) fn new(inner: Budgeted<F>, attempt: Option<Attempt>) -> Self {
        DeadlineFuture { inner, attempt }
    }
}

impl<F, T, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.inner.poll_deadline(cx, this.attempt)
    }
}

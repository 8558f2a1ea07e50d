use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::scope::{Bound, enter};
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
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                Poll::Ready(Err(
                    Error::timeout(TimeoutScope::Attempt, *this.timeout).into()
                ))
            }
            _ => Poll::Pending,
        }
    }
}

pin_project! {
    /// The future of a [`Deadline`](super::Deadline) call.
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds `inner` pending; its deadline is the call's.
        #[pin]
        sleep: Option<Sleep>,
        budget: Duration,
        attempt: Option<Attempt>,
    }
}

impl<F> DeadlineFuture<F> {
    pub(crate) fn new(inner: F, budget: Duration, attempt: Option<Attempt>) -> Self {
        DeadlineFuture {
            inner,
            sleep: None,
            budget,
            attempt,
        }
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
        let mut this = self.project();
        let bound = match this.sleep.as_ref().as_pin_ref() {
            Some(sleep) => Bound::Fixed(sleep.deadline()),
            None => Bound::Unstarted(*this.budget),
        };
        let polled = enter(bound, this.attempt, || this.inner.as_mut().poll(cx));
        if let Poll::Ready(out) = polled {
            return Poll::Ready(out.map_err(|err| {
                // Something inside that enforces the propagated deadline itself (a gRPC channel
                // honouring grpc-timeout, say) may fail in the same timer tick as this one: the
                // caller should still hear that the deadline passed.
                let expired = this
                    .sleep
                    .as_mut()
                    .as_pin_mut()
                    .is_some_and(|sleep| sleep.poll(cx).is_ready());
                if expired {
                    Error::timeout(TimeoutScope::Total, *this.budget)
                        .with_attempt(*this.attempt)
                        .with_source(err.into())
                        .into()
                } else {
                    err.into()
                }
            }));
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.budget)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                Poll::Ready(Err(Error::timeout(TimeoutScope::Total, *this.budget)
                    .with_attempt(*this.attempt)
                    .into()))
            }
            _ => Poll::Pending,
        }
    }
}

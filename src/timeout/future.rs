//! The future of a [`Timeout`](super::Timeout) call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::context::{Timer, after, clock_read};
use crate::error::{BoxError, Error, TimeoutScope};

pin_project! {
    /// The future of a [`Timeout`](super::Timeout) call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds `inner` pending.
        #[pin]
        timer: Option<Timer>,
        timeout: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, timeout: Duration) -> Self {
        ResponseFuture {
            inner,
            timer: None,
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
        if this.timer.is_none() {
            let now = Instant::now();
            // A deadline around that starts its clock in this poll can take this reading.
            clock_read(now);
            this.timer.set(Some(Timer::at(after(now, *this.timeout))));
        }
        let Some(timer) = this.timer.as_pin_mut() else {
            return Poll::Pending;
        };
        match timer.poll_fired(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(
                    Error::timeout(TimeoutScope::Attempt, *this.timeout).into()
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

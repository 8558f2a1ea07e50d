//! The future of a [`Timeout`](super::Timeout) call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::context::{after, current_bound};
use crate::error::{BoxError, Error, TimeoutScope};

pin_project! {
    /// The future of a [`Timeout`](super::Timeout) call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds `inner` pending, at the attempt's end or the
        // deadline in force, whichever comes first.
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
        // The deadline's budget, when the sleep is armed at the deadline.
        capped: Option<Duration>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, timeout: Duration) -> Self {
        ResponseFuture {
            inner,
            sleep: None,
            timeout,
            capped: None,
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
            let mut at = after(now, *this.timeout);
            if let Some((deadline, budget)) = current_bound(now)
                && deadline < at
            {
                at = deadline;
                *this.capped = Some(budget);
            }
            this.sleep.set(Some(tokio::time::sleep_until(at)));
        }
        let Some(sleep) = this.sleep.as_pin_mut() else {
            return Poll::Pending;
        };
        match sleep.poll(cx) {
            Poll::Ready(()) => {
                let error = match *this.capped {
                    Some(budget) => Error::timeout(TimeoutScope::Total, budget),
                    None => Error::timeout(TimeoutScope::Attempt, *this.timeout),
                };
                Poll::Ready(Err(error.into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

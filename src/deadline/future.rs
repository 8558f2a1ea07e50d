//! The future of a [`Deadline`](super::Deadline) call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::under::UnderDeadline;
use crate::error::BoxError;

pin_project! {
    /// The future of a [`Deadline`](super::Deadline) call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: UnderDeadline<F>,
    }
}

impl<F> DeadlineFuture<F> {
    pub(crate) fn new(inner: UnderDeadline<F>) -> Self {
        DeadlineFuture { inner }
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
        self.project().inner.poll_deadline(cx)
    }
}

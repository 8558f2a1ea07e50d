//! The future of a layer that admits a call or turns it away at once, and settles what it
//! admitted when the outcome comes: the circuit breaker's and the throttle's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::error::BoxError;

/// What an admitted call owes the layer that let it through, paid with its outcome.
pub trait Settle<Res> {
    /// Pays what the call owes with its `outcome`.
    fn settle(&mut self, outcome: Result<&Res, &BoxError>);
}

pin_project! {
    /// The future of a gate's call: the inner call, settled with its outcome, or a rejection,
    /// ready at once.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct GateFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Admitted { #[pin] future: F, ticket: Option<T> },
        Rejected { error: Option<BoxError> },
    }
}

impl<F, T> GateFuture<F, T> {
    /// A call let through, owing `ticket` (none: a gate switched off).
    pub(crate) fn admitted(future: F, ticket: Option<T>) -> Self {
        GateFuture {
            state: State::Admitted { future, ticket },
        }
    }

    /// A call turned away with `error`.
    pub(crate) fn rejected(error: BoxError) -> Self {
        GateFuture {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, T, Res, E> Future for GateFuture<F, T>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    T: Settle<Res>,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Admitted { future, ticket } => {
                let outcome = ready!(future.poll(cx)).map_err(Into::into);
                // Taken, so that a poll after completion cannot count the outcome twice.
                if let Some(mut ticket) = ticket.take() {
                    ticket.settle(outcome.as_ref());
                }
                Poll::Ready(outcome)
            }
            StateProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(std::rc::Rc<std::cell::Cell<u32>>);

    impl Settle<u8> for Counting {
        fn settle(&mut self, _: Result<&u8, &BoxError>) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn an_outcome_is_settled_once_however_often_it_is_polled() {
        let settled = std::rc::Rc::default();
        let inner = std::future::poll_fn(|_| Poll::Ready(Ok::<u8, BoxError>(1)));
        let mut future = std::pin::pin!(GateFuture::admitted(
            inner,
            Some(Counting(std::rc::Rc::clone(&settled)))
        ));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..3 {
            assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(1))));
        }
        assert_eq!(settled.get(), 1);
    }
}

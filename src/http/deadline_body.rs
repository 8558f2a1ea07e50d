//! A call's deadline over its response body: [`DeadlineBody`], what the HTTP preset's
//! `total_timeout_covers_body()` puts on a response (and the gRPC deadline's [`Alarm`]).
//!
//! A deadline bounds a call until its response head arrives; a body that streams after that is
//! the caller's to read for as long as it lasts. That is right for a stream whose length is its
//! point (server-sent events, a gRPC `Watch`), and wrong for a caller who means "all of it
//! within ten seconds", as reqwest's `timeout` does and as a gRPC deadline does. Here the bound
//! goes on over the body: when it passes mid-body, the body fails with this crate's
//! [`Timeout`](crate::ErrorKind::Timeout) error of scope [`Total`](crate::TimeoutScope::Total)
//! and lets go of the stream (which cancels it).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::deadline::UnderDeadline;
use crate::error::{Attempt, BoxError, Error, TimeoutScope};

/// A deadline for a body, armed the first time the body is found pending: a body that is
/// always ready costs no timer, only a clock reading per frame.
pub(crate) struct Alarm {
    at: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Alarm {
    pub(crate) fn new(at: Instant) -> Self {
        Alarm { at, sleep: None }
    }

    /// Whether the deadline has passed, asked before the body is polled: a body that always has
    /// a frame ready (a server faster than its reader) never returns `Pending`, so a timer
    /// looked at only then would never be looked at.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether the deadline has passed; if not, the task is woken when it does.
    pub(crate) fn rang(&mut self, cx: &mut Context<'_>) -> bool {
        let at = self.at;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// When a body must have ended, and what to say if it has not.
pub(crate) struct BodyBound {
    alarm: Alarm,
    budget: Duration,
    attempt: Option<Attempt>,
    subject: Option<Box<str>>,
}

impl BodyBound {
    /// The bound of the deadline that `budgeted` ran under, if it had one.
    pub(crate) fn of<F>(
        budgeted: &UnderDeadline<F>,
        attempt: Option<Attempt>,
    ) -> Option<Box<Self>> {
        let (at, budget) = budgeted.deadline()?;
        Some(Box::new(BodyBound {
            alarm: Alarm::new(at),
            budget,
            attempt,
            subject: None,
        }))
    }

    /// Names the request in the error (`GET http://…`).
    pub(crate) fn with_subject(mut self: Box<Self>, subject: String) -> Box<Self> {
        self.subject = Some(subject.into());
        self
    }

    fn error(&self) -> BoxError {
        let mut error = Error::timeout(TimeoutScope::Total, self.budget).with_attempt(self.attempt);
        if let Some(subject) = &self.subject {
            error = error.with_subject(subject.clone());
        }
        error.into()
    }
}

pin_project! {
    /// A response body under its call's deadline (or none): the body of the HTTP preset's
    /// responses.
    ///
    /// Without a deadline it is the body as it is. With one, the deadline is checked before
    /// each frame is read (so a body that always has a frame ready is cut too), and the first
    /// poll that finds the body pending arms a timer; when the deadline passes the body fails
    /// with the deadline's error and drops the stream, and after that it has ended.
    pub struct DeadlineBody<B> {
        #[pin]
        inner: Option<B>,
        bound: Option<Box<BodyBound>>,
    }
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(body: B, bound: Option<Box<BodyBound>>) -> Self {
        DeadlineBody {
            inner: Some(body),
            bound,
        }
    }
}

impl<B> fmt::Debug for DeadlineBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineBody")
            .field("deadline", &self.bound.as_ref().map(|bound| bound.alarm.at))
            .field("ended", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let passed = this
            .bound
            .as_ref()
            .is_some_and(|bound| bound.alarm.passed());
        if !passed {
            if let Poll::Ready(frame) = inner.poll_frame(cx) {
                return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
            }
            if !this
                .bound
                .as_mut()
                .is_some_and(|bound| bound.alarm.rang(cx))
            {
                return Poll::Pending;
            }
        }
        // Past the deadline (`bound` is there): fail once, and let go of the stream.
        let error = this.bound.take().map(|bound| bound.error());
        this.inner.set(None);
        Poll::Ready(error.map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

//! The error of a body that could not be replayed, and [`HttpReplay`], which makes requests
//! with [`ReplayBody`] bodies again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;

use super::ReplayBody;
use crate::error::{Attempt, BoxError};
use crate::http::Attempts;
use crate::retry::{Releasing, Replay};

/// Why a [`ReplayBody`] could not yield its body.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// Another clone is reading the original body, or it was lost over the cap.
    Unavailable,
    /// The original body failed.
    Body(BoxError),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Unavailable => {
                f.write_str("request body cannot be replayed: another attempt holds it")
            }
            ReplayError::Body(_) => f.write_str("request body failed"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Body(err) => Some(err.as_ref()),
            ReplayError::Unavailable => None,
        }
    }
}

/// Replays `http::Request<ReplayBody<B>>`: clones the head and the body handle when
/// [`ReplayBody`] can be replayed, declines otherwise (the request is then not retried, and the
/// give-up says it could not be sent again). The kept copy is always taken, so that every
/// outcome is classified.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpReplay;

/// How much of a retried response's body is drained, at most, to keep its connection.
const DRAIN_BYTES: usize = 64 * 1024;
/// How many frames, at most: a body of endless empty (or tiny) frames is bounded too.
const DRAIN_FRAMES: usize = 1024;
/// How many frames one poll reads before it gives the runtime its thread back.
const DRAIN_FRAMES_PER_POLL: usize = 32;
/// How long draining a retried response's body may take, at most.
const DRAIN_TIME: Duration = Duration::from_millis(100);

impl<B, ResB> Replay<Request<ReplayBody<B>>, Response<ResB>> for HttpReplay
where
    B: Body + Unpin,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
{
    fn replay(&self, kept: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        kept.body().settle_replayable().then(|| kept.clone())
    }

    fn can_replay(&self, kept: &Request<ReplayBody<B>>) -> bool {
        kept.body().settle_replayable()
    }

    /// Only a body that is empty or was sent whole already: one still being sent belongs to
    /// the attempt sending it, and is not touched.
    fn can_hedge(&self, kept: &Request<ReplayBody<B>>) -> bool {
        kept.body().is_whole()
    }

    /// Always a handle: whether it can be sent is known only after the first attempt.
    fn keep(&self, request: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        Some(request.clone())
    }

    /// Only a response that took more than one attempt says so: the map an extension lives in
    /// is allocated on its first insert, and one attempt is what `map_or(1, ..)` reads from
    /// none.
    fn answered(&self, response: &mut Response<ResB>, attempt: Attempt) {
        if attempt.number > 1 {
            response.extensions_mut().insert(Attempts(attempt.number));
        }
    }

    /// Drains up to 64 KiB of the body (and at most 1 024 frames), for at most 100 ms, so that
    /// an HTTP/1 connection can go back to the pool rather than be closed with a response half
    /// read. It yields to the runtime every 32 frames, so that a body that always has a frame
    /// ready cannot hold the thread, and its time limit is looked at in between.
    fn release(&self, response: Response<ResB>) -> Option<Releasing> {
        let body = response.into_body();
        if body.is_end_stream() {
            return None;
        }
        Some(Box::pin(async move {
            let mut body = std::pin::pin!(body);
            let (mut bytes, mut frames) = (0usize, 0usize);
            let drain = async {
                loop {
                    // The frame is let go of before the yield: the body's error need not be `Send`.
                    let Some(Ok(frame)) = body.frame().await else {
                        break;
                    };
                    frames += 1;
                    bytes += frame.data_ref().map_or(0, Buf::remaining);
                    drop(frame);
                    if bytes > DRAIN_BYTES || frames >= DRAIN_FRAMES {
                        break;
                    }
                    if frames % DRAIN_FRAMES_PER_POLL == 0 {
                        YieldNow(false).await;
                    }
                }
            };
            // Past a bound the body is dropped, and with it the connection.
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        }))
    }
}

/// `Pending` once, with the task woken at once: the runtime gets its thread back for a moment
/// (and a timeout around looks at its timer).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

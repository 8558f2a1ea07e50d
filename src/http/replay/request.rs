//! The error of a body that could not be replayed, and [`HttpReplay`], which makes requests
//! with [`ReplayBody`] bodies again.

use std::fmt;
use std::time::Duration;

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;

use super::ReplayBody;
use crate::error::BoxError;
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

    /// Drains up to 64 KiB of the body, for at most 100 ms, so that an HTTP/1 connection can go
    /// back to the pool rather than be closed with a response half read.
    fn release(&self, response: Response<ResB>) -> Option<Releasing> {
        let body = response.into_body();
        if body.is_end_stream() {
            return None;
        }
        Some(Box::pin(async move {
            let mut body = std::pin::pin!(body);
            let mut drained = 0usize;
            let drain = async {
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        drained += data.remaining();
                        if drained > DRAIN_BYTES {
                            break;
                        }
                    }
                }
            };
            // Past the bound the body is dropped, and with it the connection.
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        }))
    }
}

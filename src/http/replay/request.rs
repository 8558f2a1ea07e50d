//! The error of a body that could not be replayed, and [`HttpReplay`], which makes requests
//! with [`ReplayBody`] bodies again.

use std::fmt;

use http::Request;
use http_body::Body;

use super::ReplayBody;
use crate::error::BoxError;
use crate::retry::Replay;

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

impl<B: Body + Unpin> Replay<Request<ReplayBody<B>>> for HttpReplay {
    fn replay(&self, kept: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        kept.body().settle_replayable().then(|| kept.clone())
    }

    fn can_replay(&self, kept: &Request<ReplayBody<B>>) -> bool {
        kept.body().settle_replayable()
    }

    /// Always a handle: whether it can be sent is known only after the first attempt.
    fn keep(&self, request: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        Some(request.clone())
    }
}

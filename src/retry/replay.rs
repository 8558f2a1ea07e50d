//! How a request is made again for the next attempt.
//!
//! It also lets go of the response of an attempt that is retried ([`Replay::release`]): the
//! part of a retry that touches what was sent and received, as opposed to the classifier, which
//! only decides.
//!
//! A service takes its request by value, so to retry, the retry layer keeps a copy of each
//! request before sending it and makes a fresh one from that copy for every further attempt.
//! [`Replay`] is that step. For any `Req: Clone` the default, [`CloneReplay`], clones. A request
//! that cannot be copied (or can no longer be, like a streamed body that has outgrown its replay
//! buffer) is not silently dropped from retrying: it is sent once, and both the error and a
//! give-up event say it could not be retried.

use std::future::Future;
use std::pin::Pin;

use crate::error::Attempt;

/// Makes the request for another attempt out of the copy that retry keeps, and lets go of the
/// response of an attempt that is retried. `Res` is the service's response type.
///
/// A `Clone` request needs none of this (cloning is the default), and the HTTP preset has its
/// own for `ReplayBody`. For a request that must never go out twice, a replay that makes none:
///
/// ```
/// use tower_tenacity::retry::{Replay, RetryLayer};
///
/// /// Sends each request once.
/// struct SendOnce;
///
/// impl<Req, Res> Replay<Req, Res> for SendOnce {
///     fn replay(&self, _kept: &Req) -> Option<Req> {
///         None
///     }
/// }
///
/// let layer = RetryLayer::builder().replay(SendOnce).build().unwrap();
/// # let _ = layer;
/// ```
pub trait Replay<Req, Res = ()> {
    /// A request equal to `kept`, to send now; `None` when it cannot be made. Called before
    /// each retry; `None` stops retrying, and the give-up says the request could not be sent
    /// again.
    fn replay(&self, kept: &Req) -> Option<Req>;

    /// Whether [`replay`](Self::replay) would make a request now, asked when a retry is
    /// planned, so that a request that cannot be sent again is known before waiting out a
    /// backoff for nothing. The request itself is made when the attempt is sent. By default it
    /// makes one and drops it; a replay that can tell more cheaply says so.
    fn can_replay(&self, kept: &Req) -> bool {
        self.replay(kept).is_some()
    }

    /// Whether a request made now, while an earlier attempt of it is still in flight, would be
    /// whole, found without touching that attempt: asked before a hedge. By default the same
    /// as [`can_replay`](Self::can_replay); the HTTP preset's says yes
    /// only for a body that is empty or was sent whole already.
    fn can_hedge(&self, kept: &Req) -> bool {
        self.can_replay(kept)
    }

    /// The copy of `request` that retry keeps, taken before the first attempt sends the
    /// original: the classifier sees it, and [`replay`](Self::replay) makes retries from it.
    /// `None` means the request cannot be copied at all: it is sent once, unclassified.
    ///
    /// By default the same as `replay`. A replay whose copies are cheap handles that decide
    /// later whether they can be sent (like the HTTP preset's) keeps one
    /// always.
    fn keep(&self, request: &Req) -> Option<Req> {
        self.replay(request)
    }

    /// Lets go of a response that was classified retryable and is about to be retried, so that
    /// the caller never sees it. By default it is dropped. A replay that knows the response can
    /// do better: the HTTP preset's drains a little of its body, so that
    /// the connection goes back to the pool instead of being closed. The future returned, if
    /// any, is awaited alongside the backoff before the next attempt; it must bound itself in
    /// time.
    fn release(&self, response: Res) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        drop(response);
        None
    }

    /// Marks the response the caller gets with the attempt that answered it (`attempt.number`
    /// counts the attempts sent so far, hedges included): the one way what happened inside
    /// retry reaches the layers above, in the response itself. By default nothing;
    /// the HTTP preset's adds [`Attempts`](crate::http::Attempts) to a
    /// response that took more than one attempt.
    fn answered(&self, response: &mut Res, attempt: Attempt) {
        let _ = (response, attempt);
    }
}

/// Work done on a released response before the next attempt; see [`Replay::release`].
pub(crate) type Releasing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Replays a request by cloning it: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneReplay;

impl<Req: Clone, Res> Replay<Req, Res> for CloneReplay {
    fn replay(&self, kept: &Req) -> Option<Req> {
        Some(kept.clone())
    }

    fn can_replay(&self, _kept: &Req) -> bool {
        true
    }
}

//! Request bodies that can be sent again: [`ReplayBody`] and [`HttpReplay`].

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::error::BoxError;

/// The default replay buffer: 64 KiB per request.
pub const DEFAULT_REPLAY_CAP: usize = 64 * 1024;

/// A request body that can be replayed for a retry.
///
/// A request body is a stream: once an attempt has sent it, it is gone. [`ReplayBody`] keeps a
/// copy of what it streams, up to a cap, so that a retry can send the same bytes again. It
/// buffers lazily, frame by frame as the first attempt sends them: nothing is collected up
/// front, and a request that succeeds at once costs a copy of its bytes (up to the cap).
///
/// Three things keep it honest:
///
/// * a body larger than the cap stops being buffered and the request is committed to the
///   attempt that is sending it: it is not retried, and the give-up says why (a body that no
///   attempt has started to send is still whole, and goes out with the next one);
/// * an attempt that ended after sending part of its body but not all of it (the server
///   answered early, say) is not retried: the server saw a request cut short;
/// * an attempt that never read its body (the connection was refused) hands the untouched body
///   back when it is dropped, so the retry sends it from the start.
///
/// Clones share one buffer. Each clone yields the whole body from the start: the buffered part
/// first, then (for the one clone that holds it at a time) the rest of the original stream.
/// A body that is empty from the start (a GET's, usually) needs no buffer and costs nothing.
///
/// The cap bounds memory, not only payload: the buffer is one allocation of this body's own,
/// never larger than the cap, into which each frame's bytes are copied as they go by. So empty
/// frames add nothing, however many there are, and a small frame sliced from a large buffer
/// does not keep that buffer alive. A retry sends what was buffered in one frame.
pub struct ReplayBody<B> {
    /// `None` for a body that was at its end when wrapped: nothing to share, always replayable.
    shared: Option<Arc<Mutex<Shared<B>>>>,
    /// How many buffered bytes this clone has yielded.
    replayed: usize,
    /// This clone is the one reading the original body.
    live: bool,
    trailers_sent: bool,
}

struct Shared<B> {
    /// The unread rest of the original body; `None` once it ended or was dropped over the cap.
    /// It stays here while a clone reads it (that clone polls it under the lock), so that the
    /// handle that travels with each request is two words.
    rest: Option<B>,
    /// A clone is reading `rest`.
    reading: bool,
    /// A copy of what the original yielded so far; its capacity never exceeds `cap`.
    buffer: Vec<u8>,
    cap: usize,
    trailers: Option<HeaderMap>,
    /// A frame of the original body has been read.
    started: bool,
    /// The original body has ended: everything is buffered.
    complete: bool,
    /// The body outgrew the cap: the buffer was dropped and no replay is possible.
    overflowed: bool,
    size_hint: SizeHint,
}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body`, buffering at most `cap` bytes of it for replay.
    pub fn new(body: B, cap: usize) -> Self {
        if body.is_end_stream() {
            return ReplayBody {
                shared: None,
                replayed: 0,
                live: false,
                trailers_sent: false,
            };
        }
        let size_hint = body.size_hint();
        // A body known to be larger than the cap will never be replayed: do not start buffering.
        let overflowed = size_hint.lower() > cap as u64;
        ReplayBody {
            shared: Some(Arc::new(Mutex::new(Shared {
                rest: Some(body),
                reading: false,
                buffer: Vec::new(),
                cap,
                trailers: None,
                started: false,
                complete: false,
                overflowed,
                size_hint,
            }))),
            replayed: 0,
            live: false,
            trailers_sent: false,
        }
    }
}

/// The shared buffer, locked. A panic while holding the lock leaves the buffer as consistent as
/// any frame boundary, so a poisoned lock is taken as it is.
fn lock<B>(shared: &Mutex<Shared<B>>) -> MutexGuard<'_, Shared<B>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B> ReplayBody<B> {
    fn shared(&self) -> Option<MutexGuard<'_, Shared<B>>> {
        self.shared.as_deref().map(lock)
    }

    /// Whether the body outgrew its replay buffer.
    pub fn is_over_cap(&self) -> bool {
        self.shared().is_some_and(|shared| shared.overflowed)
    }

    /// Whether a clone made now sends the whole body without touching the original: it was
    /// sent to its end within the cap, or it is empty. Unlike `settle_replayable`, a plain
    /// query, for an attempt still in flight.
    pub(crate) fn is_whole(&self) -> bool
    where
        B: Body,
    {
        self.shared().is_none_or(|shared| {
            shared.complete
                || (!shared.overflowed
                    && shared.buffer.is_empty()
                    && shared.rest.as_ref().is_some_and(Body::is_end_stream))
        })
    }
}

impl<B> ReplayBody<B>
where
    B: Body + Unpin,
{
    /// Settles whether a clone made now could send the whole body: it was not sent at all (and
    /// was handed back untouched, whatever its size), or it was sent to its end within the cap.
    /// Not a plain query: it may poll the original once (with no waker) and drop what it reads.
    ///
    /// A body whose every byte was sent but whose end had not been seen yet (a gRPC message is
    /// one data frame, and the end of the stream comes with the next poll, which the transport
    /// may not have made before the answer came) counts as sent to its end if the original ends
    /// as soon as it is asked: nothing was cut short. If it yields more, the attempt was cut
    /// short, and what was just read is dropped, so that no clone goes on as though it were
    /// whole.
    pub(crate) fn settle_replayable(&self) -> bool {
        let Some(mut shared) = self.shared() else {
            return true;
        };
        if shared.reading {
            return false;
        }
        if !shared.started {
            // Untouched (the connection was refused, say): the original goes out whole, over
            // the cap or not.
            return shared.complete || shared.rest.is_some();
        }
        if shared.overflowed {
            return false;
        }
        if shared.complete {
            return true;
        }
        let Some(rest) = shared.rest.as_mut() else {
            return false;
        };
        if !rest.is_end_stream() {
            match Pin::new(rest).poll_frame(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(None) => {}
                Poll::Pending => return false,
                // More was left to send: the attempt was cut short. What was just read is not
                // kept, so no clone may go on reading the original as though it were whole.
                Poll::Ready(Some(_)) => {
                    shared.rest = None;
                    return false;
                }
            }
        }
        shared.complete = true;
        shared.rest = None;
        true
    }
}

impl<B> Clone for ReplayBody<B> {
    fn clone(&self) -> Self {
        ReplayBody {
            shared: self.shared.clone(),
            replayed: 0,
            live: false,
            trailers_sent: false,
        }
    }
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        // Hand the unread rest back, so that another clone can go on from the end of the buffer.
        if self.live
            && let Some(mut shared) = self.shared()
        {
            shared.reading = false;
            if shared.overflowed {
                shared.rest = None;
            }
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ReplayBody");
        match self.shared() {
            Some(shared) => out
                .field("buffered", &shared.buffer.len())
                .field("cap", &shared.cap)
                .field("complete", &shared.complete)
                .field("overflowed", &shared.overflowed),
            None => out.field("empty", &true),
        };
        out.finish_non_exhaustive()
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = ReplayError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReplayError>>> {
        let this = &mut *self;
        let Some(shared_buffer) = this.shared.as_deref() else {
            return Poll::Ready(None);
        };
        let mut guard = lock(shared_buffer);
        let shared = &mut *guard;

        // First what earlier attempts buffered, then (for one clone at a time) the original.
        if !this.live {
            if let Some(buffered) =
                next_buffered(shared, &mut this.replayed, &mut this.trailers_sent)
            {
                return Poll::Ready(buffered);
            }
            shared.reading = true;
            this.live = true;
        }

        // Then the rest of the original, buffered as it goes by. It is polled under the lock:
        // polling a body does not block, and no other clone can read it meanwhile anyway.
        let Some(rest) = shared.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                shared.complete = true;
                shared.rest = None;
                shared.reading = false;
                this.live = false;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(ReplayError::Body(err.into())))),
            Poll::Ready(Some(Ok(frame))) => {
                match keep_frame(shared, frame, &mut this.replayed, &mut this.trailers_sent) {
                    Some(frame) => Poll::Ready(Some(Ok(frame))),
                    // A frame kind this crate does not know: pass nothing on rather than
                    // guess; the body goes on with its next frame.
                    None => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let Some(shared) = self.shared() else {
            return true;
        };
        if self.live {
            return shared.rest.as_ref().is_none_or(Body::is_end_stream);
        }
        shared.complete
            && self.replayed >= shared.buffer.len()
            && (self.trailers_sent || shared.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let Some(shared) = self.shared() else {
            return SizeHint::with_exact(0);
        };
        if shared.complete && !shared.overflowed {
            let left = shared.buffer.len().saturating_sub(self.replayed);
            return SizeHint::with_exact(left as u64);
        }
        if self.replayed == 0 && !self.live {
            return shared.size_hint;
        }
        SizeHint::default()
    }
}

mod frames;
mod request;

use self::frames::{keep_frame, next_buffered};

pub use self::request::{HttpReplay, ReplayError};

#[cfg(test)]
mod tests;

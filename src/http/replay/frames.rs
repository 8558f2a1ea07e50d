//! How a clone of a [`ReplayBody`](super::ReplayBody) gets its frames: from the buffer, or from
//! the original, buffered on its way out.

use bytes::{Buf, Bytes};
use http_body::{Body, Frame};

use super::{ReplayError, Shared};

/// The next frame for a clone that is not reading the original: what earlier attempts
/// buffered, the end, or that it cannot go on; `None` when it is to read the rest of the
/// original, which follows the buffer only from where the buffer ends, one clone at a time.
/// Over the cap nothing was kept, and only an untouched original can still be read.
/// `replayed` and `trailers_sent` are the clone's.
#[allow(clippy::type_complexity)]
pub(super) fn next_buffered<B>(
    shared: &Shared<B>,
    replayed: &mut usize,
    trailers_sent: &mut bool,
) -> Option<Option<Result<Frame<Bytes>, ReplayError>>> {
    if !shared.overflowed {
        if let Some(rest) = shared
            .buffer
            .get(*replayed..)
            .filter(|rest| !rest.is_empty())
        {
            *replayed = shared.buffer.len();
            return Some(Some(Ok(Frame::data(Bytes::copy_from_slice(rest)))));
        }
        if shared.complete {
            if !*trailers_sent && let Some(trailers) = shared.trailers.clone() {
                *trailers_sent = true;
                return Some(Some(Ok(Frame::trailers(trailers))));
            }
            return Some(None);
        }
    }
    if shared.buffer.len() != *replayed || shared.reading || shared.rest.is_none() {
        return Some(Some(Err(ReplayError::Unavailable)));
    }
    None
}

/// Buffers a frame of the original on its way out (within the cap; past it, the buffer is
/// dropped and the body committed to this attempt), and hands it on; `None` for a frame kind
/// this crate does not know. `replayed` and `trailers_sent` are the reading clone's.
pub(super) fn keep_frame<B: Body>(
    shared: &mut Shared<B>,
    frame: Frame<B::Data>,
    replayed: &mut usize,
    trailers_sent: &mut bool,
) -> Option<Frame<Bytes>> {
    shared.started = true;
    let frame = match frame.into_data() {
        Ok(mut data) => {
            let chunk = data.copy_to_bytes(data.remaining());
            if !shared.overflowed {
                if shared.buffer.len() + chunk.len() > shared.cap {
                    // Committed to this attempt: free the buffer now.
                    shared.overflowed = true;
                    shared.buffer = Vec::new();
                } else {
                    buffer_up(&mut shared.buffer, &chunk, shared.cap);
                    *replayed = shared.buffer.len();
                }
            }
            Frame::data(chunk)
        }
        Err(frame) => {
            let trailers = frame.into_trailers().ok()?;
            shared.trailers = Some(trailers.clone());
            *trailers_sent = true;
            Frame::trailers(trailers)
        }
    };
    if shared.rest.as_ref().is_some_and(Body::is_end_stream) {
        shared.complete = true;
    }
    Some(frame)
}

/// Copies `chunk` to the end of `buffer`, growing it by doubling but never past `cap` (the
/// caller checked that `chunk` fits), so that its capacity stays within the cap.
fn buffer_up(buffer: &mut Vec<u8>, chunk: &[u8], cap: usize) {
    let needed = buffer.len() + chunk.len();
    if needed > buffer.capacity() {
        let grown = needed.max(buffer.capacity() * 2).min(cap);
        buffer.reserve_exact(grown - buffer.len());
    }
    buffer.extend_from_slice(chunk);
}

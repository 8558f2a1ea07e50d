//! A replay buffer's cap is a cap on memory, whatever the framing: empty frames add nothing,
//! small slices of large buffers do not keep those buffers alive, and the number of frames
//! does not matter. Memory is measured by a counting allocator (per thread, so that tests
//! running side by side do not see each other's allocations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::BoxError;
use tower_tenacity::http::ReplayBody;

struct Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| live.set(live.get() + layout.size() as isize));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get() - layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + new_size as isize - layout.size() as isize);
        });
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// What a buffer may hold beyond its cap: the shared state, its lock and the clones' handles.
const SLACK: isize = 1024;

/// One frame of a hostile request body: `size` bytes, sliced from a fresh buffer of `backing`
/// bytes; the body is pending (and wakes itself) before it when `pending_first`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    size: usize,
    backing: usize,
    pending_first: bool,
}

/// A request body that makes its frames as it is read, so that nothing but what the replay
/// buffer keeps outlives a frame.
struct Hostile<I> {
    frames: I,
    next: Option<Shape>,
    yielded_pending: bool,
}

impl<I: Iterator<Item = Shape> + Unpin> Body for Hostile<I> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(shape) = this.next.take().or_else(|| this.frames.next()) else {
            return Poll::Ready(None);
        };
        if shape.pending_first && !this.yielded_pending {
            this.yielded_pending = true;
            this.next = Some(shape);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.yielded_pending = false;
        let backing = Bytes::from(vec![1u8; shape.backing.max(shape.size)]);
        Poll::Ready(Some(Ok(Frame::data(backing.slice(..shape.size)))))
    }
}

fn hostile<I: Iterator<Item = Shape> + Unpin>(frames: I) -> Hostile<I> {
    Hostile {
        frames,
        next: None,
        yielded_pending: false,
    }
}

/// Sends `body` once as an attempt would (every frame, dropping each once passed on), then
/// returns how many bytes the body still holds, and the bytes a retry then sends (`None` if
/// it is refused).
fn held_after_sending<B>(body: ReplayBody<B>, total: usize) -> (isize, Option<usize>)
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let before = live();
    let mut attempt = body.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sent = 0;
    loop {
        match Pin::new(&mut attempt).poll_frame(&mut cx) {
            Poll::Pending => continue,
            Poll::Ready(None) => break,
            Poll::Ready(Some(frame)) => {
                sent += frame.unwrap().into_data().map_or(0, |data| data.len());
            }
        }
    }
    drop(attempt);
    assert_eq!(sent, total);
    let held = live() - before;
    let retry = futures_util::FutureExt::now_or_never(body.clone().collect())
        .expect("never pending")
        .ok()
        .map(|collected| collected.to_bytes().len());
    (held, retry)
}

#[test]
fn a_million_empty_frames_hold_nothing() {
    let shape = Shape {
        size: 0,
        backing: 0,
        pending_first: false,
    };
    let body = ReplayBody::new(hostile(std::iter::repeat_n(shape, 1_000_000)), 1024);
    let (held, retry) = held_after_sending(body, 0);
    assert!(held <= SLACK, "held {held} bytes");
    assert_eq!(retry, Some(0));
}

#[test]
fn small_slices_do_not_pin_their_buffers() {
    let shape = Shape {
        size: 1,
        backing: 64 * 1024,
        pending_first: false,
    };
    let body = ReplayBody::new(hostile(std::iter::repeat_n(shape, 512)), 1024);
    let (held, retry) = held_after_sending(body, 512);
    assert!(held <= 1024 + SLACK, "held {held} bytes");
    assert_eq!(retry, Some(512));
}

proptest! {
    /// Whatever the framing (sizes, empty frames, slices of larger buffers, pending now and
    /// then), a body sent once holds at most its cap and a constant, and a retry sends it all
    /// exactly when it fitted the cap.
    #[test]
    fn a_replay_buffer_holds_at_most_its_cap(
        shapes in proptest::collection::vec(
            (0usize..600, 0usize..8192, proptest::bool::weighted(0.2)), 0..300),
        cap in 0usize..4096,
    ) {
        let shapes: Vec<Shape> = shapes
            .into_iter()
            .map(|(size, backing, pending_first)| Shape {
                size: size.saturating_sub(200),
                backing,
                pending_first,
            })
            .collect();
        let total: usize = shapes.iter().map(|shape| shape.size).sum();
        let body = ReplayBody::new(hostile(shapes.into_iter()), cap);
        let (held, retry) = held_after_sending(body, total);
        prop_assert!(held <= cap as isize + SLACK, "held {} bytes under a cap of {}", held, cap);
        prop_assert_eq!(retry, (total <= cap).then_some(total));
    }
}

use http_body_util::{BodyExt, Empty, Full, StreamBody};

use super::*;

async fn collect<B>(body: ReplayBody<B>) -> Result<Bytes, ReplayError>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    Ok(body.collect().await?.to_bytes())
}

#[tokio::test]
async fn an_empty_body_needs_no_buffer_and_replays_as_empty() {
    let body = ReplayBody::new(Empty::<Bytes>::new(), 16);
    assert!(body.shared.is_none());
    let again = body.clone();
    assert!(body.is_end_stream() && body.settle_replayable() && !body.is_over_cap());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert_eq!(collect(body).await.unwrap(), "");
    assert_eq!(collect(again).await.unwrap(), "");
}

/// A body of `chunks`, sent in one frame each, that then does what `then` does.
fn streamed(
    chunks: &[&'static str],
    then: impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Unpin,
) -> ReplayBody<impl Body<Data = Bytes, Error = BoxError> + Unpin> {
    use futures_util::StreamExt;
    let frames = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))));
    let stream = futures_util::stream::iter(frames.collect::<Vec<_>>()).chain(then);
    ReplayBody::new(StreamBody::new(stream), 64)
}

/// The data of `body`'s next frame.
async fn next_data<B>(body: &mut ReplayBody<B>) -> Result<Bytes, ReplayError>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    let frame = body.frame().await.expect("a frame")?;
    Ok(frame.into_data().expect("a data frame"))
}

/// An attempt that sent the first frame of `body` and then ended.
async fn send_one_frame<B>(body: &ReplayBody<B>) -> Bytes
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    next_data(&mut body.clone()).await.unwrap()
}

#[tokio::test]
async fn each_clone_yields_the_whole_body_and_only_one_reads_the_original() {
    let body = streamed(&["ab", "cd", "ef"], futures_util::stream::empty());
    let (mut first, mut rival) = (body.clone(), body.clone());
    // The first clone starts on the original; a second one cannot read past the buffer.
    assert_eq!(next_data(&mut first).await.unwrap(), "ab");
    assert_eq!(next_data(&mut rival).await.unwrap(), "ab");
    assert!(matches!(
        next_data(&mut rival).await,
        Err(ReplayError::Unavailable)
    ));
    assert!(!body.settle_replayable(), "half sent");
    // Dropped halfway, the first hands the original back to whoever goes on.
    drop(first);
    assert_eq!(collect(body.clone()).await.unwrap(), "abcdef");
    assert!(body.settle_replayable());
    assert_eq!(collect(body).await.unwrap(), "abcdef");
}

#[tokio::test]
async fn a_body_sent_whole_but_for_its_end_settle_replayable() {
    // As a gRPC request: the message goes out in one frame; the end would come with the
    // next poll, which the attempt never made.
    let body = streamed(&["message"], futures_util::stream::empty());
    assert_eq!(send_one_frame(&body).await, "message");
    assert!(body.settle_replayable());
    assert_eq!(collect(body).await.unwrap(), "message");
}

#[tokio::test]
async fn a_body_cut_short_is_not_replayable() {
    // The rest is not there yet: the attempt was cut short, and may still go on.
    let waiting = streamed(&["ab", "cd"], futures_util::stream::pending());
    send_one_frame(&waiting).await;
    assert!(!waiting.settle_replayable());

    // More was ready to go: not replayable, and no clone reads on as though it were whole.
    let more = streamed(&["ab", "cd", "ef"], futures_util::stream::empty());
    send_one_frame(&more).await;
    assert!(!more.settle_replayable());
    let mut next = more.clone();
    assert_eq!(next_data(&mut next).await.unwrap(), "ab");
    assert!(matches!(
        next_data(&mut next).await,
        Err(ReplayError::Unavailable)
    ));
}

mod any_body {
    use futures_util::FutureExt;
    use proptest::prelude::*;

    use super::*;

    /// A body that says how long it is (as `Full` does) or not (as a stream does).
    struct Hinted<B>(B, Option<u64>);

    impl<B: Body + Unpin> Body for Hinted<B> {
        type Data = B::Data;
        type Error = B::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
            Pin::new(&mut self.0).poll_frame(cx)
        }

        fn size_hint(&self) -> SizeHint {
            self.1.map_or_else(SizeHint::default, SizeHint::with_exact)
        }
    }

    /// A body of `frames`, its length told up front when `hinted` (a body known to be over
    /// the cap is never buffered), otherwise found out as it is read.
    fn body_of(
        frames: &[Vec<u8>],
        cap: usize,
        hinted: bool,
    ) -> ReplayBody<impl Body<Data = Bytes, Error = BoxError> + Unpin + use<>> {
        let length = frames.iter().map(Vec::len).sum::<usize>() as u64;
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = frames
            .iter()
            .map(|f| Ok(Frame::data(Bytes::from(f.clone()))))
            .collect();
        let stream = StreamBody::new(futures_util::stream::iter(frames));
        ReplayBody::new(Hinted(stream, hinted.then_some(length)), cap)
    }

    /// Everything a clone made now yields, or its error. The source is always ready, so
    /// nothing here waits.
    fn read_all<B>(body: &ReplayBody<B>) -> Result<Vec<u8>, ReplayError>
    where
        B: Body + Unpin,
        B::Error: Into<BoxError>,
    {
        let collected = collect(body.clone()).now_or_never().expect("never pending");
        Ok(collected?.to_vec())
    }

    proptest! {
        /// An attempt sends the first `sent` frames of a body and ends. Whatever happened,
        /// a retry either sends the very same bytes or is refused: never a different or
        /// shortened body. And it is refused exactly when it must be: the body was cut
        /// short (some frames sent, not all), or it outgrew the cap.
        #[test]
        fn a_retry_sends_the_same_bytes_or_none(
            frames in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..40), 0..12),
            cap in 0usize..300,
            sent_share in 0.0f64..=1.0,
            hinted in any::<bool>(),
        ) {
            let whole: Vec<u8> = frames.concat();
            let sent = (frames.len() as f64 * sent_share).round() as usize;
            let body = body_of(&frames, cap, hinted);
            {
                let mut attempt = body.clone();
                for frame in &frames[..sent] {
                    let data = next_data(&mut attempt).now_or_never().expect("ready");
                    prop_assert_eq!(&data.unwrap()[..], &frame[..]);
                }
            }
            let sent_bytes: usize = frames[..sent].iter().map(Vec::len).sum();
            let expected = if frames.is_empty() || sent == 0 {
                true
            } else {
                sent == frames.len() && sent_bytes <= cap
            };
            prop_assert_eq!(body.settle_replayable(), expected);
            match read_all(&body) {
                Ok(bytes) => prop_assert_eq!(bytes, whole.clone()),
                Err(_) => prop_assert!(!expected, "refused a body it said was replayable"),
            }
            if expected {
                // Once the retry has sent it all, it can go again if it fitted the cap.
                let fits = whole.len() <= cap;
                prop_assert_eq!(body.settle_replayable(), fits);
                prop_assert_eq!(read_all(&body).ok(), fits.then_some(whole));
            }
        }
    }
}

#[tokio::test]
async fn a_body_over_the_cap_is_sent_once() {
    let body = ReplayBody::new(Full::new(Bytes::from_static(b"0123456789")), 4);
    assert!(body.is_over_cap());
    assert!(
        body.settle_replayable(),
        "not sent yet: it can still go out whole"
    );
    assert_eq!(collect(body.clone()).await.unwrap(), "0123456789");
    assert!(!body.settle_replayable());
    assert!(matches!(
        next_data(&mut body.clone()).await,
        Err(ReplayError::Unavailable)
    ));
}

/// A response body that always has a frame of `size` bytes ready, and never ends. Past 100 000
/// frames it panics: that is a drain that spins for ever.
struct Spinning {
    frames: Arc<std::sync::atomic::AtomicUsize>,
    size: usize,
}

impl Body for Spinning {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let read = self
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(read < 100_000, "the drain spins for ever");
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![1; self.size])))))
    }
}

#[tokio::test(start_paused = true)]
async fn draining_a_retried_response_is_bounded_in_frames_and_yields() {
    use crate::retry::Replay;
    use std::sync::atomic::Ordering;

    for size in [0, 1] {
        let frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let body = Spinning {
            frames: frames.clone(),
            size,
        };
        let response = http::Response::new(body);
        let replay: &dyn Replay<http::Request<ReplayBody<Empty<Bytes>>>, _> = &HttpReplay;
        let mut drain = replay.release(response).expect("a body to drain");
        let mut cx = Context::from_waker(Waker::noop());
        let mut polls = 0;
        loop {
            let before = frames.load(Ordering::Relaxed);
            let polled = drain.as_mut().poll(&mut cx);
            let read = frames.load(Ordering::Relaxed) - before;
            assert!(read <= 32, "one poll read {read} frames of {size} bytes");
            polls += 1;
            if polled.is_ready() {
                break;
            }
            assert!(polls <= 64, "still draining after {polls} polls");
        }
        assert!(frames.load(Ordering::Relaxed) <= 1024);
    }
}

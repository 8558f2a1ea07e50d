use super::*;

#[test]
fn transient_io_kinds_are_retryable_and_others_fatal() {
    use io::ErrorKind as K;
    for kind in [
        K::ConnectionRefused,
        K::ConnectionReset,
        K::ConnectionAborted,
    ] {
        assert!(classify_io(kind).is_retryable(), "{kind:?}");
    }
    for kind in [
        K::BrokenPipe,
        K::TimedOut,
        K::NotConnected,
        K::UnexpectedEof,
    ] {
        assert!(classify_io(kind).is_retryable(), "{kind:?}");
    }
    for kind in [K::PermissionDenied, K::NotFound, K::InvalidData, K::Other] {
        assert_eq!(classify_io(kind), Classification::fatal(Reason::Io(kind)));
    }
}

#[derive(Debug)]
struct Wrapper(io::Error);
impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wrapped")
    }
}
impl StdError for Wrapper {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn the_cause_chain_is_searched() {
    let err: BoxError = Box::new(Wrapper(io::ErrorKind::ConnectionReset.into()));
    assert_eq!(
        DefaultClassifier.classify(&(), Err::<&(), _>(&err)),
        Classification::retryable(Reason::Reset)
    );
    assert_eq!(causes(err.as_ref()).count(), 2);
    assert!(crate::error::find_cause::<io::Error>(err.as_ref()).is_some());
    let plain: BoxError = "no cause".into();
    assert_eq!(
        DefaultClassifier.classify(&(), Err::<&(), _>(&plain)),
        Classification::fatal(Reason::Other("error"))
    );
}

#[test]
fn our_timeouts_are_told_apart() {
    let attempt: BoxError = Error::timeout(TimeoutScope::Attempt, Duration::from_secs(1)).into();
    let total: BoxError = Error::timeout(TimeoutScope::Total, Duration::from_secs(1)).into();
    assert_eq!(
        classify_error(attempt.as_ref()),
        Classification::retryable(Reason::Timeout(TimeoutScope::Attempt))
    );
    assert!(classify_error(total.as_ref()).is_fatal());
}

#[test]
fn ok_is_success() {
    let ok: Result<&u8, &BoxError> = Ok(&1);
    assert!(DefaultClassifier.classify(&(), ok).is_success());
    assert_eq!(Classification::Success.reason(), None);
}

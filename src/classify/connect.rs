//! Connections that cannot be made however often they are tried: a host name that does not
//! resolve, a server certificate the client does not trust.
//!
//! Clients report both as their connect error (hyper-util's `is_connect`, reqwest's), the same
//! as a refused connection, which is worth another try. The cause that tells them apart is
//! further down the error's chain, an [`io::Error`] as the resolver and the TLS stack make it:
//! `getaddrinfo`'s "no such name" (as std words it: "failed to lookup address information:
//! Name or service not known", and the same on musl, macOS and Windows), and a TLS handshake's
//! `InvalidData` error that speaks of the certificate (as tokio-rustls wraps rustls's
//! `InvalidCertificate`). Reading their text is the one way that needs neither a resolver nor
//! a TLS library as a dependency; the words are the ones those libraries have written for years.

use std::error::Error as StdError;
use std::io;

use super::{Classification, NotSent, Reason, causes, classify_io};

/// What resolvers say when a name has no address, lowercased: glibc's `EAI_NONAME` and
/// `EAI_NODATA`, musl's, macOS's, and Windows' `WSAHOST_NOT_FOUND`.
const NO_SUCH_HOST: [&str; 5] = [
    "name or service not known",
    "no address associated with hostname",
    "name does not resolve",
    "nodename nor servname provided",
    "no such host is known",
];

/// A connect error, classified: fatal when a cause in its chain says that another attempt
/// would fail the same way ([`NotSent::NoSuchHost`], [`NotSent::UnknownIssuer`],
/// [`NotSent::NameMismatch`], [`NotSent::BadCertificate`]), retryable as
/// [`NotSent::Connect`] otherwise.
// Only a client's connect errors (hyper-util's, reqwest's) are classified this way.
#[cfg_attr(not(any(feature = "hyper", feature = "reqwest")), allow(dead_code))]
pub(crate) fn classify_connect_error(err: &(dyn StdError + 'static)) -> Classification {
    let lasting = causes(err)
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .find_map(lasting_failure);
    match lasting {
        Some(how) => Classification::fatal(Reason::NeverSent(how)),
        None => Classification::retryable(Reason::NeverSent(NotSent::Connect)),
    }
}

/// Whether `io` is a failure to connect that no retry can mend, and which.
pub(crate) fn lasting_failure(mut io: &io::Error) -> Option<NotSent> {
    // An I/O error may wrap another (hyper-rustls wraps tokio-rustls's `InvalidData` in one of
    // kind `Other`), which `source()` skips: the innermost one has the kind that says what.
    while let Some(inner) = io.get_ref().and_then(|e| e.downcast_ref::<io::Error>()) {
        io = inner;
    }
    // Refused, reset, timed out: the kind says it all, and nothing is formatted.
    if classify_io(io.kind()).is_retryable() {
        return None;
    }
    let text = io.to_string().to_ascii_lowercase();
    if io.kind() == io::ErrorKind::InvalidData && text.contains("certificate") {
        return Some(certificate_failure(&text));
    }
    NO_SUCH_HOST
        .iter()
        .any(|words| text.contains(words))
        .then_some(NotSent::NoSuchHost)
}

/// Which certificate failure `text` (lowercased) describes: rustls names its
/// `CertificateError` variants (`UnknownIssuer`, `NotValidForName`, or "certificate not valid
/// for name …"); OpenSSL says "unable to get local issuer certificate" or "self-signed".
fn certificate_failure(text: &str) -> NotSent {
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if any(&[
        "unknownissuer",
        "unknown issuer",
        "local issuer",
        "self-signed",
        "self signed",
    ]) {
        NotSent::UnknownIssuer
    } else if any(&["notvalidforname", "not valid for name", "hostname mismatch"]) {
        NotSent::NameMismatch
    } else {
        NotSent::BadCertificate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(err: io::Error) -> Classification {
        let err: crate::error::BoxError = err.into();
        classify_connect_error(err.as_ref())
    }

    fn fatal(how: NotSent) -> Classification {
        Classification::fatal(Reason::NeverSent(how))
    }

    #[test]
    fn what_no_retry_can_mend_is_fatal_and_named() {
        let tls = |text: &str| io::Error::new(io::ErrorKind::InvalidData, text.to_owned());
        let cases = [
            (
                tls("invalid peer certificate: UnknownIssuer"),
                fatal(NotSent::UnknownIssuer),
            ),
            (
                tls("invalid peer certificate: certificate not valid for name \"a\"; …"),
                fatal(NotSent::NameMismatch),
            ),
            (
                tls("invalid peer certificate: NotValidForName"),
                fatal(NotSent::NameMismatch),
            ),
            (
                tls("invalid peer certificate: certificate expired: …"),
                fatal(NotSent::BadCertificate),
            ),
            (
                io::Error::other("failed to lookup address information: Name or service not known"),
                fatal(NotSent::NoSuchHost),
            ),
            // As hyper-rustls hands it on: wrapped in another I/O error.
            (
                io::Error::other(tls("invalid peer certificate: UnknownIssuer")),
                fatal(NotSent::UnknownIssuer),
            ),
        ];
        for (err, expected) in cases {
            let text = err.to_string();
            assert_eq!(classify(err), expected, "{text}");
        }
    }

    #[test]
    fn what_a_retry_may_mend_stays_retryable() {
        let connect = Classification::retryable(Reason::NeverSent(NotSent::Connect));
        for err in [
            io::Error::from(io::ErrorKind::ConnectionRefused),
            // A resolver that could not answer now may answer next time.
            io::Error::other(
                "failed to lookup address information: Temporary failure in name resolution",
            ),
            // Invalid data that is not about a certificate.
            io::Error::new(io::ErrorKind::InvalidData, "corrupt message"),
            // A certificate mentioned, but not as TLS reports a handshake failure.
            io::Error::new(io::ErrorKind::TimedOut, "certificate fetch timed out"),
        ] {
            let text = err.to_string();
            assert_eq!(classify(err), connect, "{text}");
        }
    }
}

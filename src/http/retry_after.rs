//! `Retry-After` (RFC 9110 §10.2.3): how long the server asks the client to wait.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// The wait a `Retry-After` value asks for, seen at `now`.
///
/// Both forms are read: delay-seconds (`120`) and an HTTP-date in any of the three forms RFC 9110
/// accepts (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`). A date in the past
/// is a wait of zero. Anything else is `None`: the value is ignored and the normal backoff
/// applies. It never panics, whatever the bytes.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use tower_tenacity::http::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after(b"120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after(b"Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after(b"Sunday, 06-Nov-94 08:49:40 GMT", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after(b"Sun Nov  6 08:49:38 1994", now), Some(Duration::from_secs(1)));
/// assert_eq!(parse_retry_after(b"Sat, 05 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after(b"soon", now), None);
/// ```
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time", which the cap then refuses.
        let seconds = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response's headers, read as [`parse_retry_after`] does. With several,
/// the first is used.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.as_bytes(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_ignored_without_panicking() {
        let now = SystemTime::now();
        for value in [
            &b""[..],
            b" ",
            b"-5",
            b"1.5",
            b"12abc",
            b"\xff\xfe",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn huge_delays_saturate() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after(b"99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after(b" 7 ", now), Some(Duration::from_secs(7)));
    }
}

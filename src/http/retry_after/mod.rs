//! `Retry-After` (RFC 9110 §10.2.3): how long the server asks the client to wait, as the
//! [`HttpClassifier`](super::HttpClassifier) reads it. Every form is tested in `forms.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// The wait a `Retry-After` value asks for, seen at `now`.
///
/// Both forms are read: delay-seconds (`120`: ASCII digits and nothing else, so no sign and no
/// white space but the SP/HTAB around a field value) and an HTTP-date in any of the three forms
/// RFC 9110 accepts (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`). A two-digit year is
/// read as RFC 9110 §5.6.7 says: a date that would be more than 50 years ahead is the century
/// before. A date in the past, 1970 and earlier included, is a wait of zero. Anything else
/// (a date that does not exist, a weekday that does not fit it) is `None`: the value is ignored
/// and the normal backoff applies. It never panics, whatever the bytes.
///
pub(crate) fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = trim_ows(value);
    if text.is_empty() {
        return None;
    }
    if text.iter().all(u8::is_ascii_digit) {
        // Too many digits for a u64 is still "a very long time", which the cap then refuses.
        let seconds = std::str::from_utf8(text).ok()?.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let date = parse_http_date(text, now)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response's headers, read as [`parse_retry_after`] does. With several,
/// the first is used.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.as_bytes(), now)
}

/// Leading and trailing SP and HTAB, the optional white space around a field value (RFC 9110
/// §5.5); nothing else counts as white space.
fn trim_ows(mut text: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = text {
        text = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = text {
        text = rest;
    }
    text
}

/// 400 Gregorian years: the calendar repeats, weekdays and leap days included.
const CYCLE_YEARS: u16 = 400;
const CYCLE: Duration = Duration::from_secs(146_097 * 86_400);

/// An HTTP-date in any of its three forms. `httpdate` checks the date (the day exists, the
/// weekday fits) for the years it knows, 1970 to 9999; an earlier year is moved forward by whole
/// 400-year cycles for that check and moved back after it.
fn parse_http_date(text: &[u8], now: SystemTime) -> Option<SystemTime> {
    let mut date = [0u8; 29];
    let year_at = match text.len() {
        24 => 20, // asctime
        29 => 12, // IMF-fixdate
        _ => {
            date = rfc850_as_imf(text, now)?;
            return checked_date(&mut date, 12);
        }
    };
    let date = &mut date[..text.len()];
    date.copy_from_slice(text);
    checked_date(date, year_at)
}

fn checked_date(date: &mut [u8], year_at: usize) -> Option<SystemTime> {
    let digits = date.get(year_at..year_at + 4)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = digits
        .iter()
        .fold(0u16, |year, d| year * 10 + u16::from(d - b'0'));
    let cycles = if year < 1970 {
        (1970 - year).div_ceil(CYCLE_YEARS)
    } else {
        0
    };
    let shifted = (year + cycles * CYCLE_YEARS).to_string();
    date[year_at..year_at + 4].copy_from_slice(shifted.as_bytes());
    let parsed = httpdate::parse_http_date(std::str::from_utf8(date).ok()?).ok()?;
    parsed.checked_sub(CYCLE * u32::from(cycles))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Sunday, 06-Nov-94 08:49:37 GMT` as `Sun, 06 Nov 1994 08:49:37 GMT`, with the century that
/// RFC 9110 §5.6.7 gives a two-digit year: the latest one that is not more than 50 years ahead
/// of `now`.
fn rfc850_as_imf(text: &[u8], now: SystemTime) -> Option<[u8; 29]> {
    let comma = text.iter().position(|&b| b == b',')?;
    let (weekday, rest) = text.split_at(comma);
    WEEKDAYS.iter().find(|name| name.as_bytes() == weekday)?;
    // ", DD-Mon-YY HH:MM:SS GMT"
    let rest = rest.strip_prefix(b", ")?;
    if rest.len() != 22 || rest[2] != b'-' || rest[6] != b'-' {
        return None;
    }
    let yy = two_digits(&rest[7..9])?;
    let (day, month, time) = (&rest[0..2], &rest[3..6], &rest[9..]);
    let when = |year: u16| (year, month_number(month), day, &time[1..9]);

    let today = httpdate::fmt_http_date(clamp_to_httpdate(now));
    let today = today.as_bytes();
    let this_year = today[12..16]
        .iter()
        .fold(0u16, |year, d| year * 10 + u16::from(d - b'0'));
    let limit = (
        this_year + 50,
        month_number(&today[8..11]),
        &today[5..7],
        &today[17..25],
    );
    let mut year = this_year - this_year % 100 + u16::from(yy);
    if when(year + 100) <= limit {
        year += 100;
    } else if when(year) > limit {
        year = year.checked_sub(100)?;
    }
    if year > 9999 {
        return None;
    }

    let mut imf = [0u8; 29];
    imf[..3].copy_from_slice(&weekday[..3]);
    imf[3..5].copy_from_slice(b", ");
    imf[5..7].copy_from_slice(day);
    imf[7] = b' ';
    imf[8..11].copy_from_slice(month);
    imf[11] = b' ';
    imf[12..16].copy_from_slice(format!("{year:04}").as_bytes());
    imf[16..29].copy_from_slice(time);
    Some(imf)
}

fn two_digits(digits: &[u8]) -> Option<u8> {
    match digits {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// The month's number, or 0 for no month (which then fails `httpdate`'s check).
fn month_number(name: &[u8]) -> usize {
    MONTHS.iter().position(|&m| m == name).map_or(0, |i| i + 1)
}

/// `now` within the years `httpdate` can write (it panics outside them).
fn clamp_to_httpdate(now: SystemTime) -> SystemTime {
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799); // 9999-12-31 23:59:59
    now.clamp(UNIX_EPOCH, last)
}

#[cfg(test)]
mod forms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_in_one_example() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let wait = |value: &[u8]| parse_retry_after(value, now);
        assert_eq!(wait(b"120"), Some(Duration::from_secs(120)));
        assert_eq!(
            wait(b"Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            wait(b"Sunday, 06-Nov-94 08:49:40 GMT"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            wait(b"Sun Nov  6 08:49:38 1994"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait(b"Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(wait(b"Sat, 06 Nov 1954 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(wait(b"soon"), None);
        assert_eq!(wait("\u{a0}120".as_bytes()), None);
    }

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

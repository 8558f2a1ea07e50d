//! `Retry-After` read exactly as RFC 9110 reads it: delay-seconds is `1*DIGIT` and nothing else,
//! an HTTP-date in any of its three forms, two-digit years by the 50-year rule, and dates before
//! 1970 in the past. Whatever the bytes, no panic, and garbage is ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::parse_retry_after;
use proptest::prelude::*;

/// 2026-12-01 00:00:00 UTC.
fn december_2026() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_083_200)
}

const SECONDS_PER_DAY: u64 = 86_400;

#[test]
fn a_two_digit_year_less_than_50_years_ahead_is_in_this_century() {
    let now = december_2026();
    // 2070-01-01 00:00:00 UTC was a Wednesday (1970-01-01 was a Thursday).
    let in_2070 = UNIX_EPOCH + Duration::from_secs(3_155_760_000);
    assert_eq!(
        httpdate::fmt_http_date(in_2070),
        "Wed, 01 Jan 2070 00:00:00 GMT"
    );
    assert_eq!(
        parse_retry_after(b"Wednesday, 01-Jan-70 00:00:00 GMT", now),
        Some(in_2070.duration_since(now).unwrap())
    );
}

#[test]
fn a_two_digit_year_more_than_50_years_ahead_is_in_the_past() {
    let now = december_2026();
    // 2099 would be 73 years ahead: it is 1999, long past.
    assert_eq!(
        parse_retry_after(b"Friday, 31-Dec-99 23:59:59 GMT", now),
        Some(Duration::ZERO)
    );
    // The weekday must be 1999's: 2099-12-31 is a Thursday, so this is not a date at all.
    assert_eq!(
        parse_retry_after(b"Thursday, 31-Dec-99 23:59:59 GMT", now),
        None
    );
    // 2027 is next year.
    let next_year = parse_retry_after(b"Friday, 01-Jan-27 00:00:00 GMT", now).unwrap();
    assert_eq!(next_year, Duration::from_secs(31 * SECONDS_PER_DAY));
}

#[test]
fn a_two_digit_year_follows_the_clock_into_the_next_century() {
    // In 2090, "05" is 2105 (15 years ahead, three leap days: 2100 is not one), not 2005.
    let in_2090 = UNIX_EPOCH + Duration::from_secs(3_786_912_000); // Sun, 01 Jan 2090
    assert_eq!(
        httpdate::fmt_http_date(in_2090),
        "Sun, 01 Jan 2090 00:00:00 GMT"
    );
    let wait = parse_retry_after(b"Thursday, 01-Jan-05 00:00:00 GMT", in_2090).unwrap();
    assert_eq!(wait, Duration::from_secs((365 * 15 + 3) * SECONDS_PER_DAY));
}

/// Seconds from `now` to `at` (both seconds since 1970), as a wait.
fn wait(now: u64, at: u64) -> Option<Duration> {
    Some(Duration::from_secs(at - now))
}

#[test]
fn the_50_year_rule_compares_the_whole_date_to_the_second() {
    let now = december_2026();
    let today = 1_796_083_200;
    // 2076-01-02 is 49 years and a month ahead: this century, though 76 - 26 is 50.
    assert_eq!(
        parse_retry_after(b"Thursday, 02-Jan-76 00:00:00 GMT", now),
        wait(today, 3_345_148_800)
    );
    // Exactly 50 years ahead is not more than 50 years ahead; a second later is.
    assert_eq!(
        parse_retry_after(b"Tuesday, 01-Dec-76 00:00:00 GMT", now),
        wait(today, 3_374_006_400)
    );
    assert_eq!(
        parse_retry_after(b"Wednesday, 01-Dec-76 00:00:01 GMT", now),
        Some(Duration::ZERO),
        "1976-12-01 (a Wednesday), long past"
    );
    assert_eq!(
        parse_retry_after(b"Tuesday, 01-Dec-76 00:00:01 GMT", now),
        None,
        "2076-12-01 was a Tuesday, but 00:00:01 of it is 1976's"
    );
    // 2077-01-01 is more than 50 years ahead: 1977 (a Saturday).
    assert_eq!(
        parse_retry_after(b"Saturday, 01-Jan-77 00:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after(b"Friday, 01-Jan-77 00:00:00 GMT", now),
        None
    );
}

#[test]
fn a_clock_near_year_10000_reads_two_digit_years_without_panicking() {
    // 9990-01-01 00:00:00 UTC.
    let in_9990 = 253_086_768_000;
    let now = UNIX_EPOCH + Duration::from_secs(in_9990);
    // "99" is 9999, nine years ahead: the last second httpdate can write.
    assert_eq!(
        parse_retry_after(b"Friday, 31-Dec-99 23:59:59 GMT", now),
        wait(in_9990, 253_402_300_799)
    );
    // "05" is 10005: 15 years ahead, and past what an HTTP-date can be. Not 1905, nor 9905.
    assert_eq!(
        parse_retry_after(b"Monday, 01-Jan-05 00:00:00 GMT", now),
        None
    );
    // A clock past 9999 reads as the last second of 9999.
    let later = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
    assert_eq!(
        parse_retry_after(b"Friday, 31-Dec-99 23:59:59 GMT", later),
        Some(Duration::ZERO)
    );
}

#[test]
fn rfc850_dates_off_by_a_byte_are_ignored() {
    let now = december_2026();
    assert_eq!(
        parse_retry_after(b"Friday, 01-Jan-27 00:00:00 GMT", now),
        Some(Duration::from_secs(31 * SECONDS_PER_DAY))
    );
    for value in [
        "Fri, 01-Jan-27 00:00:00 GMT",
        "friday, 01-Jan-27 00:00:00 GMT",
        "Friday 01-Jan-27 00:00:00 GMT",
        "Friday, 01 Jan-27 00:00:00 GMT",
        "Friday, 01-Jan 27 00:00:00 GMT",
        "Friday, 01-Jan-27 00:00:00 GMTX",
        "Friday, 01-Jan-27  00:00:00 GMT",
        "Friday, 01-Jan-027 00:00:00 GMT",
        "Friday, 1-Jan-27 00:00:00 GMT",
        // Thursday's lengths (32 and 31 bytes) are nobody else's, so these reach the RFC 850
        // reader rather than the other forms'.
        "Thursday, 31-Dec-26 00:00:00 GM",
        "Thursday, 31-Dec-26 00:00:00 GMTX",
        "Friday, 01-Jan-2X 00:00:00 GMT",
        "Friday, 01-Foo-27 00:00:00 GMT",
    ] {
        assert_eq!(parse_retry_after(value.as_bytes(), now), None, "{value}");
    }
}

#[test]
fn a_clock_before_1970_reads_dates_before_1970_exactly() {
    // 1954-11-06 08:49:27 UTC, ten seconds before the date.
    let now = UNIX_EPOCH - Duration::from_secs(478_192_233);
    for value in [
        &b"Sat, 06 Nov 1954 08:49:37 GMT"[..],
        b"Sat Nov  6 08:49:37 1954",
    ] {
        assert_eq!(
            parse_retry_after(value, now),
            Some(Duration::from_secs(10)),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn the_first_retry_after_header_is_read() {
    use super::retry_after;
    use http::HeaderMap;
    use http::header::RETRY_AFTER;

    let now = december_2026();
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers, now), None);
    headers.append(RETRY_AFTER, "120".parse().unwrap());
    headers.append(RETRY_AFTER, "5".parse().unwrap());
    assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
}

#[test]
fn a_valid_date_before_1970_is_in_the_past() {
    let now = december_2026();
    for value in [
        &b"Sat, 06 Nov 1954 08:49:37 GMT"[..],
        b"Sat Nov  6 08:49:37 1954",
        b"Wed, 31 Dec 1969 23:59:59 GMT",
        b"Sat, 01 Jan 0000 00:00:00 GMT",
        b"Thu, 29 Feb 1968 12:00:00 GMT",
    ] {
        assert_eq!(
            parse_retry_after(value, now),
            Some(Duration::ZERO),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
    // Dates that do not exist stay garbage, however old.
    for value in [
        &b"Fri, 29 Feb 1967 12:00:00 GMT"[..],
        b"Sun, 06 Nov 1954 08:49:37 GMT",
        b"Sat, 31 Nov 1954 08:49:37 GMT",
    ] {
        assert_eq!(
            parse_retry_after(value, now),
            None,
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn delay_seconds_is_digits_and_nothing_else() {
    let now = december_2026();
    assert_eq!(
        parse_retry_after(b"120", now),
        Some(Duration::from_secs(120))
    );
    // Optional white space (SP, HTAB) around a field value is not part of it.
    assert_eq!(
        parse_retry_after(b" \t120\t ", now),
        Some(Duration::from_secs(120))
    );
    for value in [
        "+120",
        "-120",
        "\u{a0}120",
        "120\u{a0}",
        "\u{2003}120",
        "120\u{2003}",
        "\u{3000}120",
        "12 0",
        "1_20",
        "１２０",
        "",
        " ",
    ] {
        assert_eq!(parse_retry_after(value.as_bytes(), now), None, "{value:?}");
    }
}

/// The RFC 850 form of an IMF-fixdate, with the year's last two digits.
fn as_rfc850(imf: &str) -> String {
    let weekday = match &imf[..3] {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    format!(
        "{weekday}, {}-{}-{} {} GMT",
        &imf[5..7],
        &imf[8..11],
        &imf[14..16],
        &imf[17..25]
    )
}

/// The asctime form of an IMF-fixdate.
fn as_asctime(imf: &str) -> String {
    let day = imf[5..7].trim_start_matches('0');
    format!(
        "{} {} {day:>2} {} {}",
        &imf[..3],
        &imf[8..11],
        &imf[17..25],
        &imf[12..16]
    )
}

proptest! {
    #[test]
    fn no_bytes_panic(value in proptest::collection::vec(any::<u8>(), 0..40), now in any::<u64>()) {
        // Any clock, even one before 1970 or past year 9999.
        let now = UNIX_EPOCH
            .checked_add(Duration::from_secs(now >> 1))
            .unwrap_or(UNIX_EPOCH);
        let _ = parse_retry_after(&value, now);
        let _ = parse_retry_after(&value, UNIX_EPOCH - Duration::from_secs(1));
    }

    #[test]
    fn mangled_dates_do_not_panic(
        seconds in 0u64..253_402_300_799,
        at in 0usize..29,
        byte in any::<u8>(),
    ) {
        let mut date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds)).into_bytes();
        date[at] = byte;
        let _ = parse_retry_after(&date, december_2026());
        let rfc850 = as_rfc850(std::str::from_utf8(&date[..]).unwrap_or("Sun, 06 Nov 1994 08:49:37 GMT"));
        let _ = parse_retry_after(rfc850.as_bytes(), december_2026());
    }

    #[test]
    fn delay_seconds_round_trip(seconds in any::<u64>(), left in "[ \t]{0,3}", right in "[ \t]{0,3}") {
        let value = format!("{left}{seconds}{right}");
        prop_assert_eq!(parse_retry_after(value.as_bytes(), december_2026()), Some(Duration::from_secs(seconds)));
    }

    #[test]
    fn anything_but_digits_around_the_digits_is_garbage(
        seconds in any::<u32>(),
        around in prop_oneof![
            Just("+"), Just("-"), Just("\u{a0}"), Just("\u{2003}"), Just("\u{85}"),
            Just("\u{feff}"), Just("."), Just("s"), Just("\r"), Just("\n"), Just("\u{b}"), Just("\u{c}"),
        ],
        before in any::<bool>(),
    ) {
        let value = if before { format!("{around}{seconds}") } else { format!("{seconds}{around}") };
        prop_assert_eq!(parse_retry_after(value.as_bytes(), december_2026()), None);
    }

    #[test]
    fn every_form_of_a_date_reads_the_same(date in 0u64..253_402_300_799, now in 0u64..4_102_444_800) {
        let date = UNIX_EPOCH + Duration::from_secs(date);
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let expected = date.duration_since(now).unwrap_or(Duration::ZERO);
        let imf = httpdate::fmt_http_date(date);
        prop_assert_eq!(parse_retry_after(imf.as_bytes(), now), Some(expected), "{}", imf);
        prop_assert_eq!(parse_retry_after(as_asctime(&imf).as_bytes(), now), Some(expected), "{}", imf);
    }

    #[test]
    fn a_two_digit_year_within_49_years_reads_as_the_full_date(
        now in 1_600_000_000u64..4_102_444_800,
        offset in -1_546_000_000i64..1_546_000_000,
    ) {
        // 49 years either side of now: one century fits, and the rule must find it.
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let date = if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        };
        let imf = httpdate::fmt_http_date(date);
        let expected = parse_retry_after(imf.as_bytes(), now);
        prop_assert_eq!(parse_retry_after(as_rfc850(&imf).as_bytes(), now), expected, "{}", imf);
    }

    #[test]
    fn a_two_digit_year_is_never_more_than_50_years_ahead(
        date in 0u64..253_402_300_799,
        now in 0u64..4_102_444_800,
    ) {
        let date = UNIX_EPOCH + Duration::from_secs(date);
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let value = as_rfc850(&httpdate::fmt_http_date(date));
        let fifty_years_and_a_day = Duration::from_secs(50 * 31_556_952 + 2 * SECONDS_PER_DAY);
        if let Some(wait) = parse_retry_after(value.as_bytes(), now) {
            prop_assert!(wait <= fifty_years_and_a_day, "{}: {:?}", value, wait);
        }
    }

    #[test]
    fn a_date_before_1970_is_a_wait_of_zero(date in 0u64..12_622_780_800, cycles in 1u64..=4) {
        // A valid date of 1970 to 2369 moved back by whole 400-year cycles (146 097 days, the
        // same weekdays and leap days): still a valid date, and before 1970.
        let date = UNIX_EPOCH + Duration::from_secs(date);
        let imf = httpdate::fmt_http_date(date);
        let year: u64 = imf[12..16].parse().unwrap();
        let old = format!("{}{:04}{}", &imf[..12], year - 400 * cycles, &imf[16..]);
        prop_assert_eq!(parse_retry_after(old.as_bytes(), december_2026()), Some(Duration::ZERO), "{}", old);
        prop_assert_eq!(parse_retry_after(as_asctime(&old).as_bytes(), december_2026()), Some(Duration::ZERO), "{}", old);
    }
}

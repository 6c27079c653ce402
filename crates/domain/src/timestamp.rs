//! Reading the API's own timestamps (`2026-11-27T07:40:00.123456Z`) from responses.
//!
//! The API writes every time as RFC 3339 in UTC. Response types read them back with
//! [`deserialize`] rather than chrono's general-purpose parser: the same values, in a
//! fraction of the code, which matters in the web app's download. Request bodies, which
//! come from anyone, keep chrono's parser.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Deserializer};

/// An RFC 3339 date and time: `YYYY-MM-DD`, `T` (or `t` or a space), `HH:MM:SS`, an optional
/// fraction (to the nanosecond), and `Z` or an offset `±HH:MM`.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let (month, day) = (digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut at = 19;
    let mut nanos = 0;
    if sep(at, b".") {
        let start = at + 1;
        let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Digits past the ninth (below a nanosecond) are dropped.
        let kept = len.min(9);
        nanos = digits(start, kept)? * 10u32.pow(9 - u32::try_from(kept).ok()?);
        at = start + len;
    }
    let offset_minutes = match b.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let local =
        NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = local.checked_sub_signed(TimeDelta::minutes(offset_minutes))?;
    Some(utc.and_utc())
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// Reads a required timestamp.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let value = text(d)?.ok_or_else(|| serde::de::Error::custom("a timestamp is required"))?;
    parse(&value).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
}

/// Reads an optional timestamp (`null` or absent is `None`).
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match text(d)? {
        None => Ok(None),
        Some(value) => parse(&value)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp")),
    }
}

/// A calendar date, `YYYY-MM-DD`, as the API writes it: what chrono reads, in a fraction of
/// the code (the web app reads dates, and its size is budgeted).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |part: &[u8]| {
        part.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// Reads a required date.
pub fn deserialize_date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let value = text(d)?.ok_or_else(|| serde::de::Error::custom("a date is required"))?;
    parse_date(&value).ok_or_else(|| serde::de::Error::custom("not a YYYY-MM-DD date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_chrono_reads_them() {
        for text in [
            "2026-12-06",
            "2024-02-29",
            "2025-02-29",
            "2026-13-01",
            "0001-01-01",
            "2026-12-06T00:00:00Z",
            "20261206",
            "2026-12-0a",
        ] {
            assert_eq!(parse_date(text), text.parse::<NaiveDate>().ok(), "{text}");
        }
        // Stricter than chrono where the API never writes otherwise: two-digit months, days.
        assert_eq!(parse_date("2026-1-01"), None);
    }

    /// Whatever chrono reads as RFC 3339, this reads the same; whatever it refuses, so does
    /// this (leap seconds aside: the API never writes one).
    #[test]
    fn agrees_with_chrono() {
        for text in [
            "2026-11-27T07:40:00Z",
            "2026-11-27T07:40:00.1Z",
            "2026-11-27T07:40:00.123456Z",
            "2026-11-27T07:40:00.123456789Z",
            "2026-11-27t07:40:00z",
            "2026-11-27 07:40:00Z",
            "2026-11-27T07:40:00+02:00",
            "2026-11-27T01:40:00-05:30",
            "2026-12-31T23:59:59.999999999-23:59",
            "0001-01-01T00:00:00Z",
            "2024-02-29T12:00:00Z",
            "2025-02-29T12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T07:60:00Z",
            "2026-11-27T07:40:00",
            "2026-11-27T07:40:00.Z",
            "2026-11-27T07:40:00.1234567891Z",
            "2026-11-27T07:40:00+0200",
            "2026-11-27T07:40:00+24:00",
            "2026-11-27T07:40:00Zjunk",
            "2026-11-27",
            "",
            "26-11-27T07:40:00Z",
            "2026-11-27T07:40:00+02:00 ",
            "２026-11-27T07:40:00Z",
        ] {
            let ours = parse(text);
            let chrono = DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(ours, chrono, "{text:?}");
        }
    }

    #[test]
    fn reads_what_the_api_writes() {
        let now = Utc::now();
        let json = serde_json::to_string(&now).unwrap_or_default();
        let mut de = serde_json::Deserializer::from_str(&json);
        assert_eq!(deserialize(&mut de).ok(), Some(now));
        let mut null = serde_json::Deserializer::from_str("null");
        assert_eq!(deserialize_option(&mut null).ok(), Some(None));
        let mut bad = serde_json::Deserializer::from_str("\"yesterday\"");
        assert!(deserialize_option(&mut bad).is_err());
    }
}

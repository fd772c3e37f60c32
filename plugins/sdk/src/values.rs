//! Turning raw field values into typed values: numbers, dates, timestamps, and 'Unknown'.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::output::Value;
use crate::records::Raw;
use sluice_contract::ColumnType;

/// Whether a text value means "no value": empty, blank, or `Unknown` in any case.
#[inline(always)]
pub fn is_unknown(text: &str) -> bool {
    let text = trim(text);
    text.is_empty() || text.eq_ignore_ascii_case("unknown")
}

/// `str::trim`, skipped when the text plainly has nothing to trim (the usual case), which keeps
/// it off the hot path of every value.
#[inline(always)]
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Converts `raw` to a value of `column_type`; `Ok(Value::Null)` for absent or unknown values.
/// The error says what is wrong without quoting the value.
pub fn convert<'a>(raw: &'a Raw<'_>, column_type: ColumnType) -> Result<Value<'a>, &'static str> {
    let text = match raw {
        Raw::Missing | Raw::Null => return Ok(Value::Null),
        Raw::Nested => return Err("must be a single value, not an object or array"),
        Raw::Str(text) if is_unknown(text) => return Ok(Value::Null),
        Raw::Str(text) => Some(trim(text)),
        _ => None,
    };
    match (column_type, raw, text) {
        (ColumnType::String, _, Some(text)) => Ok(Value::String(text)),
        (ColumnType::String, _, None) => Err("must be text"),
        (ColumnType::Int32, Raw::Int(i), _) => int32(*i),
        (ColumnType::Int32, Raw::Float(f), _) => integral(*f).and_then(int32),
        (ColumnType::Int32, _, Some(text)) => parse_integer(text).and_then(int32).map_err(|e| comma_or(text, e)),
        (ColumnType::Int64, Raw::Int(i), _) => Ok(Value::Int64(*i)),
        (ColumnType::Int64, Raw::Float(f), _) => integral(*f).map(Value::Int64),
        (ColumnType::Int64, _, Some(text)) => parse_integer(text).map(Value::Int64).map_err(|e| comma_or(text, e)),
        (ColumnType::Float64, Raw::Int(i), _) => Ok(Value::Float64(*i as f64)),
        (ColumnType::Float64, Raw::Float(f), _) => Ok(Value::Float64(*f)),
        (ColumnType::Float64, _, Some(text)) => {
            parse_number(text).map(Value::Float64).ok_or(if has_comma(text) { COMMA_NUMBER } else { "is not a number" })
        }
        (ColumnType::Boolean, Raw::Bool(b), _) => Ok(Value::Boolean(*b)),
        (ColumnType::Boolean, _, Some(text)) => parse_bool(text).map(Value::Boolean).ok_or("is not true or false"),
        (ColumnType::Timestamp, _, Some(text)) => parse_timestamp(text).map(Value::Timestamp),
        (ColumnType::Instant, _, Some(text)) => parse_timestamp(text).map(Value::Instant),
        (ColumnType::Date, _, Some(text)) => parse_date(text).map(Value::Date),
        (ColumnType::Timestamp | ColumnType::Instant | ColumnType::Date, _, None) => Err("must be a date as text"),
        (ColumnType::Int32 | ColumnType::Int64, _, None) => Err("is not an integer"),
        (ColumnType::Float64, _, None) => Err("is not a number"),
        (ColumnType::Boolean, _, None) => Err("is not true or false"),
    }
}

/// Why `12,5` or `1,234` is not a number: a decimal comma (European spreadsheets) or a
/// thousands separator, which cannot be told apart.
const COMMA_NUMBER: &str =
    "is not a number: it holds a comma (a decimal comma or a thousands separator); send digits and a decimal point";
const COMMA_INTEGER: &str = "is not an integer: it holds a comma (a thousands separator?); send the digits alone";

/// Whether `text` is digits with a comma among them (and perhaps a sign or a point).
fn has_comma(text: &str) -> bool {
    text.contains(',')
        && text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b',' | b'.' | b'+' | b'-'))
}

/// [`COMMA_INTEGER`] for a number written with a comma, else `error`.
fn comma_or(text: &str, error: &'static str) -> &'static str {
    if has_comma(text) { COMMA_INTEGER } else { error }
}

const NOT_AN_INTEGER: &str = "is not an integer";
const OUT_OF_RANGE: &str = "is out of the integer range";

fn int32(i: i64) -> Result<Value<'static>, &'static str> {
    i32::try_from(i).map(Value::Int32).map_err(|_| OUT_OF_RANGE)
}

/// A float that holds an integer exactly (below 9e15, where doubles still count by one).
fn integral(f: f64) -> Result<i64, &'static str> {
    match f.abs() {
        _ if f.fract() != 0.0 || !f.is_finite() => Err(NOT_AN_INTEGER),
        // 2^63: `i64::MAX` rounds up to it as a double.
        magnitude if magnitude >= i64::MAX as f64 => Err(OUT_OF_RANGE),
        magnitude if magnitude >= 9.0e15 => Err(NOT_AN_INTEGER),
        _ => Ok(f as i64),
    }
}

/// An integer written as text: digits (too many for 64 bits: out of range), or a decimal
/// number that is integral (`12.0`); exponent notation (`2.14E+09`, a spreadsheet's way of
/// showing a long number it may have rounded) is refused.
fn parse_integer(text: &str) -> Result<i64, &'static str> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(integer);
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OUT_OF_RANGE);
    }
    let number = parse_number(text).ok_or(NOT_AN_INTEGER)?;
    if text.contains(['e', 'E']) {
        return Err(
            "is written in exponent notation (as spreadsheets show long numbers, often rounded): send all its digits",
        );
    }
    integral(number)
}

/// A finite decimal number; `NaN` and infinities are not numbers here.
fn parse_number(text: &str) -> Option<f64> {
    let looks_numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    text.parse::<f64>().ok().filter(|f| looks_numeric && f.is_finite())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Parses the timestamp layouts seen in clinical feeds into microseconds since
/// 1970-01-01 00:00:00:
/// `YYYY-MM-DD[ T]HH:MM[:SS[.f…]]`, `YYYY-MM-DD`, `M/D/YYYY[ H:MM[:SS]]`, each time optionally
/// followed by a zone: `Z`, `UTC`, `GMT` or an offset `±HH:MM`, `±HHMM`, `±HH` (what
/// JavaScript's `toISOString`, Java's `Instant` and FHIR instants write).
///
/// A value without a zone is kept as written (the sender's wall clock, as the seed's sources
/// send it); a value with a zone names an instant and is stored as that instant's UTC wall clock
/// (`2021-06-01T08:05:00+02:00` → `2021-06-01 06:05:00`), so no offset is dropped silently.
pub fn parse_timestamp(text: &str) -> Result<i64, &'static str> {
    let text = trim(text);
    if let Some(micros) = fixed_layout_timestamp(text.as_bytes()) {
        return Ok(micros);
    }
    let (text, offset_seconds) = split_zone(text)?;
    let local = match fixed_layout_timestamp(text.as_bytes()) {
        Some(micros) => micros,
        None => wall_clock(text)?,
    };
    Ok(local - offset_seconds * 1_000_000)
}

/// A timestamp without a zone, in any of the layouts [`parse_timestamp`] reads.
fn wall_clock(text: &str) -> Result<i64, &'static str> {
    let (date_part, time_part) = match text.find([' ', 'T']) {
        Some(at) => (&text[..at], Some(text[at + 1..].trim())),
        None => (text, None),
    };
    let date = parse_calendar_date(date_part)?;
    let time = match time_part {
        None => NaiveTime::MIN,
        // `2012-06-26T`: a time was meant and is missing, not midnight.
        Some("") => return Err(BAD_TIME),
        Some(time) => parse_time(time)?,
    };
    Ok(NaiveDateTime::new(date, time).and_utc().timestamp_micros())
}

/// Splits a zone designator off the time of `text`: the text without it and the zone's offset
/// from UTC in seconds (0 when there is none).
fn split_zone(text: &str) -> Result<(&str, i64), &'static str> {
    const BAD: &str = "has a time zone that is not Z, UTC or an offset ±HH:MM, ±HHMM or ±HH";
    let Some(time_at) = text.find([' ', 'T']).map(|at| at + 1) else {
        return Ok((text, 0));
    };
    let time = &text[time_at..];
    if let Some(rest) = time.strip_suffix(['Z', 'z']) {
        return Ok((text[..time_at + rest.len()].trim_end(), 0));
    }
    let upper_tail = time.get(time.len().saturating_sub(3)..).unwrap_or("");
    if upper_tail.eq_ignore_ascii_case("utc") || upper_tail.eq_ignore_ascii_case("gmt") {
        return Ok((text[..text.len() - 3].trim_end(), 0));
    }
    let Some(sign_at) = time.rfind(['+', '-']) else {
        return Ok((text, 0));
    };
    let offset = &time[sign_at + 1..];
    let (hours, minutes) = match offset.len() {
        2 => (offset, "00"),
        4 => (&offset[..2], &offset[2..]),
        5 if offset.as_bytes()[2] == b':' => (&offset[..2], &offset[3..]),
        _ => return Err(BAD),
    };
    let (Some(hours), Some(minutes)) = (two_digits(hours), two_digits(minutes)) else {
        return Err(BAD);
    };
    if hours > 23 || minutes > 59 {
        return Err("has an impossible time zone offset (beyond ±23:59)");
    }
    let seconds = i64::from(hours * 3600 + minutes * 60);
    let sign = if time.as_bytes()[sign_at] == b'-' { -1 } else { 1 };
    Ok((text[..time_at + sign_at].trim_end(), sign * seconds))
}

/// Exactly two ASCII digits as a number.
fn two_digits(text: &str) -> Option<u32> {
    (text.len() == 2).then_some(())?;
    digits(text)
}

/// The common layout `YYYY-MM-DD HH:MM:SS[.fff…]` (space or `T`, up to 9 fraction digits), read
/// by position without allocating; `None` for anything else (including impossible values), which
/// the general parser then handles and explains.
fn fixed_layout_timestamp(text: &[u8]) -> Option<i64> {
    if text.len() < 19 || text[4] != b'-' || text[7] != b'-' || !matches!(text[10], b' ' | b'T') {
        return None;
    }
    if text[13] != b':' || text[16] != b':' {
        return None;
    }
    // Fixed positions, checked and read without loops (each loop turn or call in Wasm also pays
    // an interruption check).
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !DIGITS.iter().all(|&i| text[i].is_ascii_digit()) {
        return None;
    }
    let digit = |i: usize| u32::from(text[i] - b'0');
    let year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
    let (month, day) = (digit(5) * 10 + digit(6), digit(8) * 10 + digit(9));
    let (hour, minute, second) = (digit(11) * 10 + digit(12), digit(14) * 10 + digit(15), digit(17) * 10 + digit(18));
    let micros = match &text[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) && fraction.iter().all(u8::is_ascii_digit) => {
            // The first six digits, right-padded with zeros: microseconds.
            (0..6).fold(0u32, |acc, i| acc * 10 + fraction.get(i).map_or(0, |b| u32::from(b - b'0')))
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1_000_000 + i64::from(micros))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `YYYY-MM-DD` or `M/D/YYYY` (a time part, if any, must be midnight-free of meaning
/// and is ignored) into days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i32, &'static str> {
    let text = text.trim();
    let date_part = text.split([' ', 'T']).next().unwrap_or(text);
    let date = parse_calendar_date(date_part)?;
    let days = date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days();
    i32::try_from(days).map_err(|_| "is not a possible date")
}

/// Why `26/06/2012` is refused: a date with slashes is read month first, as the seed's sources
/// write it.
const DAY_FIRST: &str = "is not a possible date: dates with `/` are read month first (M/D/YYYY); send a day-first \
                         date as YYYY-MM-DD";

fn parse_calendar_date(text: &str) -> Result<NaiveDate, &'static str> {
    const BAD: &str = "is not a date (expected YYYY-MM-DD or M/D/YYYY)";
    let (year, month, day) = if let Some((year, rest)) = text.split_once('-') {
        let (month, day) = rest.split_once('-').ok_or(BAD)?;
        if year.len() != 4 {
            return Err(BAD);
        }
        (digits(year).ok_or(BAD)?, digits(month).ok_or(BAD)?, digits(day).ok_or(BAD)?)
    } else if let Some((month, rest)) = text.split_once('/') {
        let (day, year) = rest.split_once('/').ok_or(BAD)?;
        if year.len() != 4 {
            return Err(BAD);
        }
        let (year, month, day) = (digits(year).ok_or(BAD)?, digits(month).ok_or(BAD)?, digits(day).ok_or(BAD)?);
        if month > 12 && (1..=12).contains(&day) {
            return Err(DAY_FIRST);
        }
        (year, month, day)
    } else {
        return Err(BAD);
    };
    if year == 0 {
        // Readers (Python's datetime, Java's LocalDate from SQL) have no year 0, and senders use
        // it for "no date".
        return Err("has the year 0000, which is no date (send no value for an unknown date)");
    }
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("is not a possible date")
}

const BAD_TIME: &str = "has a time that is not HH:MM[:SS[.fff]] (optionally followed by Z or an offset ±HH:MM)";

fn parse_time(text: &str) -> Result<NaiveTime, &'static str> {
    const BAD: &str = BAD_TIME;
    let (clock, fraction) = match text.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (text, None),
    };
    let (hour, rest) = clock.split_once(':').ok_or(BAD)?;
    let (minute, second) = match rest.split_once(':') {
        Some((minute, second)) => (minute, Some(second)),
        None => (rest, None),
    };
    // `08:5` may be 08:05 or a cut-off 08:50: minutes and seconds take two digits.
    let hour = (hour.len() <= 2).then(|| digits(hour)).flatten().ok_or(BAD)?;
    let minute = two_digits(minute).ok_or(BAD)?;
    let second = second.map_or(Some(0), two_digits).ok_or(BAD)?;
    let micros = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            // The first six digits, right-padded with zeros: microseconds.
            f.bytes().chain(std::iter::repeat(b'0')).take(6).fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
        }
        Some(_) => return Err(BAD),
    };
    NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or("has an impossible time of day")
}

/// One to four ASCII digits as a number.
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_micro_opt(h, mi, s, us).unwrap().and_utc().timestamp_micros()
    }

    #[test]
    fn seed_timestamp_layouts_keep_their_wall_clock_value() {
        assert_eq!(parse_timestamp("1975-01-04 14:49:59.587"), Ok(ts(1975, 1, 4, 14, 49, 59, 587_000)));
        assert_eq!(parse_timestamp("6/26/2012"), Ok(ts(2012, 6, 26, 0, 0, 0, 0)));
        assert_eq!(parse_timestamp("2012-06-26T08:05"), Ok(ts(2012, 6, 26, 8, 5, 0, 0)));
        assert_eq!(parse_timestamp("1/2/2003 4:05:06"), Ok(ts(2003, 1, 2, 4, 5, 6, 0)));
        assert_eq!(parse_timestamp("1960-02-29"), Ok(ts(1960, 2, 29, 0, 0, 0, 0)));
    }

    #[test]
    fn the_fixed_layout_fast_path_agrees_with_the_general_parser() {
        // Every month end, leap years, the epoch, before it, and fractions of every length.
        let mut checked = 0;
        for year in [1600, 1899, 1900, 1960, 1969, 1970, 1999, 2000, 2024, 2100, 9999] {
            for month in 1..=12 {
                for day in [1, 28, 29, 30, 31] {
                    for (clock, micros) in [("00:00:00", 0), ("23:59:59.999999", 999_999), ("12:34:56.7", 700_000)] {
                        let text = format!("{year:04}-{month:02}-{day:02} {clock}");
                        let expected = NaiveDate::from_ymd_opt(year, month, day)
                            .and_then(|d| {
                                let (h, m, s) =
                                    (clock[0..2].parse().ok()?, clock[3..5].parse().ok()?, clock[6..8].parse().ok()?);
                                d.and_hms_micro_opt(h, m, s, micros)
                            })
                            .map(|t| t.and_utc().timestamp_micros());
                        assert_eq!(fixed_layout_timestamp(text.as_bytes()), expected, "{text}");
                        assert_eq!(parse_timestamp(&text).ok(), expected, "{text}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 11 * 12 * 5 * 3);
        assert_eq!(fixed_layout_timestamp(b"2000-01-01 00:00:00.1234567890"), None);
        assert_eq!(fixed_layout_timestamp(b"2000-01-01 00:00:00.12a"), None);
        assert_eq!(fixed_layout_timestamp(b"2000-01-01 24:00:00"), None);
        assert_eq!(parse_timestamp("2000-01-01T08:05:00.123456789"), Ok(ts(2000, 1, 1, 8, 5, 0, 123_456)));
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert_eq!(parse_timestamp("2011-02-30 00:00:00"), Err("is not a possible date"));
        assert_eq!(parse_timestamp("13/13/2000"), Err("is not a possible date"));
        assert_eq!(parse_timestamp("13/1/2000"), Err(DAY_FIRST), "day first: said so");
        assert_eq!(parse_timestamp("26/06/2012 08:05"), Err(DAY_FIRST));
        let year_zero = Err("has the year 0000, which is no date (send no value for an unknown date)");
        assert_eq!(parse_timestamp("0000-01-01"), year_zero);
        assert_eq!(parse_timestamp("1/1/0000 00:00"), year_zero);
        assert_eq!(parse_timestamp("2000-01-01 25:00:00"), Err("has an impossible time of day"));
        assert_eq!(parse_timestamp("yesterday"), Err("is not a date (expected YYYY-MM-DD or M/D/YYYY)"));
        assert_eq!(parse_timestamp("01-02-03"), Err("is not a date (expected YYYY-MM-DD or M/D/YYYY)"));
        assert_eq!(parse_date("1970-01-02"), Ok(1));
    }

    #[test]
    fn times_cut_short_are_refused_not_completed() {
        for text in ["2012-06-26T", "2012-06-26 08:5", "2012-06-26 8:5:3", "2012-06-26 08:05:3", "2012-06-26 0008:05"] {
            assert_eq!(parse_timestamp(text), Err(BAD_TIME), "{text}");
        }
        assert_eq!(parse_timestamp("2012-06-26 8:05"), Ok(ts(2012, 6, 26, 8, 5, 0, 0)), "a one-digit hour is whole");
        assert_eq!(parse_timestamp("2012-06-26"), Ok(ts(2012, 6, 26, 0, 0, 0, 0)), "a date alone is midnight");
    }

    #[test]
    fn unknown_and_empty_become_null() {
        for text in ["Unknown", "unknown", "", "  "] {
            assert_eq!(convert(&Raw::Str(Cow::Borrowed(text)), ColumnType::String), Ok(Value::Null));
            assert_eq!(convert(&Raw::Str(Cow::Borrowed(text)), ColumnType::Float64), Ok(Value::Null));
        }
        assert_eq!(convert(&Raw::Missing, ColumnType::Timestamp), Ok(Value::Null));
    }

    #[test]
    fn numbers_are_checked() {
        let s = |t: &'static str| Raw::Str(Cow::Borrowed(t));
        assert_eq!(convert(&s(" 42 "), ColumnType::Int32), Ok(Value::Int32(42)));
        assert_eq!(convert(&s("4.0"), ColumnType::Int32), Ok(Value::Int32(4)));
        assert_eq!(convert(&s("4.5"), ColumnType::Int32), Err("is not an integer"));
        assert_eq!(convert(&s("NaN"), ColumnType::Float64), Err("is not a number"));
        assert_eq!(convert(&s("12,5"), ColumnType::Float64), Err(COMMA_NUMBER));
        assert_eq!(convert(&s("1,234.5"), ColumnType::Float64), Err(COMMA_NUMBER));
        assert_eq!(convert(&s("1,234"), ColumnType::Int32), Err(COMMA_INTEGER));
        assert_eq!(convert(&s("a,b"), ColumnType::Float64), Err("is not a number"));
        assert_eq!(convert(&s("inf"), ColumnType::Float64), Err("is not a number"));
        assert_eq!(convert(&s("1e3"), ColumnType::Float64), Ok(Value::Float64(1000.0)));
        assert_eq!(convert(&Raw::Int(1 << 40), ColumnType::Int32), Err("is out of the integer range"));
        for (text, column_type) in [
            ("2147483648", ColumnType::Int32),
            ("-2147483649", ColumnType::Int32),
            ("9223372036854775808", ColumnType::Int64),
            ("-9223372036854775809", ColumnType::Int64),
            ("3000000000.0", ColumnType::Int32),
            ("1.0e19", ColumnType::Float64),
        ] {
            let expected =
                if column_type == ColumnType::Float64 { Ok(Value::Float64(1.0e19)) } else { Err(OUT_OF_RANGE) };
            assert_eq!(convert(&s(text), column_type), expected, "{text}");
        }
        assert_eq!(convert(&Raw::Float(3.0e9), ColumnType::Int32), Err(OUT_OF_RANGE));
        assert_eq!(convert(&Raw::Float(1.0e19), ColumnType::Int64), Err(OUT_OF_RANGE));
        assert_eq!(convert(&Raw::Float(1.0e3), ColumnType::Int64), Ok(Value::Int64(1000)), "a JSON number");
        for text in ["2.14E+09", "1e3"] {
            assert_eq!(
                convert(&s(text), ColumnType::Int64),
                Err("is written in exponent notation (as spreadsheets show long numbers, often rounded): send all \
                     its digits")
            );
        }
        assert_eq!(convert(&Raw::Float(2.5), ColumnType::Float64), Ok(Value::Float64(2.5)));
        assert_eq!(convert(&Raw::Int(3), ColumnType::String), Err("must be text"));
        assert_eq!(convert(&Raw::Nested, ColumnType::String), Err("must be a single value, not an object or array"));
    }

    #[test]
    fn zoned_timestamps_are_stored_as_utc_wall_clock() {
        let utc = ts(2021, 6, 1, 8, 5, 0, 0);
        for text in [
            "2021-06-01T08:05:00Z",
            "2021-06-01T08:05:00z",
            "2021-06-01 08:05:00 UTC",
            "2021-06-01T10:05:00+02:00",
            "2021-06-01T10:05:00+0200",
            "2021-06-01T10:05:00+02",
            "2021-06-01T03:35:00-04:30",
            "2021-06-01T08:05:00+00:00",
            "2021-06-01T08:05Z",
            "2021-06-01 10:05:00 +02:00",
        ] {
            assert_eq!(parse_timestamp(text), Ok(utc), "{text}");
        }
        assert_eq!(parse_timestamp("2021-06-01T08:05:00.123Z"), Ok(ts(2021, 6, 1, 8, 5, 0, 123_000)));
        assert_eq!(parse_timestamp("2021-06-01T00:30:00.5+01:00"), Ok(ts(2021, 5, 31, 23, 30, 0, 500_000)));
        assert_eq!(parse_timestamp("6/1/2021 8:05:00 -01:00"), Ok(ts(2021, 6, 1, 9, 5, 0, 0)));
        // Without a zone the wall clock is kept as written.
        assert_eq!(parse_timestamp("2021-06-01T08:05:00"), Ok(utc));
    }

    #[test]
    fn a_bad_zone_is_named_precisely() {
        let bad_zone = "has a time zone that is not Z, UTC or an offset ±HH:MM, ±HHMM or ±HH";
        assert_eq!(parse_timestamp("2021-06-01T08:05:00+2"), Err(bad_zone));
        assert_eq!(parse_timestamp("2021-06-01T08:05:00+02:0"), Err(bad_zone));
        assert_eq!(parse_timestamp("2021-06-01T08:05:00+ab:cd"), Err(bad_zone));
        assert_eq!(
            parse_timestamp("2021-06-01T08:05:00+24:00"),
            Err("has an impossible time zone offset (beyond ±23:59)")
        );
        assert_eq!(
            parse_timestamp("2021-06-01T08:05:00+02:60"),
            Err("has an impossible time zone offset (beyond ±23:59)")
        );
        assert_eq!(
            parse_timestamp("2021-06-01T08h05Z"),
            Err("has a time that is not HH:MM[:SS[.fff]] (optionally followed by Z or an offset ±HH:MM)")
        );
        assert_eq!(parse_timestamp("2021-06-01T25:00:00Z"), Err("has an impossible time of day"));
    }
}

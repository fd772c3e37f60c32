//! HL7 v2 date/time values (TS, DTM, DT): `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`.
//!
//! A value may stop after any part (`2021`, `202108`, `20210817`): it stands for the start of
//! that period, and its precision is kept beside it. A value with an offset is an instant; one
//! without is read in the source's time zone.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// How much of a date/time value the sender gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYYMM`.
    Month,
    /// `YYYYMMDD`.
    Day,
    /// `YYYYMMDDHH`.
    Hour,
    /// `YYYYMMDDHHMM`.
    Minute,
    /// `YYYYMMDDHHMMSS`.
    Second,
    /// Fractions of a second.
    Fraction,
}

impl Precision {
    /// The name stored in the `*_precision` columns.
    pub fn name(self) -> &'static str {
        match self {
            Self::Year => "year",
            Self::Month => "month",
            Self::Day => "day",
            Self::Hour => "hour",
            Self::Minute => "minute",
            Self::Second => "second",
            Self::Fraction => "fraction",
        }
    }
}

/// A parsed value: the start of the period it names, its precision, and its offset from UTC in
/// seconds when the sender gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeValue {
    /// The wall-clock start of the period.
    pub local: NaiveDateTime,
    /// What the sender gave.
    pub precision: Precision,
    /// Offset from UTC in seconds, if sent.
    pub offset: Option<i32>,
}

impl DateTimeValue {
    /// Microseconds since 1970-01-01 00:00:00 UTC: with its own offset if it has one, else read
    /// in `zone` (a wall-clock time skipped by a daylight-saving change is read with the offset
    /// before the change; one that occurs twice, as the earlier of the two).
    pub fn instant(&self, zone: Tz) -> i64 {
        match self.offset {
            Some(seconds) => (self.local - chrono::TimeDelta::seconds(seconds.into())).and_utc().timestamp_micros(),
            None => match zone.from_local_datetime(&self.local).earliest() {
                Some(t) => t.timestamp_micros(),
                None => {
                    let before = zone.offset_from_utc_datetime(&(self.local - chrono::TimeDelta::hours(3)));
                    let offset: FixedOffset = chrono::Offset::fix(&before);
                    (self.local - chrono::TimeDelta::seconds(offset.local_minus_utc().into()))
                        .and_utc()
                        .timestamp_micros()
                }
            },
        }
    }

    /// Days since 1970-01-01 of the calendar date as written (the offset is not applied: a birth
    /// date is a date, not an instant).
    pub fn days(&self) -> i32 {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
        (self.local.date() - epoch).num_days() as i32
    }
}

/// Parses a TS/DTM/DT value. `Err` says what is wrong without quoting the value.
pub fn parse(text: &str) -> Result<DateTimeValue, &'static str> {
    // TS's second component (degree of precision, deprecated) is not read.
    let text = text.split('^').next().unwrap_or("").trim();
    const NOT_DATE_TIME: &str = "is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])";
    let (body, offset_text) = match text.find(['+', '-']) {
        Some(at) => (&text[..at], Some(&text[at..])),
        None => (text, None),
    };
    let (digits, fraction) = match body.split_once('.') {
        Some((digits, fraction)) => (digits, Some(fraction)),
        None => (body, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NOT_DATE_TIME);
    }
    if offset_text.is_some_and(|o| !o[1..].bytes().all(|b| b.is_ascii_digit())) {
        return Err(NOT_DATE_TIME);
    }
    let offset = offset_text.map(parse_offset).transpose()?;
    let precision = match digits.len() {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 if fraction.is_some() => Precision::Fraction,
        14 => Precision::Second,
        _ => return Err(NOT_DATE_TIME),
    };
    if fraction.is_some() && digits.len() != 14 {
        return Err("has fractions of a second without seconds");
    }
    let number = |from: usize, len: usize, default: u32| -> u32 {
        digits.get(from..from + len).map_or(default, |d| d.parse().unwrap_or(u32::MAX))
    };
    let year = number(0, 4, 0) as i32;
    if year == 0 {
        return Err("has the year 0000, which is no date (send the field empty for an unknown time)");
    }
    let date = NaiveDate::from_ymd_opt(year, number(4, 2, 1), number(6, 2, 1)).ok_or("is not a valid calendar date")?;
    let micros = fraction.map_or(0, |f| {
        let mut padded: String = f.chars().take(6).collect();
        while padded.len() < 6 {
            padded.push('0');
        }
        padded.parse::<u32>().unwrap_or(0)
    });
    let time = NaiveTime::from_hms_micro_opt(number(8, 2, 0), number(10, 2, 0), number(12, 2, 0), micros)
        .ok_or("is not a valid time of day")?;
    Ok(DateTimeValue { local: NaiveDateTime::new(date, time), precision, offset })
}

fn parse_offset(text: &str) -> Result<i32, &'static str> {
    const BAD: &str = "has a time zone offset that is not +/-HHMM";
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let digits = &text[1..];
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    let hours: i32 = digits[..2].parse().map_err(|_| BAD)?;
    let minutes: i32 = digits[2..].parse().map_err(|_| BAD)?;
    if hours > 23 || minutes > 59 {
        return Err(BAD);
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        let micros = parse(text).unwrap().instant(Tz::UTC);
        chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%d %H:%M:%S%.f").to_string()
    }

    #[test]
    fn offsets_make_instants_in_utc() {
        assert_eq!(utc("20210817151943.4+0200"), "2021-08-17 13:19:43.400");
        assert_eq!(utc("198908181126+0215"), "1989-08-18 09:11:00");
        assert_eq!(utc("20210817151943-0500"), "2021-08-17 20:19:43");
    }

    #[test]
    fn partial_values_are_the_start_of_their_period_with_their_precision() {
        assert_eq!(parse("2021").unwrap().precision, Precision::Year);
        assert_eq!(utc("2021"), "2021-01-01 00:00:00");
        assert_eq!(utc("202108"), "2021-08-01 00:00:00");
        assert_eq!(parse("20210817").unwrap().precision, Precision::Day);
        assert_eq!(parse("2021081715").unwrap().precision, Precision::Hour);
        assert_eq!(parse("20210817151943.1234").unwrap().precision, Precision::Fraction);
        assert_eq!(parse("19800202").unwrap().days(), 3684);
    }

    #[test]
    fn values_without_an_offset_are_read_in_the_source_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let winter = parse("20210115120000").unwrap().instant(berlin);
        let summer = parse("20210715120000").unwrap().instant(berlin);
        assert_eq!(winter, parse("20210115110000").unwrap().instant(Tz::UTC));
        assert_eq!(summer, parse("20210715100000").unwrap().instant(Tz::UTC));
        // 02:30 on 2021-03-28 does not exist in Berlin: read with the offset before the change.
        let gap = parse("202103280230").unwrap().instant(berlin);
        assert_eq!(gap, parse("202103280130").unwrap().instant(Tz::UTC));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        assert_eq!(parse("196203520").unwrap_err(), "is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])");
        assert_eq!(parse("20211345").unwrap_err(), "is not a valid calendar date");
        assert_eq!(parse("2021010125").unwrap_err(), "is not a valid time of day");
        assert_eq!(parse("20210101+2").unwrap_err(), "has a time zone offset that is not +/-HHMM");
        assert_eq!(parse("2021.5").unwrap_err(), "has fractions of a second without seconds");
        let year_zero = "has the year 0000, which is no date (send the field empty for an unknown time)";
        assert_eq!((parse("00000101").unwrap_err(), parse("0000").unwrap_err()), (year_zero, year_zero));
    }
}

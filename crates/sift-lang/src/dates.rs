//! Dates and datetimes as the condition language writes them: `YYYY-MM-DD` for
//! a [`Date`] and RFC 3339 in UTC for a [`DateTime`]. Parsing and calendar
//! validation go through jiff; the printed forms are built by hand so that they
//! are exactly the canonical ones (no sub-millisecond digits, `Z` suffix).

use jiff::fmt::temporal::Pieces;
use jiff::{SignedDuration, civil};

use crate::{Date, DateTime};

const EPOCH: civil::Date = civil::Date::constant(1970, 1, 1);
const SECONDS_PER_DAY: i64 = 86_400;
/// Milliseconds in a day: a date used against a datetime field means midnight UTC.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Whether `text` has the shape `dddd-dd-dd`, valid or not. The parser uses it
/// to say "not a valid date" for `1965-13-01` instead of "not a number".
pub(crate) fn has_date_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(idx, byte)| match idx {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        })
}

/// The one range of dates and datetimes Sift accepts, everywhere one is
/// given (properties, event times, conditions, imports), in words.
pub const DATE_RANGE: &str = "0001-01-01 to 9999-12-31";
/// 0001-01-01 and 9999-12-31 as days since 1970-01-01.
pub const MIN_DATE: Date = -719_162;
pub const MAX_DATE: Date = 2_932_896;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in milliseconds.
pub const MIN_DATETIME: DateTime = MIN_DATE as DateTime * MS_PER_DAY;
pub const MAX_DATETIME: DateTime = (MAX_DATE as DateTime + 1) * MS_PER_DAY - 1;

/// Why a date or datetime was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateError {
    /// Not the expected form, or not a calendar date or time.
    Invalid,
    /// A real date or datetime outside [`DATE_RANGE`].
    OutOfRange,
}

/// `YYYY-MM-DD` exactly, validated as a calendar date, as days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<Date> {
    date_in_range(text).ok()
}

/// Like [`parse_date`], telling a malformed date from one outside [`DATE_RANGE`].
pub fn date_in_range(text: &str) -> Result<Date, DateError> {
    if text.len() != 10 || !has_date_shape(text) {
        return Err(DateError::Invalid);
    }
    // The shape check guarantees ASCII digits at these ranges.
    let year: Option<i16> = text.get(0..4).and_then(|t| t.parse().ok());
    let month: Option<i8> = text.get(5..7).and_then(|t| t.parse().ok());
    let day: Option<i8> = text.get(8..10).and_then(|t| t.parse().ok());
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(DateError::Invalid);
    };
    let date = civil::Date::new(year, month, day).map_err(|_| DateError::Invalid)?;
    let days = date.duration_since(EPOCH).as_secs() / SECONDS_PER_DAY;
    match Date::try_from(days) {
        Ok(days) if (MIN_DATE..=MAX_DATE).contains(&days) => Ok(days),
        _ => Err(DateError::OutOfRange),
    }
}

/// An RFC 3339 datetime with a `Z` or numeric offset (converted to UTC), as
/// milliseconds since the epoch. Digits below the millisecond are dropped.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    datetime_in_range(text).ok()
}

/// Like [`parse_datetime`], telling a malformed datetime from one outside
/// [`DATE_RANGE`] (in UTC, after its offset). The civil parts are read
/// without a timestamp's range, so 9999-12-31T23:00:00Z is a datetime like
/// any other rather than a parse failure.
pub fn datetime_in_range(text: &str) -> Result<DateTime, DateError> {
    // Require the date part and a time separator, so that a bare date or
    // other looser forms jiff might accept are not taken for datetimes.
    if !has_date_shape(text) || !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(DateError::Invalid);
    }
    let pieces = Pieces::parse(text).map_err(|_| DateError::Invalid)?;
    let (Some(time), Some(offset)) = (pieces.time(), pieces.offset()) else {
        return Err(DateError::Invalid);
    };
    let days = pieces.date().duration_since(EPOCH).as_secs() / SECONDS_PER_DAY;
    let in_day = i64::from(time.hour()) * 3_600_000
        + i64::from(time.minute()) * 60_000
        + i64::from(time.second()) * 1000
        + i64::from(time.subsec_nanosecond()) / 1_000_000;
    let offset_ms = i64::from(offset.to_numeric_offset().seconds()) * 1000;
    let ms = days * MS_PER_DAY + in_day - offset_ms;
    if (MIN_DATETIME..=MAX_DATETIME).contains(&ms) {
        Ok(ms)
    } else {
        Err(DateError::OutOfRange)
    }
}

/// `YYYY-MM-DD`; days outside jiff's range (years -9999..=9999) fall back to the
/// plain number, which cannot come from a checked tree.
pub fn format_date(days: Date) -> String {
    let shifted = EPOCH.checked_add(SignedDuration::from_hours(i64::from(days) * 24));
    match shifted {
        Ok(date) if date.year() >= 0 => {
            format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
        }
        _ => days.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, with `.mmm` only when the milliseconds are not zero.
pub fn format_datetime(ms: DateTime) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let Ok(days) = Date::try_from(days) else {
        return ms.to_string();
    };
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    let mut out = format!("{}T{hours:02}:{minutes:02}:{seconds:02}", format_date(days));
    if millis != 0 {
        out.push_str(&format!(".{millis:03}"));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1965-01-01"), Some(-1826));
        assert_eq!(parse_date("1965-13-01"), None);
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(format_date(-1826), "1965-01-01");
        assert_eq!(format_date(parse_date("9999-12-31").unwrap()), "9999-12-31");
    }

    #[test]
    fn one_range_for_dates_and_datetimes() {
        assert_eq!(date_in_range("0001-01-01"), Ok(MIN_DATE));
        assert_eq!(date_in_range("9999-12-31"), Ok(MAX_DATE));
        assert_eq!(date_in_range("0000-12-31"), Err(DateError::OutOfRange));
        assert_eq!(date_in_range("9999-12-32"), Err(DateError::Invalid));
        for (text, ms) in [
            ("9999-12-30T22:00:00Z", MAX_DATETIME - 26 * 3_600_000 + 1),
            ("9999-12-31T12:00:00Z", MAX_DATETIME - 12 * 3_600_000 + 1),
            ("9999-12-31T23:59:59.999Z", MAX_DATETIME),
            ("9999-12-31T23:59:59.999+00:00", MAX_DATETIME),
            ("0001-01-01T00:00:00Z", MIN_DATETIME),
            ("0001-01-01T01:00:00+01:00", MIN_DATETIME),
        ] {
            assert_eq!(datetime_in_range(text), Ok(ms), "{text}");
            assert_eq!(parse_datetime(&format_datetime(ms)), Some(ms), "{text}");
        }
        for text in [
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
            "0000-06-01T00:00:00Z",
        ] {
            assert_eq!(
                datetime_in_range(text),
                Err(DateError::OutOfRange),
                "{text}"
            );
        }
        for text in [
            "9999-12-31T25:00:00Z",
            "9999-12-31",
            "9999-12-31T10:00:00",
            "x",
        ] {
            assert_eq!(datetime_in_range(text), Err(DateError::Invalid), "{text}");
        }
        assert_eq!(format_date(MIN_DATE), "0001-01-01");
        assert_eq!(format_datetime(MAX_DATETIME), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn datetimes_round_trip() {
        let ms = parse_datetime("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(format_datetime(ms), "2024-05-01T10:00:00Z");
        let offset = parse_datetime("2024-05-01T12:00:00.250+02:00").unwrap();
        assert_eq!(format_datetime(offset), "2024-05-01T10:00:00.250Z");
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_datetime("2024-05-01T10:00:00"), None);
        assert_eq!(parse_datetime("2024-05-01"), None);
    }
}

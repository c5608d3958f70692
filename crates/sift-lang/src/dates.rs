//! Dates and datetimes as the condition language writes them: `YYYY-MM-DD` for
//! a [`Date`] and RFC 3339 in UTC for a [`DateTime`]. Parsing and calendar
//! validation go through jiff; the printed forms are built by hand so that they
//! are exactly the canonical ones (no sub-millisecond digits, `Z` suffix).

use jiff::{SignedDuration, Timestamp, civil};

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

/// `YYYY-MM-DD` exactly, validated as a calendar date, as days since 1970-01-01.
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    if text.len() != 10 || !has_date_shape(text) {
        return None;
    }
    // The shape check guarantees ASCII digits at these ranges.
    let year: i16 = text.get(0..4)?.parse().ok()?;
    let month: i8 = text.get(5..7)?.parse().ok()?;
    let day: i8 = text.get(8..10)?.parse().ok()?;
    let date = civil::Date::new(year, month, day).ok()?;
    let days = date.duration_since(EPOCH).as_secs() / SECONDS_PER_DAY;
    Date::try_from(days).ok()
}

/// An RFC 3339 datetime with a `Z` or numeric offset (converted to UTC), as
/// milliseconds since the epoch. Digits below the millisecond are dropped.
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime> {
    // Require the date part and a time separator, so that a bare date or
    // other looser forms jiff might accept are not taken for datetimes.
    if !has_date_shape(text) || !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    let timestamp: Timestamp = text.parse().ok()?;
    Some(timestamp.as_millisecond())
}

/// `YYYY-MM-DD`; days outside jiff's range (years -9999..=9999) fall back to the
/// plain number, which cannot come from a checked tree.
pub(crate) fn format_date(days: Date) -> String {
    let shifted = EPOCH.checked_add(SignedDuration::from_hours(i64::from(days) * 24));
    match shifted {
        Ok(date) if date.year() >= 0 => {
            format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
        }
        _ => days.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, with `.mmm` only when the milliseconds are not zero.
pub(crate) fn format_datetime(ms: DateTime) -> String {
    if Timestamp::from_millisecond(ms).is_err() {
        return ms.to_string();
    }
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

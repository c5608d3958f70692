//! Calendar arithmetic for relative-time conditions. "Now" is always passed in.

use sift_lang::{DateTime, Duration, DurationUnit};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// `now - duration`, with months and years in calendar arithmetic (UTC); a day
/// that does not exist in the target month clamps to the month's last day.
pub fn ago(now: DateTime, duration: Duration) -> DateTime {
    let amount = i64::from(duration.amount);
    let fixed = match duration.unit {
        DurationUnit::Minutes => Some(amount * MINUTE_MS),
        DurationUnit::Hours => Some(amount * 60 * MINUTE_MS),
        DurationUnit::Days => Some(amount * DAY_MS),
        DurationUnit::Weeks => Some(amount * 7 * DAY_MS),
        DurationUnit::Months | DurationUnit::Years => None,
    };
    if let Some(ms) = fixed {
        return now.saturating_sub(ms);
    }
    let months = match duration.unit {
        DurationUnit::Years => amount * 12,
        _ => amount,
    };
    let Ok(ts) = jiff::Timestamp::from_millisecond(now) else {
        return now;
    };
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    match zoned.checked_sub(jiff::Span::new().months(months)) {
        Ok(earlier) => earlier.timestamp().as_millisecond(),
        Err(_) => i64::MIN / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{format_datetime, parse_datetime};

    fn at(text: &str) -> DateTime {
        parse_datetime(text).unwrap()
    }

    #[test]
    fn calendar_months_clamp_to_month_end() {
        let d = |amount, unit| Duration { amount, unit };
        let cases = [
            (
                "2026-03-31T10:00:00Z",
                d(1, DurationUnit::Months),
                "2026-02-28T10:00:00Z",
            ),
            (
                "2024-03-31T10:00:00Z",
                d(1, DurationUnit::Months),
                "2024-02-29T10:00:00Z",
            ),
            (
                "2026-02-28T00:00:00Z",
                d(18, DurationUnit::Years),
                "2008-02-28T00:00:00Z",
            ),
            (
                "2026-03-01T00:00:00Z",
                d(18, DurationUnit::Years),
                "2008-03-01T00:00:00Z",
            ),
            (
                "2026-01-01T00:30:00Z",
                d(90, DurationUnit::Minutes),
                "2025-12-31T23:00:00Z",
            ),
        ];
        for (now, duration, expected) in cases {
            assert_eq!(format_datetime(ago(at(now), duration)), expected, "{now}");
        }
    }
}

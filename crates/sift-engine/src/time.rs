//! Calendar arithmetic for relative-time conditions. "Now" is always passed in.
//!
//! Relative times are measured forward from the value: `x in last D` holds
//! while `x <= now <= x + D`, `x before D ago` once `now > x + D`, `x after D
//! ago` while `now < x + D`, and an event counts in a window `in last D` while
//! `now <= at + D`. Each value therefore flips at most once per bound, at an
//! instant computed from the value alone — which is what the timer queue
//! needs. Months and years are calendar arithmetic in UTC; a day that does
//! not exist in the target month clamps to the month's last day (Jan 31 + 1
//! month = Feb 28 or 29; born Feb 29, one turns 18 on Feb 28).

use std::collections::BTreeMap;
use std::sync::Mutex;

use sift_lang::{DateTime, Duration, DurationUnit};

use crate::value::{civil_from_days, days_from_civil};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;
/// Far enough to mean "never" and still leave room for arithmetic.
pub const NEVER: DateTime = i64::MAX / 4;

pub(crate) fn fixed_ms(duration: Duration) -> Option<i64> {
    let amount = i64::from(duration.amount);
    match duration.unit {
        DurationUnit::Minutes => Some(amount * MINUTE_MS),
        DurationUnit::Hours => Some(amount * 60 * MINUTE_MS),
        DurationUnit::Days => Some(amount * DAY_MS),
        DurationUnit::Weeks => Some(amount * 7 * DAY_MS),
        DurationUnit::Months | DurationUnit::Years => None,
    }
}

pub(crate) fn months(duration: Duration) -> i64 {
    let amount = i64::from(duration.amount);
    match duration.unit {
        DurationUnit::Years => amount * 12,
        _ => amount,
    }
}

/// `t + duration`, months and years in calendar arithmetic (UTC) with the day
/// clamped to the target month's last day; saturates at [`NEVER`].
pub fn add(t: DateTime, duration: Duration) -> DateTime {
    if let Some(ms) = fixed_ms(duration) {
        return t.saturating_add(ms).min(NEVER);
    }
    let day = t.div_euclid(DAY_MS);
    let time = t.rem_euclid(DAY_MS);
    let Ok(day) = i32::try_from(day) else {
        return NEVER;
    };
    let (year, month, dom) = civil_from_days(day);
    let total = i64::from(year) * 12 + i64::from(month) - 1 + months(duration);
    let new_year = total.div_euclid(12);
    let new_month = (total.rem_euclid(12) + 1) as u32;
    if new_year > 1_000_000 {
        return NEVER;
    }
    let new_year = new_year as i32;
    let dom = dom.min(days_in_month(new_year, new_month));
    i64::from(days_from_civil(new_year, new_month, dom)) * DAY_MS + time
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Bounds on `add(v, duration) - v` over every `v` (for which `add` does
/// not saturate), each reached by some `v`.
pub(crate) fn span_bounds(duration: Duration) -> (i64, i64) {
    match fixed_ms(duration) {
        Some(ms) => (ms, ms),
        None => month_span_bounds(months(duration)),
    }
}

/// [`span_bounds`] of `m` months. Its days depend only on the start's month
/// and day, and the Gregorian calendar repeats every 400 years, so one cycle
/// of month starts gives them exactly: from day `d` of a month, `m` months
/// later is the month's span `S` less `max(0, d - days of the target
/// month)`, largest for `d = 1` and smallest on the last day. Exact bounds
/// let a timer skip the calendar sum for every event not within a day of
/// leaving its window (loose ones left 40 days of doubt in a year).
fn month_span_bounds(m: i64) -> (i64, i64) {
    // Past what `add` reaches (it saturates at year 1,000,000), any bounds
    // containing the truth will do.
    if !(0..=12 * 100_000).contains(&m) {
        return (m * 28 * DAY_MS - 3 * DAY_MS, m * 31 * DAY_MS + DAY_MS);
    }
    static MEMO: Mutex<BTreeMap<i64, (i64, i64)>> = Mutex::new(BTreeMap::new());
    if let Some(bounds) = MEMO.lock().ok().and_then(|memo| memo.get(&m).copied()) {
        return bounds;
    }
    let (mut shortest, mut longest) = (i64::MAX, i64::MIN);
    for year in 2000..2400 {
        for month in 1..=12u32 {
            let total = i64::from(year) * 12 + i64::from(month) - 1 + m;
            let (target_year, target_month) =
                (total.div_euclid(12) as i32, total.rem_euclid(12) as u32 + 1);
            let span = i64::from(days_from_civil(target_year, target_month, 1))
                - i64::from(days_from_civil(year, month, 1));
            let clamped = i64::from(days_in_month(year, month))
                - i64::from(days_in_month(target_year, target_month));
            longest = longest.max(span);
            shortest = shortest.min(span - clamped.max(0));
        }
    }
    let bounds = (shortest * DAY_MS, longest * DAY_MS);
    if let Ok(mut memo) = MEMO.lock() {
        memo.insert(m, bounds);
    }
    bounds
}

/// A length in months (or years) with the exact bounds on its span, which
/// decide most comparisons of `add(v, length)` with an instant without the
/// calendar sum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CalendarSpan {
    pub duration: Duration,
    pub months: i64,
    shortest: i64,
    longest: i64,
}

/// Values within this many milliseconds of 1970 (800,000 years), plus
/// lengths of at most 100,000 years, stay below the year where `add`
/// saturates: there the span bounds hold.
const BOUNDED: i64 = 800_000 * 365 * DAY_MS;
const BOUNDED_MONTHS: i64 = 12 * 100_000;

impl CalendarSpan {
    pub fn new(duration: Duration) -> CalendarSpan {
        let (shortest, longest) = span_bounds(duration);
        CalendarSpan {
            duration,
            months: months(duration),
            shortest,
            longest,
        }
    }

    /// Whether `add(v, duration)` is before `bound` (or at it, when
    /// `inclusive`).
    pub fn ends_before(&self, v: DateTime, bound: DateTime, inclusive: bool) -> bool {
        let before = |end: DateTime| if inclusive { end <= bound } else { end < bound };
        if (-BOUNDED..BOUNDED).contains(&v) && self.months <= BOUNDED_MONTHS {
            if before(v + self.longest) {
                return true;
            }
            if !before(v + self.shortest) {
                return false;
            }
        }
        before(add(v, self.duration))
    }
}

/// Answers `add(v, duration) >= bound` for many `v` against one bound:
/// values far from the boundary are decided by comparison, only those within
/// the few days of calendar slack compute the sum.
#[derive(Clone, Copy, Debug)]
pub struct Reaches {
    duration: Duration,
    bound: DateTime,
    /// `v >= surely` reaches the bound whatever the calendar.
    surely: DateTime,
    /// `v < never` cannot.
    never: DateTime,
}

impl Reaches {
    pub fn new(duration: Duration, bound: DateTime) -> Reaches {
        let (min, max) = span_bounds(duration);
        Reaches {
            duration,
            bound,
            surely: bound.saturating_sub(min),
            never: bound.saturating_sub(max),
        }
    }

    #[inline]
    pub fn check(&self, v: DateTime) -> bool {
        if v >= self.surely {
            true
        } else if v < self.never {
            false
        } else {
            add(v, self.duration) >= self.bound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{format_datetime, parse_datetime};

    fn at(text: &str) -> DateTime {
        parse_datetime(text).unwrap()
    }

    fn d(amount: u32, unit: DurationUnit) -> Duration {
        Duration { amount, unit }
    }

    #[test]
    fn calendar_months_clamp_to_month_end() {
        let cases = [
            (
                "2026-01-31T10:00:00Z",
                d(1, DurationUnit::Months),
                "2026-02-28T10:00:00Z",
            ),
            (
                "2024-01-31T10:00:00Z",
                d(1, DurationUnit::Months),
                "2024-02-29T10:00:00Z",
            ),
            (
                "2008-02-29T00:00:00Z",
                d(18, DurationUnit::Years),
                "2026-02-28T00:00:00Z",
            ),
            (
                "2008-03-01T00:00:00Z",
                d(18, DurationUnit::Years),
                "2026-03-01T00:00:00Z",
            ),
            (
                "2025-12-31T23:00:00Z",
                d(90, DurationUnit::Minutes),
                "2026-01-01T00:30:00Z",
            ),
            (
                "2025-11-30T12:00:00Z",
                d(3, DurationUnit::Months),
                "2026-02-28T12:00:00Z",
            ),
            (
                "1969-12-31T23:59:59Z",
                d(2, DurationUnit::Months),
                "1970-02-28T23:59:59Z",
            ),
        ];
        for (from, duration, expected) in cases {
            assert_eq!(format_datetime(add(at(from), duration)), expected, "{from}");
        }
    }

    #[test]
    fn agrees_with_jiff() {
        let mut t = at("2023-12-25T07:13:00Z");
        for step in 0..400 {
            for duration in [
                d(1, DurationUnit::Months),
                d(18, DurationUnit::Years),
                d(7, DurationUnit::Months),
            ] {
                let zoned = jiff::Timestamp::from_millisecond(t)
                    .unwrap()
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC);
                let expected = zoned
                    .checked_add(jiff::Span::new().months(months(duration)))
                    .unwrap()
                    .timestamp()
                    .as_millisecond();
                assert_eq!(add(t, duration), expected, "step {step}");
            }
            t += DAY_MS / 3 + 12_345;
        }
    }

    #[test]
    fn reaches_matches_the_sum() {
        let bound = at("2026-03-30T12:00:00Z");
        for duration in [
            d(1, DurationUnit::Months),
            d(18, DurationUnit::Years),
            d(3, DurationUnit::Days),
        ] {
            let reaches = Reaches::new(duration, bound);
            let mut v = bound - 400 * DAY_MS * 20;
            while v <= bound {
                assert_eq!(reaches.check(v), add(v, duration) >= bound);
                v += DAY_MS / 7 + 1;
            }
        }
    }

    #[test]
    fn month_span_bounds_are_the_shortest_and_longest_sums_over_a_cycle() {
        let start = i64::from(days_from_civil(2000, 1, 1));
        for amount in [1, 2, 3, 6, 11, 12, 13, 24, 48, 100, 1200] {
            let duration = d(amount, DurationUnit::Months);
            let (mut shortest, mut longest) = (i64::MAX, i64::MIN);
            for day in start..start + 146_097 {
                let v = day * DAY_MS + 7 * MINUTE_MS;
                let span = add(v, duration) - v;
                shortest = shortest.min(span);
                longest = longest.max(span);
            }
            assert_eq!(
                span_bounds(duration),
                (shortest, longest),
                "{amount} months"
            );
        }
        let year = span_bounds(d(1, DurationUnit::Years));
        assert_eq!(year, (365 * DAY_MS, 366 * DAY_MS));
    }
}

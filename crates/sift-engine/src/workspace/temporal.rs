//! Relative-time tests of dynamic segments (`in last`, `before … ago`,
//! `after … ago`), arranged by column so that a contact's next flip is a
//! few binary searches rather than a calendar addition per test.
//!
//! With 1,000 segments a column like `birth_date` carries dozens of
//! `before N years ago` tests. Firing a million timers at one instant
//! computed each contact's next flip test by test, and that was a large
//! item of the burst. A test's flip instant grows with its length (for one
//! kind of arithmetic: milliseconds, or months), so the earliest flip after
//! `now` among tests of one kind is found by a search over their lengths
//! sorted; so are the tests that flip exactly at a given instant.

use sift_lang::{DateTime, Duration, FieldTest};

use crate::eval::{ValueRef, instant};
use crate::segments::Slot;
use crate::time::{CalendarSpan, NEVER, add, fixed_ms};

/// Test lengths of one kind of arithmetic, ascending, each with the test's
/// position in [`ColumnTests::tests`].
#[derive(Clone, Debug, Default)]
struct Lengths {
    fixed: Vec<(i64, usize)>,
    calendar: Vec<Calendar>,
}

/// A calendar length and the test it belongs to. A search probes a length
/// for every contact a timer fires, and the span's bounds decide most
/// probes without the calendar sum.
#[derive(Clone, Copy, Debug)]
struct Calendar {
    span: CalendarSpan,
    test: usize,
}

impl Lengths {
    fn push(&mut self, duration: Duration, test: usize) {
        match fixed_ms(duration) {
            Some(ms) => self.fixed.push((ms, test)),
            None => self.calendar.push(Calendar {
                span: CalendarSpan::new(duration),
                test,
            }),
        }
    }

    fn sort(&mut self) {
        self.fixed.sort_unstable();
        self.calendar
            .sort_unstable_by_key(|c| (c.span.months, c.test));
    }

    /// The earliest `add(v, length)` after `now` (at `now` or after, unless
    /// `strictly`).
    fn first_end(&self, v: DateTime, now: DateTime, strictly: bool) -> Option<DateTime> {
        let end_fixed = |ms: i64| v.saturating_add(ms).min(NEVER);
        let kept = |end: DateTime| if strictly { end > now } else { end >= now };
        let fixed = self.fixed.partition_point(|&(ms, _)| !kept(end_fixed(ms)));
        let calendar = self
            .calendar
            .partition_point(|c| c.span.ends_before(v, now, strictly));
        let a = self.fixed.get(fixed).map(|&(ms, _)| end_fixed(ms));
        let b = self.calendar.get(calendar).map(|c| add(v, c.span.duration));
        a.into_iter().chain(b).min()
    }

    /// The tests whose `add(v, length)` is exactly `end`.
    fn ending_at(&self, v: DateTime, end: DateTime, out: &mut Vec<usize>) {
        let end_fixed = |ms: i64| v.saturating_add(ms).min(NEVER);
        let from = self.fixed.partition_point(|&(ms, _)| end_fixed(ms) < end);
        let to = self.fixed.partition_point(|&(ms, _)| end_fixed(ms) <= end);
        out.extend(self.fixed[from..to].iter().map(|&(_, test)| test));
        let from = self
            .calendar
            .partition_point(|c| c.span.ends_before(v, end, false));
        let to = self
            .calendar
            .partition_point(|c| c.span.ends_before(v, end, true));
        out.extend(self.calendar[from..to].iter().map(|c| c.test));
    }
}

/// The relative tests on one column.
#[derive(Clone, Debug, Default)]
pub(super) struct ColumnTests {
    pub column: usize,
    /// Each distinct test with the segments making it.
    pub tests: Vec<(FieldTest, Vec<Slot>)>,
    /// `in last` tests: a value in the future flips them when it comes.
    in_last: Vec<usize>,
    /// Tests that flip at `end + 1` (`in last`, `before … ago`).
    after_end: Lengths,
    /// Tests that flip at `end` (`after … ago`).
    at_end: Lengths,
}

impl ColumnTests {
    /// The earliest instant after `now` at which some test on this column
    /// changes its answer for `value` (what
    /// [`super::time::flip_instant`] gives, the least over the tests).
    pub fn next_flip(&self, value: Option<ValueRef<'_>>, now: DateTime) -> Option<DateTime> {
        let v = instant(value?)?;
        // A future value flips its `in last` tests at the value itself,
        // before any end (an end is never before its value).
        let future = (!self.in_last.is_empty() && v > now).then_some(v);
        let after = self
            .after_end
            .first_end(v, now, false)
            .filter(|&end| end < NEVER)
            .map(|end| end + 1);
        let at = self
            .at_end
            .first_end(v, now, true)
            .filter(|&end| end < NEVER);
        future.into_iter().chain(after).chain(at).min()
    }

    /// The tests that may change their answer for `value` between `at - 1`
    /// and `at`: positions in [`ColumnTests::tests`], possibly repeated.
    pub fn flipping_at(&self, value: Option<ValueRef<'_>>, at: DateTime, out: &mut Vec<usize>) {
        out.clear();
        let Some(v) = value.and_then(instant) else {
            return;
        };
        if v == at {
            out.extend_from_slice(&self.in_last);
        }
        self.after_end.ending_at(v, at - 1, out);
        self.at_end.ending_at(v, at, out);
    }
}

/// Groups `(column, test, readers)` by column.
pub(super) fn by_column(tests: Vec<(usize, FieldTest, Vec<Slot>)>) -> Vec<ColumnTests> {
    let mut columns: Vec<ColumnTests> = Vec::new();
    for (column, test, readers) in tests {
        let at = match columns.iter().position(|c| c.column == column) {
            Some(at) => at,
            None => {
                columns.push(ColumnTests {
                    column,
                    ..ColumnTests::default()
                });
                columns.len() - 1
            }
        };
        let group = &mut columns[at];
        let index = group.tests.len();
        match &test {
            FieldTest::InLast(d) => {
                group.in_last.push(index);
                group.after_end.push(*d, index);
            }
            FieldTest::BeforeAgo(d) => group.after_end.push(*d, index),
            FieldTest::AfterAgo(d) => group.at_end.push(*d, index),
            _ => continue,
        }
        group.tests.push((test, readers));
    }
    for group in &mut columns {
        group.after_end.sort();
        group.at_end.sort();
    }
    columns
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sift_lang::DurationUnit;

    use super::super::time::flip_instant;
    use super::*;
    use crate::eval::test_value;
    use crate::time::DAY_MS;

    fn test_of(kind: u8, amount: u32, unit: u8) -> FieldTest {
        let unit = [
            DurationUnit::Minutes,
            DurationUnit::Hours,
            DurationUnit::Days,
            DurationUnit::Weeks,
            DurationUnit::Months,
            DurationUnit::Years,
        ][unit as usize % 6];
        let d = Duration { amount, unit };
        match kind % 3 {
            0 => FieldTest::InLast(d),
            1 => FieldTest::BeforeAgo(d),
            _ => FieldTest::AfterAgo(d),
        }
    }

    proptest! {
        #[test]
        fn searches_agree_with_each_test_taken_alone(
            specs in prop::collection::vec((0u8..3, 0u32..40, 0u8..6), 1..25),
            value in -400i64 * DAY_MS..400 * DAY_MS,
            now in -400i64 * DAY_MS..400 * DAY_MS,
        ) {
            let tests: Vec<FieldTest> = specs.iter().map(|&(k, a, u)| test_of(k, a, u)).collect();
            let group = by_column(
                tests.iter().map(|t| (7, t.clone(), vec![1])).collect(),
            );
            prop_assert_eq!(group.len(), 1);
            let group = &group[0];
            let value = Some(ValueRef::DateTime(value));
            let want = group.tests.iter().filter_map(|(t, _)| flip_instant(value, t, now)).min();
            prop_assert_eq!(group.next_flip(value, now), want);
            // At that instant, the tests it names are exactly those whose
            // answer changes.
            if let Some(at) = want {
                let mut named = Vec::new();
                group.flipping_at(value, at, &mut named);
                named.sort_unstable();
                named.dedup();
                let changed: Vec<usize> = (0..group.tests.len())
                    .filter(|&i| {
                        let t = &group.tests[i].0;
                        test_value(value, t, at - 1) != test_value(value, t, at)
                    })
                    .collect();
                prop_assert_eq!(named, changed);
            }
        }
    }
}

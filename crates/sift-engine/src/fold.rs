//! New aggregates counted from the stored history (docs/storage.md "What
//! memory holds"): a [`Folding`] adds up a stream of events, of any
//! contact in any order, into plain per-contact vectors, and becomes an
//! [`Aggregate`] at the end.
//!
//! A count over 100M events adds each to a contact picked at random among
//! millions. A plain vector makes that one memory access per event, with
//! nothing for the next to wait on, where an aggregate's sparse pages take
//! a page lookup, a copy-on-write check and a read then a write. Whether a
//! contact is alive is applied once at the end, a word of 64 at a time,
//! not per event. A stretch of events in column form is filtered a column
//! at a time, numbers compared as numbers.

use sift_lang::{CmpOp, DateTime, FieldTest, Scalar};

use crate::aggregates::{Aggregate, summable};
use crate::columns::Interner;
use crate::counts::Counts;
use crate::eval::{Check, ValueRef};
use crate::events::{EventLog, Filter, StoredEvent, raw_value_ref};
use crate::history::{EventColumns, PropValues};
use crate::sparse::SparseVec;

/// Per-contact counts in the narrowest width that holds them, widened as
/// they grow, as [`Counts`] but in one plain vector.
enum Flat {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Flat {
    fn of(counts: &Counts, len: usize) -> Flat {
        let mut flat = match counts {
            Counts::U8(v) => Flat::U8(v.to_vec()),
            Counts::U16(v) => Flat::U16(v.to_vec()),
            Counts::U32(v) => Flat::U32(v.to_vec()),
        };
        flat.resize(len.max(counts.len()));
        flat
    }

    fn len(&self) -> usize {
        match self {
            Flat::U8(v) => v.len(),
            Flat::U16(v) => v.len(),
            Flat::U32(v) => v.len(),
        }
    }

    fn resize(&mut self, len: usize) {
        match self {
            Flat::U8(v) => v.resize(len, 0),
            Flat::U16(v) => v.resize(len, 0),
            Flat::U32(v) => v.resize(len, 0),
        }
    }

    fn add(&mut self, index: usize, count: u32) {
        let total = match self {
            Flat::U8(v) => match u8::try_from(u32::from(v[index]).saturating_add(count)) {
                Ok(total) => return v[index] = total,
                Err(_) => u32::from(v[index]).saturating_add(count),
            },
            Flat::U16(v) => match u16::try_from(u32::from(v[index]).saturating_add(count)) {
                Ok(total) => return v[index] = total,
                Err(_) => u32::from(v[index]).saturating_add(count),
            },
            Flat::U32(v) => return v[index] = v[index].saturating_add(count),
        };
        self.widen_for(total);
        self.set(index, total);
    }

    fn set(&mut self, index: usize, count: u32) {
        match self {
            Flat::U8(v) => v[index] = count as u8,
            Flat::U16(v) => v[index] = count as u16,
            Flat::U32(v) => v[index] = count,
        }
    }

    fn widen_for(&mut self, count: u32) {
        *self = match self {
            Flat::U8(v) if count > u32::from(u16::MAX) => {
                Flat::U32(v.iter().map(|&c| u32::from(c)).collect())
            }
            Flat::U8(v) => Flat::U16(v.iter().map(|&c| u16::from(c)).collect()),
            Flat::U16(v) => Flat::U32(v.iter().map(|&c| u32::from(c)).collect()),
            Flat::U32(_) => return,
        };
    }

    fn into_counts(self) -> Counts {
        match self {
            Flat::U8(v) => Counts::U8(v.into_iter().collect()),
            Flat::U16(v) => Counts::U16(v.into_iter().collect()),
            Flat::U32(v) => Counts::U32(v.into_iter().collect()),
        }
    }
}

/// An aggregate being counted from a stream of stored events.
pub struct Folding {
    /// What is counted (its own counts and sums are empty until
    /// [`Folding::finish`]).
    aggregate: Aggregate,
    counts: Flat,
    /// Empty for a count (no summed property).
    sums: Vec<f64>,
}

impl Folding {
    /// Starts from what `aggregate` holds, with room for contacts below
    /// `capacity` (more are made room for as they come).
    pub fn new(mut aggregate: Aggregate, capacity: usize) -> Folding {
        let counts = Flat::of(&aggregate.counts, capacity);
        let sums = if aggregate.property.is_some() {
            let mut sums = aggregate.sums.to_vec();
            sums.resize(counts.len(), 0.0);
            sums
        } else {
            Vec::new()
        };
        aggregate.counts = Counts::default();
        aggregate.sums = SparseVec::new();
        Folding {
            aggregate,
            counts,
            sums,
        }
    }

    /// Adds a count and a sum to contact `no`'s.
    pub fn add(&mut self, no: u32, count: u32, sum: f64) {
        let index = no as usize;
        if index >= self.counts.len() {
            self.counts.resize(index + 1);
            if self.aggregate.property.is_some() {
                self.sums.resize(index + 1, 0.0);
            }
        }
        self.counts.add(index, count);
        if let Some(total) = self.sums.get_mut(index) {
            *total += sum;
        }
    }

    /// Adds `event` to contact `no`'s count and sum when it is one the
    /// aggregate counts at `now`, in arrival order like events arriving
    /// one by one (so that sums add up in the same order).
    pub fn fold(&mut self, no: u32, event: &StoredEvent, log: &EventLog, now: DateTime) {
        let aggregate = &self.aggregate;
        if aggregate.exit(event.at) <= now || !aggregate.selects(event, log) {
            return;
        }
        let addend = aggregate.addend(event);
        self.add(no, 1, addend);
    }

    /// Folds every event of `columns` (one type's events of a stretch of
    /// the history) as [`Folding::fold`] would one by one, its filter
    /// reading the columns' values as an interned event would hold them.
    /// `names` and `types` resolve names as the aggregate was compiled
    /// with. Contacts not alive are left to [`Folding::finish`].
    pub fn fold_columns(
        &mut self,
        columns: &EventColumns<'_>,
        names: &Interner,
        types: &Interner,
        now: DateTime,
    ) {
        if types.lookup(columns.event_type) != Some(self.aggregate.kind) {
            return;
        }
        let n = columns.contacts.len();
        let column = |name: u32| {
            columns
                .props
                .iter()
                .find(|(own, _)| names.lookup(own) == Some(name))
                .map(|(_, values)| values)
        };
        let selected = match &self.aggregate.filter {
            Some(filter) => filter_column(filter, n, &column),
            None => vec![true; n],
        };
        let summed = self.aggregate.property.and_then(column);
        let windowed = self.aggregate.window.is_some();
        for (i, (&no, &at)) in columns.contacts.iter().zip(columns.ats).enumerate() {
            if !selected[i] || (windowed && self.aggregate.exit(at) <= now) {
                continue;
            }
            let addend = summed
                .and_then(|values| values.number(i))
                .map_or(0.0, summable);
            self.add(no, 1, addend);
        }
    }

    /// The aggregate counted, without the contacts not alive (`alive`:
    /// the live contacts' bits, 64 to a word, from contact 0).
    pub fn finish(mut self, alive: impl Iterator<Item = u64>) -> Aggregate {
        let len = self.counts.len();
        let mut words = alive.fuse();
        for first in (0..len).step_by(64) {
            let mut dead = !words.next().unwrap_or(0);
            while dead != 0 {
                let index = first + dead.trailing_zeros() as usize;
                dead &= dead - 1;
                if index >= len {
                    break;
                }
                self.counts.set(index, 0);
                if let Some(sum) = self.sums.get_mut(index) {
                    *sum = 0.0;
                }
            }
        }
        let mut aggregate = self.aggregate;
        aggregate.counts = self.counts.into_counts();
        aggregate.sums = self.sums.into_iter().collect();
        aggregate
    }
}

/// Whether each of `n` events passes `filter`, `column` giving the values
/// of a property (none: no event of the stretch has it).
fn filter_column<'c>(
    filter: &Filter,
    n: usize,
    column: &dyn Fn(u32) -> Option<&'c PropValues>,
) -> Vec<bool> {
    match filter {
        Filter::All(children) => {
            let mut out = vec![true; n];
            for child in children {
                let passes = filter_column(child, n, column);
                out.iter_mut().zip(passes).for_each(|(o, p)| *o &= p);
            }
            out
        }
        Filter::Any(children) => {
            let mut out = vec![false; n];
            for child in children {
                let passes = filter_column(child, n, column);
                out.iter_mut().zip(passes).for_each(|(o, p)| *o |= p);
            }
            out
        }
        Filter::Not(inner) => {
            let mut out = filter_column(inner, n, column);
            out.iter_mut().for_each(|o| *o = !*o);
            out
        }
        Filter::Test(name, check) => test_column(name.and_then(column), check, n),
    }
}

/// Whether each of `n` values passes `check`, as [`Check::holds`] answers.
fn test_column(values: Option<&PropValues>, check: &Check, n: usize) -> Vec<bool> {
    let Some(values) = values else {
        return vec![check.holds(None, 0); n];
    };
    let test = &check.test;
    match values {
        // A number compared with a number: no value to build. A NaN (an
        // absent value) passes only `!=`, as an absent property does.
        PropValues::Numbers(numbers) => match test {
            FieldTest::Compare(CmpOp::Ne, Scalar::Number(b)) => numbers
                .iter()
                .map(|x| !(x.is_finite() && *x == *b))
                .collect(),
            FieldTest::Compare(op, Scalar::Number(b)) => numbers
                .iter()
                .map(|x| x.is_finite() && op.holds(*x, *b))
                .collect(),
            _ => numbers
                .iter()
                .map(|x| check.holds(x.is_finite().then_some(ValueRef::Num(*x)), 0))
                .collect(),
        },
        PropValues::Raw(raw) => raw
            .iter()
            .map(|v| check.holds(v.as_ref().and_then(raw_value_ref), 0))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::AggKey;
    use crate::value::RawValue;
    use sift_lang::{Condition, FieldType, Schema};

    struct NoFields;

    impl Schema for NoFields {
        fn field_type(&self, _: &str) -> Option<FieldType> {
            None
        }
        fn segment_id(&self, _: &str) -> Option<String> {
            None
        }
        fn segment_name(&self, _: &str) -> Option<String> {
            None
        }
    }

    /// The `where` of `performed purchase where TEXT`.
    fn property_filter(text: &str) -> Condition {
        let parsed = sift_lang::parse_text(&format!("performed purchase where {text}"), &NoFields);
        match parsed {
            Ok(Condition::Event {
                filter: Some(filter),
                ..
            }) => *filter,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn aggregate(property: Option<&str>, log: &mut EventLog) -> Aggregate {
        let key = AggKey {
            event_type: "purchase".into(),
            filter: None,
            window: None,
            property: property.map(String::from),
        };
        Aggregate::empty(&key, log)
    }

    #[test]
    fn a_folding_counts_as_an_aggregate_adds_and_leaves_out_the_dead() {
        let mut log = EventLog::default();
        let mut plain = aggregate(Some("amount"), &mut log);
        let mut folding = Folding::new(aggregate(Some("amount"), &mut log), 10);
        // Past u8 and u16 counts, and contacts beyond the capacity given.
        let adds = [
            (3, 200, 1.5),
            (3, 100, 2.0),
            (7, 70_000, -1.0),
            (12, 1, 4.0),
            (9, 2, 0.5),
        ];
        for (no, count, sum) in adds {
            plain.add(no, count, sum);
            folding.add(no, count, sum);
        }
        let alive = |no: usize| no != 9;
        for (no, count, sum) in adds {
            if !alive(no as usize) {
                plain.set(no, 0, 0.0);
            }
            let _ = (count, sum);
        }
        let words = [(0..64).filter(|&i| alive(i)).fold(0u64, |w, i| w | 1 << i)];
        let folded = folding.finish(words.into_iter());
        for no in 0..16 {
            assert_eq!(folded.count(no), plain.count(no), "count of {no}");
            assert_eq!(folded.sum(no), plain.sum(no), "sum of {no}");
        }
        assert_eq!(folded.counts.width(), 4);
    }

    #[test]
    fn column_filters_answer_as_the_filter_of_one_event() {
        let conditions = [
            "amount > 150",
            "amount >= 150",
            "amount = 150",
            "amount != 150",
            "amount < 150",
            "amount is set",
            "amount is not set",
            "amount in [150, 7]",
            "amount between 100 and 200",
            "not amount > 150",
            "(amount > 150 or amount < 10)",
            "(amount > 100 and amount <= 150)",
            "amount = \"150\"",
        ];
        let values = [
            Some(RawValue::Number(150.0)),
            Some(RawValue::Number(151.0)),
            None,
            Some(RawValue::Number(7.0)),
            Some(RawValue::Number(-3.0)),
            Some(RawValue::Number(1e300)),
        ];
        let odd = [
            Some(RawValue::String("150".into())),
            Some(RawValue::Bool(true)),
            Some(RawValue::StringList(vec!["a".into()])),
        ];
        let numbers: Vec<f64> = values
            .iter()
            .map(|v| match v {
                Some(RawValue::Number(x)) => *x,
                _ => f64::NAN,
            })
            .collect();
        let raw: Vec<Option<RawValue>> = values.iter().chain(&odd).cloned().collect();
        for text in conditions {
            let condition = property_filter(text);
            let mut names = Interner::default();
            let filter = Filter::compile(&condition, &mut names);
            let amount = names.lookup("amount");
            for column in [
                PropValues::Numbers(numbers.clone()),
                PropValues::Raw(raw.clone()),
            ] {
                let n = column.len();
                let got = filter_column(&filter, n, &|name| {
                    (Some(name) == amount).then_some(&column)
                });
                for (i, passes) in got.iter().enumerate() {
                    let value = match &column {
                        PropValues::Numbers(x) => x[i].is_finite().then_some(ValueRef::Num(x[i])),
                        PropValues::Raw(r) => r[i].as_ref().and_then(raw_value_ref),
                    };
                    let one = filter
                        .matches_with(&|name| (Some(name) == amount).then_some(value).flatten());
                    assert_eq!(*passes, one, "{text} on value {i} of {column:?}");
                }
            }
            // A stretch without the property at all.
            let got = filter_column(&filter, 2, &|_| None);
            assert_eq!(
                got,
                vec![filter.matches_with(&|_| None); 2],
                "{text} without the property"
            );
        }
    }
}

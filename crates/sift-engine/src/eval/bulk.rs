//! Evaluating a condition over all contacts at once: the condition is
//! compiled into a [`Plan`] over columns and computed 64 contacts per machine
//! word; booleans and list `contains` are bitmap operations, other tests are
//! tight branch-free scans over a column, and chunks of 65,536 contacts run in
//! parallel on all cores. The tree is walked once per chunk, never once per
//! contact.

use std::borrow::Cow;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use sift_lang::{CmpOp, Condition, DateTime, FieldTest, Scalar, fold_case};

use super::{Check, Ctx, ValueRef, count_holds, field_test, test_value};
use crate::aggregates::{AggKey, Aggregate};
use crate::bits::Bits;
use crate::columns::{Column, ColumnData};
use crate::counts::Counts;
use crate::sparse::SparseVec;
use crate::time::{DAY_MS, Reaches};

const CHUNK_WORDS: usize = 1024;

/// The members of `cond` among live contacts.
pub fn evaluate_all(cond: &Condition, ctx: &Ctx<'_>) -> RoaringBitmap {
    let plan = compile(cond, ctx);
    let n_words = (ctx.contacts.capacity() as usize).div_ceil(64);
    let alive = ctx.contacts.alive_bits();
    let chunks: Vec<RoaringBitmap> = (0..n_words.div_ceil(CHUNK_WORDS))
        .into_par_iter()
        .map(|chunk| {
            let start = chunk * CHUNK_WORDS;
            let end = (start + CHUNK_WORDS).min(n_words);
            let mut words = plan.words(start, end, alive);
            let mut bytes = Vec::with_capacity(words.len() * 8);
            for (i, word) in words.iter_mut().enumerate() {
                *word &= alive.word(start + i);
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            RoaringBitmap::from_lsb0_bytes((start * 64) as u32, &bytes)
        })
        .collect();
    let mut members = RoaringBitmap::new();
    for chunk in chunks {
        members |= chunk;
    }
    members
}

enum Plan<'a> {
    All(Vec<Plan<'a>>),
    Any(Vec<Plan<'a>>),
    Not(Box<Plan<'a>>),
    Const(bool),
    Bitmap(Cow<'a, RoaringBitmap>),
    Present(&'a Column),
    Bool(&'a Column, bool),
    Scan(&'a Column, Scan),
    /// Behavioural nodes of saved segments: a scan over the aggregate.
    Count(&'a Counts, Option<sift_lang::CountTest>),
    Sum(&'a SparseVec<f64>, CmpOp, f64),
    /// Behavioural nodes without a kept aggregate (previews), computed once.
    OwnedCount(Counts, Option<sift_lang::CountTest>),
    OwnedSum(SparseVec<f64>, CmpOp, f64),
}

enum Scan {
    Number(NumTest<f64>),
    /// Date and datetime columns, compared as instants (a date is its midnight UTC).
    Instant(InstantTest),
    /// String column: the value's symbol is in this set.
    Symbols(Bits),
    Symbol(u32),
}

fn compile<'a>(cond: &'a Condition, ctx: &Ctx<'a>) -> Plan<'a> {
    match cond {
        Condition::All(children) => Plan::All(children.iter().map(|c| compile(c, ctx)).collect()),
        Condition::Any(children) => Plan::Any(children.iter().map(|c| compile(c, ctx)).collect()),
        Condition::Not(inner) => Plan::Not(Box::new(compile(inner, ctx))),
        Condition::InSegment(id) => match ctx.segments.members(id) {
            Some(members) => Plan::Bitmap(members),
            None => Plan::Const(false),
        },
        Condition::Field {
            field,
            test,
            ignore_case,
        } => match ctx.fields.index(field) {
            Some(index) => {
                let check = Check::new(test, *ignore_case);
                compile_field(ctx.contacts.column(index), &check.test, check.fold, ctx.now)
            }
            // A missing value answers the same whatever the case.
            None => Plan::Const(field_test(None, test, ctx.now)),
        },
        Condition::Event { count, .. } => match kept(cond, ctx) {
            Some(a) => Plan::Count(&a.counts, *count),
            None => match transient_for(cond, ctx) {
                Some(a) => Plan::OwnedCount(a.counts, *count),
                None => Plan::Const(count_holds(*count, 0)),
            },
        },
        Condition::EventSum { op, value, .. } => match kept(cond, ctx) {
            Some(a) => Plan::Sum(&a.sums, *op, *value),
            None => match transient_for(cond, ctx) {
                Some(a) => Plan::OwnedSum(a.sums, *op, *value),
                None => Plan::Const(op.holds(0.0, *value)),
            },
        },
    }
}

/// The kept aggregate of a behavioural node, when it holds the present.
fn kept<'a>(cond: &Condition, ctx: &Ctx<'a>) -> Option<&'a Aggregate> {
    let key = AggKey::of(cond)?;
    if let Some(extra) = ctx.extra
        && let Some(index) = extra.find(&key)
    {
        return extra.get(index);
    }
    if ctx.from_history && key.window.is_some() {
        return None;
    }
    let index = ctx.aggregates.find(&key)?;
    ctx.aggregates.get(index)
}

fn transient_for(cond: &Condition, ctx: &Ctx<'_>) -> Option<Aggregate> {
    crate::aggregates::transient(
        &AggKey::of(cond)?,
        ctx.events,
        ctx.contacts.capacity(),
        ctx.now,
    )
}

fn negate(plan: Plan<'_>) -> Plan<'_> {
    Plan::Not(Box::new(plan))
}

/// `test` on `column`; with `fold` (ignoring case) its operands are already
/// folded, and strings are compared folded. String columns are interned, so
/// a folded test is decided once per distinct string, never per contact.
fn compile_field<'a>(column: &'a Column, test: &FieldTest, fold: bool, now: DateTime) -> Plan<'a> {
    match test {
        FieldTest::IsSet => return Plan::Present(column),
        FieldTest::IsNotSet => return negate(Plan::Present(column)),
        FieldTest::Compare(CmpOp::Ne, s) => {
            return negate(compile_field(
                column,
                &FieldTest::Compare(CmpOp::Eq, s.clone()),
                fold,
                now,
            ));
        }
        FieldTest::NotIn(list) => {
            return negate(compile_field(
                column,
                &FieldTest::In(list.clone()),
                fold,
                now,
            ));
        }
        FieldTest::NotContains(s) => {
            return negate(compile_field(
                column,
                &FieldTest::Contains(s.clone()),
                fold,
                now,
            ));
        }
        _ => {}
    }
    match &column.data {
        ColumnData::Bool(_) => {
            let wants = |s: &Scalar| matches!(s, Scalar::Boolean(true));
            match test {
                FieldTest::Compare(CmpOp::Eq, s) => Plan::Bool(column, wants(s)),
                FieldTest::In(list) => {
                    Plan::Any(list.iter().map(|s| Plan::Bool(column, wants(s))).collect())
                }
                _ => Plan::Const(false),
            }
        }
        ColumnData::List { dict, index, .. } => match test {
            FieldTest::Contains(s) if fold => {
                // Every distinct element equal to the needle once folded.
                let mut members = RoaringBitmap::new();
                for (id, text) in dict.strings().enumerate() {
                    if fold_case(text) == s.as_str()
                        && let Some(holders) = index.get(id)
                    {
                        members |= holders;
                    }
                }
                Plan::Bitmap(Cow::Owned(members))
            }
            FieldTest::Contains(s) => match dict.lookup(s).and_then(|id| index.get(id as usize)) {
                Some(members) => Plan::Bitmap(Cow::Borrowed(members)),
                None => Plan::Const(false),
            },
            _ => Plan::Const(false),
        },
        ColumnData::Str { dict, .. } => {
            if !fold && let FieldTest::Compare(CmpOp::Eq, Scalar::String(s)) = test {
                return match dict.lookup(s) {
                    Some(id) => Plan::Scan(column, Scan::Symbol(id)),
                    None => Plan::Const(false),
                };
            }
            // Every other string test is decided once per distinct string.
            let mut symbols = Bits::default();
            for (id, text) in dict.strings().enumerate() {
                let text = match fold {
                    true => fold_case(text),
                    false => Cow::Borrowed(&**text),
                };
                if test_value(Some(ValueRef::Str(&text)), test, now) {
                    symbols.set(id as u32, true);
                }
            }
            Plan::Scan(column, Scan::Symbols(symbols))
        }
        ColumnData::Number(_) => match NumTest::of(test, |s| match s {
            Scalar::Number(n) => Some(*n),
            _ => None,
        }) {
            Some(test) => Plan::Scan(column, Scan::Number(test)),
            None => Plan::Const(false),
        },
        ColumnData::Date(_) | ColumnData::DateTime(_) => match InstantTest::of(test, now) {
            Some(test) => Plan::Scan(column, Scan::Instant(test)),
            None => Plan::Const(false),
        },
    }
}

fn scalar_instant(scalar: &Scalar) -> Option<i64> {
    match scalar {
        Scalar::Date(d) => Some(i64::from(*d) * DAY_MS),
        Scalar::DateTime(t) => Some(*t),
        _ => None,
    }
}

/// An ordered test on a number or an instant.
enum NumTest<T> {
    Cmp(CmpOp, T),
    Between(T, T),
    In(Vec<T>),
}

impl<T: Copy + PartialOrd> NumTest<T> {
    fn of(test: &FieldTest, scalar: impl Fn(&Scalar) -> Option<T>) -> Option<NumTest<T>> {
        Some(match test {
            FieldTest::Compare(op, s) => NumTest::Cmp(*op, scalar(s)?),
            FieldTest::Between(low, high) => NumTest::Between(scalar(low)?, scalar(high)?),
            FieldTest::In(list) => NumTest::In(list.iter().filter_map(&scalar).collect()),
            _ => return None,
        })
    }

    #[inline]
    fn check(&self, value: T) -> bool {
        match self {
            NumTest::Cmp(op, x) => op.holds(value, *x),
            NumTest::Between(low, high) => value >= *low && value <= *high,
            NumTest::In(list) => list.contains(&value),
        }
    }
}

/// A test on an instant: absolute, or relative to `now` (see [`crate::time`]).
enum InstantTest {
    Abs(NumTest<i64>),
    /// `v <= now && v + d >= now`
    InLast(Reaches, DateTime),
    /// `v + d < now`
    Before(Reaches),
    /// `v + d > now`
    After(Reaches),
}

impl InstantTest {
    fn of(test: &FieldTest, now: DateTime) -> Option<InstantTest> {
        Some(match test {
            FieldTest::InLast(d) => InstantTest::InLast(Reaches::new(*d, now), now),
            FieldTest::BeforeAgo(d) => InstantTest::Before(Reaches::new(*d, now)),
            FieldTest::AfterAgo(d) => InstantTest::After(Reaches::new(*d, now.saturating_add(1))),
            _ => InstantTest::Abs(NumTest::of(test, scalar_instant)?),
        })
    }

    #[inline]
    fn check(&self, v: i64) -> bool {
        match self {
            InstantTest::Abs(test) => test.check(v),
            InstantTest::InLast(reaches, now) => v <= *now && reaches.check(v),
            InstantTest::Before(reaches) => !reaches.check(v),
            InstantTest::After(reaches) => reaches.check(v),
        }
    }
}

fn bitmap_words(bitmap: &RoaringBitmap, start: usize, end: usize) -> Vec<u64> {
    let mut out = vec![0u64; end - start];
    let low = (start * 64) as u32;
    let high = (end * 64).min(u32::MAX as usize) as u32;
    for no in bitmap.range(low..high) {
        let offset = (no - low) as usize;
        out[offset / 64] |= 1 << (offset % 64);
    }
    out
}

impl Plan<'_> {
    /// Result words `start..end`; bits of dead contacts may be set and are
    /// masked by the caller.
    fn words(&self, start: usize, end: usize, alive: &Bits) -> Vec<u64> {
        match self {
            Plan::All(children) => {
                let mut acc = vec![u64::MAX; end - start];
                for child in children {
                    let words = child.words(start, end, alive);
                    let mut any = 0;
                    for (a, w) in acc.iter_mut().zip(words) {
                        *a &= w;
                        any |= *a;
                    }
                    if any == 0 {
                        break;
                    }
                }
                acc
            }
            Plan::Any(children) => {
                let mut acc = vec![0u64; end - start];
                for child in children {
                    for (a, w) in acc.iter_mut().zip(child.words(start, end, alive)) {
                        *a |= w;
                    }
                }
                acc
            }
            Plan::Not(inner) => {
                let mut words = inner.words(start, end, alive);
                for (i, w) in words.iter_mut().enumerate() {
                    *w = !*w & alive.word(start + i);
                }
                words
            }
            Plan::Const(value) => vec![if *value { u64::MAX } else { 0 }; end - start],
            Plan::Bitmap(bitmap) => bitmap_words(bitmap, start, end),
            Plan::Present(column) => column.present_words(start, end),
            Plan::Bool(column, wanted) => match &column.data {
                ColumnData::Bool(slots) => slots.words_where(start, end, |v| v == wanted),
                _ => vec![0; end - start],
            },
            Plan::Scan(column, scan) => match (&column.data, scan) {
                (ColumnData::Number(values), Scan::Number(test)) => {
                    values.words_where(start, end, |v| test.check(*v))
                }
                // Absolute tests (the common case) get a loop of their own,
                // without the relative variants' dispatch per value.
                (ColumnData::Date(values), Scan::Instant(InstantTest::Abs(test))) => {
                    values.words_where(start, end, |v| test.check(i64::from(*v) * DAY_MS))
                }
                (ColumnData::Date(values), Scan::Instant(test)) => {
                    values.words_where(start, end, |v| test.check(i64::from(*v) * DAY_MS))
                }
                (ColumnData::DateTime(values), Scan::Instant(InstantTest::Abs(test))) => {
                    values.words_where(start, end, |v| test.check(*v))
                }
                (ColumnData::DateTime(values), Scan::Instant(test)) => {
                    values.words_where(start, end, |v| test.check(*v))
                }
                (ColumnData::Str { values, .. }, Scan::Symbol(id)) => {
                    values.words_where(start, end, |v| v == id)
                }
                (ColumnData::Str { values, .. }, Scan::Symbols(set)) => {
                    values.words_where(start, end, |v| set.get(*v))
                }
                _ => vec![0; end - start],
            },
            Plan::Count(counts, count) => counts.words(start, end, |n| count_holds(*count, n)),
            Plan::Sum(sums, op, value) => sums.words(start, end, |s| op.holds(s, *value)),
            Plan::OwnedCount(counts, count) => counts.words(start, end, |n| count_holds(*count, n)),
            Plan::OwnedSum(sums, op, value) => sums.words(start, end, |s| op.holds(s, *value)),
        }
    }
}

//! Evaluating conditions: one contact at a time ([`matches`], for incremental
//! updates and explain) and over all contacts at once ([`evaluate_all`], for
//! segment creation, edits and previews).
//!
//! Bulk evaluation compiles the condition into a [`Plan`] over columns and
//! computes 64 contacts per machine word: booleans and list `contains` are
//! bitmap operations, other tests are tight branch-free scans over a column,
//! and chunks of 65,536 contacts run in parallel on all cores. The tree is
//! walked once per chunk, never once per contact.

use rayon::prelude::*;
use roaring::RoaringBitmap;
use sift_lang::{CmpOp, Condition, DateTime, FieldTest, Scalar};

use crate::bits::Bits;
use crate::columns::{Column, ColumnData, Interner};
use crate::contacts::Contacts;
use crate::fields::Fields;
use crate::time::{DAY_MS, ago};
use crate::value::Value;

/// Where `in segment` finds the members of another segment.
pub trait SegmentLookup: Sync {
    fn members(&self, segment_id: &str) -> Option<&RoaringBitmap>;
}

#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub fields: &'a Fields,
    pub contacts: &'a Contacts,
    pub segments: &'a dyn SegmentLookup,
    pub now: DateTime,
}

// ---------------------------------------------------------------------------
// One contact.

/// Whether contact `no` satisfies `cond`.
pub fn matches(cond: &Condition, no: u32, ctx: &Ctx<'_>) -> bool {
    match cond {
        Condition::All(children) => children.iter().all(|c| matches(c, no, ctx)),
        Condition::Any(children) => children.iter().any(|c| matches(c, no, ctx)),
        Condition::Not(inner) => !matches(inner, no, ctx),
        Condition::Field { field, test } => {
            let value = ctx
                .fields
                .index(field)
                .and_then(|i| ctx.contacts.column(i).get_ref(no));
            test_value(value, test, ctx.now)
        }
        Condition::InSegment(id) => ctx.segments.members(id).is_some_and(|m| m.contains(no)),
        // Behavioural conditions are rejected before a segment is saved until
        // the event store exists; a contact without events performed nothing.
        Condition::Event { count, .. } => count.is_some_and(|c| c.op.holds(0, c.value)),
        Condition::EventSum { op, value, .. } => op.holds(0.0, *value),
    }
}

/// A condition with fields resolved to column numbers, kept beside each
/// segment so that re-evaluating it for one contact does no lookups by name.
#[derive(Clone, Debug)]
pub enum RowPlan {
    All(Vec<RowPlan>),
    Any(Vec<RowPlan>),
    Not(Box<RowPlan>),
    Field(usize, FieldTest),
    /// Anything else is answered by [`matches`].
    Other(Condition),
}

impl RowPlan {
    pub fn compile(cond: &Condition, fields: &Fields) -> RowPlan {
        match cond {
            Condition::All(children) => RowPlan::All(
                children
                    .iter()
                    .map(|c| RowPlan::compile(c, fields))
                    .collect(),
            ),
            Condition::Any(children) => RowPlan::Any(
                children
                    .iter()
                    .map(|c| RowPlan::compile(c, fields))
                    .collect(),
            ),
            Condition::Not(inner) => RowPlan::Not(Box::new(RowPlan::compile(inner, fields))),
            Condition::Field { field, test } => match fields.index(field) {
                Some(index) => RowPlan::Field(index, test.clone()),
                None => RowPlan::Other(cond.clone()),
            },
            _ => RowPlan::Other(cond.clone()),
        }
    }

    pub fn matches(&self, no: u32, ctx: &Ctx<'_>) -> bool {
        match self {
            RowPlan::All(children) => children.iter().all(|c| c.matches(no, ctx)),
            RowPlan::Any(children) => children.iter().any(|c| c.matches(no, ctx)),
            RowPlan::Not(inner) => !inner.matches(no, ctx),
            RowPlan::Field(index, test) => {
                test_value(ctx.contacts.column(*index).get_ref(no), test, ctx.now)
            }
            RowPlan::Other(cond) => matches(cond, no, ctx),
        }
    }

    /// The answer before a write that replaced the values in `old` (column,
    /// former value). Only for plans without segment references, whose
    /// answers depend on nothing but the contact's own values.
    pub fn matches_before(&self, no: u32, ctx: &Ctx<'_>, old: &[(usize, Option<Value>)]) -> bool {
        match self {
            RowPlan::All(children) => children.iter().all(|c| c.matches_before(no, ctx, old)),
            RowPlan::Any(children) => children.iter().any(|c| c.matches_before(no, ctx, old)),
            RowPlan::Not(inner) => !inner.matches_before(no, ctx, old),
            RowPlan::Field(index, test) => match old.iter().find(|(i, _)| i == index) {
                Some((_, value)) => test_value(value.as_ref().map(ValueRef::of), test, ctx.now),
                None => test_value(ctx.contacts.column(*index).get_ref(no), test, ctx.now),
            },
            RowPlan::Other(cond) => matches(cond, no, ctx),
        }
    }
}

/// A borrowed property value: what a column holds for one contact, read
/// without allocating.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Date(i32),
    DateTime(i64),
    Strings(&'a [String]),
    /// Interned list elements, sorted by id.
    Symbols(&'a [u32], &'a Interner),
}

impl<'a> ValueRef<'a> {
    pub fn of(value: &'a Value) -> ValueRef<'a> {
        match value {
            Value::String(s) => ValueRef::Str(s),
            Value::Number(n) => ValueRef::Num(*n),
            Value::Boolean(b) => ValueRef::Bool(*b),
            Value::Date(d) => ValueRef::Date(*d),
            Value::DateTime(t) => ValueRef::DateTime(*t),
            Value::StringList(items) => ValueRef::Strings(items),
        }
    }

    fn has_element(self, element: &str) -> bool {
        match self {
            ValueRef::Strings(items) => items.iter().any(|i| i == element),
            ValueRef::Symbols(ids, dict) => dict
                .lookup(element)
                .is_some_and(|id| ids.binary_search(&id).is_ok()),
            _ => false,
        }
    }
}

/// A field test on one (possibly missing) value. Missing values fail every
/// test except the negative ones (SPEC §2).
pub fn field_test(value: Option<&Value>, test: &FieldTest, now: DateTime) -> bool {
    test_value(value.map(ValueRef::of), test, now)
}

pub(crate) fn test_value(value: Option<ValueRef<'_>>, test: &FieldTest, now: DateTime) -> bool {
    match test {
        FieldTest::IsSet => value.is_some(),
        FieldTest::IsNotSet => value.is_none(),
        FieldTest::Compare(CmpOp::Ne, s) => !value.is_some_and(|v| compare(v, CmpOp::Eq, s)),
        FieldTest::NotContains(s) => !value.is_some_and(|v| contains(v, s)),
        FieldTest::NotIn(list) => !list
            .iter()
            .any(|s| value.is_some_and(|v| compare(v, CmpOp::Eq, s))),
        _ => {
            let Some(value) = value else { return false };
            match test {
                FieldTest::Compare(op, s) => compare(value, *op, s),
                FieldTest::Contains(s) => contains(value, s),
                FieldTest::StartsWith(s) => {
                    matches!(value, ValueRef::Str(v) if v.starts_with(s.as_str()))
                }
                FieldTest::EndsWith(s) => {
                    matches!(value, ValueRef::Str(v) if v.ends_with(s.as_str()))
                }
                FieldTest::In(list) => list.iter().any(|s| compare(value, CmpOp::Eq, s)),
                FieldTest::Between(low, high) => {
                    compare(value, CmpOp::Gte, low) && compare(value, CmpOp::Lte, high)
                }
                FieldTest::InLast(d) => {
                    instant(value).is_some_and(|t| t >= ago(now, *d) && t <= now)
                }
                FieldTest::BeforeAgo(d) => instant(value).is_some_and(|t| t < ago(now, *d)),
                FieldTest::AfterAgo(d) => instant(value).is_some_and(|t| t > ago(now, *d)),
                _ => false,
            }
        }
    }
}

fn contains(value: ValueRef<'_>, needle: &str) -> bool {
    match value {
        ValueRef::Str(v) => v.contains(needle),
        list => list.has_element(needle),
    }
}

/// A date or datetime as an instant; a date is its midnight UTC.
fn instant(value: ValueRef<'_>) -> Option<DateTime> {
    match value {
        ValueRef::Date(d) => Some(i64::from(d) * DAY_MS),
        ValueRef::DateTime(t) => Some(t),
        _ => None,
    }
}

fn compare(value: ValueRef<'_>, op: CmpOp, scalar: &Scalar) -> bool {
    match (value, scalar) {
        (ValueRef::Num(a), Scalar::Number(b)) => op.holds(a, *b),
        (ValueRef::Str(a), Scalar::String(b)) => op.holds(a, b.as_str()),
        (ValueRef::Bool(a), Scalar::Boolean(b)) => op.holds(a, *b),
        (ValueRef::Date(a), Scalar::Date(b)) => op.holds(a, *b),
        (ValueRef::DateTime(a), Scalar::DateTime(b)) => op.holds(a, *b),
        (ValueRef::Date(a), Scalar::DateTime(b)) => op.holds(i64::from(a) * DAY_MS, *b),
        (ValueRef::DateTime(a), Scalar::Date(b)) => op.holds(a, i64::from(*b) * DAY_MS),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// All contacts.

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
    Bitmap(&'a RoaringBitmap),
    Present(&'a Column),
    Bool(&'a Column, bool),
    Scan(&'a Column, Scan),
    /// Behavioural nodes, answered per contact until they get columns.
    Row(&'a Condition, Ctx<'a>),
}

enum Scan {
    Number(NumTest<f64>),
    /// Date and datetime columns, compared as instants (a date is its midnight UTC).
    Instant(NumTest<i64>),
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
        Condition::Field { field, test } => match ctx.fields.index(field) {
            Some(index) => compile_field(ctx.contacts.column(index), test, ctx.now),
            None => Plan::Const(field_test(None, test, ctx.now)),
        },
        Condition::Event { .. } | Condition::EventSum { .. } => Plan::Row(cond, *ctx),
    }
}

fn negate(plan: Plan<'_>) -> Plan<'_> {
    Plan::Not(Box::new(plan))
}

fn compile_field<'a>(column: &'a Column, test: &FieldTest, now: DateTime) -> Plan<'a> {
    match test {
        FieldTest::IsSet => return Plan::Present(column),
        FieldTest::IsNotSet => return negate(Plan::Present(column)),
        FieldTest::Compare(CmpOp::Ne, s) => {
            return negate(compile_field(
                column,
                &FieldTest::Compare(CmpOp::Eq, s.clone()),
                now,
            ));
        }
        FieldTest::NotIn(list) => {
            return negate(compile_field(column, &FieldTest::In(list.clone()), now));
        }
        FieldTest::NotContains(s) => {
            return negate(compile_field(column, &FieldTest::Contains(s.clone()), now));
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
            FieldTest::Contains(s) => match dict.lookup(s).and_then(|id| index.get(id as usize)) {
                Some(members) => Plan::Bitmap(members),
                None => Plan::Const(false),
            },
            _ => Plan::Const(false),
        },
        ColumnData::Str { dict, .. } => {
            if let FieldTest::Compare(CmpOp::Eq, Scalar::String(s)) = test {
                return match dict.lookup(s) {
                    Some(id) => Plan::Scan(column, Scan::Symbol(id)),
                    None => Plan::Const(false),
                };
            }
            // Every other string test is decided once per distinct string.
            let mut symbols = Bits::default();
            for (id, text) in dict.strings().iter().enumerate() {
                if test_value(Some(ValueRef::Str(text)), test, now) {
                    symbols.set(id as u32, true);
                }
            }
            Plan::Scan(column, Scan::Symbols(symbols))
        }
        ColumnData::Number(_) => match NumTest::of(
            test,
            now,
            |s| match s {
                Scalar::Number(n) => Some(*n),
                _ => None,
            },
            |_| None,
        ) {
            Some(test) => Plan::Scan(column, Scan::Number(test)),
            None => Plan::Const(false),
        },
        ColumnData::Date(_) | ColumnData::DateTime(_) => {
            match NumTest::of(test, now, scalar_instant, Some) {
                Some(test) => Plan::Scan(column, Scan::Instant(test)),
                None => Plan::Const(false),
            }
        }
    }
}

fn scalar_instant(scalar: &Scalar) -> Option<i64> {
    match scalar {
        Scalar::Date(d) => Some(i64::from(*d) * DAY_MS),
        Scalar::DateTime(t) => Some(*t),
        _ => None,
    }
}

/// An ordered test on a number or an instant, with relative times already
/// turned into absolute bounds.
enum NumTest<T> {
    Cmp(CmpOp, T),
    Between(T, T),
    In(Vec<T>),
}

impl<T: Copy + PartialOrd> NumTest<T> {
    /// `instant` maps an absolute time onto the column's domain (None for numbers).
    fn of(
        test: &FieldTest,
        now: DateTime,
        scalar: impl Fn(&Scalar) -> Option<T>,
        instant: impl Fn(i64) -> Option<T>,
    ) -> Option<NumTest<T>> {
        Some(match test {
            FieldTest::Compare(op, s) => NumTest::Cmp(*op, scalar(s)?),
            FieldTest::Between(low, high) => NumTest::Between(scalar(low)?, scalar(high)?),
            FieldTest::In(list) => NumTest::In(list.iter().filter_map(&scalar).collect()),
            FieldTest::InLast(d) => NumTest::Between(instant(ago(now, *d))?, instant(now)?),
            FieldTest::BeforeAgo(d) => NumTest::Cmp(CmpOp::Lt, instant(ago(now, *d))?),
            FieldTest::AfterAgo(d) => NumTest::Cmp(CmpOp::Gt, instant(ago(now, *d))?),
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

fn scan_words<T: Copy>(
    values: &[T],
    present: &Bits,
    start: usize,
    end: usize,
    test: impl Fn(T) -> bool,
) -> Vec<u64> {
    let mut out = vec![0u64; end - start];
    for (slot, w) in out.iter_mut().zip(start..end) {
        let mask = present.word(w);
        if mask == 0 {
            continue;
        }
        let base = w * 64;
        let mut word = 0u64;
        if base + 64 <= values.len() {
            for (bit, value) in values[base..base + 64].iter().enumerate() {
                word |= u64::from(test(*value)) << bit;
            }
        } else {
            for bit in 0..64 {
                if let Some(value) = values.get(base + bit) {
                    word |= u64::from(test(*value)) << bit;
                }
            }
        }
        *slot = word & mask;
    }
    out
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
            Plan::Present(column) => (start..end).map(|w| column.present.word(w)).collect(),
            Plan::Bool(column, wanted) => {
                let ColumnData::Bool(bits) = &column.data else {
                    return vec![0; end - start];
                };
                (start..end)
                    .map(|w| {
                        let value = bits.word(w);
                        column.present.word(w) & if *wanted { value } else { !value }
                    })
                    .collect()
            }
            Plan::Scan(column, scan) => match (&column.data, scan) {
                (ColumnData::Number(values), Scan::Number(test)) => {
                    scan_words(values, &column.present, start, end, |v| test.check(v))
                }
                (ColumnData::Date(values), Scan::Instant(test)) => {
                    scan_words(values, &column.present, start, end, |v| {
                        test.check(i64::from(v) * DAY_MS)
                    })
                }
                (ColumnData::DateTime(values), Scan::Instant(test)) => {
                    scan_words(values, &column.present, start, end, |v| test.check(v))
                }
                (ColumnData::Str { values, .. }, Scan::Symbol(id)) => {
                    scan_words(values, &column.present, start, end, |v| v == *id)
                }
                (ColumnData::Str { values, .. }, Scan::Symbols(set)) => {
                    scan_words(values, &column.present, start, end, |v| set.get(v))
                }
                _ => vec![0; end - start],
            },
            Plan::Row(cond, ctx) => {
                let mut out = vec![0u64; end - start];
                for (slot, w) in out.iter_mut().zip(start..end) {
                    let alive_word = alive.word(w);
                    for bit in 0..64 {
                        if alive_word >> bit & 1 == 1 && matches(cond, (w * 64 + bit) as u32, ctx) {
                            *slot |= 1 << bit;
                        }
                    }
                }
                out
            }
        }
    }
}

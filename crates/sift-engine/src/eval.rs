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

use crate::aggregates::{AggKey, Aggregate, Aggregates};
use crate::bits::Bits;
use crate::columns::{Column, ColumnData, Interner};
use crate::contacts::Contacts;
use crate::events::{EventLog, Filter};
use crate::fields::Fields;
use crate::time::{DAY_MS, Reaches, add};
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
    pub events: &'a EventLog,
    /// Counts and sums kept for the behavioural nodes of saved segments;
    /// a node without one (a preview, an explanation at another instant) is
    /// computed from the history.
    pub aggregates: &'a Aggregates,
    /// Whether behavioural nodes must be computed from the history at `now`
    /// instead of read from the aggregates (which hold the present).
    pub from_history: bool,
    pub now: DateTime,
}

/// The count and sum of contact `no` for a behavioural node.
pub fn tally(key: &AggKey, no: u32, ctx: &Ctx<'_>) -> (u32, f64) {
    if !ctx.from_history
        && let Some(aggregate) = ctx.aggregates.find(key).and_then(|i| ctx.aggregates.get(i))
    {
        return (aggregate.count(no), aggregate.sum(no));
    }
    let Some(kind) = ctx.events.types.lookup(&key.event_type) else {
        return (0, 0.0);
    };
    let probe = Aggregate {
        key: key.clone(),
        kind,
        filter: key
            .filter
            .as_ref()
            .map(|f| Filter::lookup(f, &ctx.events.names)),
        property: key
            .property
            .as_ref()
            .map(|p| ctx.events.names.lookup(p).unwrap_or(u32::MAX)),
        counts: Vec::new(),
        sums: Vec::new(),
    };
    let t = probe.tally(ctx.events.of(no), ctx.events, ctx.now);
    (t.count, t.sum)
}

/// Whether a count satisfies an event node's `count` (default: at least once).
pub fn count_holds(count: Option<sift_lang::CountTest>, n: u32) -> bool {
    match count {
        Some(c) => c.op.holds(u64::from(n), c.value),
        None => n >= 1,
    }
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
        Condition::Event { count, .. } => {
            AggKey::of(cond).is_some_and(|key| count_holds(*count, tally(&key, no, ctx).0))
        }
        Condition::EventSum { op, value, .. } => {
            AggKey::of(cond).is_some_and(|key| op.holds(tally(&key, no, ctx).1, *value))
        }
    }
}

/// What a write replaced for one contact: former values of columns, and
/// former (aggregate, count, sum).
#[derive(Clone, Copy, Debug, Default)]
pub struct Before<'a> {
    pub fields: &'a [(usize, Option<Value>)],
    pub aggs: &'a [(usize, u32, f64)],
}

/// A condition with fields resolved to column numbers, kept beside each
/// segment so that re-evaluating it for one contact does no lookups by name.
#[derive(Clone, Debug)]
pub enum RowPlan {
    All(Vec<RowPlan>),
    Any(Vec<RowPlan>),
    Not(Box<RowPlan>),
    Field(usize, FieldTest),
    /// An `event` node: aggregate index, count test.
    Count(usize, Option<sift_lang::CountTest>),
    /// An `event_sum` node: aggregate index, comparison.
    Sum(usize, CmpOp, f64),
    /// Anything else is answered by [`matches`].
    Other(Condition),
}

impl RowPlan {
    pub fn compile(cond: &Condition, fields: &Fields, aggregates: &Aggregates) -> RowPlan {
        let compile = |c: &Condition| RowPlan::compile(c, fields, aggregates);
        match cond {
            Condition::All(children) => RowPlan::All(children.iter().map(compile).collect()),
            Condition::Any(children) => RowPlan::Any(children.iter().map(compile).collect()),
            Condition::Not(inner) => RowPlan::Not(Box::new(compile(inner))),
            Condition::Field { field, test } => match fields.index(field) {
                Some(index) => RowPlan::Field(index, test.clone()),
                None => RowPlan::Other(cond.clone()),
            },
            Condition::Event { count, .. } => {
                match AggKey::of(cond).and_then(|k| aggregates.find(&k)) {
                    Some(index) => RowPlan::Count(index, *count),
                    None => RowPlan::Other(cond.clone()),
                }
            }
            Condition::EventSum { op, value, .. } => {
                match AggKey::of(cond).and_then(|k| aggregates.find(&k)) {
                    Some(index) => RowPlan::Sum(index, *op, *value),
                    None => RowPlan::Other(cond.clone()),
                }
            }
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
            RowPlan::Count(index, count) => count_holds(
                *count,
                ctx.aggregates.get(*index).map_or(0, |a| a.count(no)),
            ),
            RowPlan::Sum(index, op, value) => op.holds(
                ctx.aggregates.get(*index).map_or(0.0, |a| a.sum(no)),
                *value,
            ),
            RowPlan::Other(cond) => matches(cond, no, ctx),
        }
    }

    /// Aggregate indexes this plan reads.
    pub fn aggregates(&self, out: &mut Vec<usize>) {
        match self {
            RowPlan::All(children) | RowPlan::Any(children) => {
                children.iter().for_each(|c| c.aggregates(out))
            }
            RowPlan::Not(inner) => inner.aggregates(out),
            RowPlan::Count(index, _) | RowPlan::Sum(index, ..) => out.push(*index),
            RowPlan::Field(..) | RowPlan::Other(_) => {}
        }
    }

    /// The answer before a write that replaced what `old` lists. Only for
    /// plans without segment references, whose answers depend on nothing but
    /// the contact's own values and events.
    pub fn matches_before(&self, no: u32, ctx: &Ctx<'_>, old: Before<'_>) -> bool {
        match self {
            RowPlan::All(children) => children.iter().all(|c| c.matches_before(no, ctx, old)),
            RowPlan::Any(children) => children.iter().any(|c| c.matches_before(no, ctx, old)),
            RowPlan::Not(inner) => !inner.matches_before(no, ctx, old),
            RowPlan::Field(index, test) => match old.fields.iter().find(|(i, _)| i == index) {
                Some((_, value)) => test_value(value.as_ref().map(ValueRef::of), test, ctx.now),
                None => test_value(ctx.contacts.column(*index).get_ref(no), test, ctx.now),
            },
            RowPlan::Count(index, count) => match old.aggs.iter().find(|(i, ..)| i == index) {
                Some((_, n, _)) => count_holds(*count, *n),
                None => self.matches(no, ctx),
            },
            RowPlan::Sum(index, op, value) => match old.aggs.iter().find(|(i, ..)| i == index) {
                Some((_, _, sum)) => op.holds(*sum, *value),
                None => self.matches(no, ctx),
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
                    instant(value).is_some_and(|t| t <= now && add(t, *d) >= now)
                }
                FieldTest::BeforeAgo(d) => instant(value).is_some_and(|t| add(t, *d) < now),
                FieldTest::AfterAgo(d) => instant(value).is_some_and(|t| add(t, *d) > now),
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
pub(crate) fn instant(value: ValueRef<'_>) -> Option<DateTime> {
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
    /// Behavioural nodes of saved segments: a scan over the aggregate.
    Count(&'a [u32], Option<sift_lang::CountTest>),
    Sum(&'a [f64], CmpOp, f64),
    /// Behavioural nodes without a kept aggregate (previews), computed once.
    OwnedCount(Vec<u32>, Option<sift_lang::CountTest>),
    OwnedSum(Vec<f64>, CmpOp, f64),
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
        Condition::Field { field, test } => match ctx.fields.index(field) {
            Some(index) => compile_field(ctx.contacts.column(index), test, ctx.now),
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
    if ctx.from_history {
        return None;
    }
    let index = ctx.aggregates.find(&AggKey::of(cond)?)?;
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

/// Words of a test over a dense per-contact vector; contacts past its end
/// have the default value (no events: count 0, sum 0).
fn dense_words<T: Copy + Default>(
    values: &[T],
    start: usize,
    end: usize,
    test: impl Fn(T) -> bool,
) -> Vec<u64> {
    let missing = test(T::default());
    let mut out = vec![0u64; end - start];
    for (slot, w) in out.iter_mut().zip(start..end) {
        let base = w * 64;
        let mut word = 0u64;
        for bit in 0..64 {
            let value = values.get(base + bit).copied();
            let hit = match value {
                Some(v) => test(v),
                None => missing,
            };
            word |= u64::from(hit) << bit;
        }
        *slot = word;
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
            Plan::Count(counts, count) => {
                dense_words(counts, start, end, |n| count_holds(*count, n))
            }
            Plan::Sum(sums, op, value) => dense_words(sums, start, end, |s| op.holds(s, *value)),
            Plan::OwnedCount(counts, count) => {
                dense_words(counts, start, end, |n| count_holds(*count, n))
            }
            Plan::OwnedSum(sums, op, value) => {
                dense_words(sums, start, end, |s| op.holds(s, *value))
            }
        }
    }
}

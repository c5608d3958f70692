//! Evaluating conditions: one contact at a time ([`matches`], for incremental
//! updates and explain) and over all contacts at once ([`evaluate_all`], for
//! segment creation, edits and previews).
//!
//! Bulk evaluation lives in [`bulk`].

use std::borrow::Cow;

use roaring::RoaringBitmap;
use sift_lang::{CmpOp, Condition, DateTime, FieldTest, Scalar, fold_case};

use crate::aggregates::{AggKey, Aggregate, Aggregates};
use crate::columns::Interner;
use crate::contacts::Contacts;
use crate::events::{EventLog, Filter};
use crate::fields::Fields;
use crate::time::{DAY_MS, add};
use crate::value::Value;

/// Where `in segment` finds the members of another segment.
pub trait SegmentLookup: Sync {
    /// The whole membership of segment `segment_id`.
    fn members(&self, segment_id: &str) -> Option<Cow<'_, RoaringBitmap>>;

    /// Whether contact `no` is a member of segment `segment_id`.
    fn is_member(&self, segment_id: &str, no: u32) -> bool {
        self.members(segment_id).is_some_and(|m| m.contains(no))
    }
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
    /// Aggregates counted for this evaluation alone (a preview with events
    /// on disk streams those memory cannot answer).
    pub extra: Option<&'a Aggregates>,
    pub now: DateTime,
}

/// The count and sum of contact `no` for a behavioural node.
pub fn tally(key: &AggKey, no: u32, ctx: &Ctx<'_>) -> (u32, f64) {
    // An all-time count is the same at every later instant (no event
    // leaves it), and with events on disk memory no longer holds them all.
    if (!ctx.from_history || key.window.is_none())
        && let Some(aggregate) = ctx.aggregates.find(key).and_then(|i| ctx.aggregates.get(i))
    {
        return (aggregate.count(no), aggregate.sum(no));
    }
    if let Some(aggregate) = ctx
        .extra
        .and_then(|extra| extra.find(key).and_then(|i| extra.get(i)))
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
        counts: crate::counts::Counts::default(),
        sums: crate::sparse::SparseVec::new(),
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
        Condition::Field {
            field,
            test,
            ignore_case,
        } => {
            let value = ctx
                .fields
                .index(field)
                .and_then(|i| ctx.contacts.column(i).get_ref(no));
            test_case(value, test, *ignore_case, ctx.now)
        }
        Condition::InSegment(id) => ctx.segments.is_member(id, no),
        Condition::Event { count, .. } => {
            AggKey::of(cond).is_some_and(|key| count_holds(*count, tally(&key, no, ctx).0))
        }
        Condition::EventSum { op, value, .. } => {
            AggKey::of(cond).is_some_and(|key| op.holds(tally(&key, no, ctx).1, *value))
        }
    }
}

/// A condition with fields resolved to column numbers, kept beside each
/// segment so that re-evaluating it for one contact does no lookups by name.
#[derive(Clone, Debug)]
pub enum RowPlan {
    All(Vec<RowPlan>),
    Any(Vec<RowPlan>),
    Not(Box<RowPlan>),
    Field(usize, Check),
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
            Condition::Field {
                field,
                test,
                ignore_case,
            } => match fields.index(field) {
                Some(index) => RowPlan::Field(index, Check::new(test, *ignore_case)),
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
            RowPlan::Field(index, check) => {
                check.holds(ctx.contacts.column(*index).get_ref(no), ctx.now)
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

/// A field test ready to run on many values: with `fold` (ignoring case),
/// its strings are case-folded once here and each value is folded as it is
/// tested, so the operand is never folded again per value.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub test: FieldTest,
    pub fold: bool,
}

impl Check {
    pub fn new(test: &FieldTest, ignore_case: bool) -> Check {
        match ignore_case {
            true => Check {
                test: test.fold_case(),
                fold: true,
            },
            false => Check {
                test: test.clone(),
                fold: false,
            },
        }
    }

    pub fn holds(&self, value: Option<ValueRef<'_>>, now: DateTime) -> bool {
        match self.fold {
            true => test_folded(value, &self.test, now),
            false => test_value(value, &self.test, now),
        }
    }
}

/// A field test, ignoring case or not, on one value: what a predicate
/// answers for it. Folds the test's operands on each call; [`Check`]
/// folds them once.
pub(crate) fn test_case(
    value: Option<ValueRef<'_>>,
    test: &FieldTest,
    ignore_case: bool,
    now: DateTime,
) -> bool {
    match ignore_case {
        true => test_folded(value, &test.fold_case(), now),
        false => test_value(value, test, now),
    }
}

/// `test` (its operands already folded) on `value` folded by
/// [`sift_lang::fold_case`]: the same comparisons as [`test_value`], on
/// lowercased strings. Values that are not strings are tested as they are
/// (a string test fails on them either way).
fn test_folded(value: Option<ValueRef<'_>>, test: &FieldTest, now: DateTime) -> bool {
    let fold_all = |items: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        items.map(|item| fold_case(item).into_owned()).collect()
    };
    match value {
        Some(ValueRef::Str(text)) => test_value(Some(ValueRef::Str(&fold_case(text))), test, now),
        Some(ValueRef::Strings(items)) => {
            let folded = fold_all(&mut items.iter().map(String::as_str));
            test_value(Some(ValueRef::Strings(&folded)), test, now)
        }
        Some(ValueRef::Symbols(ids, dict)) => {
            let folded = fold_all(&mut ids.iter().map(|id| dict.resolve(*id)));
            test_value(Some(ValueRef::Strings(&folded)), test, now)
        }
        other => test_value(other, test, now),
    }
}

/// A field test on one (possibly missing) value. Missing values fail every
/// test except the negative ones (docs/conditions.md).
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

mod bulk;
pub use bulk::evaluate_all;

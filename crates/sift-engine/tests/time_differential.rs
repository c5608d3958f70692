//! Differential test of events, lead scoring and the passing of time against
//! an independent oracle.
//!
//! Random runs mix event ingestion (late, on-time and up to 5 minutes early
//! events, replayed ids, events for unknown contacts, rejected batches with
//! events stamped too far ahead), contact upserts and deletes, scoring rules
//! (with and without `where` and `expires_after`; created, edited in place and
//! deleted), dynamic segments mixing field tests, relative-time field tests
//! (`in last`, `before … ago`, `after … ago`, minutes to years),
//! `performed …` with `where`, counts and windows, `not performed …`,
//! `total x.amount …`, `lead_score` tests and `in segment` references, and
//! static segments. The clock moves forward in random steps from 1 ms to 120
//! days, often landing exactly on the engine's `next_timer()`, 1 ms before or
//! after it, and on month ends and leap days.
//!
//! After every step the test calls `advance(now)` and checks that:
//!
//! - every segment's members equal the oracle's from-scratch evaluation at
//!   `now` over the whole event history (the oracle below implements the
//!   semantics itself, with jiff only for calendar months; it never calls the
//!   engine's evaluator), and every contact's `lead_score`, `last_seen_at`,
//!   `created_at`, `updated_at`, `anonymous` and properties equal the model;
//! - every change batch caused by time (and every batch `advance` records)
//!   has `at` after the previous clock and at most `now`, in instant order,
//!   and for each of its contacts the oracle's membership at `at - 1` and at
//!   `at` is exactly the recorded exit or entry;
//! - the engine's `next_timer()` is after `now` and no later than the first
//!   instant at which the oracle sees any membership flip (so no flip can be
//!   late), and `clock()` is `now`;
//! - the change log is gapless from seq 1 and replays to current membership;
//! - a rejected event batch or rule write changes nothing (not even the
//!   clock), and `check_events` names the same items.
//!
//! Every `RESTORE_EVERY` steps (and at the end) all records are committed to
//! a `MemoryStore`, a workspace is loaded from it and advanced to `now`: it
//! must record no change and equal the live one; every other time the run
//! continues on the restored workspace.
//!
//! Knobs: `SIFT_TIME_SEEDS` (a count, default 20, or a comma-separated list),
//! `SIFT_TIME_STEPS` (steps per seed, default 300); `SIFT_TIME_SEED=N` runs
//! seed N alone, which is how a failure message says to reproduce it.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use sift_engine::{
    Cause, ChangeBatch, ChangeKind, ContactInput, ContactView, Error, EventInput, MemoryStore,
    RawValue, Record, ScoringRule, ScoringRuleInput, ScoringRulePatch, SegmentDef, SegmentInput,
    SegmentKind, SegmentPatch, Store, Value, Workspace, Write,
};
use sift_lang::{
    CmpOp, Condition, CountTest, Duration, DurationUnit, FieldTest, FieldType, Scalar, from_json,
    to_json, to_text,
};

mod oracle;
use oracle::{civil_from_days, days_from_civil, env_number, fmt_date, refs_of};

const DEFAULT_SEEDS: u64 = 20;
const DEFAULT_STEPS: usize = 300;
const RESTORE_EVERY: usize = 25;
const HISTORY: usize = 40;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// docs/concepts.md: events more than 5 minutes ahead of now are rejected.
const MAX_FUTURE: i64 = 5 * MINUTE;

const EVENT_TYPES: &[&str] = &["purchase", "page_visit", "email_open", "signup"];
const COUNTRIES: &[&str] = &["ES", "FR", "PT", "DE"];
const CATEGORIES: &[&str] = &["shoes", "hats", "bags", "shoes/red", "Shoes"];
const SUBSTRINGS: &[&str] = &["sho", "s", "/", "red", "x"];
const TAGS: &[&str] = &["sale", "new", "gift"];
const INTERESTS: &[&str] = &["shoes", "hats", "travel"];
const MAX_SEGMENTS: usize = 10;
const MAX_RULES: usize = 6;
const CMP_OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Lte,
    CmpOp::Gt,
    CmpOp::Gte,
];

// ---------------------------------------------------------------------------
// Calendar, written here so that neither inputs nor expectations come from
// the engine. Only month arithmetic (with its end-of-month clamping) is left
// to jiff, as the brief for this test asks.

fn at_utc(y: i64, m: i64, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, m, d) * DAY + h * HOUR + mi * MINUTE
}

/// RFC 3339 of `ms`, written in the zone `offset_min` minutes east of UTC.
fn fmt_datetime(ms: i64, offset_min: i64) -> String {
    let local = ms + offset_min * MINUTE;
    let (days, rem) = (local.div_euclid(DAY), local.rem_euclid(DAY));
    let (h, mi, s, milli) = (rem / HOUR, rem / MINUTE % 60, rem / 1000 % 60, rem % 1000);
    let frac = if milli != 0 {
        format!(".{milli:03}")
    } else {
        String::new()
    };
    let zone = if offset_min == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    };
    format!("{}T{h:02}:{mi:02}:{s:02}{frac}{zone}", fmt_date(days))
}

fn show(ms: i64) -> String {
    fmt_datetime(ms, 0)
}

thread_local! {
    /// `add` of months is called for the same instants over and over.
    static MONTHS: RefCell<HashMap<(i64, i64), i64>> = RefCell::new(HashMap::new());
}

/// `t + d`: fixed units in milliseconds; months and years on t's UTC civil
/// date-time, the day clamped to the target month's last day.
fn add(t: i64, d: Duration) -> i64 {
    let n = i64::from(d.amount);
    let months = match d.unit {
        DurationUnit::Minutes => return t + n * MINUTE,
        DurationUnit::Hours => return t + n * HOUR,
        DurationUnit::Days => return t + n * DAY,
        DurationUnit::Weeks => return t + 7 * n * DAY,
        DurationUnit::Months => n,
        DurationUnit::Years => 12 * n,
    };
    MONTHS.with(|cache| {
        *cache.borrow_mut().entry((t, months)).or_insert_with(|| {
            let zoned = jiff::Timestamp::from_millisecond(t)
                .expect("instant in range")
                .to_zoned_datetime(jiff::tz::TimeZone::UTC);
            zoned
                .checked_add(jiff::Span::new().months(months))
                .expect("instant in range")
                .timestamp()
                .as_millisecond()
        })
    })
}

/// `t - d`, calendar months as in [`add`].
fn sub(t: i64, d: Duration) -> i64 {
    let n = i64::from(d.amount);
    let months = match d.unit {
        DurationUnit::Months => n,
        DurationUnit::Years => 12 * n,
        _ => return t - (add(t, d) - t),
    };
    jiff::Timestamp::from_millisecond(t)
        .expect("instant in range")
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .checked_sub(jiff::Span::new().months(months))
        .expect("instant in range")
        .timestamp()
        .as_millisecond()
}

#[test]
fn hand_written_calendar() {
    assert_eq!(at_utc(2026, 1, 1, 0, 0), 1_767_225_600_000);
    assert_eq!(fmt_date(days_from_civil(2000, 2, 29)), "2000-02-29");
    let month = Duration {
        amount: 1,
        unit: DurationUnit::Months,
    };
    let years = Duration {
        amount: 18,
        unit: DurationUnit::Years,
    };
    assert_eq!(
        add(at_utc(2026, 1, 31, 10, 0), month),
        at_utc(2026, 2, 28, 10, 0)
    );
    assert_eq!(
        add(at_utc(2024, 1, 31, 10, 0), month),
        at_utc(2024, 2, 29, 10, 0)
    );
    assert_eq!(
        add(at_utc(2008, 2, 29, 0, 0), years),
        at_utc(2026, 2, 28, 0, 0)
    );
    assert_eq!(
        show(at_utc(2026, 2, 28, 10, 0) + 1),
        "2026-02-28T10:00:00.001Z"
    );
}

// ---------------------------------------------------------------------------
// The model and the oracle.

/// An event property as conditions read it: a string that is a valid date or
/// RFC 3339 datetime is one.
#[derive(Clone, Debug, PartialEq)]
enum PVal {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(i64),
    DateTime(i64),
    List(Vec<String>),
}

#[derive(Clone, Debug)]
struct MEvent {
    id: Option<String>,
    ty: String,
    at: i64,
    /// Only what conditions can read (objects and number lists are absent).
    props: BTreeMap<String, PVal>,
    /// What was sent, to replay it.
    input: EventInput,
}

#[derive(Clone, Debug)]
struct MContact {
    props: BTreeMap<String, Value>,
    created_at: i64,
    updated_at: i64,
    anonymous: bool,
    /// In arrival order.
    events: Vec<MEvent>,
}

#[derive(Clone, Debug)]
struct MRule {
    id: String,
    ty: String,
    filter: Option<Condition>,
    points: f64,
    expires: Option<Duration>,
}

#[derive(Clone, Debug)]
struct MSegment {
    name: String,
    /// `None` for a static segment.
    cond: Option<Condition>,
    statics: BTreeSet<String>,
}

#[derive(Default, Clone)]
struct Model {
    contacts: BTreeMap<String, MContact>,
    gone: BTreeSet<String>,
    /// In creation order; edits keep a rule's place.
    rules: Vec<MRule>,
    segs: BTreeMap<String, MSegment>,
    /// Every event id ever accepted.
    seen: HashSet<String>,
}

fn op_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Lte => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Gte => o != Ordering::Less,
    }
}

fn fcmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).expect("no NaN is generated")
}

/// A contact field's value as a number of milliseconds (a date is its
/// midnight UTC).
fn instant_of(v: &Value) -> i64 {
    match v {
        Value::Date(d) => i64::from(*d) * DAY,
        Value::DateTime(t) => *t,
        other => panic!("relative-time test on {other:?}: a generator bug"),
    }
}

/// docs/conditions.md on a contact field: a missing value fails every test but ne,
/// not_in, not_contains and is_not_set.
fn field_holds(value: Option<&Value>, test: &FieldTest, now: i64) -> bool {
    let Some(v) = value else {
        return matches!(
            test,
            FieldTest::Compare(CmpOp::Ne, _)
                | FieldTest::NotIn(_)
                | FieldTest::NotContains(_)
                | FieldTest::IsNotSet
        );
    };
    let order = |s: &Scalar| -> Ordering {
        match (v, s) {
            (Value::String(a), Scalar::String(b)) => a.as_str().cmp(b.as_str()),
            (Value::Number(a), Scalar::Number(b)) => fcmp(*a, *b),
            (Value::Boolean(a), Scalar::Boolean(b)) => a.cmp(b),
            (Value::Date(a), Scalar::Date(b)) => a.cmp(b),
            (Value::DateTime(a), Scalar::DateTime(b)) => a.cmp(b),
            _ => panic!("ill-typed comparison of {v:?} with {s:?}: a generator bug"),
        }
    };
    let contains = |s: &str| match v {
        Value::String(x) => x.contains(s),
        Value::StringList(items) => items.iter().any(|i| i == s),
        other => panic!("contains on {other:?}"),
    };
    match test {
        FieldTest::IsSet => true,
        FieldTest::IsNotSet => false,
        FieldTest::Compare(op, s) => op_holds(*op, order(s)),
        FieldTest::Contains(s) => contains(s),
        FieldTest::NotContains(s) => !contains(s),
        FieldTest::StartsWith(s) => matches!(v, Value::String(x) if x.starts_with(s.as_str())),
        FieldTest::EndsWith(s) => matches!(v, Value::String(x) if x.ends_with(s.as_str())),
        FieldTest::In(list) => list.iter().any(|s| order(s) == Ordering::Equal),
        FieldTest::NotIn(list) => !list.iter().any(|s| order(s) == Ordering::Equal),
        FieldTest::Between(lo, hi) => order(lo) != Ordering::Less && order(hi) != Ordering::Greater,
        FieldTest::InLast(d) => {
            let t = instant_of(v);
            t <= now && add(t, *d) >= now
        }
        FieldTest::BeforeAgo(d) => add(instant_of(v), *d) < now,
        FieldTest::AfterAgo(d) => add(instant_of(v), *d) > now,
    }
}

/// An event property against a literal; values of another type never
/// compare equal (dates and datetimes compare as instants).
fn prop_order(v: &PVal, s: &Scalar) -> Option<Ordering> {
    match (v, s) {
        (PVal::Num(a), Scalar::Number(b)) => Some(fcmp(*a, *b)),
        (PVal::Str(a), Scalar::String(b)) => Some(a.as_str().cmp(b.as_str())),
        (PVal::Bool(a), Scalar::Boolean(b)) => Some(a.cmp(b)),
        (PVal::Date(a), Scalar::Date(b)) => Some(a.cmp(&i64::from(*b))),
        (PVal::DateTime(a), Scalar::DateTime(b)) => Some(a.cmp(b)),
        (PVal::Date(a), Scalar::DateTime(b)) => Some((a * DAY).cmp(b)),
        (PVal::DateTime(a), Scalar::Date(b)) => Some(a.cmp(&(i64::from(*b) * DAY))),
        _ => None,
    }
}

fn prop_holds(value: Option<&PVal>, test: &FieldTest) -> bool {
    let order = |s: &Scalar| value.and_then(|v| prop_order(v, s));
    let eq = |s: &Scalar| order(s) == Some(Ordering::Equal);
    let contains = |s: &str| match value {
        Some(PVal::Str(x)) => x.contains(s),
        Some(PVal::List(items)) => items.iter().any(|i| i == s),
        _ => false,
    };
    match test {
        FieldTest::IsSet => value.is_some(),
        FieldTest::IsNotSet => value.is_none(),
        FieldTest::Compare(CmpOp::Ne, s) => !eq(s),
        FieldTest::Compare(op, s) => order(s).is_some_and(|o| op_holds(*op, o)),
        FieldTest::Contains(s) => contains(s),
        FieldTest::NotContains(s) => !contains(s),
        FieldTest::StartsWith(s) => {
            matches!(value, Some(PVal::Str(x)) if x.starts_with(s.as_str()))
        }
        FieldTest::EndsWith(s) => matches!(value, Some(PVal::Str(x)) if x.ends_with(s.as_str())),
        FieldTest::In(list) => list.iter().any(eq),
        FieldTest::NotIn(list) => !list.iter().any(eq),
        FieldTest::Between(lo, hi) => {
            order(lo).is_some_and(|o| o != Ordering::Less)
                && order(hi).is_some_and(|o| o != Ordering::Greater)
        }
        other => panic!("the generator makes no {other:?} in a where"),
    }
}

/// A `where` over an event's properties.
fn where_holds(cond: &Condition, props: &BTreeMap<String, PVal>) -> bool {
    match cond {
        Condition::All(children) => children.iter().all(|c| where_holds(c, props)),
        Condition::Any(children) => children.iter().any(|c| where_holds(c, props)),
        Condition::Not(inner) => !where_holds(inner, props),
        Condition::Field { field, test } => prop_holds(props.get(field), test),
        other => panic!("{other:?} inside a where"),
    }
}

/// The events of `c` that an `event`/`event_sum` node counts at `now`.
fn counted<'a>(
    c: &'a MContact,
    ty: &'a str,
    filter: Option<&'a Condition>,
    in_last: Option<Duration>,
    now: i64,
) -> impl Iterator<Item = &'a MEvent> + 'a {
    c.events.iter().filter(move |e| {
        e.ty == ty
            && filter.is_none_or(|f| where_holds(f, &e.props))
            && in_last.is_none_or(|d| add(e.at, d) >= now)
    })
}

impl Model {
    fn lead_score(&self, c: &MContact, now: i64) -> f64 {
        let mut score = 0.0;
        for e in &c.events {
            for r in &self.rules {
                if r.ty == e.ty
                    && r.filter.as_ref().is_none_or(|f| where_holds(f, &e.props))
                    && r.expires.is_none_or(|d| add(e.at, d) > now)
                {
                    score += r.points.clamp(-1e15, 1e15);
                }
            }
        }
        score
    }

    fn value(&self, c: &MContact, field: &str, now: i64) -> Option<Value> {
        match field {
            "created_at" => Some(Value::DateTime(c.created_at)),
            "updated_at" => Some(Value::DateTime(c.updated_at)),
            "anonymous" => Some(Value::Boolean(c.anonymous)),
            "lead_score" => Some(Value::Number(self.lead_score(c, now))),
            "last_seen_at" => c.events.iter().map(|e| e.at).max().map(Value::DateTime),
            _ => c.props.get(field).cloned(),
        }
    }

    fn member<'a>(
        &'a self,
        seg: &'a str,
        cid: &str,
        c: &MContact,
        now: i64,
        memo: &mut HashMap<&'a str, bool>,
    ) -> bool {
        if let Some(m) = memo.get(seg) {
            return *m;
        }
        let s = &self.segs[seg];
        let m = match &s.cond {
            None => s.statics.contains(cid),
            Some(cond) => self.holds(cond, cid, c, now, memo),
        };
        memo.insert(seg, m);
        m
    }

    fn holds<'a>(
        &'a self,
        cond: &'a Condition,
        cid: &str,
        c: &MContact,
        now: i64,
        memo: &mut HashMap<&'a str, bool>,
    ) -> bool {
        match cond {
            Condition::All(children) => children.iter().all(|x| self.holds(x, cid, c, now, memo)),
            Condition::Any(children) => children.iter().any(|x| self.holds(x, cid, c, now, memo)),
            Condition::Not(inner) => !self.holds(inner, cid, c, now, memo),
            Condition::Field { field, test } => {
                field_holds(self.value(c, field, now).as_ref(), test, now)
            }
            Condition::Event {
                event_type,
                filter,
                count,
                in_last,
            } => {
                let n = counted(c, event_type, filter.as_deref(), *in_last, now).count() as u64;
                match count {
                    Some(ct) => op_holds(ct.op, n.cmp(&ct.value)),
                    None => n >= 1,
                }
            }
            Condition::EventSum {
                event_type,
                property,
                filter,
                op,
                value,
                in_last,
            } => {
                let mut sum = 0.0;
                for e in counted(c, event_type, filter.as_deref(), *in_last, now) {
                    if let Some(PVal::Num(x)) = e.props.get(property) {
                        sum += x.clamp(-1e15, 1e15);
                    }
                }
                op_holds(*op, fcmp(sum, *value))
            }
            Condition::InSegment(id) => self.member(id, cid, c, now, memo),
        }
    }

    /// Every segment's membership of contact `cid` at `now`.
    fn memberships(&self, cid: &str, now: i64) -> BTreeMap<&str, bool> {
        let c = &self.contacts[cid];
        let mut memo = HashMap::new();
        self.segs
            .keys()
            .map(|s| (s.as_str(), self.member(s, cid, c, now, &mut memo)))
            .collect()
    }

    fn refs(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(cond) = self.segs.get(id).and_then(|s| s.cond.as_ref()) {
            refs_of(cond, &mut out);
        }
        out
    }

    fn depends_on(&self, from: &str, goal: &str) -> bool {
        let mut stack = vec![from.to_string()];
        let mut seen = HashSet::new();
        while let Some(s) = stack.pop() {
            for r in self.refs(&s) {
                if r == goal {
                    return true;
                }
                if seen.insert(r.clone()) {
                    stack.push(r);
                }
            }
        }
        false
    }

    fn referred(&self, id: &str) -> bool {
        self.segs
            .keys()
            .any(|s| self.refs(s).iter().any(|r| r == id))
    }

    /// Instants after which some condition may change its answer for `c` by
    /// the passing of time alone: a superset of the real flips.
    fn candidates(&self, c: &MContact, nodes: &TimeNodes) -> Vec<i64> {
        let mut out = Vec::new();
        for (field, d) in &nodes.fields {
            if let Some(v) = self.value(c, field, 0) {
                let t = instant_of(&v);
                let end = add(t, *d);
                out.extend([t, end, end + 1]);
            }
        }
        for e in &c.events {
            for (ty, d) in &nodes.windows {
                if e.ty == *ty {
                    out.push(add(e.at, *d) + 1);
                }
            }
            if nodes.score {
                for r in &self.rules {
                    if let (true, Some(d)) = (r.ty == e.ty, r.expires) {
                        out.push(add(e.at, d));
                    }
                }
            }
        }
        out
    }
}

/// The time-dependent parts of all dynamic segments.
#[derive(Default)]
struct TimeNodes {
    /// Relative-time tests on a contact field.
    fields: Vec<(String, Duration)>,
    /// Windows of event and event_sum nodes.
    windows: Vec<(String, Duration)>,
    /// Some segment reads `lead_score`, which expiring points change.
    score: bool,
}

fn time_nodes(cond: &Condition, out: &mut TimeNodes) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| time_nodes(c, out))
        }
        Condition::Not(inner) => time_nodes(inner, out),
        Condition::Field { field, test } => match test {
            FieldTest::InLast(d) | FieldTest::BeforeAgo(d) | FieldTest::AfterAgo(d) => {
                out.fields.push((field.clone(), *d))
            }
            _ if field == "lead_score" => out.score = true,
            _ => {}
        },
        Condition::Event {
            event_type,
            in_last: Some(d),
            ..
        }
        | Condition::EventSum {
            event_type,
            in_last: Some(d),
            ..
        } => out.windows.push((event_type.clone(), *d)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// One run.

/// The write whose records are being absorbed, for the cause checks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Events,
    Upsert,
    DeleteContact,
    Segment,
    Static,
    Rule,
    Advance,
}

#[derive(Default, Clone, Copy)]
struct Stats {
    steps: usize,
    events: usize,
    replays: usize,
    rejected_batches: usize,
    upserts: usize,
    deletes: usize,
    segment_writes: usize,
    rule_writes: usize,
    restores: usize,
    changes: u64,
    time_changes: u64,
    on_timer: usize,
    clock_ms: i64,
    /// Segment checks, and those where some but not all contacts were members.
    segment_checks: usize,
    mixed_checks: usize,
    lag_restores: usize,
    lag_changes: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.events += o.events;
        self.replays += o.replays;
        self.rejected_batches += o.rejected_batches;
        self.upserts += o.upserts;
        self.deletes += o.deletes;
        self.segment_writes += o.segment_writes;
        self.rule_writes += o.rule_writes;
        self.restores += o.restores;
        self.changes += o.changes;
        self.time_changes += o.time_changes;
        self.on_timer += o.on_timer;
        self.clock_ms += o.clock_ms;
        self.segment_checks += o.segment_checks;
        self.mixed_checks += o.mixed_checks;
        self.lag_restores += o.lag_restores;
        self.lag_changes += o.lag_changes;
    }
}

/// What a rejected write must leave untouched.
#[derive(Debug, PartialEq)]
struct Digest {
    next_seq: u64,
    views: Vec<ContactView>,
    segments: Vec<(SegmentDef, RoaringBitmap)>,
    rules: Vec<ScoringRule>,
    next_timer: Option<i64>,
    clock: i64,
}

fn digest(ws: &Workspace) -> Digest {
    let mut segments: Vec<(SegmentDef, RoaringBitmap)> = ws
        .segments()
        .iter()
        .map(|(_, s)| (s.def.clone(), s.members.clone()))
        .collect();
    segments.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let views = ws
        .contacts()
        .alive()
        .iter()
        .map(|no| {
            let mut view = ws.contact(no).expect("alive contact has a view");
            view.segments.sort();
            view
        })
        .collect();
    Digest {
        next_seq: ws.next_seq(),
        views,
        segments,
        rules: ws.scoring_rules().to_vec(),
        next_timer: ws.next_timer(),
        clock: ws.clock(),
    }
}

/// The parts of two digests that differ, for failure messages.
fn digest_diff(a: &Digest, b: &Digest) -> String {
    let mut out = String::new();
    if a.next_seq != b.next_seq {
        let _ = writeln!(out, "  next_seq {} vs {}", a.next_seq, b.next_seq);
    }
    if a.clock != b.clock {
        let _ = writeln!(out, "  clock {} vs {}", show(a.clock), show(b.clock));
    }
    if a.next_timer != b.next_timer {
        let timers = (a.next_timer.map(show), b.next_timer.map(show));
        let _ = writeln!(out, "  next_timer {timers:?}");
    }
    if a.rules != b.rules {
        let _ = writeln!(out, "  rules {:?}\n     vs {:?}", a.rules, b.rules);
    }
    if a.views.len() != b.views.len() {
        let _ = writeln!(out, "  {} vs {} contacts", a.views.len(), b.views.len());
    }
    for (x, y) in a.views.iter().zip(&b.views) {
        if x != y {
            let _ = writeln!(out, "  {x:?}\n  vs {y:?}");
        }
    }
    if a.segments.len() != b.segments.len() {
        let _ = writeln!(
            out,
            "  {} vs {} segments",
            a.segments.len(),
            b.segments.len()
        );
    }
    for (x, y) in a.segments.iter().zip(&b.segments) {
        if x != y {
            let _ = writeln!(out, "  {x:?}\n  vs {y:?}");
        }
    }
    out
}

/// A store as it was when a stretch of steps without writes began, and the
/// changes the live workspace recorded since: a restart from it must fire
/// the same ones.
struct Lag {
    store: MemoryStore,
    clock: i64,
    changes: Vec<(String, ChangeKind, Cause, i64, u32)>,
}

struct Run {
    seed: u64,
    steps: usize,
    rng: StdRng,
    ws: Workspace,
    store: MemoryStore,
    model: Model,
    now: i64,
    start: i64,
    step: usize,
    pool: usize,
    next_event: usize,
    next_rule: usize,
    next_segment: usize,
    /// Membership per segment, replayed from the change log.
    replay: HashMap<String, RoaringBitmap>,
    /// The engine's clock when the last returned records were absorbed: a
    /// change caused by time is due after it. Not simply the last `now`,
    /// since a write without one (a segment delete) leaves the clock alone.
    recorded: i64,
    next_seq: u64,
    history: Vec<String>,
    stats: Stats,
    swap_next_restore: bool,
    /// Steps left in the current stretch without writes.
    quiet: usize,
    lag: Option<Lag>,
}

fn clip(text: String) -> String {
    if text.len() <= 600 {
        return text;
    }
    let mut end = 600;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn dur(amount: u32, unit: DurationUnit) -> Duration {
    Duration { amount, unit }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Run {
    fn new(seed: u64, steps: usize) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        // Starts chosen so that runs cross month ends, 2024-02-29 and 2028-02-29.
        let starts = [
            at_utc(2026, 1, 1, 0, 0),
            at_utc(2023, 12, 20, 8, 0),
            at_utc(2027, 11, 15, 12, 0),
            at_utc(2024, 2, 27, 23, 59) + 59_000,
        ];
        let start = starts[(seed % starts.len() as u64) as usize];
        let pool = *[8, 16, 30].choose(&mut rng).unwrap();
        Run {
            seed,
            steps,
            rng,
            ws: Workspace::new(),
            store: MemoryStore::default(),
            model: Model::default(),
            now: start,
            start,
            step: 0,
            pool,
            next_event: 0,
            next_rule: 0,
            next_segment: 0,
            replay: HashMap::new(),
            recorded: i64::MIN,
            next_seq: sift_engine::FIRST_SEQ,
            history: Vec::new(),
            stats: Stats::default(),
            swap_next_restore: true,
            quiet: 0,
            lag: None,
        }
    }

    fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let mut text = String::new();
        for h in &self.history {
            let _ = writeln!(text, "  {h}");
        }
        panic!(
            "seed {} step {} (now {}): {msg}\nrecent steps:\n{text}reproduce: SIFT_TIME_SEED={} SIFT_TIME_STEPS={}",
            self.seed,
            self.step,
            show(self.now),
            self.seed,
            self.step + 1
        );
    }

    fn note(&mut self, text: String) {
        if self.history.len() == HISTORY {
            self.history.remove(0);
        }
        self.history.push(clip(format!("[{}] {text}", self.step)));
    }

    fn text(&self, cond: &Condition) -> String {
        to_text(cond, &self.ws.schema())
    }

    /// A contact and its events, for failure messages.
    fn describe(&self, cid: &str) -> String {
        let Some(c) = self.model.contacts.get(cid) else {
            return format!("{cid:?} (not in the model)");
        };
        let mut out = format!(
            "{cid:?}: props {:?}, created {}, updated {}, anonymous {}, lead_score {} now\n",
            c.props,
            show(c.created_at),
            show(c.updated_at),
            c.anonymous,
            self.model.lead_score(c, self.now)
        );
        for e in &c.events {
            let _ = writeln!(
                out,
                "      event {:?} {} at {} {:?}",
                e.id,
                e.ty,
                show(e.at),
                e.props
            );
        }
        out
    }

    fn run(&mut self) {
        let write = self
            .ws
            .declare_field("renewal_at", FieldType::DateTime, Some("Renewal"))
            .unwrap_or_else(|e| self.fail(format!("declare renewal_at: {e}")));
        self.absorb(&write, Kind::Upsert);
        self.advance();
        self.check();
        while self.step < self.steps {
            self.one_step();
            self.step += 1;
        }
        self.restore_check();
        self.stats.steps = self.steps;
        self.stats.clock_ms = self.now - self.start;
    }

    fn one_step(&mut self) {
        let before = self.now;
        self.now = self.next_now();
        self.note(format!(
            "clock {} -> {} (+{} ms)",
            show(before),
            show(self.now),
            self.now - before
        ));
        if self.quiet == 0 && self.rng.random_bool(0.08) {
            self.quiet = self.rng.random_range(1..=5);
            self.lag = Some(Lag {
                store: self.store.clone(),
                clock: self.ws.clock(),
                changes: Vec::new(),
            });
        }
        // Sometimes the clock is advanced before writes, as a server ticking
        // every second would; otherwise writes meet timers already due.
        if self.rng.random_bool(0.3) {
            self.advance();
        }
        let writes = if self.quiet > 0 {
            0
        } else {
            self.rng.random_range(0..=3)
        };
        for _ in 0..writes {
            match self.rng.random_range(0..100) {
                0..=37 => self.events_step(),
                38..=41 => self.rejected_events_step(),
                42..=55 => self.upsert_step(),
                56..=59 => self.delete_contact_step(),
                60..=69 => self.create_segment_step(),
                70..=77 => self.edit_segment_step(),
                78..=80 => self.delete_segment_step(),
                81..=85 => self.static_step(),
                86..=91 => self.create_rule_step(),
                92..=95 => self.edit_rule_step(),
                96 => self.refused_rule_step(),
                _ => self.delete_rule_step(),
            }
        }
        self.advance();
        self.check();
        if self.quiet > 0 {
            self.quiet -= 1;
            if self.quiet == 0 {
                self.lag_check();
            }
        }
        if (self.step + 1).is_multiple_of(RESTORE_EVERY) {
            self.restore_check();
        }
    }

    // -- the clock --------------------------------------------------------------

    fn next_now(&mut self) -> i64 {
        let now = self.now;
        let timer = self.ws.next_timer().filter(|t| *t > now);
        let r = self.rng.random_range(0..100);
        let next = match (r, timer) {
            (0..=7, _) => now + 1,
            (8..=15, _) => now + self.rng.random_range(1..1000),
            (16..=27, _) => now + self.rng.random_range(1..=HOUR),
            (28..=41, _) => now + self.rng.random_range(1..=3 * DAY),
            (42..=51, _) => now + self.rng.random_range(1..=120 * DAY),
            (52..=65, Some(t)) => {
                self.stats.on_timer += 1;
                t
            }
            (66..=73, Some(t)) => t - 1,
            (74..=77, Some(t)) => t + 1,
            (78..=91, _) => self.landmark(),
            _ => now + self.rng.random_range(1..=MINUTE),
        };
        next.max(now + 1)
    }

    /// A month end or leap day near the clock, at or around midnight.
    fn landmark(&mut self) -> i64 {
        let (y, m, _) = civil_from_days(self.now.div_euclid(DAY));
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let first_next = days_from_civil(ny, nm, 1) * DAY;
        let leap = (y..y + 3)
            .find(|y| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0)
            .map(|y| days_from_civil(y, 2, 29) * DAY)
            .filter(|t| *t > self.now && *t < self.now + 400 * DAY);
        let base = match (self.rng.random_range(0..4), leap) {
            (0, Some(leap)) => leap,
            (1, _) => first_next - DAY,
            _ => first_next,
        };
        base + *[-1, 0, 1, 10 * HOUR, 10 * HOUR + 1]
            .choose(&mut self.rng)
            .unwrap()
    }

    fn advance(&mut self) {
        let write = self.ws.advance(self.now);
        self.absorb(&write, Kind::Advance);
    }

    // -- generators -------------------------------------------------------------

    fn gen_duration(&mut self) -> Duration {
        match self.rng.random_range(0..6) {
            0 => dur(self.rng.random_range(1..=600), DurationUnit::Minutes),
            1 => dur(self.rng.random_range(1..=72), DurationUnit::Hours),
            2 => dur(self.rng.random_range(1..=90), DurationUnit::Days),
            3 => dur(self.rng.random_range(1..=12), DurationUnit::Weeks),
            4 => dur(self.rng.random_range(1..=13), DurationUnit::Months),
            _ => dur(self.rng.random_range(1..=2), DurationUnit::Years),
        }
    }

    /// An instant near the clock: far and near past, near future, exact
    /// calendar distances (and 1 ms off them), month ends.
    fn gen_instant(&mut self) -> i64 {
        let now = self.now;
        match self.rng.random_range(0..10) {
            0 | 1 => now - self.rng.random_range(0..400 * DAY),
            2 => now - self.rng.random_range(0..2 * DAY),
            3 => now + self.rng.random_range(1..60 * DAY),
            4 | 5 => {
                // Exactly a duration ago, or 1 ms off it.
                let d = self.gen_duration();
                sub(now, d) + self.rng.random_range(-1..=1)
            }
            6 => {
                let (y, m, _) = civil_from_days(now.div_euclid(DAY));
                let first = days_from_civil(y, m, 1);
                (first - 1) * DAY + 10 * HOUR
            }
            _ => now - self.rng.random_range(0..90 * DAY),
        }
    }

    fn gen_birth_date(&mut self) -> i64 {
        let specials = [
            days_from_civil(2008, 2, 29),
            days_from_civil(2008, 3, 1),
            days_from_civil(2008, 2, 28),
            days_from_civil(2010, 1, 31),
            days_from_civil(2006, 2, 28),
        ];
        if self.rng.random_bool(0.3) {
            return *specials.choose(&mut self.rng).unwrap();
        }
        let years = *[16, 18, 21, 30].choose(&mut self.rng).unwrap();
        let (y, m, d) = civil_from_days(self.now.div_euclid(DAY));
        let d = d.min(28);
        days_from_civil(y - years, m, d) + self.rng.random_range(-60..=60)
    }

    fn fresh_contact(&mut self) -> String {
        format!("c{}", self.rng.random_range(0..self.pool))
    }

    fn pick_contact(&mut self) -> Option<String> {
        if self.model.contacts.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.model.contacts.len());
        self.model.contacts.keys().nth(k).cloned()
    }

    /// A where over event properties.
    fn gen_where(&mut self, depth: u32) -> Condition {
        if depth > 0 && self.rng.random_bool(0.25) {
            let n = self.rng.random_range(1..=2);
            let children = (0..n).map(|_| self.gen_where(depth - 1)).collect();
            return match self.rng.random_range(0..3) {
                0 => Condition::All(children),
                1 => Condition::Any(children),
                _ => Condition::Not(Box::new(self.gen_where(depth - 1))),
            };
        }
        let rng = &mut self.rng;
        let num = |rng: &mut StdRng| Scalar::Number(f64::from(rng.random_range(0..=80_i32)) * 2.5);
        let (field, test) = match rng.random_range(0..6) {
            0 => {
                let test = match rng.random_range(0..5) {
                    0 => FieldTest::Between(num(rng), num(rng)),
                    1 => FieldTest::In(vec![num(rng), num(rng)]),
                    2 => FieldTest::IsSet,
                    _ => FieldTest::Compare(*CMP_OPS.choose(rng).unwrap(), num(rng)),
                };
                ("amount", test)
            }
            1 => {
                let s =
                    |rng: &mut StdRng| Scalar::String(CATEGORIES.choose(rng).unwrap().to_string());
                let sub = SUBSTRINGS.choose(rng).unwrap().to_string();
                let test = match rng.random_range(0..8) {
                    0 => FieldTest::Compare(CmpOp::Ne, s(rng)),
                    1 => FieldTest::In(vec![s(rng), s(rng)]),
                    2 => FieldTest::NotIn(vec![s(rng)]),
                    3 => FieldTest::Contains(sub),
                    4 => FieldTest::StartsWith(sub),
                    5 => FieldTest::EndsWith(sub),
                    6 => FieldTest::IsNotSet,
                    _ => FieldTest::Compare(CmpOp::Eq, s(rng)),
                };
                ("category", test)
            }
            2 => {
                let now = self.now;
                let t = now - rng.random_range(-2 * DAY..60 * DAY);
                let s = if rng.random_bool(0.5) {
                    Scalar::Date(t.div_euclid(DAY) as i32)
                } else {
                    Scalar::DateTime(t)
                };
                ("day", FieldTest::Compare(*CMP_OPS.choose(rng).unwrap(), s))
            }
            3 => {
                let tag = TAGS.choose(rng).unwrap().to_string();
                let test = if rng.random_bool(0.5) {
                    FieldTest::Contains(tag)
                } else {
                    FieldTest::NotContains(tag)
                };
                ("tags", test)
            }
            4 => {
                let test = if rng.random_bool(0.5) {
                    FieldTest::IsSet
                } else {
                    FieldTest::IsNotSet
                };
                ("meta", test)
            }
            _ => (
                "flag",
                FieldTest::Compare(
                    *[CmpOp::Eq, CmpOp::Ne].choose(rng).unwrap(),
                    Scalar::Boolean(rng.random()),
                ),
            ),
        };
        Condition::Field {
            field: field.to_string(),
            test,
        }
    }

    fn gen_leaf(&mut self, refs: &[String]) -> Condition {
        let r = self.rng.random_range(0..100);
        match r {
            0..=11 => self.gen_plain_test(),
            12..=33 => self.gen_relative_test(),
            34..=63 => self.gen_event_node(),
            64..=77 => self.gen_sum_node(),
            78..=89 => {
                let v = f64::from(self.rng.random_range(-4..=60_i32)) * 0.5;
                Condition::Field {
                    field: "lead_score".into(),
                    test: FieldTest::Compare(
                        *CMP_OPS.choose(&mut self.rng).unwrap(),
                        Scalar::Number(v),
                    ),
                }
            }
            _ => match refs.choose(&mut self.rng) {
                Some(id) => Condition::InSegment(id.clone()),
                None => self.gen_event_node(),
            },
        }
    }

    fn gen_plain_test(&mut self) -> Condition {
        let rng = &mut self.rng;
        let country = |rng: &mut StdRng| Scalar::String(COUNTRIES.choose(rng).unwrap().to_string());
        let (field, test) = match rng.random_range(0..6) {
            0 => ("country", FieldTest::Compare(CmpOp::Eq, country(rng))),
            1 => (
                "country",
                FieldTest::NotIn(vec![country(rng), country(rng)]),
            ),
            2 => (
                "newsletter",
                FieldTest::Compare(CmpOp::Eq, Scalar::Boolean(rng.random())),
            ),
            3 => (
                "interests",
                FieldTest::Contains(INTERESTS.choose(rng).unwrap().to_string()),
            ),
            4 => ("renewal_at", FieldTest::IsSet),
            _ => ("last_seen_at", FieldTest::IsNotSet),
        };
        Condition::Field {
            field: field.to_string(),
            test,
        }
    }

    fn gen_relative_test(&mut self) -> Condition {
        let field = *[
            "birth_date",
            "birth_date",
            "renewal_at",
            "renewal_at",
            "last_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]
        .choose(&mut self.rng)
        .unwrap();
        let d = if field == "birth_date" && self.rng.random_bool(0.7) {
            dur(
                *[16, 18, 21, 30].choose(&mut self.rng).unwrap(),
                DurationUnit::Years,
            )
        } else {
            self.gen_duration()
        };
        let test = match self.rng.random_range(0..3) {
            0 => FieldTest::InLast(d),
            1 => FieldTest::BeforeAgo(d),
            _ => FieldTest::AfterAgo(d),
        };
        Condition::Field {
            field: field.to_string(),
            test,
        }
    }

    fn gen_event_node(&mut self) -> Condition {
        let event_type = EVENT_TYPES.choose(&mut self.rng).unwrap().to_string();
        let filter = self
            .rng
            .random_bool(0.4)
            .then(|| Box::new(self.gen_where(2)));
        let count = self.rng.random_bool(0.35).then(|| CountTest {
            op: *CMP_OPS.choose(&mut self.rng).unwrap(),
            value: self.rng.random_range(0..=3),
        });
        let in_last = self.rng.random_bool(0.75).then(|| self.gen_duration());
        let node = Condition::Event {
            event_type,
            filter,
            count,
            in_last,
        };
        if self.rng.random_bool(0.25) {
            Condition::Not(Box::new(node))
        } else {
            node
        }
    }

    fn gen_sum_node(&mut self) -> Condition {
        let event_type = EVENT_TYPES.choose(&mut self.rng).unwrap().to_string();
        let property = if self.rng.random_bool(0.9) {
            "amount"
        } else {
            *["flag", "meta", "category"].choose(&mut self.rng).unwrap()
        };
        let filter = self
            .rng
            .random_bool(0.3)
            .then(|| Box::new(self.gen_where(1)));
        Condition::EventSum {
            event_type,
            property: property.to_string(),
            filter,
            op: *CMP_OPS.choose(&mut self.rng).unwrap(),
            value: f64::from(self.rng.random_range(0..=120_i32)) * 2.5,
            in_last: self.rng.random_bool(0.75).then(|| self.gen_duration()),
        }
    }

    fn gen_node(&mut self, refs: &[String], depth: u32, budget: &mut i32) -> Condition {
        *budget -= 1;
        if depth == 0 || *budget <= 0 || self.rng.random_bool(0.4) {
            return self.gen_leaf(refs);
        }
        match self.rng.random_range(0..10) {
            0..=7 => {
                let n = self.rng.random_range(1..=3);
                let children = (0..n)
                    .map(|_| self.gen_node(refs, depth - 1, budget))
                    .collect();
                if self.rng.random_bool(0.5) {
                    Condition::All(children)
                } else {
                    Condition::Any(children)
                }
            }
            _ => Condition::Not(Box::new(self.gen_node(refs, depth - 1, budget))),
        }
    }

    fn gen_cond(&mut self, refs: &[String]) -> Condition {
        let mut budget = self.rng.random_range(1..=6);
        let depth = self.rng.random_range(1..=3);
        self.gen_node(refs, depth, &mut budget)
    }

    /// The generated tree is one a client could send: JSON → checker → the same tree.
    fn check_tree(&self, cond: &Condition) {
        match from_json(&to_json(cond), &self.ws.schema()) {
            Ok(back) if back == *cond => {}
            Ok(back) => self.fail(format!(
                "generator made a tree the checker reads differently: {cond:?} -> {back:?}"
            )),
            Err(e) => self.fail(format!("generator made an invalid tree {cond:?}: {e}")),
        }
    }

    /// Properties of an event of type `ty`: what is sent, what conditions
    /// read, and the JSON text.
    fn gen_props(&mut self, ty: &str) -> (Vec<(String, RawValue)>, BTreeMap<String, PVal>, String) {
        let (p_amount, p_category, p_day, p_tags, p_meta, p_flag) = match ty {
            "purchase" => (0.85, 0.8, 0.3, 0.3, 0.2, 0.1),
            "page_visit" => (0.1, 0.7, 0.1, 0.1, 0.2, 0.1),
            "email_open" => (0.1, 0.5, 0.1, 0.1, 0.1, 0.6),
            _ => (0.2, 0.1, 0.6, 0.1, 0.4, 0.3),
        };
        let mut raw = Vec::new();
        let mut read = BTreeMap::new();
        let mut json = Vec::new();
        let rng = &mut self.rng;
        if rng.random_bool(p_amount) {
            let x = f64::from(rng.random_range(0..=800_i32)) * 0.25;
            if rng.random_bool(0.05) {
                // A number sent as a string: sums skip it.
                let s = format!("{x:.2}");
                json.push(format!("\"amount\":{}", json_string(&s)));
                raw.push(("amount".into(), RawValue::String(s.clone())));
                read.insert("amount".to_string(), PVal::Str(s));
            } else {
                json.push(format!("\"amount\":{x}"));
                raw.push(("amount".into(), RawValue::Number(x)));
                read.insert("amount".to_string(), PVal::Num(x));
            }
        }
        if rng.random_bool(p_category) {
            let s = CATEGORIES.choose(rng).unwrap().to_string();
            json.push(format!("\"category\":{}", json_string(&s)));
            raw.push(("category".into(), RawValue::String(s.clone())));
            read.insert("category".to_string(), PVal::Str(s));
        }
        if rng.random_bool(p_day) {
            let t = self.now - rng.random_range(-2 * DAY..60 * DAY);
            let (text, value) = match rng.random_range(0..5) {
                0 | 1 => (fmt_date(t.div_euclid(DAY)), PVal::Date(t.div_euclid(DAY))),
                2 => (fmt_datetime(t, 0), PVal::DateTime(t)),
                3 => (fmt_datetime(t, 120), PVal::DateTime(t)),
                _ => {
                    // Not a date: a real one is never February 30th.
                    let s = ["soon", "2026-02-30", "yesterday"].choose(rng).unwrap();
                    (s.to_string(), PVal::Str(s.to_string()))
                }
            };
            json.push(format!("\"day\":{}", json_string(&text)));
            raw.push(("day".into(), RawValue::String(text)));
            read.insert("day".to_string(), value);
        }
        if rng.random_bool(p_tags) {
            let n = rng.random_range(0..=2);
            let mut tags: Vec<String> = (0..n)
                .map(|_| TAGS.choose(rng).unwrap().to_string())
                .collect();
            let list: Vec<String> = tags.iter().map(|t| json_string(t)).collect();
            json.push(format!("\"tags\":[{}]", list.join(",")));
            raw.push(("tags".into(), RawValue::StringList(tags.clone())));
            tags.sort();
            tags.dedup();
            read.insert("tags".to_string(), PVal::List(tags));
        }
        if rng.random_bool(p_meta) {
            // Conditions cannot read an object: the property counts as absent.
            json.push("\"meta\":{\"source\":\"ad\",\"depth\":2}".to_string());
            raw.push(("meta".into(), RawValue::Unsupported("an object")));
        }
        if rng.random_bool(p_flag) {
            let b: bool = rng.random();
            json.push(format!("\"flag\":{b}"));
            raw.push(("flag".into(), RawValue::Bool(b)));
            read.insert("flag".to_string(), PVal::Bool(b));
        }
        (raw, read, format!("{{{}}}", json.join(",")))
    }

    /// A valid event (stamped at most 5 minutes ahead), and what it reads as.
    fn gen_event(&mut self) -> (EventInput, BTreeMap<String, PVal>) {
        let (contact_id, anonymous) = match self.rng.random_range(0..20) {
            0..=12 => match self.pick_contact() {
                Some(id) => (id, None),
                None => (self.fresh_contact(), None),
            },
            13..=16 => (self.fresh_contact(), None),
            17 if !self.model.gone.is_empty() => {
                let k = self.rng.random_range(0..self.model.gone.len());
                (self.model.gone.iter().nth(k).unwrap().clone(), None)
            }
            _ => (
                format!("anon-{}", self.rng.random_range(0..self.pool)),
                Some(self.rng.random_bool(0.8)),
            ),
        };
        let event_type = EVENT_TYPES.choose(&mut self.rng).unwrap().to_string();
        let now = self.now;
        let at = match self.rng.random_range(0..12) {
            0 | 1 => None,
            2 => Some(now + MAX_FUTURE),
            3 => Some(now + self.rng.random_range(1..MAX_FUTURE)),
            4 => Some(now - self.rng.random_range(0..HOUR)),
            5 | 6 => Some(self.gen_instant().min(now + MAX_FUTURE)),
            _ => Some(now - self.rng.random_range(0..90 * DAY)),
        };
        let id = self.rng.random_bool(0.85).then(|| {
            self.next_event += 1;
            format!("e{}", self.next_event)
        });
        let (properties, read, properties_json) = self.gen_props(&event_type);
        (
            EventInput {
                id,
                contact_id,
                event_type,
                at,
                properties,
                properties_json,
                anonymous,
            },
            read,
        )
    }

    /// A replay of an accepted event of a live contact: the same id, sent
    /// again as it was or with another time and properties.
    fn gen_replay(&mut self) -> Option<(EventInput, BTreeMap<String, PVal>)> {
        let cid = self.pick_contact()?;
        let c = &self.model.contacts[&cid];
        let with_id: Vec<&MEvent> = c.events.iter().filter(|e| e.id.is_some()).collect();
        let e = (*with_id.choose(&mut self.rng)?).clone();
        let mut input = e.input.clone();
        if self.rng.random_bool(0.5) {
            input.at = Some(self.now);
            let (properties, _, json) = self.gen_props(&input.event_type);
            input.properties = properties;
            input.properties_json = json;
        }
        Some((input, e.props))
    }

    // -- steps ------------------------------------------------------------------

    fn events_step(&mut self) {
        let n = *[1, 1, 1, 2, 3, 6].choose(&mut self.rng).unwrap();
        let mut items: Vec<(EventInput, BTreeMap<String, PVal>)> = Vec::new();
        for _ in 0..n {
            if self.rng.random_bool(0.1)
                && let Some(replay) = self.gen_replay()
            {
                self.stats.replays += 1;
                items.push(replay);
                continue;
            }
            items.push(self.gen_event());
            // The same new id twice in one batch: only the first applies.
            if self.rng.random_bool(0.04) && items.last().unwrap().0.id.is_some() {
                let mut again = items.last().unwrap().clone();
                again.0.at = Some(self.now - 1);
                items.push(again);
            }
        }
        let inputs: Vec<EventInput> = items.iter().map(|(i, _)| i.clone()).collect();
        self.note(format!("events {}", describe_events(&inputs)));
        let problems = self.ws.check_events(&inputs, self.now);
        if !problems.is_empty() {
            self.fail(format!("check_events refuses a valid batch: {problems:?}"));
        }
        let write = match self.ws.ingest_events(&inputs, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("valid events rejected: {e}")),
        };
        self.absorb(&write, Kind::Events);
        // The model, after the absorb: time changes a write records first
        // are checked against the data before the write.
        let mut duplicates = Vec::new();
        let mut accepted = 0;
        for (index, (input, read)) in items.into_iter().enumerate() {
            if let Some(id) = &input.id
                && !self.model.seen.insert(id.clone())
            {
                duplicates.push(index);
                continue;
            }
            accepted += 1;
            self.model.gone.remove(&input.contact_id);
            let now = self.now;
            let c = self
                .model
                .contacts
                .entry(input.contact_id.clone())
                .or_insert_with(|| MContact {
                    props: BTreeMap::new(),
                    created_at: now,
                    updated_at: now,
                    anonymous: input.anonymous.unwrap_or(false),
                    events: Vec::new(),
                });
            c.events.push(MEvent {
                id: input.id.clone(),
                ty: input.event_type.clone(),
                at: input.at.unwrap_or(now),
                props: read,
                input,
            });
        }
        if write.accepted != accepted || write.duplicates != duplicates {
            self.fail(format!(
                "events: accepted {} duplicates {:?}, expected {accepted} {duplicates:?}",
                write.accepted, write.duplicates
            ));
        }
        self.stats.events += accepted as usize;
    }

    fn rejected_events_step(&mut self) {
        let n = self.rng.random_range(1..=4);
        let mut items: Vec<EventInput> = (0..n).map(|_| self.gen_event().0).collect();
        let mut bad = Vec::new();
        for (index, item) in items.iter_mut().enumerate() {
            if index == 0 || self.rng.random_bool(0.3) {
                item.at = Some(
                    self.now
                        + *[MAX_FUTURE + 1, 6 * MINUTE, DAY]
                            .choose(&mut self.rng)
                            .unwrap(),
                );
                bad.push(index);
            }
        }
        // The bad ones anywhere in the batch.
        let shift = self.rng.random_range(0..n);
        items.rotate_right(shift);
        let mut bad: Vec<usize> = bad.into_iter().map(|i| (i + shift) % n).collect();
        bad.sort_unstable();
        self.note(format!(
            "rejected events (bad {bad:?}) {}",
            describe_events(&items)
        ));
        let checked: Vec<usize> = self
            .ws
            .check_events(&items, self.now)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        if checked != bad {
            self.fail(format!(
                "check_events names items {checked:?}, expected {bad:?}"
            ));
        }
        // A refused batch changes nothing, not even the clock: timers it
        // fired would have no write to carry their changes.
        let before = digest(&self.ws);
        match self.ws.ingest_events(&items, self.now) {
            Err(Error::BatchInvalid { total, failures })
                if n > 1
                    && total == n
                    && failures.iter().map(|(i, _)| *i).collect::<Vec<_>>() == bad => {}
            Err(e) if n == 1 && !matches!(e, Error::BatchInvalid { .. }) => {}
            other => self.fail(format!("events too far ahead: {other:?}")),
        }
        let after = digest(&self.ws);
        if before != after {
            self.fail(format!(
                "a rejected event batch changed the workspace (before first):\n{}",
                digest_diff(&before, &after)
            ));
        }
        self.stats.rejected_batches += 1;
    }

    fn upsert_step(&mut self) {
        let n = self.rng.random_range(1..=3);
        let mut items = Vec::new();
        let mut typed: Vec<Vec<(String, Option<Value>)>> = Vec::new();
        for _ in 0..n {
            let id = if self.rng.random_bool(0.7) {
                self.pick_contact().unwrap_or_else(|| self.fresh_contact())
            } else {
                self.fresh_contact()
            };
            let mut properties = Vec::new();
            let mut values = Vec::new();
            for _ in 0..self.rng.random_range(1..=3) {
                let (name, raw, value) = match self.rng.random_range(0..7) {
                    0 => {
                        let s = COUNTRIES.choose(&mut self.rng).unwrap().to_string();
                        (
                            "country",
                            RawValue::String(s.clone()),
                            Some(Value::String(s)),
                        )
                    }
                    1 => {
                        let b = self.rng.random();
                        ("newsletter", RawValue::Bool(b), Some(Value::Boolean(b)))
                    }
                    2 | 3 => {
                        let d = self.gen_birth_date();
                        (
                            "birth_date",
                            RawValue::String(fmt_date(d)),
                            Some(Value::Date(d as i32)),
                        )
                    }
                    4 => {
                        let t = self.gen_instant();
                        let offset = *[0, 0, 60, -330].choose(&mut self.rng).unwrap();
                        (
                            "renewal_at",
                            RawValue::String(fmt_datetime(t, offset)),
                            Some(Value::DateTime(t)),
                        )
                    }
                    5 => {
                        let mut items: Vec<String> = (0..self.rng.random_range(0..=2))
                            .map(|_| INTERESTS.choose(&mut self.rng).unwrap().to_string())
                            .collect();
                        let raw = RawValue::StringList(items.clone());
                        items.sort();
                        items.dedup();
                        ("interests", raw, Some(Value::StringList(items)))
                    }
                    _ => {
                        let name = *["birth_date", "renewal_at", "country"]
                            .choose(&mut self.rng)
                            .unwrap();
                        (name, RawValue::Null, None)
                    }
                };
                properties.push((name.to_string(), raw));
                values.push((name.to_string(), value));
            }
            items.push(ContactInput {
                id,
                properties,
                anonymous: self.rng.random_bool(0.1).then(|| self.rng.random()),
            });
            typed.push(values);
        }
        self.note(format!("upsert {items:?}"));
        let write = match self.ws.upsert_contacts(&items, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("valid upsert rejected: {e}")),
        };
        self.absorb(&write, Kind::Upsert);
        let now = self.now;
        for (item, values) in items.iter().zip(typed) {
            self.model.gone.remove(&item.id);
            let c = self
                .model
                .contacts
                .entry(item.id.clone())
                .or_insert_with(|| MContact {
                    props: BTreeMap::new(),
                    created_at: now,
                    updated_at: now,
                    anonymous: false,
                    events: Vec::new(),
                });
            c.updated_at = now;
            if let Some(a) = item.anonymous {
                c.anonymous = a;
            }
            for (name, value) in values {
                match value {
                    Some(v) => c.props.insert(name, v),
                    None => c.props.remove(&name),
                };
            }
        }
        self.stats.upserts += n;
    }

    fn delete_contact_step(&mut self) {
        let Some(id) = self.pick_contact() else {
            return self.upsert_step();
        };
        self.note(format!("delete contact {id:?}"));
        let write = match self.ws.delete_contact(&id, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("delete contact: {e}")),
        };
        self.absorb(&write, Kind::DeleteContact);
        self.model.contacts.remove(&id);
        self.model.gone.insert(id.clone());
        for seg in self.model.segs.values_mut() {
            seg.statics.remove(&id);
        }
        self.stats.deletes += 1;
    }

    fn create_segment_step(&mut self) {
        if self.model.segs.len() >= MAX_SEGMENTS {
            return self.delete_segment_step();
        }
        self.next_segment += 1;
        let id = format!("s{}", self.next_segment);
        let name = format!("Segment {}", self.next_segment);
        let dynamic = self.rng.random_bool(0.85);
        let refs: Vec<String> = self.model.segs.keys().cloned().collect();
        let cond = dynamic.then(|| self.gen_cond(&refs));
        if let Some(cond) = &cond {
            self.check_tree(cond);
        }
        let shown = cond.as_ref().map(|c| self.text(c));
        self.note(format!("create segment {id}: {shown:?}"));
        let input = SegmentInput {
            id: id.clone(),
            name: name.clone(),
            description: String::new(),
            kind: if dynamic {
                SegmentKind::Dynamic
            } else {
                SegmentKind::Static
            },
            condition: cond.clone(),
            test: false,
        };
        let write = match self.ws.create_segment(input, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("create segment {shown:?}: {e}")),
        };
        self.replay.insert(id.clone(), RoaringBitmap::new());
        self.absorb(&write, Kind::Segment);
        self.model.segs.insert(
            id,
            MSegment {
                name,
                cond,
                statics: BTreeSet::new(),
            },
        );
        self.stats.segment_writes += 1;
    }

    fn edit_segment_step(&mut self) {
        let dynamic: Vec<String> = self
            .model
            .segs
            .iter()
            .filter(|(_, s)| s.cond.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let Some(id) = dynamic.choose(&mut self.rng).cloned() else {
            return self.create_segment_step();
        };
        let allowed: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| **s != id && !self.model.depends_on(s, &id))
            .cloned()
            .collect();
        let cond = self.gen_cond(&allowed);
        self.check_tree(&cond);
        let shown = self.text(&cond);
        self.note(format!("edit segment {id}: {shown}"));
        let patch = SegmentPatch {
            condition: Some(cond.clone()),
            ..SegmentPatch::default()
        };
        let write = match self.ws.update_segment(&id, patch, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("edit segment: {e}")),
        };
        self.absorb(&write, Kind::Segment);
        self.model.segs.get_mut(&id).unwrap().cond = Some(cond);
        self.stats.segment_writes += 1;
    }

    fn delete_segment_step(&mut self) {
        let free: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| !self.model.referred(s))
            .cloned()
            .collect();
        let Some(id) = free.choose(&mut self.rng).cloned() else {
            return;
        };
        self.note(format!("delete segment {id}"));
        let write = match self.ws.delete_segment(&id) {
            Ok(w) => w,
            Err(e) => self.fail(format!("delete segment: {e}")),
        };
        self.absorb(&write, Kind::Segment);
        self.model.segs.remove(&id);
        self.replay.remove(&id);
        self.stats.segment_writes += 1;
    }

    fn static_step(&mut self) {
        let statics: Vec<String> = self
            .model
            .segs
            .iter()
            .filter(|(_, s)| s.cond.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let Some(id) = statics.choose(&mut self.rng).cloned() else {
            return self.create_segment_step();
        };
        let ids: Vec<String> = (0..self.rng.random_range(1..=4))
            .filter_map(|_| self.pick_contact())
            .collect();
        let add = self.rng.random_bool(0.6);
        self.note(format!(
            "static {} {id}: {ids:?}",
            if add { "add" } else { "remove" }
        ));
        let write = match self.ws.set_static_members(&id, &ids, add, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("static write: {e}")),
        };
        self.absorb(&write, Kind::Static);
        let seg = self.model.segs.get_mut(&id).unwrap();
        for c in ids {
            if add {
                seg.statics.insert(c);
            } else {
                seg.statics.remove(&c);
            }
        }
        self.stats.segment_writes += 1;
    }

    fn gen_points(&mut self) -> f64 {
        f64::from(self.rng.random_range(-8..=40_i32)) * 0.25
    }

    fn create_rule_step(&mut self) {
        if self.model.rules.len() >= MAX_RULES {
            return self.delete_rule_step();
        }
        self.next_rule += 1;
        let rule = MRule {
            id: format!("r{}", self.next_rule),
            ty: EVENT_TYPES.choose(&mut self.rng).unwrap().to_string(),
            filter: self.rng.random_bool(0.4).then(|| self.gen_where(1)),
            points: self.gen_points(),
            expires: self.rng.random_bool(0.6).then(|| self.gen_duration()),
        };
        self.note(format!("create rule {rule:?}"));
        let input = ScoringRuleInput {
            id: rule.id.clone(),
            event_type: rule.ty.clone(),
            filter: rule.filter.clone(),
            points: rule.points,
            expires_after: rule.expires,
        };
        let write = match self.ws.create_scoring_rule(input, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("create rule: {e}")),
        };
        self.absorb(&write, Kind::Rule);
        self.model.rules.push(rule);
        self.stats.rule_writes += 1;
    }

    fn edit_rule_step(&mut self) {
        if self.model.rules.is_empty() {
            return self.create_rule_step();
        }
        let k = self.rng.random_range(0..self.model.rules.len());
        let mut patch = ScoringRulePatch::default();
        let mut rule = self.model.rules[k].clone();
        if self.rng.random_bool(0.3) {
            rule.ty = EVENT_TYPES.choose(&mut self.rng).unwrap().to_string();
            patch.event_type = Some(rule.ty.clone());
        }
        if self.rng.random_bool(0.4) {
            rule.filter = self.rng.random_bool(0.6).then(|| self.gen_where(1));
            patch.filter = Some(rule.filter.clone());
        }
        if self.rng.random_bool(0.5) {
            rule.points = self.gen_points();
            patch.points = Some(rule.points);
        }
        if self.rng.random_bool(0.4) {
            rule.expires = self.rng.random_bool(0.6).then(|| self.gen_duration());
            patch.expires_after = Some(rule.expires);
        }
        self.note(format!("edit rule {}: {patch:?}", rule.id));
        let write = match self.ws.update_scoring_rule(&rule.id, patch, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("edit rule: {e}")),
        };
        self.absorb(&write, Kind::Rule);
        self.model.rules[k] = rule;
        self.stats.rule_writes += 1;
    }

    fn delete_rule_step(&mut self) {
        if self.model.rules.is_empty() {
            return self.create_rule_step();
        }
        let k = self.rng.random_range(0..self.model.rules.len());
        let id = self.model.rules[k].id.clone();
        self.note(format!("delete rule {id}"));
        let write = match self.ws.delete_scoring_rule(&id, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("delete rule: {e}")),
        };
        self.absorb(&write, Kind::Rule);
        self.model.rules.remove(k);
        self.stats.rule_writes += 1;
    }

    /// Rule writes the engine must refuse, changing nothing.
    fn refused_rule_step(&mut self) {
        let taken = self.model.rules.first().map(|r| r.id.clone());
        let valid = ScoringRuleInput {
            id: "r-new".into(),
            event_type: "purchase".into(),
            filter: None,
            points: 1.0,
            expires_after: None,
        };
        let before = digest(&self.ws);
        let (what, result) = match (self.rng.random_range(0..5), taken) {
            (0, Some(id)) => (
                format!("create rule with the taken id {id}"),
                self.ws
                    .create_scoring_rule(ScoringRuleInput { id, ..valid }, self.now),
            ),
            (1, _) => (
                "create rule with NaN points".to_string(),
                self.ws.create_scoring_rule(
                    ScoringRuleInput {
                        points: f64::NAN,
                        ..valid
                    },
                    self.now,
                ),
            ),
            (2, _) => (
                "create rule expiring after 0 days".to_string(),
                self.ws.create_scoring_rule(
                    ScoringRuleInput {
                        expires_after: Some(dur(0, DurationUnit::Days)),
                        ..valid
                    },
                    self.now,
                ),
            ),
            (3, _) => (
                "edit unknown rule".to_string(),
                self.ws
                    .update_scoring_rule("r-none", ScoringRulePatch::default(), self.now),
            ),
            _ => (
                "delete unknown rule".to_string(),
                self.ws.delete_scoring_rule("r-none", self.now),
            ),
        };
        self.note(format!("refused: {what}"));
        if result.is_ok() {
            self.fail(format!("{what} was accepted: {result:?}"));
        }
        let after = digest(&self.ws);
        if before != after {
            self.fail(format!(
                "{what} was refused but changed the workspace (before first):\n{}",
                digest_diff(&before, &after)
            ));
        }
        self.stats.rejected_batches += 1;
    }

    // -- the change log -------------------------------------------------------------

    /// Checks a write's change batches against the log and, for changes
    /// caused by time, against the oracle (with the model as it was before
    /// the write), then commits the write's records to the store.
    fn absorb(&mut self, write: &Write, kind: Kind) {
        let prev_clock = self.recorded;
        let mut last_time_at = prev_clock;
        // What timers fired before the write comes first: changes caused by
        // time and the `segment_ref` changes they set off.
        // The timers' changes end with a clock record; a write's own changes
        // (a new contact entering `not in segment ...`) may start with
        // `segment_ref` too, at the very instant a timer fired.
        let mut ticked = true;
        for record in &write.records {
            match record {
                Record::Changes(batch) => {
                    let timed = kind == Kind::Advance
                        || batch.cause == Cause::Time
                        || (ticked && batch.cause == Cause::SegmentRef);
                    ticked &= timed;
                    self.absorb_batch(batch, kind, timed, prev_clock, &mut last_time_at)
                }
                Record::Clock(at) if *at > self.now => {
                    self.fail(format!("clock record {} after now", show(*at)))
                }
                Record::Clock(_) => ticked = false,
                _ => {}
            }
        }
        if let Err(e) = self.store.commit(&[&write.records]) {
            match e {}
        }
        // A write returns what its tick fired, up to the clock.
        self.recorded = self.ws.clock();
    }

    fn absorb_batch(
        &mut self,
        b: &ChangeBatch,
        kind: Kind,
        timed: bool,
        prev_clock: i64,
        last: &mut i64,
    ) {
        if b.seq_start != self.next_seq || b.contacts.is_empty() {
            self.fail(format!(
                "change batch starts at seq {} after seq {}, or is empty: {b:?}",
                b.seq_start, self.next_seq
            ));
        }
        self.next_seq = b.seq_end();
        self.stats.changes += b.len();
        let plausible = match kind {
            _ if timed => matches!(b.cause, Cause::Time | Cause::SegmentRef),
            Kind::Advance => false,
            Kind::Events => matches!(b.cause, Cause::Event | Cause::SegmentRef),
            Kind::Upsert => matches!(b.cause, Cause::ContactUpdate | Cause::SegmentRef),
            Kind::DeleteContact => b.cause == Cause::ContactDelete,
            Kind::Segment => matches!(b.cause, Cause::SegmentEdit | Cause::SegmentRef),
            Kind::Static => matches!(
                b.cause,
                Cause::StaticAdd | Cause::StaticRemove | Cause::SegmentRef
            ),
            // docs/concepts.md names no cause for a rescore; any but these would be odd.
            Kind::Rule => !matches!(
                b.cause,
                Cause::ContactDelete | Cause::StaticAdd | Cause::StaticRemove | Cause::Merge
            ),
        };
        if !plausible {
            self.fail(format!("implausible cause for a {kind:?} write: {b:?}"));
        }
        if timed {
            // Fired timers: after the previous clock, at most now, in order.
            if b.at <= prev_clock || b.at > self.now || b.at < *last {
                self.fail(format!(
                    "time change at {} outside ({}, {}] or out of order (previous at {}): {b:?}",
                    show(b.at),
                    show(prev_clock),
                    show(self.now),
                    show(*last)
                ));
            }
            *last = b.at;
            self.stats.time_changes += b.len();
            self.check_flip(b);
        } else if b.at != self.now {
            self.fail(format!("change batch of a write not at now: {b:?}"));
        }
        if let Some(lag) = &mut self.lag {
            for no in &b.contacts {
                lag.changes
                    .push((b.segment_id.clone(), b.kind, b.cause, b.at, no));
            }
        }
        let Some(members) = self.replay.get_mut(&b.segment_id) else {
            self.fail(format!("change for unknown segment {b:?}"));
        };
        let bad = match b.kind {
            ChangeKind::Entered => {
                let bad = &b.contacts & &*members;
                *members |= &b.contacts;
                bad
            }
            ChangeKind::Exited => {
                let bad = &b.contacts - &*members;
                *members -= &b.contacts;
                bad
            }
        };
        if !bad.is_empty() {
            self.fail(format!(
                "{b:?}: contacts {bad:?} entered while members or exited while not"
            ));
        }
    }

    /// A change recorded at instant `at` by the passing of time: the oracle
    /// must see each contact out at `at - 1` and in at `at` (or the reverse).
    fn check_flip(&self, b: &ChangeBatch) {
        let Some(seg) = self.model.segs.get(&b.segment_id) else {
            self.fail(format!("time change of unknown segment {b:?}"));
        };
        for no in &b.contacts {
            let cid = self.ws.contacts().id(no).to_string();
            if !self.model.contacts.contains_key(&cid) {
                self.fail(format!(
                    "time change for contact {cid:?} the model lacks: {b:?}"
                ));
            }
            let before = self.model.memberships(&cid, b.at - 1)[b.segment_id.as_str()];
            let after = self.model.memberships(&cid, b.at)[b.segment_id.as_str()];
            let expected = match b.kind {
                ChangeKind::Entered => (false, true),
                ChangeKind::Exited => (true, false),
            };
            if (before, after) != expected {
                let cond = seg.cond.as_ref().map(|c| self.text(c));
                self.fail(format!(
                    "{:?} of {cid:?} in {} at {} (cause {:?}), but the oracle has it {} at {} and {} at {}\n  condition: {cond:?}\n  contact {}",
                    b.kind,
                    b.segment_id,
                    show(b.at),
                    b.cause,
                    if before { "in" } else { "out" },
                    show(b.at - 1),
                    if after { "in" } else { "out" },
                    show(b.at),
                    self.describe(&cid)
                ));
            }
        }
    }

    // -- checks ---------------------------------------------------------------------

    fn check(&mut self) {
        let ws = &self.ws;
        let now = self.now;
        if ws.clock() != now {
            self.fail(format!("clock is {} after advance", show(ws.clock())));
        }
        if ws.contact_count() != self.model.contacts.len() as u64 {
            self.fail(format!(
                "engine has {} contacts, model {}",
                ws.contact_count(),
                self.model.contacts.len()
            ));
        }
        for id in &self.model.gone {
            if ws.lookup(id).is_some() {
                self.fail(format!("deleted contact {id:?} still found"));
            }
        }
        let mut expected: HashMap<&str, RoaringBitmap> = self
            .model
            .segs
            .keys()
            .map(|s| (s.as_str(), RoaringBitmap::new()))
            .collect();
        let mut no_of: HashMap<&str, u32> = HashMap::new();
        for (cid, c) in &self.model.contacts {
            let Some(no) = ws.lookup(cid) else {
                self.fail(format!("contact {cid:?} missing"));
            };
            no_of.insert(cid, no);
            let Some(view) = ws.contact(no) else {
                self.fail(format!("contact {cid:?} (#{no}) has no view"));
            };
            let props: BTreeMap<String, Value> = view.properties.iter().cloned().collect();
            let got = (
                view.created_at,
                view.updated_at,
                view.anonymous,
                view.last_seen_at,
                view.lead_score,
            );
            let want = (
                c.created_at,
                c.updated_at,
                c.anonymous,
                c.events.iter().map(|e| e.at).max(),
                self.model.lead_score(c, now),
            );
            if view.id != *cid || props != c.props || got != want {
                self.fail(format!(
                    "contact {cid:?} (#{no}) is {view:?}\n  (created, updated, anonymous, last_seen, score) {got:?}, oracle {want:?}\n  {}",
                    self.describe(cid)
                ));
            }
            for (s, m) in self.model.memberships(cid, now) {
                if m {
                    expected.get_mut(s).unwrap().insert(no);
                }
            }
        }
        if ws.segments().len() != self.model.segs.len() {
            self.fail(format!(
                "engine has {} segments, model {}",
                ws.segments().len(),
                self.model.segs.len()
            ));
        }
        for (id, mseg) in &self.model.segs {
            let Some(seg) = ws.segment(id) else {
                self.fail(format!("segment {id} missing"));
            };
            if seg.def.condition != mseg.cond || seg.def.name != mseg.name {
                self.fail(format!("segment {id} is {:?}, model {mseg:?}", seg.def));
            }
            let want = &expected[id.as_str()];
            self.stats.segment_checks += 1;
            if !want.is_empty() && want.len() < self.model.contacts.len() as u64 {
                self.stats.mixed_checks += 1;
            }
            if seg.members != *want {
                let cond = mseg.cond.as_ref().map(|c| self.text(c));
                let mut diff = String::new();
                for no in (&seg.members ^ want).iter().take(4) {
                    let cid = ws.contacts().id(no);
                    let _ = write!(
                        diff,
                        "  #{no} engine {}, oracle {}: {}",
                        seg.members.contains(no),
                        want.contains(no),
                        self.describe(cid)
                    );
                }
                let refs: Vec<(String, Option<String>)> = self
                    .model
                    .refs(id)
                    .iter()
                    .map(|r| {
                        (
                            r.clone(),
                            self.model.segs[r].cond.as_ref().map(|c| self.text(c)),
                        )
                    })
                    .collect();
                self.fail(format!(
                    "segment {id} membership differs from the oracle at {}\n  condition: {cond:?}\n  refers to {refs:?}\n{diff}",
                    show(now)
                ));
            }
            if let Some(cond) = &mseg.cond {
                match ws.preview(cond, now) {
                    Ok(bulk) if bulk == seg.members => {}
                    other => self.fail(format!(
                        "segment {id}: preview {other:?} != members {:?}",
                        seg.members
                    )),
                }
            }
            match self.replay.get(id) {
                Some(replayed) if *replayed == seg.members => {}
                other => self.fail(format!(
                    "segment {id}: change log replays to {other:?}, members are {:?}",
                    seg.members
                )),
            }
        }
        if ws.next_seq() != self.next_seq {
            self.fail(format!(
                "engine next_seq {} but the log ends at {}",
                ws.next_seq(),
                self.next_seq
            ));
        }
        self.check_timer(&self.ws);
    }

    /// The engine's next timer is after now and no later than the first
    /// instant at which the oracle sees a membership flip.
    fn check_timer(&self, ws: &Workspace) {
        let now = self.now;
        let timer = ws.next_timer();
        if timer.is_some_and(|t| t <= now) {
            self.fail(format!("next_timer {:?} is not after now", timer.map(show)));
        }
        let limit = timer.unwrap_or(i64::MAX);
        let mut nodes = TimeNodes::default();
        for seg in self.model.segs.values() {
            if let Some(cond) = &seg.cond {
                time_nodes(cond, &mut nodes);
            }
        }
        for (cid, c) in &self.model.contacts {
            let mut candidates: Vec<i64> = self
                .model
                .candidates(c, &nodes)
                .into_iter()
                .filter(|t| *t > now && *t < limit)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_unstable();
            candidates.dedup();
            let current = self.model.memberships(cid, now);
            for t in candidates {
                let then = self.model.memberships(cid, t);
                if then != current {
                    let flipped: Vec<&str> = current
                        .iter()
                        .filter(|(s, m)| then[*s] != **m)
                        .map(|(s, _)| *s)
                        .collect();
                    let conds: Vec<String> = flipped
                        .iter()
                        .filter_map(|s| self.model.segs[*s].cond.as_ref())
                        .map(|c| self.text(c))
                        .collect();
                    self.fail(format!(
                        "the oracle flips {cid:?} in {flipped:?} at {} but the next timer is {:?}\n  conditions: {conds:?}\n  contact {}",
                        show(t),
                        timer.map(show),
                        self.describe(cid)
                    ));
                }
            }
        }
    }

    /// A restart from the store as it was before a stretch of steps without
    /// writes: loaded at that older clock and advanced to now, it must record
    /// the very changes the live workspace recorded meanwhile.
    fn lag_check(&mut self) {
        let Some(lag) = self.lag.take() else {
            return;
        };
        let Ok(mut back) = lag.store.load();
        let write = back.advance(self.now);
        let mut got: Vec<(String, ChangeKind, Cause, i64, u32)> = write
            .changes()
            .flat_map(|b| {
                b.contacts
                    .iter()
                    .map(move |no| (b.segment_id.clone(), b.kind, b.cause, b.at, no))
            })
            .collect();
        let mut want = lag.changes;
        got.sort_by(|a, b| (a.3, &a.0, a.4).cmp(&(b.3, &b.0, b.4)));
        want.sort_by(|a, b| (a.3, &a.0, a.4).cmp(&(b.3, &b.0, b.4)));
        self.note(format!(
            "restart from {} to now: {} changes",
            show(lag.clock),
            want.len()
        ));
        if got != want {
            let shown = |v: &[(String, ChangeKind, Cause, i64, u32)]| -> Vec<String> {
                v.iter()
                    .take(12)
                    .map(|(s, k, c, at, no)| format!("{s} {k:?} {c:?} {} #{no}", show(*at)))
                    .collect()
            };
            self.fail(format!(
                "a restart from the store at {} recorded other changes than the live workspace since:\n  restarted {:?}\n  live {:?}",
                show(lag.clock),
                shown(&got),
                shown(&want)
            ));
        }
        let (live, back_digest) = (digest(&self.ws), digest(&back));
        let strip = |d: Digest| Digest {
            next_timer: None,
            ..d
        };
        let (live, back_digest) = (strip(live), strip(back_digest));
        if live != back_digest {
            self.fail(format!(
                "a restart from the store at {} differs from the live workspace (live first):\n{}",
                show(lag.clock),
                digest_diff(&live, &back_digest)
            ));
        }
        self.check_timer(&back);
        self.stats.lag_restores += 1;
        self.stats.lag_changes += got.len();
    }

    fn restore_check(&mut self) {
        let Ok(mut restored) = self.store.load();
        let write = restored.advance(self.now);
        self.stats.restores += 1;
        if let Some(b) = write.changes().next() {
            self.fail(format!(
                "a workspace loaded from the store recorded changes the live one had already recorded when advanced to now: {b:?}"
            ));
        }
        let (live, back) = (digest(&self.ws), digest(&restored));
        let timers = (live.next_timer, back.next_timer);
        let strip = |d: Digest| Digest {
            next_timer: None,
            ..d
        };
        let (live, back) = (strip(live), strip(back));
        if live != back {
            self.fail(format!(
                "restored workspace differs from the live one (live first; next timers {timers:?}):\n{}",
                digest_diff(&live, &back)
            ));
        }
        self.check_timer(&restored);
        self.note(format!(
            "restore check (continuing on the restored workspace: {})",
            self.swap_next_restore
        ));
        if self.swap_next_restore {
            if let Err(e) = self.store.commit(&[&write.records]) {
                match e {}
            }
            self.ws = restored;
        }
        self.swap_next_restore = !self.swap_next_restore;
    }
}

fn describe_events(items: &[EventInput]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|e| {
            format!(
                "{{id {:?} {:?} {} at {} {}{}}}",
                e.id,
                e.contact_id,
                e.event_type,
                e.at.map_or("now".to_string(), show),
                e.properties_json,
                e.anonymous
                    .map_or(String::new(), |a| format!(" anonymous {a}"))
            )
        })
        .collect();
    shown.join(", ")
}

fn runs() -> Vec<(u64, usize)> {
    let steps = env_number("SIFT_TIME_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    if let Some(seed) = env_number("SIFT_TIME_SEED") {
        return vec![(seed, steps)];
    }
    let seeds: Vec<u64> = match std::env::var("SIFT_TIME_SEEDS") {
        Ok(text) if text.contains(',') => text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("SIFT_TIME_SEEDS: a count or a list of seeds")
            })
            .collect(),
        _ => (0..env_number("SIFT_TIME_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    seeds.into_iter().map(|s| (s, steps)).collect()
}

#[test]
fn time_dependent_membership_matches_oracle() {
    let started = Instant::now();
    let mut total = Stats::default();
    let runs = runs();
    for (seed, steps) in &runs {
        let mut run = Run::new(*seed, *steps);
        run.run();
        total.add(&run.stats);
    }
    let s = total;
    eprintln!(
        "time differential: {} runs, {} steps in {:.1?} covering {:.0} days: {} events ({} replays), \
         {} refused writes, {} upserts, {} contact deletes, {} segment writes, {} rule writes, \
         {} restores ({} from an older clock, re-firing {} changes), {} changes ({} by time), {} steps onto the next timer; \
         {} of {} segment checks had members and non-members",
        runs.len(),
        s.steps,
        started.elapsed(),
        s.clock_ms as f64 / DAY as f64,
        s.events,
        s.replays,
        s.rejected_batches,
        s.upserts,
        s.deletes,
        s.segment_writes,
        s.rule_writes,
        s.restores,
        s.lag_restores,
        s.lag_changes,
        s.changes,
        s.time_changes,
        s.on_timer,
        s.mixed_checks,
        s.segment_checks,
    );
}

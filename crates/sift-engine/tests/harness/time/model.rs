//! The time run's model of a workspace and its oracle: memberships and
//! lead scores evaluated from plain data at any instant.

use super::*;

// ---------------------------------------------------------------------------
// The model and the oracle.

/// An event property as conditions read it: a string that is a valid date or
/// RFC 3339 datetime is one.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PVal {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(i64),
    DateTime(i64),
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub(crate) struct MEvent {
    pub(crate) id: Option<String>,
    pub(crate) ty: String,
    pub(crate) at: i64,
    /// Only what conditions can read (objects and number lists are absent).
    pub(crate) props: BTreeMap<String, PVal>,
    /// What was sent, to replay it.
    pub(crate) input: EventInput,
}

#[derive(Clone, Debug)]
pub(crate) struct MContact {
    pub(crate) props: BTreeMap<String, Value>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) anonymous: bool,
    /// In arrival order.
    pub(crate) events: Vec<MEvent>,
}

#[derive(Clone, Debug)]
pub(crate) struct MRule {
    pub(crate) id: String,
    pub(crate) ty: String,
    pub(crate) filter: Option<Condition>,
    pub(crate) points: f64,
    pub(crate) expires: Option<Duration>,
}

#[derive(Clone, Debug)]
pub(crate) struct MSegment {
    pub(crate) name: String,
    /// `None` for a static segment.
    pub(crate) cond: Option<Condition>,
    pub(crate) statics: BTreeSet<String>,
}

#[derive(Default, Clone)]
pub(crate) struct Model {
    pub(crate) contacts: BTreeMap<String, MContact>,
    pub(crate) gone: BTreeSet<String>,
    /// In creation order; edits keep a rule's place.
    pub(crate) rules: Vec<MRule>,
    pub(crate) segs: BTreeMap<String, MSegment>,
    /// Every event id ever accepted.
    pub(crate) seen: HashSet<String>,
}

pub(crate) fn op_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Lte => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Gte => o != Ordering::Less,
    }
}

pub(crate) fn fcmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).expect("no NaN is generated")
}

/// A contact field's value as a number of milliseconds (a date is its
/// midnight UTC).
pub(crate) fn instant_of(v: &Value) -> i64 {
    match v {
        Value::Date(d) => i64::from(*d) * DAY,
        Value::DateTime(t) => *t,
        other => panic!("relative-time test on {other:?}: a generator bug"),
    }
}

/// docs/conditions.md on a contact field: a missing value fails every test but ne,
/// not_in, not_contains and is_not_set.
pub(crate) fn field_holds(value: Option<&Value>, test: &FieldTest, now: i64) -> bool {
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
pub(crate) fn prop_order(v: &PVal, s: &Scalar) -> Option<Ordering> {
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

pub(crate) fn prop_holds(value: Option<&PVal>, test: &FieldTest) -> bool {
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
pub(crate) fn where_holds(cond: &Condition, props: &BTreeMap<String, PVal>) -> bool {
    match cond {
        Condition::All(children) => children.iter().all(|c| where_holds(c, props)),
        Condition::Any(children) => children.iter().any(|c| where_holds(c, props)),
        Condition::Not(inner) => !where_holds(inner, props),
        Condition::Field {
            field,
            test,
            ignore_case: false,
        } => prop_holds(props.get(field), test),
        Condition::Field { field, test, .. } => {
            let lowered = props.get(field).map(|v| match v {
                PVal::Str(x) => PVal::Str(x.to_lowercase()),
                PVal::List(items) => PVal::List(items.iter().map(|i| i.to_lowercase()).collect()),
                other => other.clone(),
            });
            prop_holds(lowered.as_ref(), &lower_test(test))
        }
        other => panic!("{other:?} inside a where"),
    }
}

/// The events of `c` that an `event`/`event_sum` node counts at `now`.
pub(crate) fn counted<'a>(
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
    pub(crate) fn lead_score(&self, c: &MContact, now: i64) -> f64 {
        let mut score = 0.0;
        for e in &c.events {
            for r in &self.rules {
                if r.ty == e.ty
                    && r.filter.as_ref().is_none_or(|f| where_holds(f, &e.props))
                    && r.expires.is_none_or(|d| add(e.at, d) > now)
                {
                    score += r.points;
                }
            }
        }
        score
    }

    pub(crate) fn value(&self, c: &MContact, field: &str, now: i64) -> Option<Value> {
        match field {
            "created_at" => Some(Value::DateTime(c.created_at)),
            "updated_at" => Some(Value::DateTime(c.updated_at)),
            "anonymous" => Some(Value::Boolean(c.anonymous)),
            "lead_score" => Some(Value::Number(self.lead_score(c, now))),
            "last_seen_at" => c.events.iter().map(|e| e.at).max().map(Value::DateTime),
            _ => c.props.get(field).cloned(),
        }
    }

    pub(crate) fn member<'a>(
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

    pub(crate) fn holds<'a>(
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
            Condition::Field {
                field,
                test,
                ignore_case: false,
            } => field_holds(self.value(c, field, now).as_ref(), test, now),
            Condition::Field { field, test, .. } => {
                let lowered = self.value(c, field, now).map(|v| match v {
                    Value::String(x) => Value::String(x.to_lowercase()),
                    Value::StringList(items) => {
                        Value::StringList(items.iter().map(|i| i.to_lowercase()).collect())
                    }
                    other => other,
                });
                field_holds(lowered.as_ref(), &lower_test(test), now)
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
                        sum += x;
                    }
                }
                op_holds(*op, fcmp(sum, *value))
            }
            Condition::InSegment(id) => self.member(id, cid, c, now, memo),
        }
    }

    /// Every segment's membership of contact `cid` at `now`.
    pub(crate) fn memberships(&self, cid: &str, now: i64) -> BTreeMap<&str, bool> {
        let c = &self.contacts[cid];
        let mut memo = HashMap::new();
        self.segs
            .keys()
            .map(|s| (s.as_str(), self.member(s, cid, c, now, &mut memo)))
            .collect()
    }

    pub(crate) fn refs(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(cond) = self.segs.get(id).and_then(|s| s.cond.as_ref()) {
            refs_of(cond, &mut out);
        }
        out
    }

    pub(crate) fn depends_on(&self, from: &str, goal: &str) -> bool {
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

    pub(crate) fn referred(&self, id: &str) -> bool {
        self.segs
            .keys()
            .any(|s| self.refs(s).iter().any(|r| r == id))
    }

    /// Instants after which some condition may change its answer for `c` by
    /// the passing of time alone: a superset of the real flips.
    pub(crate) fn candidates(&self, c: &MContact, nodes: &TimeNodes) -> Vec<i64> {
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
pub(crate) struct TimeNodes {
    /// Relative-time tests on a contact field.
    pub(crate) fields: Vec<(String, Duration)>,
    /// Windows of event and event_sum nodes.
    pub(crate) windows: Vec<(String, Duration)>,
    /// Some segment reads `lead_score`, which expiring points change.
    pub(crate) score: bool,
}

pub(crate) fn time_nodes(cond: &Condition, out: &mut TimeNodes) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| time_nodes(c, out))
        }
        Condition::Not(inner) => time_nodes(inner, out),
        Condition::Field { field, test, .. } => match test {
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

//! The plain run's model of a workspace and its oracle: a recursive
//! evaluator of conditions over plain data.

use super::*;

// ---------------------------------------------------------------------------
// The model and the oracle.

pub(crate) static ZERO: Value = Value::Number(0.0);

pub(crate) struct MContact {
    pub(crate) props: BTreeMap<String, Value>,
    pub(crate) created_at: Value,
    pub(crate) updated_at: Value,
    pub(crate) anonymous: Value,
}

impl MContact {
    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        match field {
            "created_at" => Some(&self.created_at),
            "updated_at" => Some(&self.updated_at),
            "anonymous" => Some(&self.anonymous),
            "lead_score" => Some(&ZERO),
            "last_seen_at" => None,
            _ => self.props.get(field),
        }
    }
}

pub(crate) struct MSegment {
    pub(crate) name: String,
    /// `None` for a static segment.
    pub(crate) cond: Option<Condition>,
    /// Static members (contact ids); deleted contacts are taken out.
    pub(crate) statics: BTreeSet<String>,
}

#[derive(Default)]
pub(crate) struct Model {
    pub(crate) types: BTreeMap<String, FieldType>,
    pub(crate) contacts: BTreeMap<String, MContact>,
    /// Ids deleted and not created again.
    pub(crate) gone: BTreeSet<String>,
    pub(crate) segs: BTreeMap<String, MSegment>,
}

pub(crate) fn reads_field(cond: &Condition, field: &str) -> bool {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().any(|c| reads_field(c, field))
        }
        Condition::Not(inner) => reads_field(inner, field),
        Condition::Field { field: f, .. } => f == field,
        _ => false,
    }
}

pub(crate) fn inferred_type(raw: &RawValue) -> Option<FieldType> {
    match raw {
        RawValue::String(_) => Some(FieldType::String),
        RawValue::Number(_) => Some(FieldType::Number),
        RawValue::Bool(_) => Some(FieldType::Boolean),
        RawValue::StringList(_) => Some(FieldType::StringList),
        _ => None,
    }
}

impl Model {
    pub(crate) fn refs(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(cond) = self.segs.get(id).and_then(|s| s.cond.as_ref()) {
            refs_of(cond, &mut out);
        }
        out
    }

    /// Whether segment `from` refers to `goal`, directly or through others.
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

    /// Segments whose condition names `id` directly.
    pub(crate) fn referrers(&self, id: &str) -> BTreeSet<String> {
        self.segs
            .keys()
            .filter(|s| self.refs(s).iter().any(|r| r == id))
            .cloned()
            .collect()
    }

    pub(crate) fn apply_batch(
        &mut self,
        items: &[ContactInput],
        typed: &[Vec<Option<Value>>],
        now: i64,
    ) {
        // Every field a batch creates exists before any item is applied.
        for item in items {
            for (name, raw) in &item.properties {
                if !self.types.contains_key(name)
                    && let Some(t) = inferred_type(raw)
                {
                    self.types.insert(name.clone(), t);
                }
            }
        }
        for (item, values) in items.iter().zip(typed) {
            self.gone.remove(&item.id);
            let c = self
                .contacts
                .entry(item.id.clone())
                .or_insert_with(|| MContact {
                    props: BTreeMap::new(),
                    created_at: Value::DateTime(now),
                    updated_at: Value::DateTime(now),
                    anonymous: Value::Boolean(false),
                });
            c.updated_at = Value::DateTime(now);
            if let Some(a) = item.anonymous {
                c.anonymous = Value::Boolean(a);
            }
            for ((name, _), value) in item.properties.iter().zip(values) {
                if !self.types.contains_key(name) {
                    continue; // a null for a field that does not exist
                }
                match value {
                    Some(v) => c.props.insert(name.clone(), v.clone()),
                    None => c.props.remove(name),
                };
            }
        }
    }

    pub(crate) fn delete_contact(&mut self, id: &str) {
        self.contacts.remove(id);
        self.gone.insert(id.to_string());
        for seg in self.segs.values_mut() {
            seg.statics.remove(id);
        }
    }

    /// Every segment's members (contact ids), evaluated from scratch.
    pub(crate) fn oracle(&self) -> HashMap<&str, HashSet<&str>> {
        let mut out = HashMap::new();
        for id in self.segs.keys() {
            self.evaluate(id, &mut out);
        }
        out
    }

    pub(crate) fn evaluate<'a>(
        &'a self,
        id: &'a str,
        out: &mut HashMap<&'a str, HashSet<&'a str>>,
    ) {
        if out.contains_key(id) {
            return;
        }
        let seg = &self.segs[id];
        let members = match &seg.cond {
            None => seg.statics.iter().map(String::as_str).collect(),
            Some(cond) => {
                let mut refs = Vec::new();
                refs_of(cond, &mut refs);
                for r in &refs {
                    let (key, _) = self.segs.get_key_value(r.as_str()).expect("known ref");
                    self.evaluate(key, out);
                }
                self.contacts
                    .iter()
                    .filter(|(cid, c)| holds(cond, cid, c, out))
                    .map(|(cid, _)| cid.as_str())
                    .collect()
            }
        };
        out.insert(id, members);
    }
}

pub(crate) fn holds(
    cond: &Condition,
    cid: &str,
    c: &MContact,
    segs: &HashMap<&str, HashSet<&str>>,
) -> bool {
    match cond {
        Condition::All(children) => children.iter().all(|x| holds(x, cid, c, segs)),
        Condition::Any(children) => children.iter().any(|x| holds(x, cid, c, segs)),
        Condition::Not(inner) => !holds(inner, cid, c, segs),
        Condition::Field {
            field,
            test,
            ignore_case: false,
        } => field_holds(c.get(field), test),
        Condition::Field { field, test, .. } => {
            let lowered = c.get(field).map(lower_value);
            field_holds(lowered.as_ref(), &crate::harness::oracle::lower_test(test))
        }
        Condition::InSegment(id) => segs[id.as_str()].contains(cid),
        other => panic!("the generator makes no {other:?}"),
    }
}

/// docs/conditions.md: a missing value fails every test but ne, not_in, not_contains and
/// is_not_set.
pub(crate) fn field_holds(value: Option<&Value>, test: &FieldTest) -> bool {
    let Some(v) = value else {
        return matches!(
            test,
            FieldTest::Compare(CmpOp::Ne, _)
                | FieldTest::NotIn(_)
                | FieldTest::NotContains(_)
                | FieldTest::IsNotSet
        );
    };
    match test {
        FieldTest::IsSet => true,
        FieldTest::IsNotSet => false,
        FieldTest::Compare(op, s) => {
            let o = order(v, s);
            match op {
                CmpOp::Eq => o == 0,
                CmpOp::Ne => o != 0,
                CmpOp::Lt => o < 0,
                CmpOp::Lte => o <= 0,
                CmpOp::Gt => o > 0,
                CmpOp::Gte => o >= 0,
            }
        }
        FieldTest::Contains(s) => contains(v, s),
        FieldTest::NotContains(s) => !contains(v, s),
        FieldTest::StartsWith(s) => match v {
            Value::String(x) => x.starts_with(s.as_str()),
            other => panic!("starts_with on {other:?}"),
        },
        FieldTest::EndsWith(s) => match v {
            Value::String(x) => x.ends_with(s.as_str()),
            other => panic!("ends_with on {other:?}"),
        },
        FieldTest::In(list) => list.iter().any(|s| order(v, s) == 0),
        FieldTest::NotIn(list) => !list.iter().any(|s| order(v, s) == 0),
        FieldTest::Between(low, high) => order(v, low) >= 0 && order(v, high) <= 0,
        other => panic!("the generator makes no {other:?}"),
    }
}

/// A value with its strings lowercased, for `ignoring case`.
pub(crate) fn lower_value(v: &Value) -> Value {
    match v {
        Value::String(x) => Value::String(x.to_lowercase()),
        Value::StringList(items) => {
            Value::StringList(items.iter().map(|i| i.to_lowercase()).collect())
        }
        other => other.clone(),
    }
}

pub(crate) fn contains(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x.contains(s),
        Value::StringList(items) => items.iter().any(|i| i == s),
        other => panic!("contains on {other:?}"),
    }
}

/// -1, 0 or 1 as `v` is below, equal to or above `s`.
pub(crate) fn order(v: &Value, s: &Scalar) -> i8 {
    fn sign<T: PartialOrd>(a: T, b: T) -> i8 {
        if a < b {
            -1
        } else if a > b {
            1
        } else {
            0
        }
    }
    match (v, s) {
        (Value::String(a), Scalar::String(b)) => sign(a.as_str(), b.as_str()),
        (Value::Number(a), Scalar::Number(b)) => sign(*a, *b),
        (Value::Boolean(a), Scalar::Boolean(b)) => sign(*a, *b),
        (Value::Date(a), Scalar::Date(b)) => sign(*a, *b),
        (Value::DateTime(a), Scalar::DateTime(b)) => sign(*a, *b),
        _ => panic!("ill-typed comparison of {v:?} with {s:?}: a generator bug"),
    }
}

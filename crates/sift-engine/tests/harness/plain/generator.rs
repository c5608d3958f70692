//! Random values, contacts and conditions for the plain run.

use super::*;

impl Run {
    // -- generators -----------------------------------------------------------

    pub(crate) fn gen_value(&mut self, ty: FieldType) -> (RawValue, Value) {
        let rng = &mut self.rng;
        match ty {
            FieldType::String => {
                let s = STRINGS.choose(rng).unwrap().to_string();
                (RawValue::String(s.clone()), Value::String(s))
            }
            FieldType::Number => {
                let n = if rng.random_bool(0.05) {
                    -0.0
                } else {
                    *NUMBERS.choose(rng).unwrap()
                };
                (RawValue::Number(n), Value::Number(n))
            }
            FieldType::Boolean => {
                let b = rng.random();
                (RawValue::Bool(b), Value::Boolean(b))
            }
            FieldType::Date => {
                let d = *self.dates.choose(rng).unwrap() + [-1, 0, 0, 0, 1].choose(rng).unwrap();
                (RawValue::String(fmt_date(d)), Value::Date(d as i32))
            }
            FieldType::DateTime => {
                let t =
                    *self.datetimes.choose(rng).unwrap() + [-1, 0, 0, 0, 1].choose(rng).unwrap();
                let offset = *[0, 0, 120, -330].choose(rng).unwrap();
                (
                    RawValue::String(fmt_datetime(t, offset)),
                    Value::DateTime(t),
                )
            }
            FieldType::StringList => {
                let n = rng.random_range(0..=4);
                let items: Vec<String> = (0..n)
                    .map(|_| ITEMS.choose(rng).unwrap().to_string())
                    .collect();
                let mut set = items.clone();
                set.sort();
                set.dedup();
                (RawValue::StringList(items), Value::StringList(set))
            }
        }
    }

    pub(crate) fn gen_id(&mut self) -> String {
        if !self.model.gone.is_empty() && self.rng.random_bool(0.15) {
            let k = self.rng.random_range(0..self.model.gone.len());
            return self.model.gone.iter().nth(k).unwrap().clone();
        }
        contact_id(self.rng.random_range(0..self.pool))
    }

    pub(crate) fn writable(&self) -> Vec<(String, FieldType)> {
        let mut out: Vec<(String, FieldType)> = self
            .model
            .types
            .iter()
            .filter(|(n, _)| !SYSTEM.iter().any(|(s, _)| s == n))
            .map(|(n, t)| (n.clone(), *t))
            .collect();
        for (name, t) in INFERRED {
            if !self.model.types.contains_key(*name) {
                out.push((name.to_string(), *t));
            }
        }
        out
    }

    pub(crate) fn gen_input(&mut self) -> (ContactInput, Vec<Option<Value>>) {
        let id = self.gen_id();
        let fields = self.writable();
        let n = self.rng.random_range(0..=5);
        let mut properties = Vec::new();
        let mut typed = Vec::new();
        for _ in 0..n {
            let (name, t) = fields.choose(&mut self.rng).unwrap().clone();
            if self.rng.random_bool(0.15) {
                properties.push((name, RawValue::Null));
                typed.push(None);
            } else {
                let (raw, value) = self.gen_value(t);
                properties.push((name, raw));
                typed.push(Some(value));
            }
        }
        let anonymous = if self.rng.random_bool(0.15) {
            Some(self.rng.random())
        } else {
            None
        };
        (
            ContactInput {
                id,
                properties,
                anonymous,
            },
            typed,
        )
    }

    pub(crate) fn gen_scalar(&mut self, field: &str, ty: FieldType) -> Scalar {
        let rng = &mut self.rng;
        match ty {
            FieldType::String | FieldType::StringList => {
                Scalar::String(STRINGS.choose(rng).unwrap().to_string())
            }
            FieldType::Number => Scalar::Number(*NUMBERS.choose(rng).unwrap()),
            FieldType::Boolean => Scalar::Boolean(rng.random()),
            FieldType::Date => Scalar::Date(
                (*self.dates.choose(rng).unwrap() + [-1, 0, 0, 1].choose(rng).unwrap()) as i32,
            ),
            FieldType::DateTime if field == "created_at" || field == "updated_at" => {
                if rng.random_bool(0.5) {
                    Scalar::DateTime(*self.nows.choose(rng).unwrap())
                } else {
                    Scalar::DateTime(rng.random_range(T0 - 1000..=self.now + 600_000))
                }
            }
            FieldType::DateTime => Scalar::DateTime(
                *self.datetimes.choose(rng).unwrap() + [-1, 0, 0, 1].choose(rng).unwrap(),
            ),
        }
    }

    pub(crate) fn gen_test(&mut self, field: &str, ty: FieldType) -> FieldTest {
        // 0-5 compare, 6 contains, 7 not contains, 8 starts with, 9 ends with,
        // 10 in, 11 not in, 12 between, 13 is set, 14 is not set
        let choice = match ty {
            FieldType::String => self.rng.random_range(0..15),
            FieldType::Number | FieldType::Date | FieldType::DateTime => {
                *[0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14]
                    .choose(&mut self.rng)
                    .unwrap()
            }
            FieldType::Boolean => *[0, 1, 10, 11, 13, 14].choose(&mut self.rng).unwrap(),
            FieldType::StringList => *[6, 6, 7, 7, 13, 14].choose(&mut self.rng).unwrap(),
        };
        match choice {
            0..=5 => FieldTest::Compare(CMP_OPS[choice], self.gen_scalar(field, ty)),
            6..=9 => {
                let s = if ty == FieldType::StringList {
                    let mut pool = ITEMS.to_vec();
                    pool.push("zz");
                    pool.choose(&mut self.rng).unwrap().to_string()
                } else if self.rng.random_bool(0.3) {
                    STRINGS.choose(&mut self.rng).unwrap().to_string()
                } else {
                    SUBSTRINGS.choose(&mut self.rng).unwrap().to_string()
                };
                match choice {
                    6 => FieldTest::Contains(s),
                    7 => FieldTest::NotContains(s),
                    8 => FieldTest::StartsWith(s),
                    _ => FieldTest::EndsWith(s),
                }
            }
            10 | 11 => {
                let n = self.rng.random_range(0..=3);
                let list = (0..n).map(|_| self.gen_scalar(field, ty)).collect();
                if choice == 10 {
                    FieldTest::In(list)
                } else {
                    FieldTest::NotIn(list)
                }
            }
            12 => FieldTest::Between(self.gen_scalar(field, ty), self.gen_scalar(field, ty)),
            13 => FieldTest::IsSet,
            _ => FieldTest::IsNotSet,
        }
    }

    pub(crate) fn gen_pred(&mut self) -> Condition {
        let fields: Vec<(String, FieldType)> = self
            .model
            .types
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect();
        let (field, ty) = fields.choose(&mut self.rng).unwrap().clone();
        let test = self.gen_test(&field, ty);
        let ignore_case = crate::harness::oracle::case_foldable(&test) && self.rng.random_bool(0.3);
        Condition::Field {
            field,
            test,
            ignore_case,
        }
    }

    pub(crate) fn gen_cond(&mut self, refs: &[String]) -> Condition {
        let mut budget = self.rng.random_range(1..=9);
        let depth = self.rng.random_range(1..=4);
        self.gen_node(refs, depth, &mut budget)
    }

    pub(crate) fn fresh_name(&mut self) -> String {
        self.names += 1;
        match self.rng.random_range(0..4) {
            0 => format!("  VIP {} ", self.names),
            1 => format!("Ünïcode {}", self.names),
            _ => format!("Seg {}", self.names),
        }
    }

    pub(crate) fn pick_segment(&mut self, dynamic: Option<bool>) -> Option<String> {
        let ids: Vec<String> = self
            .model
            .segs
            .iter()
            .filter(|(_, s)| dynamic.is_none_or(|d| s.cond.is_some() == d))
            .map(|(id, _)| id.clone())
            .collect();
        ids.choose(&mut self.rng).cloned()
    }

    pub(crate) fn pick_contact(&mut self) -> Option<String> {
        if self.model.contacts.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.model.contacts.len());
        self.model.contacts.keys().nth(k).cloned()
    }
}

impl ConditionGen for Run {
    fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A segment reference now and then, a field test otherwise.
    fn gen_leaf(&mut self, refs: &[String]) -> Condition {
        if !refs.is_empty() && self.rng.random_bool(0.2) {
            return Condition::InSegment(refs.choose(&mut self.rng).unwrap().clone());
        }
        self.gen_pred()
    }

    fn workspace(&self) -> &Workspace {
        &self.ws
    }

    fn fail_with(&self, message: String) -> ! {
        self.fail(message)
    }
}

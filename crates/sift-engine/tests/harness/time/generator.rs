//! The clock and random events, properties and conditions for the time run.

use super::*;

impl Run {
    // -- the clock --------------------------------------------------------------

    pub(crate) fn next_now(&mut self) -> i64 {
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
    pub(crate) fn landmark(&mut self) -> i64 {
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

    pub(crate) fn advance(&mut self) {
        // Every other instant, as the server fires a burst: a slice at a
        // time (of 1 to 4 contacts; debug builds burst from 2 due), then the
        // advance carrying what the slices did. No draw from `rng`, so the
        // seeds' runs stay as they were.
        if (self.now / 7) % 2 == 0 {
            let slice = 1 + (self.now % 4) as usize;
            while self.ws.begin_burst(self.now, slice) {
                while let Some(part) = self.ws.burst_slice() {
                    self.ws.apply_burst_slice(part);
                }
            }
        }
        let write = self.ws.advance(self.now);
        self.absorb(&write, Kind::Advance);
    }

    // -- generators -------------------------------------------------------------

    pub(crate) fn gen_duration(&mut self) -> Duration {
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
    pub(crate) fn gen_instant(&mut self) -> i64 {
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

    pub(crate) fn gen_birth_date(&mut self) -> i64 {
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

    pub(crate) fn fresh_contact(&mut self) -> String {
        format!("c{}", self.rng.random_range(0..self.pool))
    }

    pub(crate) fn pick_contact(&mut self) -> Option<String> {
        if self.model.contacts.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.model.contacts.len());
        self.model.contacts.keys().nth(k).cloned()
    }

    /// A where over event properties.
    pub(crate) fn gen_where(&mut self, depth: u32) -> Condition {
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
        let ignore_case = case_foldable(&test) && self.rng.random_bool(0.35);
        Condition::Field {
            field: field.to_string(),
            test,
            ignore_case,
        }
    }

    fn draw_leaf(&mut self, refs: &[String]) -> Condition {
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
                    ignore_case: false,
                }
            }
            _ => match refs.choose(&mut self.rng) {
                Some(id) => Condition::InSegment(id.clone()),
                None => self.gen_event_node(),
            },
        }
    }

    pub(crate) fn gen_plain_test(&mut self) -> Condition {
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
        let ignore_case = case_foldable(&test) && self.rng.random_bool(0.35);
        Condition::Field {
            field: field.to_string(),
            test,
            ignore_case,
        }
    }

    pub(crate) fn gen_relative_test(&mut self) -> Condition {
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
            ignore_case: false,
        }
    }

    pub(crate) fn gen_event_node(&mut self) -> Condition {
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

    pub(crate) fn gen_sum_node(&mut self) -> Condition {
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

    pub(crate) fn gen_cond(&mut self, refs: &[String]) -> Condition {
        let mut budget = self.rng.random_range(1..=6);
        let depth = self.rng.random_range(1..=3);
        self.gen_node(refs, depth, &mut budget)
    }

    /// Properties of an event of type `ty`: what is sent, what conditions
    /// read, and the JSON text.
    pub(crate) fn gen_props(
        &mut self,
        ty: &str,
    ) -> (Vec<(String, RawValue)>, BTreeMap<String, PVal>, String) {
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
    pub(crate) fn gen_event(&mut self) -> (EventInput, BTreeMap<String, PVal>) {
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
    pub(crate) fn gen_replay(&mut self) -> Option<(EventInput, BTreeMap<String, PVal>)> {
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
}

impl ConditionGen for Run {
    fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    fn gen_leaf(&mut self, refs: &[String]) -> Condition {
        self.draw_leaf(refs)
    }

    fn workspace(&self) -> &Workspace {
        &self.ws
    }

    fn fail_with(&self, message: String) -> ! {
        self.fail(message)
    }
}

//! The time run's writes: events, contacts, segments and scoring rules.

use super::*;

impl Run {
    // -- steps ------------------------------------------------------------------

    pub(crate) fn events_step(&mut self) {
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

    pub(crate) fn rejected_events_step(&mut self) {
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

    pub(crate) fn upsert_step(&mut self) {
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

    pub(crate) fn delete_contact_step(&mut self) {
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

    pub(crate) fn create_segment_step(&mut self) {
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
        self.replay.create(&id);
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

    pub(crate) fn edit_segment_step(&mut self) {
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

    pub(crate) fn delete_segment_step(&mut self) {
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
        self.replay.delete(&id);
        self.stats.segment_writes += 1;
    }

    pub(crate) fn static_step(&mut self) {
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

    pub(crate) fn gen_points(&mut self) -> f64 {
        f64::from(self.rng.random_range(-8..=40_i32)) * 0.25
    }

    pub(crate) fn create_rule_step(&mut self) {
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

    pub(crate) fn edit_rule_step(&mut self) {
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

    pub(crate) fn delete_rule_step(&mut self) {
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
    pub(crate) fn refused_rule_step(&mut self) {
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
}

//! Steps that write segments and fields, and invalid writes of every kind.

use super::*;

impl Run {
    pub(crate) fn create_segment_step(&mut self) {
        if self.model.segs.len() >= MAX_SEGMENTS {
            return self.delete_segment_step();
        }
        let free: Vec<String> = (0..SEGMENT_IDS)
            .map(|k| format!("g{k}"))
            .filter(|id| !self.model.segs.contains_key(id))
            .collect();
        let id = free.choose(&mut self.rng).unwrap().clone();
        let name = self.fresh_name();
        let dynamic = self.rng.random_bool(0.75);
        let existing: Vec<String> = self.model.segs.keys().cloned().collect();
        let condition = if dynamic && self.rng.random_bool(0.93) {
            let cond = self.gen_cond(&existing);
            self.check_tree(&cond);
            Some(cond)
        } else {
            None
        };
        let test = !dynamic && self.rng.random_bool(0.3);
        let kind = if dynamic {
            SegmentKind::Dynamic
        } else {
            SegmentKind::Static
        };
        let shown = condition.as_ref().map(|c| self.text(c));
        self.note(format!("create {kind:?} segment {id} {name:?}: {shown:?}"));
        let input = SegmentInput {
            id: id.clone(),
            name: name.clone(),
            description: "generated".into(),
            kind,
            condition: condition.clone(),
            test,
        };
        let write = match self.ws.create_segment(input, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("create segment: {e}")),
        };
        self.model.segs.insert(
            id.clone(),
            MSegment {
                name: name.trim().to_string(),
                cond: dynamic.then(|| condition.unwrap_or(Condition::All(Vec::new()))),
                statics: BTreeSet::new(),
            },
        );
        self.stats.segment_creates += 1;
        self.absorb(&write, &Kind::CreateSegment(id));
    }

    pub(crate) fn edit_segment_step(&mut self) {
        let Some(id) = self.pick_segment(Some(true)) else {
            return self.create_segment_step();
        };
        if self.rng.random_bool(0.25) {
            return self.cycle_step(&id);
        }
        // Anything that does not depend on `id` may be referenced.
        let allowed: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| **s != id && !self.model.depends_on(s, &id))
            .cloned()
            .collect();
        let cond = self.gen_cond(&allowed);
        self.check_tree(&cond);
        let name = self.rng.random_bool(0.15).then(|| self.fresh_name());
        let shown = self.text(&cond);
        self.note(format!("edit segment {id} (rename {name:?}): {shown}"));
        let patch = SegmentPatch {
            name: name.clone(),
            description: Some("edited".into()),
            condition: Some(cond.clone()),
        };
        let write = match self.ws.update_segment(&id, patch, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("edit segment: {e}")),
        };
        let seg = self.model.segs.get_mut(&id).unwrap();
        seg.cond = Some(cond);
        if let Some(name) = name {
            seg.name = name.trim().to_string();
        }
        self.stats.segment_edits += 1;
        self.absorb(&write, &Kind::EditSegment(id));
    }

    pub(crate) fn cycle_step(&mut self, id: &str) {
        let mut targets: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| self.model.depends_on(s, id))
            .cloned()
            .collect();
        targets.push(id.to_string());
        let target = Condition::InSegment(targets.choose(&mut self.rng).unwrap().clone());
        let allowed: Vec<String> = self.model.segs.keys().cloned().collect();
        let other = self.gen_cond(&allowed);
        let cond = match self.rng.random_range(0..3) {
            0 => Condition::All(vec![other, target]),
            1 => Condition::Any(vec![target, other]),
            _ => Condition::Not(Box::new(target)),
        };
        let shown = self.text(&cond);
        self.note(format!("edit segment {id} into a cycle: {shown}"));
        let before = digest(&self.ws);
        let patch = SegmentPatch {
            name: self.rng.random_bool(0.3).then(|| self.fresh_name()),
            description: Some("cyclic".into()),
            condition: Some(cond),
        };
        let name = &self.model.segs[id].name;
        match self.ws.update_segment(id, patch, self.now) {
            Err(Error::Cycle { path })
                if path.len() >= 2 && path.first() == Some(name) && path.last() == Some(name) => {}
            other => self.fail(format!("cyclic edit of {id}: {other:?}")),
        }
        self.stats.cycles += 1;
        self.unchanged(&before, "cyclic edit");
    }

    pub(crate) fn rename_step(&mut self) {
        let Some(id) = self.pick_segment(None) else {
            return self.create_segment_step();
        };
        let other = self
            .model
            .segs
            .iter()
            .find(|(s, _)| **s != id)
            .map(|(_, s)| s.name.clone());
        let before = digest(&self.ws);
        match self.rng.random_range(0..6) {
            0 | 1 => {
                let name = if self.rng.random_bool(0.5) {
                    self.fresh_name()
                } else {
                    self.model.segs[&id].name.to_uppercase()
                };
                self.note(format!("rename {id} to {name:?}"));
                let patch = SegmentPatch {
                    name: Some(name.clone()),
                    ..SegmentPatch::default()
                };
                let write = match self.ws.update_segment(&id, patch, self.now) {
                    Ok(w) => w,
                    Err(e) => self.fail(format!("rename: {e}")),
                };
                self.model.segs.get_mut(&id).unwrap().name = name.trim().to_string();
                self.absorb(&write, &Kind::EditSegment(id));
            }
            2 => {
                self.note(format!("rename {id} to blanks"));
                let patch = SegmentPatch {
                    name: Some("   ".into()),
                    ..SegmentPatch::default()
                };
                match self.ws.update_segment(&id, patch, self.now) {
                    Err(Error::Invalid(_)) => {}
                    other => self.fail(format!("blank name: {other:?}")),
                }
                self.unchanged(&before, "blank name");
            }
            3 | 4 if other.is_some() => {
                let taken = format!(" {} ", other.unwrap().to_uppercase());
                let with_condition =
                    self.rng.random_bool(0.5) && self.model.segs[&id].cond.is_some();
                self.note(format!(
                    "rename {id} to taken {taken:?} (with condition: {with_condition})"
                ));
                let patch = SegmentPatch {
                    name: Some(taken),
                    description: Some("x".into()),
                    condition: with_condition.then(|| Condition::All(Vec::new())),
                };
                match self.ws.update_segment(&id, patch, self.now) {
                    Err(Error::NameTaken(_)) => {}
                    other => self.fail(format!("taken name: {other:?}")),
                }
                self.unchanged(&before, "rename to a taken name");
            }
            _ => {
                let taken = self.model.segs[&id].name.to_lowercase();
                let free = (0..SEGMENT_IDS)
                    .map(|k| format!("g{k}"))
                    .find(|s| !self.model.segs.contains_key(s))
                    .unwrap_or_else(|| "fresh".into());
                self.note(format!("create {free} with taken name {taken:?}"));
                let input = SegmentInput {
                    id: free,
                    name: taken,
                    description: String::new(),
                    kind: SegmentKind::Static,
                    condition: None,
                    test: false,
                };
                match self.ws.create_segment(input, self.now) {
                    Err(Error::NameTaken(_)) => {}
                    other => self.fail(format!("create with taken name: {other:?}")),
                }
                self.unchanged(&before, "create with a taken name");
            }
        }
    }

    pub(crate) fn delete_segment_step(&mut self) {
        if self.rng.random_bool(0.05) {
            self.note("delete unknown segment".into());
            let before = digest(&self.ws);
            match self.ws.delete_segment("no-such-segment") {
                Err(Error::NotFound { .. }) => {}
                other => self.fail(format!("delete of unknown segment: {other:?}")),
            }
            return self.unchanged(&before, "delete of unknown segment");
        }
        let free: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| self.model.referrers(s).is_empty())
            .cloned()
            .collect();
        let id = if self.rng.random_bool(0.7) && !free.is_empty() {
            free.choose(&mut self.rng).unwrap().clone()
        } else {
            match self.pick_segment(None) {
                Some(id) => id,
                None => return self.create_segment_step(),
            }
        };
        let referrers = self.model.referrers(&id);
        self.note(format!("delete segment {id} (referrers {referrers:?})"));
        if !referrers.is_empty() {
            let before = digest(&self.ws);
            match self.ws.delete_segment(&id) {
                Err(Error::InUse { id: used, usages })
                    if used == id
                        && usages.iter().map(|u| u.id.clone()).collect::<BTreeSet<_>>()
                            == referrers => {}
                other => self.fail(format!("delete of used segment: {other:?}")),
            }
            self.stats.in_use += 1;
            return self.unchanged(&before, "delete of a used segment");
        }
        let write = match self.ws.delete_segment(&id) {
            Ok(w) => w,
            Err(e) => self.fail(format!("delete segment: {e}")),
        };
        self.model.segs.remove(&id);
        self.stats.segment_deletes += 1;
        self.absorb(&write, &Kind::DeleteSegment);
    }

    pub(crate) fn static_step(&mut self) {
        let Some(id) = self.pick_segment(Some(false)) else {
            return self.create_segment_step();
        };
        let add = self.rng.random_bool(0.6);
        let n = if self.large && self.rng.random_bool(0.5) {
            self.rng.random_range(1000..=LARGE_POOL)
        } else {
            self.rng.random_range(1..=8)
        };
        let mut ids: Vec<String> = if n > 8 {
            let all: Vec<String> = self.model.contacts.keys().cloned().collect();
            all.choose_multiple(&mut self.rng, n).cloned().collect()
        } else {
            (0..n).filter_map(|_| self.pick_contact()).collect()
        };
        // Removing: mostly contacts that are members.
        if !add && self.rng.random_bool(0.7) {
            let members: Vec<String> = self.model.segs[&id].statics.iter().cloned().collect();
            let more = if self.large {
                members.len() * 9 / 10
            } else {
                4
            };
            ids.extend(members.choose_multiple(&mut self.rng, more).cloned());
        }
        let unknown = self.rng.random_bool(0.08);
        if unknown {
            let pos = self.rng.random_range(0..=ids.len());
            ids.insert(pos, "nobody-has-this-id".into());
        }
        ids.shuffle(&mut self.rng);
        self.note(format!(
            "static {} {id}: {ids:?}",
            if add { "add" } else { "remove" }
        ));
        if unknown {
            let before = digest(&self.ws);
            match self.ws.set_static_members(&id, &ids, add, self.now) {
                Err(Error::UnknownContacts(list)) if list == ["nobody-has-this-id"] => {}
                other => self.fail(format!("static write with unknown contact: {other:?}")),
            }
            return self.unchanged(&before, "static write with an unknown contact");
        }
        let write = match self.ws.set_static_members(&id, &ids, add, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("static write: {e}")),
        };
        let contacts: RoaringBitmap = ids.iter().map(|c| self.ws.lookup(c).unwrap()).collect();
        let seg = self.model.segs.get_mut(&id).unwrap();
        for c in ids {
            if add {
                seg.statics.insert(c);
            } else {
                seg.statics.remove(&c);
            }
        }
        self.stats.static_writes += 1;
        self.absorb(&write, &Kind::Static { id, add, contacts });
    }

    pub(crate) fn declare_field_step(&mut self) {
        let late: Vec<&(&str, FieldType)> = LATE
            .iter()
            .filter(|(n, _)| !self.model.types.contains_key(*n))
            .collect();
        if !late.is_empty() && self.rng.random_bool(0.3) {
            let (name, t) = **late.choose(&mut self.rng).unwrap();
            self.note(format!("declare new field {name}: {t:?}"));
            let write = match self.ws.declare_field(name, t, None) {
                Ok(w) => w,
                Err(e) => self.fail(format!("declare {name}: {e}")),
            };
            self.model.types.insert(name.to_string(), t);
            return self.absorb(&write, &Kind::DeclareField);
        }
        // Retype (or relabel) a declared or built-in field.
        let candidates: Vec<&str> = DECLARED.iter().chain(BUILTINS).map(|(n, _)| *n).collect();
        let name = *candidates.choose(&mut self.rng).unwrap();
        let name = if self.rng.random_bool(0.4) {
            // f1/f2: first clear the field on every contact, so that a
            // retype can succeed unless a segment reads it.
            let name = *["f1", "f2"].choose(&mut self.rng).unwrap();
            let holders: Vec<String> = self
                .model
                .contacts
                .iter()
                .filter(|(_, c)| c.props.contains_key(name))
                .map(|(id, _)| id.clone())
                .collect();
            if !holders.is_empty() {
                let items: Vec<ContactInput> = holders
                    .into_iter()
                    .map(|id| ContactInput {
                        id,
                        properties: vec![(name.to_string(), RawValue::Null)],
                        anonymous: None,
                    })
                    .collect();
                let typed = vec![vec![None]; items.len()];
                self.upsert_items(&items, &typed);
                self.check();
            }
            name
        } else {
            name
        };
        let current = self.model.types[name];
        let t = if self.rng.random_bool(0.3) {
            current
        } else {
            *ALL_TYPES.choose(&mut self.rng).unwrap()
        };
        let builtin = BUILTINS.iter().any(|(n, _)| *n == name);
        let has_data = self
            .model
            .contacts
            .values()
            .any(|c| c.props.contains_key(name));
        let read = self
            .model
            .segs
            .values()
            .any(|s| s.cond.as_ref().is_some_and(|c| reads_field(c, name)));
        let allowed = t == current || !(builtin || has_data || read);
        self.note(format!(
            "declare {name}: {current:?} -> {t:?} (builtin {builtin}, data {has_data}, read {read})"
        ));
        let before = digest(&self.ws);
        let label = format!("Label {}", self.step);
        match self.ws.declare_field(name, t, Some(&label)) {
            Ok(write) if allowed => {
                if t != current {
                    self.stats.retypes += 1;
                }
                self.model.types.insert(name.to_string(), t);
                self.absorb(&write, &Kind::DeclareField);
            }
            Err(Error::FieldTypeConflict { .. }) if !allowed => {
                self.unchanged(&before, "retype of a field in use")
            }
            other => self.fail(format!("declare {name} as {t:?}: {other:?}")),
        }
    }

    pub(crate) fn misc_invalid_step(&mut self) {
        let before = digest(&self.ws);
        let free = (0..SEGMENT_IDS)
            .map(|k| format!("g{k}"))
            .find(|s| !self.model.segs.contains_key(s))
            .unwrap_or_else(|| "fresh".into());
        let input = SegmentInput {
            id: free.clone(),
            name: self.fresh_name(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: None,
            test: false,
        };
        let static_seg = self.pick_segment(Some(false));
        let dynamic_seg = self.pick_segment(Some(true));
        let any_seg = self.pick_segment(None);
        let (result, expect): (Result<Write, Error>, Expected) = match self.rng.random_range(0..7) {
            0 => {
                let cond = self.gen_cond(&[]);
                self.note(format!("create static {free} with a condition"));
                let input = SegmentInput {
                    kind: SegmentKind::Static,
                    condition: Some(cond),
                    ..input
                };
                (self.ws.create_segment(input, self.now), |e| {
                    matches!(e, Error::Invalid(_))
                })
            }
            1 => {
                self.note(format!("create dynamic test segment {free}"));
                let input = SegmentInput {
                    test: true,
                    ..input
                };
                (self.ws.create_segment(input, self.now), |e| {
                    matches!(e, Error::Invalid(_))
                })
            }
            2 => {
                let cond = Condition::Any(vec![
                    self.gen_pred(),
                    Condition::InSegment("no-such-segment".into()),
                ]);
                self.note(format!("create {free} referring to an unknown segment"));
                let input = SegmentInput {
                    condition: Some(cond),
                    ..input
                };
                (self.ws.create_segment(input, self.now), |e| {
                    matches!(e, Error::NotFound { .. })
                })
            }
            3 => {
                self.note(format!("create {free} with a blank name"));
                let input = SegmentInput {
                    name: " \t ".into(),
                    ..input
                };
                (self.ws.create_segment(input, self.now), |e| {
                    matches!(e, Error::Invalid(_))
                })
            }
            4 if static_seg.is_some() => {
                let id = static_seg.unwrap();
                let patch = SegmentPatch {
                    condition: Some(self.gen_pred()),
                    ..SegmentPatch::default()
                };
                self.note(format!("edit the condition of static {id}"));
                (self.ws.update_segment(&id, patch, self.now), |e| {
                    matches!(e, Error::WrongKind { .. })
                })
            }
            5 if dynamic_seg.is_some() => {
                let id = dynamic_seg.unwrap();
                let who: Vec<String> = self.pick_contact().into_iter().collect();
                self.note(format!("static add to dynamic {id}"));
                (self.ws.set_static_members(&id, &who, true, self.now), |e| {
                    matches!(e, Error::WrongKind { .. })
                })
            }
            _ if any_seg.is_some() => {
                let id = any_seg.unwrap();
                self.note(format!("create with the taken id {id}"));
                let input = SegmentInput { id, ..input };
                (self.ws.create_segment(input, self.now), |e| {
                    matches!(e, Error::Invalid(_))
                })
            }
            _ => {
                self.note("edit unknown segment".into());
                let result =
                    self.ws
                        .update_segment("no-such-segment", SegmentPatch::default(), self.now);
                (result, |e| matches!(e, Error::NotFound { .. }))
            }
        };
        match &result {
            Err(e) if expect(e) => {}
            other => self.fail(format!("invalid segment write: {other:?}")),
        }
        self.unchanged(&before, "invalid segment write");
    }
}

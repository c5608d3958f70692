//! Steps that write contacts (valid, wide and invalid batches, deletes).

use super::*;

impl Run {
    // -- steps ----------------------------------------------------------------

    pub(crate) fn upsert_step(&mut self, n: usize) {
        let ids = (0..n).map(|_| self.gen_id()).collect();
        self.upsert_ids(ids);
    }

    pub(crate) fn upsert_ids(&mut self, ids: Vec<String>) {
        let (items, typed): (Vec<_>, Vec<_>) = ids
            .into_iter()
            .map(|id| {
                let (mut item, typed) = self.gen_input();
                item.id = id;
                (item, typed)
            })
            .unzip();
        self.upsert_items(&items, &typed);
    }

    pub(crate) fn upsert_items(&mut self, items: &[ContactInput], typed: &[Vec<Option<Value>>]) {
        let n = items.len();
        self.note(format!("upsert {items:?}"));
        let write = match self.ws.upsert_contacts(items, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("valid upsert rejected: {e}")),
        };
        self.model.apply_batch(items, typed, self.now);
        self.stats.upserted_items += n;
        let ids = items.iter().map(|i| i.id.clone()).collect();
        self.absorb(&write, &Kind::Upsert(ids));
    }

    /// Changes most members of a segment that others refer to, so that its
    /// dependents are re-evaluated over a scope of thousands of contacts.
    pub(crate) fn wide_step(&mut self) {
        let referenced: Vec<String> = self
            .model
            .segs
            .keys()
            .filter(|s| !self.model.referrers(s).is_empty())
            .cloned()
            .collect();
        let Some(id) = referenced.choose(&mut self.rng).cloned() else {
            return self.create_referring_segment();
        };
        if self.model.segs[&id].cond.is_none() {
            let members: Vec<String> = self.model.segs[&id].statics.iter().cloned().collect();
            let add = members.len() < self.model.contacts.len() / 2;
            let ids: Vec<String> = if add {
                self.model.contacts.keys().cloned().collect()
            } else {
                members
            };
            self.note(format!(
                "wide static {} {id} of {} contacts",
                if add { "add" } else { "remove" },
                ids.len()
            ));
            let write = match self.ws.set_static_members(&id, &ids, add, self.now) {
                Ok(w) => w,
                Err(e) => self.fail(format!("wide static write: {e}")),
            };
            let contacts: RoaringBitmap = ids.iter().map(|c| self.ws.lookup(c).unwrap()).collect();
            let seg = self.model.segs.get_mut(&id).unwrap();
            if add {
                seg.statics.extend(ids);
            } else {
                seg.statics.clear();
            }
            self.stats.static_writes += 1;
            return self.absorb(&write, &Kind::Static { id, add, contacts });
        }
        // lead_score is 0 for everyone: flip between (almost) all and (almost) none.
        let many =
            self.ws.segment(&id).unwrap().members.len() < self.model.contacts.len() as u64 / 2;
        let op = if many { CmpOp::Eq } else { CmpOp::Ne };
        let flip = Condition::Field {
            field: "lead_score".into(),
            test: FieldTest::Compare(op, Scalar::Number(0.0)),
            ignore_case: false,
        };
        let cond = match self.rng.random_range(0..3) {
            0 => flip,
            1 => Condition::Any(vec![flip, self.gen_pred()]),
            _ => Condition::All(vec![flip, self.gen_pred()]),
        };
        self.check_tree(&cond);
        let shown = self.text(&cond);
        self.note(format!("wide edit of segment {id}: {shown}"));
        let patch = SegmentPatch {
            condition: Some(cond.clone()),
            ..SegmentPatch::default()
        };
        let write = match self.ws.update_segment(&id, patch, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("wide edit: {e}")),
        };
        self.model.segs.get_mut(&id).unwrap().cond = Some(cond);
        self.stats.segment_edits += 1;
        self.absorb(&write, &Kind::EditSegment(id));
    }

    /// Creates a dynamic segment that refers to an existing one.
    pub(crate) fn create_referring_segment(&mut self) {
        let Some(target) = self.pick_segment(None) else {
            return self.create_segment_step();
        };
        let free: Vec<String> = (0..SEGMENT_IDS)
            .map(|k| format!("g{k}"))
            .filter(|id| !self.model.segs.contains_key(id))
            .collect();
        let Some(id) = free.choose(&mut self.rng).cloned() else {
            return self.delete_segment_step();
        };
        let reference = Condition::InSegment(target);
        let cond = match self.rng.random_range(0..3) {
            0 => Condition::Not(Box::new(reference)),
            1 => Condition::Any(vec![reference, self.gen_pred()]),
            _ => Condition::All(vec![self.gen_pred(), reference]),
        };
        self.check_tree(&cond);
        let name = self.fresh_name();
        let shown = self.text(&cond);
        self.note(format!("create referring segment {id} {name:?}: {shown}"));
        let input = SegmentInput {
            id: id.clone(),
            name: name.clone(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: Some(cond.clone()),
            test: false,
        };
        let write = match self.ws.create_segment(input, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("create segment: {e}")),
        };
        self.model.segs.insert(
            id.clone(),
            MSegment {
                name: name.trim().to_string(),
                cond: Some(cond),
                statics: BTreeSet::new(),
            },
        );
        self.stats.segment_creates += 1;
        self.absorb(&write, &Kind::CreateSegment(id));
    }

    pub(crate) fn invalid_batch_step(&mut self) {
        let n = self.rng.random_range(1..=6);
        let bad = self.rng.random_range(0..n);
        let mut items: Vec<ContactInput> = (0..n).map(|_| self.gen_input().0).collect();
        // An existing writable field (a new one would take the type it is given).
        let fields: Vec<(String, FieldType)> = self
            .writable()
            .into_iter()
            .filter(|(n, _)| self.model.types.contains_key(n))
            .collect();
        let kind = self.rng.random_range(0..6);
        let (name, ty) = fields.choose(&mut self.rng).unwrap().clone();
        let bad_item = &mut items[bad];
        let expect: Expected = match kind {
            0 => {
                bad_item.id = ["", "ctl\u{1}x", &"y".repeat(129)]
                    .choose(&mut self.rng)
                    .unwrap()
                    .to_string();
                |e| matches!(e, Error::InvalidContactId(_))
            }
            1 => {
                let (sys, _) = *SYSTEM.choose(&mut self.rng).unwrap();
                bad_item
                    .properties
                    .push((sys.to_string(), RawValue::Number(1.0)));
                |e| matches!(e, Error::ReadOnlyField(_))
            }
            2 => {
                let wrong = match ty {
                    FieldType::String => RawValue::Number(1.0),
                    FieldType::Number => [
                        RawValue::String("1".into()),
                        RawValue::Number(f64::NAN),
                        RawValue::Number(f64::INFINITY),
                    ]
                    .choose(&mut self.rng)
                    .unwrap()
                    .clone(),
                    FieldType::Boolean => RawValue::String("true".into()),
                    FieldType::Date => [
                        RawValue::String("2023-02-29".into()),
                        RawValue::String("tomorrow".into()),
                        RawValue::Number(20240101.0),
                    ]
                    .choose(&mut self.rng)
                    .unwrap()
                    .clone(),
                    FieldType::DateTime => [
                        RawValue::String("2024-13-01T00:00:00Z".into()),
                        RawValue::String("yesterday".into()),
                        RawValue::Bool(true),
                    ]
                    .choose(&mut self.rng)
                    .unwrap()
                    .clone(),
                    FieldType::StringList => RawValue::String("a".into()),
                };
                bad_item.properties.push((name, wrong));
                |e| matches!(e, Error::TypeMismatch { .. })
            }
            3 => {
                let field = *["Bad-Name", "9lives", ""].choose(&mut self.rng).unwrap();
                bad_item
                    .properties
                    .push((field.to_string(), RawValue::String("v".into())));
                |e| matches!(e, Error::InvalidFieldName(_))
            }
            4 => {
                bad_item
                    .properties
                    .push(("x_obj".to_string(), RawValue::Unsupported("an object")));
                |e| matches!(e, Error::Invalid(_))
            }
            _ => {
                // The item itself infers x_num as a number, then writes a string.
                bad_item
                    .properties
                    .push(("x_num".to_string(), RawValue::Number(1.0)));
                bad_item
                    .properties
                    .push(("x_num".to_string(), RawValue::String("oops".into())));
                |e| matches!(e, Error::TypeMismatch { .. })
            }
        };
        self.note(format!("invalid batch (item {bad} bad) {items:?}"));
        let before = digest(&self.ws);
        let result = self.ws.upsert_contacts(&items, self.now);
        let ok = match &result {
            Err(e) if n == 1 => expect(e),
            Err(Error::BatchInvalid { total, failures }) => {
                *total == n && failures.len() == 1 && failures[0].0 == bad && expect(&failures[0].1)
            }
            _ => false,
        };
        if !ok {
            self.fail(format!("invalid batch: unexpected result {result:?}"));
        }
        self.unchanged(&before, "invalid batch");
    }

    pub(crate) fn unchanged(&mut self, before: &Digest, what: &str) {
        self.stats.rejected += 1;
        let after = digest(&self.ws);
        if *before != after {
            self.fail(format!(
                "{what} was rejected but changed the workspace:\nbefore {before:?}\nafter {after:?}"
            ));
        }
    }

    pub(crate) fn delete_contact_step(&mut self) {
        let target = if self.rng.random_bool(0.05) {
            None
        } else {
            self.pick_contact()
        };
        let Some(id) = target else {
            let id = self
                .model
                .gone
                .first()
                .cloned()
                .unwrap_or_else(|| "never-created".into());
            self.note(format!("delete unknown contact {id:?}"));
            let before = digest(&self.ws);
            match self.ws.delete_contact(&id, self.now) {
                Err(Error::NotFound { .. }) => {}
                other => self.fail(format!("deleting unknown contact: {other:?}")),
            }
            return self.unchanged(&before, "delete of unknown contact");
        };
        let no = self.ws.lookup(&id).unwrap();
        self.note(format!("delete contact {id:?} (#{no})"));
        let write = match self.ws.delete_contact(&id, self.now) {
            Ok(w) => w,
            Err(e) => self.fail(format!("delete contact: {e}")),
        };
        self.model.delete_contact(&id);
        self.stats.contact_deletes += 1;
        self.absorb(&write, &Kind::DeleteContact(no));
    }
}

//! Segment writes: create, edit, delete, static members, and bulk
//! re-evaluation in rank order through `in segment` references.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime};

use super::*;
use crate::aggregates::AggTest;
use crate::changes::{Cause, ChangeKind, Record, SegmentDef, SegmentKind, SegmentRevision};
use crate::error::Error;
use crate::eval::{Ctx, evaluate_all, matches};
use crate::fields::Fields;
use crate::segments::{Segment, Slot};
use crate::workspace::time::is_relative;
use sift_lang::FieldTest;

impl Workspace {
    // -- segments -------------------------------------------------------------

    pub fn create_segment(&mut self, input: SegmentInput, now: DateTime) -> Result<Write, Error> {
        let name = checked_name(&input.name)?;
        if self.segments.by_name(&name).is_some() {
            return Err(Error::NameTaken(name));
        }
        if self.segments.get(&input.id).is_some() {
            return Err(Error::Invalid(format!(
                "segment id {:?} is taken",
                input.id
            )));
        }
        let condition = match input.kind {
            SegmentKind::Dynamic => {
                let cond = input.condition.unwrap_or(Condition::All(Vec::new()));
                self.check_condition(&input.id, &cond)?;
                Some(cond)
            }
            SegmentKind::Static if input.condition.is_some() => {
                return Err(Error::Invalid(
                    "a static segment has no condition: its members are added and removed through the API and workflows".into(),
                ));
            }
            SegmentKind::Static => None,
        };
        if input.test && input.kind != SegmentKind::Static {
            return Err(Error::Invalid(
                "only a static segment can be a test segment".into(),
            ));
        }
        let def = SegmentDef {
            id: input.id,
            name,
            description: input.description,
            kind: input.kind,
            condition,
            test: input.test,
            created_at: now,
            updated_at: now,
        };
        // Before anything changes: reading the history may fail.
        let history_read = self.prepare_history(def.condition.as_ref(), now)?;
        let now = self.tick(now);
        let def = SegmentDef {
            created_at: now,
            updated_at: now,
            ..def
        };
        self.sync_aggregates(def.condition.as_ref(), now);
        let members = match &def.condition {
            Some(cond) => evaluate_all(cond, &self.ctx(now)),
            None => RoaringBitmap::new(),
        };
        let mut write = Write {
            records: vec![Record::Segment(def.clone())],
            entered: members.len(),
            history_read,
            ..Write::default()
        };
        let id = def.id.clone();
        let relative = relative_tests(def.condition.as_ref(), &self.fields);
        self.segments.insert(Segment::new(
            def,
            members.clone(),
            &self.fields,
            &self.aggregates,
        ));
        self.refresh_blank_true(now);
        self.reindex_time();
        self.schedule_tests(&relative, now);
        self.record(
            &id,
            ChangeKind::Entered,
            Cause::SegmentEdit,
            now,
            members,
            &mut write,
        );
        let mut write = self.finish(write);
        self.push_revision(&id, now, &mut write);
        Ok(write)
    }

    pub fn update_segment(
        &mut self,
        id: &str,
        patch: SegmentPatch,
        now: DateTime,
    ) -> Result<Write, Error> {
        let slot = self.segments.slot(id).ok_or_else(|| Error::NotFound {
            what: "segment",
            id: id.to_string(),
        })?;
        let mut def = self.segment_or_not_found(id)?.def.clone();
        if let Some(name) = &patch.name {
            let name = checked_name(name)?;
            if self.segments.by_name(&name).is_some_and(|s| s.def.id != id) {
                return Err(Error::NameTaken(name));
            }
            def.name = name;
        }
        if let Some(description) = patch.description {
            def.description = description;
        }
        let new_condition = patch.condition.is_some();
        if let Some(cond) = patch.condition {
            if def.kind == SegmentKind::Static {
                return Err(Error::WrongKind {
                    id: id.to_string(),
                    kind: SegmentKind::Static,
                    reason: "it has no condition to edit",
                });
            }
            self.check_condition(id, &cond)?;
            def.condition = Some(cond);
        }
        let history_read = if new_condition {
            self.prepare_history(def.condition.as_ref(), now)?
        } else {
            0
        };
        let now = self.tick(now);
        def.updated_at = now;
        let mut write = Write {
            records: vec![Record::Segment(def.clone())],
            history_read,
            ..Write::default()
        };
        let relative = relative_tests(def.condition.as_ref(), &self.fields);
        self.segments
            .redefine(slot, def, &self.fields, &self.aggregates);
        if new_condition {
            // Aggregates follow the saved conditions (the old one's may go);
            // syncing recompiles every plan against them.
            self.sync_aggregates(None, now);
            self.reindex_time();
            self.schedule_tests(&relative, now);
            let mut queue = BTreeMap::new();
            queue.insert((self.segments.rank(slot), slot), (None, Cause::SegmentEdit));
            let (entered, exited) = self.propagate_bulk(queue, now, &mut write);
            write.entered = entered;
            write.exited = exited;
            self.refresh_blank_true(now);
        }
        let mut write = self.finish(write);
        self.push_revision(id, now, &mut write);
        Ok(write)
    }

    /// Records the segment's definition as it now stands, with what the
    /// write did to its membership.
    fn push_revision(&self, id: &str, now: DateTime, write: &mut Write) {
        let Some(segment) = self.segments.get(id) else {
            return;
        };
        let def = &segment.def;
        let schema = self.schema();
        write.records.push(Record::SegmentRevision(SegmentRevision {
            segment_id: def.id.clone(),
            at: now,
            name: def.name.clone(),
            description: def.description.clone(),
            condition: def
                .condition
                .as_ref()
                .map(|c| sift_lang::to_text(c, &schema)),
            condition_tree: def
                .condition
                .as_ref()
                .map(|c| sift_lang::to_json(c).to_string()),
            entered: write.entered,
            exited: write.exited,
            key_id: None,
            via: "system".into(),
        }));
    }

    pub fn delete_segment(&mut self, id: &str) -> Result<Write, Error> {
        let usages = self.usages(id)?;
        if !usages.is_empty() {
            return Err(Error::InUse {
                id: id.to_string(),
                usages,
            });
        }
        if let Some(slot) = self.segments.slot(id) {
            self.segments.remove(slot);
        }
        let now = self.clock;
        self.sync_aggregates(None, now);
        self.refresh_blank_true(now);
        self.reindex_time();
        Ok(self.finish(Write {
            records: vec![Record::SegmentDeleted { id: id.to_string() }],
            ..Write::default()
        }))
    }

    /// Adds (or removes) contacts to a static segment.
    pub fn set_static_members(
        &mut self,
        id: &str,
        contact_ids: &[String],
        add: bool,
        now: DateTime,
    ) -> Result<Write, Error> {
        let segment = self.segment_or_not_found(id)?;
        if segment.def.kind != SegmentKind::Static {
            return Err(Error::WrongKind {
                id: id.to_string(),
                kind: segment.def.kind,
                reason: "its members follow its condition; only static segments take contacts by hand",
            });
        }
        let mut numbers = RoaringBitmap::new();
        let mut unknown = Vec::new();
        for contact_id in contact_ids {
            match self.resolve(contact_id) {
                Some(no) => {
                    numbers.insert(no);
                }
                None => unknown.push(contact_id.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownContacts(unknown));
        }
        let changed = if add {
            &numbers - &*segment.members.bitmap()
        } else {
            &numbers & &*segment.members.bitmap()
        };
        let now = self.tick(now);
        let mut write = Write::default();
        self.apply_static(id, changed, add, now, &mut write);
        Ok(self.finish(write))
    }

    /// Adds `changed` (contacts not yet members) to static segment `id`, or
    /// removes them (members), and re-evaluates the segments referring to it.
    pub(super) fn apply_static(
        &mut self,
        id: &str,
        changed: RoaringBitmap,
        add: bool,
        now: DateTime,
        write: &mut Write,
    ) {
        let Some(slot) = self.segments.slot(id) else {
            return;
        };
        write.records.push(Record::StaticMembers {
            segment_id: id.to_string(),
            contacts: changed.clone(),
            present: add,
        });
        if add {
            self.segments
                .change_members(slot, &changed, &RoaringBitmap::new());
        } else {
            self.segments
                .change_members(slot, &RoaringBitmap::new(), &changed);
        }
        let (kind, cause) = if add {
            (ChangeKind::Entered, Cause::StaticAdd)
        } else {
            (ChangeKind::Exited, Cause::StaticRemove)
        };
        if add {
            write.entered += changed.len();
        } else {
            write.exited += changed.len();
        }
        self.record(id, kind, cause, now, changed.clone(), write);
        let mut queue = BTreeMap::new();
        for dependent in self.segments.dependents(id) {
            queue.insert(
                (self.segments.rank(*dependent), *dependent),
                (Some(changed.clone()), Cause::SegmentRef),
            );
        }
        self.propagate_bulk(queue, now, write);
    }

    /// Re-evaluates queued segments over their scope (None: everyone), in rank
    /// order, queueing the dependents of every segment that changed. Returns
    /// the entries and exits of the first segment processed.
    pub(super) fn propagate_bulk(
        &mut self,
        mut queue: BTreeMap<(u32, Slot), (Option<RoaringBitmap>, Cause)>,
        at: DateTime,
        write: &mut Write,
    ) -> (u64, u64) {
        let mut first = None;
        while let Some(((_, slot), (scope, cause))) = queue.pop_first() {
            let Some(segment) = self.segments.at(slot) else {
                continue;
            };
            let (Some(cond), Some(plan)) = (&segment.def.condition, &segment.plan) else {
                continue;
            };
            let ctx = self.ctx(at);
            let fresh = match &scope {
                Some(scope) if scope.len() <= ROW_SCOPE_LIMIT => RoaringBitmap::from_iter(
                    scope
                        .iter()
                        .filter(|no| ctx.contacts.is_alive(*no) && plan.matches(*no, &ctx)),
                ),
                Some(scope) => evaluate_all(cond, &ctx) & scope,
                None => evaluate_all(cond, &ctx),
            };
            let before = match &scope {
                Some(scope) => &*segment.members.bitmap() & scope,
                None => segment.members.bitmap().into_owned(),
            };
            let entered = &fresh - &before;
            let exited = &before - &fresh;
            let id = segment.def.id.clone();
            if first.is_none() {
                first = Some((entered.len(), exited.len()));
            }
            if entered.is_empty() && exited.is_empty() {
                continue;
            }
            self.segments.change_members(slot, &entered, &exited);
            let changed = &entered | &exited;
            self.record(&id, ChangeKind::Entered, cause, at, entered, write);
            self.record(&id, ChangeKind::Exited, cause, at, exited, write);
            for dependent in self.segments.dependents(&id).to_vec() {
                let entry = queue
                    .entry((self.segments.rank(dependent), dependent))
                    .or_insert((Some(RoaringBitmap::new()), Cause::SegmentRef));
                if let Some(scope) = &mut entry.0 {
                    *scope |= &changed;
                }
            }
        }
        first.unwrap_or((0, 0))
    }

    /// Rejects what the engine cannot keep exact, and reference cycles.
    pub(super) fn check_condition(&self, id: &str, cond: &Condition) -> Result<(), Error> {
        check_supported(cond)?;
        for window in super::retention::windows(cond) {
            self.check_retention(Some(window))?;
        }
        let refs = cond.segment_refs();
        for target in &refs {
            self.segment_or_not_found(target)?;
        }
        if let Some(path) = self.segments.cycle_through(id, &refs) {
            let names = path
                .iter()
                .map(|id| {
                    self.segments
                        .get(id)
                        .map_or_else(|| id.clone(), |s| s.def.name.clone())
                })
                .collect();
            return Err(Error::Cycle { path: names });
        }
        Ok(())
    }

    pub(super) fn refresh_blank_true(&mut self, now: DateTime) {
        let mut order: Vec<(u32, Slot)> = self
            .segments
            .iter()
            .map(|(slot, _)| (self.segments.rank(slot), slot))
            .collect();
        order.sort_unstable();
        let capacity = order.iter().map(|(_, s)| s + 1).max().unwrap_or(0);
        let mut blank = vec![false; capacity];
        for (_, slot) in order {
            let Some(cond) = self
                .segments
                .at(slot)
                .and_then(|s| s.def.condition.as_ref())
            else {
                continue;
            };
            let lookup = BlankLookup {
                blank: &blank,
                segments: &self.segments,
                yes: RoaringBitmap::from_iter([BLANK]),
                no: RoaringBitmap::new(),
            };
            let ctx = Ctx {
                fields: &self.fields,
                contacts: &self.contacts,
                segments: &lookup,
                events: &self.events,
                aggregates: &self.aggregates,
                from_history: false,
                extra: None,
                now,
            };
            blank[slot] = matches(cond, BLANK, &ctx);
        }
        self.blank_true = blank
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(slot, _)| slot)
            .collect();
    }
}

impl Workspace {
    /// Brings the aggregates in line with the saved segments' behavioural
    /// nodes (and `extra`'s, about to be saved): new ones are computed over
    /// every history at `now` and their window exits armed; unused ones go.
    pub(super) fn sync_aggregates(&mut self, extra: Option<&Condition>, now: DateTime) {
        let mut keys = Vec::new();
        for (_, segment) in self.segments.iter() {
            if segment.def.kind == SegmentKind::Dynamic
                && let Some(cond) = &segment.def.condition
            {
                collect_keys(cond, &mut keys);
            }
        }
        if let Some(cond) = extra {
            collect_keys(cond, &mut keys);
        }
        let capacity = self.contacts.capacity();
        let mut prepared = std::mem::take(&mut self.prepared);
        let created =
            self.aggregates
                .sync(&keys, &mut self.events, capacity, now, &mut prepared, true);
        if self.on_disk() {
            self.refresh_horizon();
        }
        let changed = !created.is_empty() | self.aggregates.take_removed();
        for (_, exits) in created {
            for (no, at) in exits.into_iter().enumerate() {
                self.timers.schedule(no as u32, at);
            }
        }
        // Indexes of kept aggregates are stable: plans need compiling again
        // only when the set changed.
        if changed {
            self.segments.recompile(&self.fields, &self.aggregates);
        }
    }

    /// Rebuilds the tests on each aggregate and the list of relative tests.
    pub(super) fn reindex_time(&mut self) {
        let mut tests: Vec<Vec<(AggTest, Vec<Slot>)>> = Vec::new();
        for (slot, segment) in self.segments.iter() {
            if segment.def.kind != SegmentKind::Dynamic {
                continue;
            }
            let Some(cond) = &segment.def.condition else {
                continue;
            };
            let mut nodes = Vec::new();
            behaviour_nodes(cond, &mut nodes);
            for node in nodes {
                let (Some(key), Some(test)) = (AggKey::of(node), AggTest::of(node)) else {
                    continue;
                };
                let Some(index) = self.aggregates.find(&key) else {
                    continue;
                };
                if index >= tests.len() {
                    tests.resize_with(index + 1, Vec::new);
                }
                match tests[index].iter_mut().find(|(t, _)| *t == test) {
                    Some((_, readers)) => {
                        if !readers.contains(&slot) {
                            readers.push(slot);
                        }
                    }
                    None => tests[index].push((test, vec![slot])),
                }
            }
        }
        self.agg_tests = tests;
        self.temporal = super::temporal::by_column(
            self.segments
                .all_tests()
                .filter(|(_, check, _)| is_relative(&check.test))
                .filter_map(|(field, check, readers)| {
                    Some((
                        self.fields.index(field)?,
                        check.test.clone(),
                        readers.to_vec(),
                    ))
                })
                .collect(),
        );
    }
}

/// The aggregate keys of `cond`'s behavioural nodes.
pub(super) fn collect_keys(cond: &Condition, keys: &mut Vec<AggKey>) {
    let mut nodes = Vec::new();
    behaviour_nodes(cond, &mut nodes);
    for node in nodes {
        if let Some(key) = AggKey::of(node)
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
}

/// The `event` and `event_sum` nodes tested against the contact.
fn behaviour_nodes<'a>(cond: &'a Condition, out: &mut Vec<&'a Condition>) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| behaviour_nodes(c, out))
        }
        Condition::Not(inner) => behaviour_nodes(inner, out),
        Condition::Event { .. } | Condition::EventSum { .. } => out.push(cond),
        Condition::Field { .. } | Condition::InSegment(_) => {}
    }
}

/// (column, test) of each relative-time field test of `cond`.
fn relative_tests(cond: Option<&Condition>, fields: &Fields) -> Vec<(usize, FieldTest)> {
    let mut out = Vec::new();
    fn walk(cond: &Condition, fields: &Fields, out: &mut Vec<(usize, FieldTest)>) {
        match cond {
            Condition::All(children) | Condition::Any(children) => {
                children.iter().for_each(|c| walk(c, fields, out))
            }
            Condition::Not(inner) => walk(inner, fields, out),
            Condition::Field { field, test, .. } if is_relative(test) => {
                if let Some(index) = fields.index(field) {
                    out.push((index, test.clone()));
                }
            }
            _ => {}
        }
    }
    if let Some(cond) = cond {
        walk(cond, fields, &mut out);
    }
    out
}

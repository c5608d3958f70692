//! One workspace's whole in-memory state, and every write to it.
//!
//! A write validates everything first (and changes nothing when it fails),
//! then applies itself, re-evaluates only the segments it can affect — in
//! rank order so that `in segment` always sees its target's new membership —
//! and returns the [`Record`]s the store must persist, change log included.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime, FieldTest, FieldType, Schema};

use crate::changes::{
    Cause, ChangeBatch, ChangeKind, ContactSnapshot, Record, SegmentDef, SegmentKind,
};
use crate::contacts::Contacts;
use crate::error::{Error, Usage};
use crate::eval::{Ctx, SegmentLookup, evaluate_all, matches, test_value};
use crate::fields::{
    self, ANONYMOUS, CREATED_AT, FieldDef, Fields, LAST_SEEN_AT, LEAD_SCORE, UPDATED_AT,
};
use crate::segments::{Segment, Segments, Slot};
use crate::value::{RawValue, Value};

/// Most upserts one batch may hold (SPEC §4).
pub const MAX_BATCH: usize = 10_000;
/// Scopes up to this many contacts are re-evaluated one contact at a time;
/// larger ones with a bulk evaluation.
const ROW_SCOPE_LIMIT: u64 = 2_048;

/// An upsert of one contact: given properties are set, `Null` removes one.
#[derive(Clone, Debug, Default)]
pub struct ContactInput {
    pub id: String,
    pub properties: Vec<(String, RawValue)>,
    pub anonymous: Option<bool>,
}

/// A segment to create. The condition was parsed by the caller against
/// [`Workspace::schema`].
#[derive(Clone, Debug)]
pub struct SegmentInput {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    pub condition: Option<Condition>,
    pub test: bool,
}

/// An edit; `None` leaves a part unchanged.
#[derive(Clone, Debug, Default)]
pub struct SegmentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub condition: Option<Condition>,
}

/// What a write did.
#[derive(Clone, Debug, Default)]
pub struct Write {
    /// To persist, in order, in one transaction.
    pub records: Vec<Record>,
    /// Entries and exits of the segment a segment write was about.
    pub entered: u64,
    pub exited: u64,
    /// Membership changes recorded (entries and exits of every segment).
    pub changes: u64,
}

impl Write {
    pub fn changes(&self) -> impl Iterator<Item = &ChangeBatch> {
        self.records.iter().filter_map(|r| match r {
            Record::Changes(batch) => Some(batch),
            _ => None,
        })
    }

    pub fn change_count(&self) -> u64 {
        self.changes
    }
}

/// A contact as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactView {
    pub no: u32,
    pub id: String,
    pub anonymous: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub last_seen_at: Option<DateTime>,
    pub lead_score: f64,
    pub properties: Vec<(String, Value)>,
    /// (id, name) of the segments it belongs to.
    pub segments: Vec<(String, String)>,
}

/// One node of an explanation: whether it holds for the contact, and the
/// value the contact has for a field node.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainNode {
    pub condition: Condition,
    pub result: bool,
    pub value: Option<Value>,
    pub children: Vec<ExplainNode>,
}

#[derive(Clone, Debug, Default)]
pub struct Workspace {
    fields: Fields,
    contacts: Contacts,
    segments: Segments,
    next_seq: u64,
    /// Dynamic segments that hold for a contact with no properties: a new
    /// contact is checked against these besides those reading what it sets.
    blank_true: Vec<Slot>,
}

/// The checker's view of a workspace.
pub struct WorkspaceSchema<'a> {
    fields: &'a Fields,
    segments: &'a Segments,
}

impl Schema for WorkspaceSchema<'_> {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        self.fields.get(name).map(|f| f.field_type)
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        self.segments.by_name(name).map(|s| s.def.id.clone())
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        self.segments.get(id).map(|s| s.def.name.clone())
    }
}

/// Answers `in segment` for the imaginary blank contact `BLANK`.
struct BlankLookup<'a> {
    blank: &'a [bool],
    segments: &'a Segments,
    yes: RoaringBitmap,
    no: RoaringBitmap,
}

const BLANK: u32 = u32::MAX;

impl SegmentLookup for BlankLookup<'_> {
    fn members(&self, segment_id: &str) -> Option<&RoaringBitmap> {
        let slot = self.segments.slot(segment_id)?;
        Some(if self.blank[slot] {
            &self.yes
        } else {
            &self.no
        })
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let mut ws = Workspace::default();
        for def in ws.fields.all().to_vec() {
            ws.contacts.add_column(def.field_type);
        }
        ws
    }

    // -- reads --------------------------------------------------------------

    pub fn schema(&self) -> WorkspaceSchema<'_> {
        WorkspaceSchema {
            fields: &self.fields,
            segments: &self.segments,
        }
    }

    pub fn fields(&self) -> &[FieldDef] {
        self.fields.all()
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.get(name)
    }

    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.get(id)
    }

    /// The seq the next recorded change will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn contact_count(&self) -> u64 {
        self.contacts.count()
    }

    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.contacts.lookup(id)
    }

    pub fn contact(&self, no: u32) -> Option<ContactView> {
        if !self.contacts.is_alive(no) {
            return None;
        }
        let mut view = self.contact_without_segments(no);
        view.segments = self
            .segments
            .iter()
            .filter(|(_, s)| s.members.contains(no))
            .map(|(_, s)| (s.def.id.clone(), s.def.name.clone()))
            .collect();
        Some(view)
    }

    /// Live contacts matching `query` (a substring of the id or email, without
    /// case) and in `segment`, after number `after`, at most `limit`. Returns
    /// the page and whether more follow.
    pub fn list_contacts(
        &self,
        query: Option<&str>,
        segment: Option<&str>,
        after: Option<u32>,
        limit: usize,
    ) -> Result<(Vec<u32>, bool), Error> {
        let pool = match segment {
            Some(id) => &self.segment_or_404(id)?.members,
            None => self.contacts.alive(),
        };
        let start = after.map_or(0, |a| a.saturating_add(1));
        let email = self.fields.index("email");
        let needle = query.map(str::to_lowercase).filter(|q| !q.is_empty());
        let mut page = Vec::new();
        for no in pool.range(start..) {
            if let Some(needle) = &needle {
                let id_hit = self
                    .contacts
                    .id(no)
                    .to_lowercase()
                    .contains(needle.as_str());
                let email_hit = email.is_some_and(|f| {
                    matches!(self.contacts.get(no, f), Some(Value::String(e)) if e.to_lowercase().contains(needle.as_str()))
                });
                if !id_hit && !email_hit {
                    continue;
                }
            }
            if page.len() == limit {
                return Ok((page, true));
            }
            page.push(no);
        }
        Ok((page, false))
    }

    fn ctx(&self, now: DateTime) -> Ctx<'_> {
        Ctx {
            fields: &self.fields,
            contacts: &self.contacts,
            segments: &self.segments,
            now,
        }
    }

    fn segment_or_404(&self, id: &str) -> Result<&Segment, Error> {
        self.segments.get(id).ok_or_else(|| Error::NotFound {
            what: "segment",
            id: id.to_string(),
        })
    }

    /// Members of an unsaved condition.
    pub fn preview(&self, condition: &Condition, now: DateTime) -> Result<RoaringBitmap, Error> {
        check_supported(condition)?;
        Ok(evaluate_all(condition, &self.ctx(now)))
    }

    /// Per-node truth of segment `id`'s condition for contact `no`.
    pub fn explain(&self, no: u32, id: &str, now: DateTime) -> Result<ExplainNode, Error> {
        let segment = self.segment_or_404(id)?;
        let ctx = self.ctx(now);
        Ok(match &segment.def.condition {
            Some(cond) => explain_node(cond, no, &ctx),
            None => ExplainNode {
                condition: Condition::InSegment(id.to_string()),
                result: segment.members.contains(no),
                value: None,
                children: Vec::new(),
            },
        })
    }

    /// Workflows come later; today only segments refer to segments.
    pub fn usages(&self, id: &str) -> Result<Vec<Usage>, Error> {
        self.segment_or_404(id)?;
        Ok(self
            .segments
            .dependents(id)
            .iter()
            .filter_map(|slot| self.segments.at(*slot))
            .map(|s| Usage {
                kind: "segment",
                id: s.def.id.clone(),
                name: s.def.name.clone(),
                role: "condition",
            })
            .collect())
    }

    // -- fields ---------------------------------------------------------------

    /// Declares a field, or changes its type (only while it holds no data) or label.
    pub fn declare_field(
        &mut self,
        name: &str,
        field_type: FieldType,
        label: Option<&str>,
    ) -> Result<Write, Error> {
        if !fields::valid_field_name(name) {
            return Err(Error::InvalidFieldName(name.to_string()));
        }
        let label = label.map(str::to_string);
        if let Some(index) = self.fields.index(name) {
            let current = self.fields.def(index).clone();
            if current.field_type != field_type {
                let in_use = self.contacts.column(index).has_data()
                    || current.builtin
                    || !self.segments.reading_field(name).is_empty();
                if in_use {
                    return Err(Error::FieldTypeConflict {
                        field: name.to_string(),
                        current: current.field_type,
                        requested: field_type,
                    });
                }
                self.contacts.retype_column(index, field_type);
            }
            let def = FieldDef {
                field_type,
                label: label.unwrap_or(current.label),
                ..current
            };
            self.fields.push(def.clone());
            return Ok(Write {
                records: vec![Record::Field(def)],
                ..Write::default()
            });
        }
        let def = FieldDef {
            name: name.to_string(),
            field_type,
            label: label.unwrap_or_else(|| default_label(name)),
            builtin: false,
            system: false,
        };
        self.add_field(def.clone());
        Ok(Write {
            records: vec![Record::Field(def)],
            ..Write::default()
        })
    }

    fn add_field(&mut self, def: FieldDef) -> usize {
        let field_type = def.field_type;
        let index = self.fields.push(def);
        if index >= self.contacts.columns().len() {
            self.contacts.add_column(field_type);
        }
        index
    }

    // -- contacts -------------------------------------------------------------

    /// Upserts contacts, all or nothing: every item is checked (with the
    /// fields earlier items would create) before any is applied.
    pub fn upsert_contacts(
        &mut self,
        items: &[ContactInput],
        now: DateTime,
    ) -> Result<Write, Error> {
        if items.len() > MAX_BATCH {
            return Err(Error::Invalid(format!(
                "a batch holds at most {MAX_BATCH} contacts, this one has {}",
                items.len()
            )));
        }
        let mut new_fields: HashMap<String, FieldType> = HashMap::new();
        let mut failures = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Err(error) = self.check_input(item, &mut new_fields) {
                failures.push((index, error));
            }
        }
        if !failures.is_empty() {
            if items.len() == 1 {
                return Err(failures.remove(0).1);
            }
            return Err(Error::BatchInvalid {
                total: items.len(),
                failures,
            });
        }
        let mut write = Write::default();
        let mut created: Vec<(&String, FieldType)> =
            new_fields.iter().map(|(k, v)| (k, *v)).collect();
        created.sort_by(|a, b| a.0.cmp(b.0));
        for (name, field_type) in created {
            let def = FieldDef {
                name: name.clone(),
                field_type,
                label: default_label(name),
                builtin: false,
                system: false,
            };
            self.add_field(def.clone());
            write.records.push(Record::Field(def));
        }
        for item in items {
            self.apply_input(item, now, &mut write);
        }
        Ok(write)
    }

    /// Checks upserts without applying any: the index of each item that
    /// [`Workspace::upsert_contacts`] would refuse, and why.
    pub fn check_contacts(&self, items: &[ContactInput]) -> Vec<(usize, Error)> {
        let mut new_fields = HashMap::new();
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let checked = self.check_input(item, &mut new_fields);
                checked.err().map(|error| (index, error))
            })
            .collect()
    }

    fn check_input(
        &self,
        item: &ContactInput,
        new_fields: &mut HashMap<String, FieldType>,
    ) -> Result<(), Error> {
        if !fields::valid_contact_id(&item.id) {
            return Err(Error::InvalidContactId(item.id.clone()));
        }
        for (name, raw) in &item.properties {
            let field_type = match self.fields.get(name) {
                Some(def) if def.system => return Err(Error::ReadOnlyField(name.clone())),
                Some(def) => def.field_type,
                None => match new_fields.get(name) {
                    Some(t) => *t,
                    None => {
                        if !fields::valid_field_name(name) {
                            return Err(Error::InvalidFieldName(name.clone()));
                        }
                        match raw.inferred_type() {
                            Some(t) => {
                                new_fields.insert(name.clone(), t);
                                t
                            }
                            None if *raw == RawValue::Null => continue,
                            None => {
                                return Err(Error::Invalid(format!(
                                    "field {name:?} cannot hold {}: use a string, number, boolean or list of strings",
                                    raw.describe()
                                )));
                            }
                        }
                    }
                },
            };
            if Value::typed(raw, field_type).is_err() {
                return Err(Error::TypeMismatch {
                    field: name.clone(),
                    expected: field_type,
                    given: raw.describe(),
                });
            }
        }
        Ok(())
    }

    /// Applies one checked upsert and re-evaluates what it can affect.
    fn apply_input(&mut self, item: &ContactInput, now: DateTime, write: &mut Write) {
        let (no, is_new) = match self.contacts.lookup(&item.id) {
            Some(no) => (no, false),
            None => {
                let no = self.contacts.insert(&item.id);
                self.contacts
                    .set(no, CREATED_AT, Some(&Value::DateTime(now)));
                self.contacts.set(no, LEAD_SCORE, Some(&Value::Number(0.0)));
                self.contacts
                    .set(no, ANONYMOUS, Some(&Value::Boolean(false)));
                (no, true)
            }
        };
        // For a contact that existed, only segments holding a test whose
        // answer the write flips can change; for a new one, every segment
        // reading what it set, and those that hold for a blank contact.
        let mut slots: Vec<Slot> = Vec::new();
        let mut changes: Vec<(usize, Option<Value>)> =
            vec![(UPDATED_AT, Some(Value::DateTime(now)))];
        if let Some(anonymous) = item.anonymous {
            changes.push((ANONYMOUS, Some(Value::Boolean(anonymous))));
        }
        for (name, raw) in &item.properties {
            let Some(index) = self.fields.index(name) else {
                continue;
            };
            let Ok(value) = Value::typed(raw, self.fields.def(index).field_type) else {
                continue;
            };
            changes.push((index, value));
        }
        // What the write replaced, so that a segment's former answer can be
        // recomputed instead of probing its (likely cold) member bitmap.
        let mut old_values: Vec<(usize, Option<Value>)> = Vec::new();
        for (index, value) in changes {
            if self.contacts.column(index).holds(no, value.as_ref()) {
                continue;
            }
            let name = &self.fields.def(index).name;
            if is_new {
                slots.extend_from_slice(self.segments.reading_field(name));
                self.contacts.set(no, index, value.as_ref());
                continue;
            }
            let tests = self.segments.tests_on(name);
            if !tests.is_empty() {
                old_values.push((index, self.contacts.get(no, index)));
            }
            let before: Vec<bool> = tests
                .iter()
                .map(|(test, _)| test_value(self.contacts.column(index).get_ref(no), test, now))
                .collect();
            self.contacts.set(no, index, value.as_ref());
            for ((test, readers), was) in tests.iter().zip(before) {
                if test_value(self.contacts.column(index).get_ref(no), test, now) != was {
                    slots.extend_from_slice(readers);
                }
            }
        }
        if is_new {
            for field in [CREATED_AT, LEAD_SCORE, ANONYMOUS] {
                slots.extend_from_slice(self.segments.reading_field(&self.fields.def(field).name));
            }
            slots.extend(self.blank_true.iter().copied());
        }
        write.records.push(Record::Contact(self.snapshot(no)));
        let before = (!is_new).then_some(old_values.as_slice());
        self.propagate_contact(no, slots, before, Cause::ContactUpdate, now, write);
    }

    fn snapshot(&self, no: u32) -> ContactSnapshot {
        let view = self.contact_without_segments(no);
        ContactSnapshot {
            no,
            id: view.id,
            anonymous: view.anonymous,
            created_at: view.created_at,
            updated_at: view.updated_at,
            last_seen_at: view.last_seen_at,
            lead_score: view.lead_score,
            properties: view.properties,
        }
    }

    fn contact_without_segments(&self, no: u32) -> ContactView {
        let get = |field| self.contacts.get(no, field);
        let datetime = |field| match get(field) {
            Some(Value::DateTime(t)) => Some(t),
            _ => None,
        };
        ContactView {
            no,
            id: self.contacts.id(no).to_string(),
            anonymous: matches!(get(ANONYMOUS), Some(Value::Boolean(true))),
            created_at: datetime(CREATED_AT).unwrap_or(0),
            updated_at: datetime(UPDATED_AT).unwrap_or(0),
            last_seen_at: datetime(LAST_SEEN_AT),
            lead_score: match get(LEAD_SCORE) {
                Some(Value::Number(n)) => n,
                _ => 0.0,
            },
            properties: self
                .fields
                .all()
                .iter()
                .enumerate()
                .filter(|(_, def)| !def.system)
                .filter_map(|(i, def)| get(i).map(|v| (def.name.clone(), v)))
                .collect(),
            segments: Vec::new(),
        }
    }

    /// Re-evaluates `slots` (and, through `in segment`, whatever depends on
    /// a segment that changed) for one contact, in rank order.
    ///
    /// For a new contact (`fresh`) the dependents of every evaluated segment
    /// are re-evaluated even when its membership did not change: a segment
    /// outside `slots` is assumed to have its value for the blank contact, and
    /// that no longer holds when a segment it refers to has a value other than
    /// its blank one (`not in segment S`, S true for the blank contact but
    /// false for this one, leaves S's membership unchanged).
    fn propagate_contact(
        &mut self,
        no: u32,
        slots: Vec<Slot>,
        before: Option<&[(usize, Option<Value>)]>,
        cause: Cause,
        at: DateTime,
        write: &mut Write,
    ) {
        // Pending (rank, slot, direct), kept sorted so the lowest rank pops first.
        let mut queue: Vec<(u32, Slot, bool)> = slots
            .into_iter()
            .map(|slot| (self.segments.rank(slot), slot, true))
            .collect();
        queue.sort_unstable_by(|a, b| b.cmp(a));
        queue.dedup_by_key(|entry| entry.1);
        while let Some((_, slot, direct)) = queue.pop() {
            let Some(segment) = self.segments.at(slot) else {
                continue;
            };
            let Some(plan) = &segment.plan else { continue };
            let ctx = self.ctx(at);
            let now_in = plan.matches(no, &ctx);
            let was_in = match before {
                Some(old) if direct && !segment.refers => plan.matches_before(no, &ctx, old),
                _ => segment.members.contains(no),
            };
            let changed = now_in != was_in;
            if !changed && before.is_some() {
                continue;
            }
            if changed {
                let id = segment.def.id.clone();
                self.set_member(slot, no, now_in);
                let kind = if now_in {
                    ChangeKind::Entered
                } else {
                    ChangeKind::Exited
                };
                let cause = if direct { cause } else { Cause::SegmentRef };
                self.record(&id, kind, cause, at, RoaringBitmap::from_iter([no]), write);
            }
            let dependents = self.segments.dependents_of(slot);
            if !dependents.is_empty() {
                for dependent in dependents {
                    if !queue.iter().any(|entry| entry.1 == *dependent) {
                        queue.push((self.segments.rank(*dependent), *dependent, false));
                    }
                }
                queue.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
    }

    fn set_member(&mut self, slot: Slot, no: u32, member: bool) {
        if let Some(segment) = self.segments.at_mut(slot) {
            if member {
                segment.members.insert(no);
            } else {
                segment.members.remove(no);
            }
        }
    }

    fn record(
        &mut self,
        segment_id: &str,
        kind: ChangeKind,
        cause: Cause,
        at: DateTime,
        contacts: RoaringBitmap,
        write: &mut Write,
    ) {
        if contacts.is_empty() {
            return;
        }
        let batch = ChangeBatch {
            seq_start: self.next_seq,
            segment_id: segment_id.to_string(),
            kind,
            cause,
            at,
            contacts,
        };
        self.next_seq = batch.seq_end();
        write.changes += batch.len();
        write.records.push(Record::Changes(batch));
    }

    /// Erases a contact; it exits every segment it was in.
    pub fn delete_contact(&mut self, id: &str, now: DateTime) -> Result<Write, Error> {
        let no = self.contacts.lookup(id).ok_or_else(|| Error::NotFound {
            what: "contact",
            id: id.to_string(),
        })?;
        let mut write = Write::default();
        let member_of: Vec<(Slot, String)> = self
            .segments
            .iter()
            .filter(|(_, s)| s.members.contains(no))
            .map(|(slot, s)| (slot, s.def.id.clone()))
            .collect();
        self.contacts.delete(no);
        write.records.push(Record::ContactDeleted { no });
        for (slot, segment_id) in member_of {
            self.set_member(slot, no, false);
            let one = RoaringBitmap::from_iter([no]);
            self.record(
                &segment_id,
                ChangeKind::Exited,
                Cause::ContactDelete,
                now,
                one,
                &mut write,
            );
        }
        Ok(write)
    }

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
        let members = match &def.condition {
            Some(cond) => evaluate_all(cond, &self.ctx(now)),
            None => RoaringBitmap::new(),
        };
        let mut write = Write {
            records: vec![Record::Segment(def.clone())],
            entered: members.len(),
            ..Write::default()
        };
        let id = def.id.clone();
        self.segments
            .insert(Segment::new(def, members.clone(), &self.fields));
        self.refresh_blank_true(now);
        self.record(
            &id,
            ChangeKind::Entered,
            Cause::SegmentEdit,
            now,
            members,
            &mut write,
        );
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
        let mut def = self.segment_or_404(id)?.def.clone();
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
        def.updated_at = now;
        let mut write = Write {
            records: vec![Record::Segment(def.clone())],
            ..Write::default()
        };
        self.segments.redefine(slot, def, &self.fields);
        if new_condition {
            let mut queue = BTreeMap::new();
            queue.insert((self.segments.rank(slot), slot), (None, Cause::SegmentEdit));
            let (entered, exited) = self.propagate_bulk(queue, now, &mut write);
            write.entered = entered;
            write.exited = exited;
            self.refresh_blank_true(now);
        }
        Ok(write)
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
        self.refresh_blank_true(0);
        Ok(Write {
            records: vec![Record::SegmentDeleted { id: id.to_string() }],
            ..Write::default()
        })
    }

    /// Adds (or removes) contacts to a static segment.
    pub fn set_static_members(
        &mut self,
        id: &str,
        contact_ids: &[String],
        add: bool,
        now: DateTime,
    ) -> Result<Write, Error> {
        let segment = self.segment_or_404(id)?;
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
            match self.contacts.lookup(contact_id) {
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
            &numbers - &segment.members
        } else {
            &numbers & &segment.members
        };
        let slot = self.segments.slot(id).unwrap_or_default();
        let mut write = Write::default();
        write.records.push(Record::StaticMembers {
            segment_id: id.to_string(),
            contacts: changed.clone(),
            present: add,
        });
        if let Some(segment) = self.segments.at_mut(slot) {
            if add {
                segment.members |= &changed;
            } else {
                segment.members -= &changed;
            }
        }
        let (kind, cause) = if add {
            (ChangeKind::Entered, Cause::StaticAdd)
        } else {
            (ChangeKind::Exited, Cause::StaticRemove)
        };
        if add {
            write.entered = changed.len();
        } else {
            write.exited = changed.len();
        }
        self.record(id, kind, cause, now, changed.clone(), &mut write);
        let mut queue = BTreeMap::new();
        for dependent in self.segments.dependents(id) {
            queue.insert(
                (self.segments.rank(*dependent), *dependent),
                (Some(changed.clone()), Cause::SegmentRef),
            );
        }
        self.propagate_bulk(queue, now, &mut write);
        Ok(write)
    }

    /// Re-evaluates queued segments over their scope (None: everyone), in rank
    /// order, queueing the dependents of every segment that changed. Returns
    /// the entries and exits of the first segment processed.
    fn propagate_bulk(
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
            let Some(cond) = &segment.def.condition else {
                continue;
            };
            let ctx = self.ctx(at);
            let fresh = match &scope {
                Some(scope) if scope.len() <= ROW_SCOPE_LIMIT => {
                    RoaringBitmap::from_iter(scope.iter().filter(|no| matches(cond, *no, &ctx)))
                }
                Some(scope) => evaluate_all(cond, &ctx) & scope,
                None => evaluate_all(cond, &ctx),
            };
            let before = match &scope {
                Some(scope) => &segment.members & scope,
                None => segment.members.clone(),
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
            if let Some(segment) = self.segments.at_mut(slot) {
                segment.members |= &entered;
                segment.members -= &exited;
            }
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

    /// Rejects what the engine cannot keep exact yet, and reference cycles.
    fn check_condition(&self, id: &str, cond: &Condition) -> Result<(), Error> {
        check_supported(cond)?;
        let refs = cond.segment_refs();
        for target in &refs {
            self.segment_or_404(target)?;
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

    fn refresh_blank_true(&mut self, now: DateTime) {
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

    // -- restore --------------------------------------------------------------

    /// Rebuilds a workspace from stored state: fields, contacts, segment
    /// definitions, static members and the next seq. Dynamic membership is
    /// evaluated afresh.
    pub fn restore(
        fields: Vec<FieldDef>,
        contacts: Vec<ContactSnapshot>,
        segments: Vec<SegmentDef>,
        static_members: HashMap<String, RoaringBitmap>,
        next_seq: u64,
        now: DateTime,
    ) -> Workspace {
        let mut ws = Workspace::new();
        for def in fields {
            ws.add_field(def);
        }
        for contact in contacts {
            ws.restore_contact(contact);
        }
        for def in segments {
            let members = static_members.get(&def.id).cloned().unwrap_or_default();
            ws.segments.insert(Segment::new(def, members, &ws.fields));
        }
        let mut order: Vec<(u32, Slot)> = ws
            .segments
            .iter()
            .filter(|(_, s)| s.def.condition.is_some())
            .map(|(slot, _)| (ws.segments.rank(slot), slot))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            let Some(cond) = ws.segments.at(slot).and_then(|s| s.def.condition.clone()) else {
                continue;
            };
            let members = evaluate_all(&cond, &ws.ctx(now));
            if let Some(segment) = ws.segments.at_mut(slot) {
                segment.members = members;
            }
        }
        ws.next_seq = next_seq;
        ws.refresh_blank_true(now);
        ws
    }

    fn restore_contact(&mut self, contact: ContactSnapshot) {
        let no = contact.no;
        self.contacts.insert_at(no, &contact.id);
        self.contacts
            .set(no, CREATED_AT, Some(&Value::DateTime(contact.created_at)));
        self.contacts
            .set(no, UPDATED_AT, Some(&Value::DateTime(contact.updated_at)));
        if let Some(t) = contact.last_seen_at {
            self.contacts
                .set(no, LAST_SEEN_AT, Some(&Value::DateTime(t)));
        }
        self.contacts
            .set(no, ANONYMOUS, Some(&Value::Boolean(contact.anonymous)));
        self.contacts
            .set(no, LEAD_SCORE, Some(&Value::Number(contact.lead_score)));
        for (name, value) in &contact.properties {
            let index = match self.fields.index(name) {
                Some(index) => index,
                None => self.add_field(FieldDef {
                    name: name.clone(),
                    field_type: value.field_type(),
                    label: default_label(name),
                    builtin: false,
                    system: false,
                }),
            };
            if self.fields.def(index).field_type == value.field_type() {
                self.contacts.set(no, index, Some(value));
            }
        }
    }

    /// Restores the ids of contacts deleted before a restart: the change log
    /// keeps naming them, and their numbers are not handed out again.
    pub fn reserve_numbers(&mut self, ids: impl IntoIterator<Item = (u32, String)>) {
        for (no, id) in ids {
            if !self.contacts.is_alive(no) {
                self.contacts.insert_tombstone(no, &id);
            }
        }
    }
}

fn explain_node(cond: &Condition, no: u32, ctx: &Ctx<'_>) -> ExplainNode {
    let children: Vec<ExplainNode> = match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().map(|c| explain_node(c, no, ctx)).collect()
        }
        Condition::Not(inner) => vec![explain_node(inner, no, ctx)],
        _ => Vec::new(),
    };
    let value = match cond {
        Condition::Field { field, .. } => ctx
            .fields
            .index(field)
            .and_then(|i| ctx.contacts.get(no, i)),
        _ => None,
    };
    ExplainNode {
        condition: cond.clone(),
        result: matches(cond, no, ctx),
        value,
        children,
    }
}

/// Relative-time operators and behavioural conditions need the timer queue
/// and the event store; until they exist a segment using them could not be
/// kept exact, so it is refused rather than silently wrong.
fn check_supported(cond: &Condition) -> Result<(), Error> {
    let mut unsupported = None;
    cond.walk(&mut |node| match node {
        Condition::Field { test, .. } => {
            if matches!(
                test,
                FieldTest::InLast(_) | FieldTest::BeforeAgo(_) | FieldTest::AfterAgo(_)
            ) {
                unsupported
                    .get_or_insert("relative-time operators (in last, before … ago, after … ago)");
            }
        }
        Condition::Event { .. } | Condition::EventSum { .. } => {
            unsupported.get_or_insert("behavioural conditions (performed …, total …)");
        }
        _ => {}
    });
    match unsupported {
        Some(what) => Err(Error::Unsupported(format!(
            "{what} are not supported by this version of Sift yet"
        ))),
        None => Ok(()),
    }
}

fn checked_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid(
            "a segment name must have 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// `favourite_color` → `Favourite color`.
fn default_label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

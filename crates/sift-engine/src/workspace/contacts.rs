//! Contact writes: checking upserts, applying them, re-evaluating the
//! segments a write can affect for that one contact, and deletes.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use sift_lang::{DateTime, FieldType};

use super::*;
use crate::changes::{Cause, ChangeKind, ContactSnapshot, Record};
use crate::error::Error;
use crate::fields::{self, ANONYMOUS, CREATED_AT, FieldDef, LAST_SEEN_AT, LEAD_SCORE, UPDATED_AT};
use crate::segments::Slot;
use crate::value::{RawValue, Value};

impl Workspace {
    // -- contacts -------------------------------------------------------------

    /// The contacts each of `values` names, for filling a static segment by
    /// hand: a contact id (or a former one) names that contact; otherwise a
    /// value with an `@` is an email, compared without case or surrounding
    /// spaces, and names every contact with that email. An empty list: the
    /// value names no one. One pass over the email column, whatever the
    /// number of values.
    pub fn match_contacts(&self, values: &[String]) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); values.len()];
        let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (value, found)) in values.iter().zip(out.iter_mut()).enumerate() {
            let value = value.trim();
            if let Some(no) = self.resolve(value) {
                found.push(no);
            } else if value.contains('@') {
                by_email.entry(value.to_lowercase()).or_default().push(i);
            }
        }
        let Some(field) = self.fields.index("email").filter(|_| !by_email.is_empty()) else {
            return out;
        };
        let column = self.contacts.column(field);
        for no in self.contacts.alive().iter() {
            let Some(crate::eval::ValueRef::Str(email)) = column.get_ref(no) else {
                continue;
            };
            let email = email.trim();
            let key: std::borrow::Cow<'_, str> = if email.chars().any(char::is_uppercase) {
                email.to_lowercase().into()
            } else {
                email.into()
            };
            for &i in by_email.get(key.as_ref()).into_iter().flatten() {
                if let Some(found) = out.get_mut(i) {
                    found.push(no);
                }
            }
        }
        out
    }

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
            match self.check_input(item, &mut new_fields) {
                Ok(()) => {}
                // A field limit is the whole write's, not one item's.
                Err(error @ (Error::TooManyFields { .. } | Error::TooManyNewFields { .. })) => {
                    return Err(error);
                }
                Err(error) => failures.push((index, error)),
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
        let now = self.tick(now);
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
            self.apply_input(item, now, Cause::ContactUpdate, &mut write);
        }
        Ok(self.finish(write))
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

    pub(super) fn check_input(
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
                                self.check_new_field(name, new_fields.len() + 1)?;
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
                if crate::value::out_of_range(raw, field_type) {
                    return Err(Error::DateOutOfRange {
                        field: name.clone(),
                        given: raw.describe(),
                    });
                }
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
    pub(super) fn apply_input(
        &mut self,
        item: &ContactInput,
        now: DateTime,
        cause: Cause,
        write: &mut Write,
    ) {
        let (no, is_new) = match self.resolve(&item.id) {
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
        let mut written: Vec<usize> = if is_new { vec![CREATED_AT] } else { Vec::new() };
        for (index, value) in changes {
            if self.contacts.column(index).holds(no, value.as_ref()) {
                continue;
            }
            written.push(index);
            let name = &self.fields.def(index).name;
            if is_new {
                slots.extend_from_slice(self.segments.reading_field(name));
                self.contacts.set(no, index, value.as_ref());
                continue;
            }
            let tests = self.segments.tests_on(name);
            let before: Vec<bool> = tests
                .iter()
                .map(|(check, _)| check.holds(self.contacts.column(index).get_ref(no), now))
                .collect();
            self.contacts.set(no, index, value.as_ref());
            for ((check, readers), was) in tests.iter().zip(before) {
                if check.holds(self.contacts.column(index).get_ref(no), now) != was {
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
        if !self.temporal.is_empty() {
            self.schedule_columns(no, &written, now);
        }
        write.records.push(Record::Contact(self.snapshot(no)));
        self.propagate_contact(no, slots, is_new, cause, now, write);
    }

    pub(super) fn snapshot(&self, no: u32) -> ContactSnapshot {
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

    pub(super) fn contact_without_segments(&self, no: u32) -> ContactView {
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
    /// false for this one, leaves S's membership unchanged). Timers, scoring,
    /// runs and merges pass `fresh` too, as they always have: only contact
    /// and event writes skip the dependents of an unchanged segment.
    ///
    /// A segment's former answer is its membership word, one read in the
    /// contact's run of words, rather than an evaluation with the values the
    /// write replaced.
    pub(super) fn propagate_contact(
        &mut self,
        no: u32,
        slots: Vec<Slot>,
        fresh: bool,
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
            let was_in = self.segments.is_member(slot, no);
            let changed = now_in != was_in;
            if !changed && !fresh {
                continue;
            }
            if changed {
                let kind = if now_in {
                    ChangeKind::Entered
                } else {
                    ChangeKind::Exited
                };
                let cause = if direct { cause } else { Cause::SegmentRef };
                write.membership_changes += 1;
                write.staged.one(slot, &segment.def.id, kind, cause, at, no);
                self.set_member(slot, no, now_in);
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

    pub(super) fn set_member(&mut self, slot: Slot, no: u32, member: bool) {
        self.segments.set_member(slot, no, member);
    }

    pub(super) fn record(
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
        write.membership_changes += contacts.len();
        write.staged.many(segment_id, kind, cause, at, contacts);
    }

    /// Erases a contact; it exits every segment it was in.
    pub fn delete_contact(&mut self, id: &str, now: DateTime) -> Result<Write, Error> {
        let no = self.resolve(id).ok_or_else(|| Error::NotFound {
            what: "contact",
            id: id.to_string(),
        })?;
        let now = self.tick(now);
        let mut write = Write::default();
        let member_of: Vec<(Slot, String)> = self
            .segments
            .iter()
            .filter(|(slot, _)| self.segments.is_member(*slot, no))
            .map(|(slot, s)| (slot, s.def.id.clone()))
            .collect();
        self.contacts.delete(no);
        self.events.forget(no);
        self.set_lasting(no, 0.0);
        self.grants.forget(no);
        // Erasing a contact erases every id that named it, so a later write
        // to one of its former anonymous ids makes a fresh contact.
        self.aliases.forget(no);
        let indexes: Vec<usize> = self.aggregates.iter().map(|(i, _)| i).collect();
        for index in indexes {
            if let Some(aggregate) = self.aggregates.get_mut(index) {
                aggregate.set(no, 0, 0.0);
            }
        }
        write.records.push(Record::ContactDeleted { no });
        for (slot, segment_id) in member_of {
            self.set_member(slot, no, false);
            write.membership_changes += 1;
            write.staged.one(
                slot,
                &segment_id,
                ChangeKind::Exited,
                Cause::ContactDelete,
                now,
                no,
            );
        }
        Ok(self.finish(write))
    }
}

//! Identify (docs/concepts.md "Identify"): merging an anonymous contact into a known one, and
//! the alias that keeps the anonymous id naming it.

use roaring::RoaringBitmap;
use sift_lang::DateTime;

use super::*;
use crate::changes::{Cause, ChangeKind, Record};
use crate::error::Error;
use crate::fields::{self, ANONYMOUS, CREATED_AT, LAST_SEEN_AT, LEAD_SCORE, UPDATED_AT};
use crate::value::Value;

impl Workspace {
    /// Merges contact `anonymous_id` into `contact_id` (created if
    /// missing). Refused, changing nothing, when the ids are invalid or
    /// equal, when `anonymous_id` is a known contact, or when it was already
    /// merged into another contact. Identifying again an id already merged
    /// into `contact_id` changes nothing and returns no records. An
    /// `anonymous_id` that never existed only becomes an alias.
    pub fn identify(
        &mut self,
        anonymous_id: &str,
        contact_id: &str,
        now: DateTime,
    ) -> Result<Write, Error> {
        for id in [anonymous_id, contact_id] {
            if !fields::valid_contact_id(id) {
                return Err(Error::InvalidContactId(id.to_string()));
            }
        }
        if anonymous_id == contact_id {
            return Err(Error::Invalid(format!(
                "anonymous_id and contact_id are both {contact_id:?}: identify merges an anonymous id into a different contact"
            )));
        }
        let into = self.resolve(contact_id);
        if let Some(target) = self.aliases.get(anonymous_id) {
            if Some(target) == into {
                return Ok(Write::default());
            }
            return Err(Error::AlreadyMerged {
                id: anonymous_id.to_string(),
                merged_into: self.contacts.id(target).to_string(),
                into: contact_id.to_string(),
            });
        }
        let from = self.contacts.lookup(anonymous_id);
        if let Some(from) = from {
            if Some(from) == into {
                return Err(Error::Invalid(format!(
                    "{contact_id:?} already names contact {anonymous_id:?} (it was merged into it): there is nothing to merge"
                )));
            }
            if !matches!(
                self.contacts.get(from, ANONYMOUS),
                Some(Value::Boolean(true))
            ) {
                return Err(Error::KnownContact {
                    id: anonymous_id.to_string(),
                    into: contact_id.to_string(),
                });
            }
        }
        let now = self.tick(now);
        let mut write = Write::default();
        let into = match into {
            Some(no) => no,
            None => {
                let create = ContactInput {
                    id: contact_id.to_string(),
                    properties: Vec::new(),
                    anonymous: Some(false),
                };
                self.apply_input(&create, now, Cause::Merge, &mut write);
                match self.contacts.lookup(contact_id) {
                    Some(no) => no,
                    None => return Ok(self.finish(write)),
                }
            }
        };
        match from {
            Some(from) => self.merge(from, into, now, &mut write),
            None => {
                self.aliases.insert(anonymous_id, into);
                write.records.push(Record::Merge {
                    from: None,
                    into,
                    alias: anonymous_id.to_string(),
                });
                if matches!(
                    self.contacts.get(into, ANONYMOUS),
                    Some(Value::Boolean(true))
                ) {
                    let known = ContactInput {
                        id: self.contacts.id(into).to_string(),
                        properties: Vec::new(),
                        anonymous: Some(false),
                    };
                    self.apply_input(&known, now, Cause::Merge, &mut write);
                }
            }
        }
        Ok(self.finish(write))
    }

    /// Moves everything of `from` into `into`, erases `from`, and
    /// recomputes every membership of both, recording each change with
    /// cause `merge`.
    fn merge(&mut self, from: u32, into: u32, now: DateTime, write: &mut Write) {
        write.merged = true;
        let alias = self.contacts.id(from).to_string();
        // `from` leaves every segment; its static memberships pass to `into`.
        let member_of: Vec<(Slot, String, bool)> = self
            .segments
            .iter()
            .filter(|(slot, _)| self.segments.is_member(*slot, from))
            .map(|(slot, s)| (slot, s.def.id.clone(), s.def.kind == SegmentKind::Static))
            .collect();
        for (slot, segment_id, is_static) in &member_of {
            if *is_static {
                // Named per segment, so the store touches only these rows.
                write.records.push(Record::StaticMembers {
                    segment_id: segment_id.clone(),
                    contacts: RoaringBitmap::from_iter([from]),
                    present: false,
                });
            }
            self.set_member(*slot, from, false);
            write.membership_changes += 1;
            write.staged.one(
                *slot,
                segment_id,
                ChangeKind::Exited,
                Cause::Merge,
                now,
                from,
            );
            let joins = *is_static && !self.segments.is_member(*slot, into);
            if joins {
                write.records.push(Record::StaticMembers {
                    segment_id: segment_id.clone(),
                    contacts: RoaringBitmap::from_iter([into]),
                    present: true,
                });
                self.set_member(*slot, into, true);
                write.membership_changes += 1;
                write.staged.one(
                    *slot,
                    segment_id,
                    ChangeKind::Entered,
                    Cause::Merge,
                    now,
                    into,
                );
            }
        }
        // `into`'s own values win; `from`'s fill only what it lacks.
        for index in 0..self.fields.all().len() {
            if self.fields.def(index).system || self.contacts.get(into, index).is_some() {
                continue;
            }
            if let Some(value) = self.contacts.get(from, index) {
                self.contacts.set(into, index, Some(&value));
            }
        }
        let datetime = |ws: &Workspace, no: u32, field: usize| match ws.contacts.get(no, field) {
            Some(Value::DateTime(t)) => Some(t),
            _ => None,
        };
        let created = [
            datetime(self, from, CREATED_AT),
            datetime(self, into, CREATED_AT),
        ]
        .into_iter()
        .flatten()
        .min();
        let seen = [
            datetime(self, from, LAST_SEEN_AT),
            datetime(self, into, LAST_SEEN_AT),
        ]
        .into_iter()
        .flatten()
        .max();
        self.contacts
            .set(into, CREATED_AT, created.map(Value::DateTime).as_ref());
        self.contacts
            .set(into, LAST_SEEN_AT, seen.map(Value::DateTime).as_ref());
        self.contacts
            .set(into, UPDATED_AT, Some(&Value::DateTime(now)));
        self.contacts
            .set(into, ANONYMOUS, Some(&Value::Boolean(false)));
        // The history becomes one; counts, sums and the score follow from it.
        self.events.merge(from, into);
        self.grants.merge(from, into);
        let on_disk = self.on_disk();
        let moved = self.lasting(from);
        self.set_lasting(from, 0.0);
        self.add_lasting(into, moved);
        let indexes: Vec<usize> = self.aggregates.iter().map(|(i, _)| i).collect();
        for index in indexes {
            let Some(aggregate) = self.aggregates.get(index) else {
                continue;
            };
            // On disk an all-time count outlives the events memory holds:
            // the merged contact's is added. A window's events are all in
            // memory, so it is counted again from the merged history.
            let (count, sum) = if on_disk && aggregate.window.is_none() {
                (
                    aggregate.count(into) + aggregate.count(from),
                    aggregate.sum(into) + aggregate.sum(from),
                )
            } else {
                let tally = aggregate.tally(self.events.of(into), &self.events, now);
                (tally.count, tally.sum)
            };
            if let Some(aggregate) = self.aggregates.get_mut(index) {
                aggregate.set(from, 0, 0.0);
                aggregate.set(into, count, sum);
            }
        }
        let (score, _) = self.full_score(into, now);
        self.contacts
            .set(into, LEAD_SCORE, Some(&Value::Number(score)));
        self.contacts.delete(from);
        self.aliases.retarget(from, into);
        self.aliases.insert(&alias, into);
        let next = self.next_instant(into, now);
        self.trim(into, now);
        self.timers.schedule(into, next);
        write.records.push(Record::Merge {
            from: Some(from),
            into,
            alias,
        });
        write.records.push(Record::Contact(self.snapshot(into)));
        let slots: Vec<Slot> = self
            .segments
            .iter()
            .filter(|(_, s)| s.plan.is_some())
            .map(|(slot, _)| slot)
            .collect();
        self.propagate_contact(into, slots, true, Cause::Merge, now, write);
    }
}

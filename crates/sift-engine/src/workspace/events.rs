//! Events (docs/concepts.md): checking them, appending them to the contact's history,
//! and updating the behavioural aggregates, the lead score and
//! `last_seen_at` by what the one new event adds.

use sift_lang::DateTime;

use super::*;
use crate::changes::{Cause, EventRecord};
use crate::error::Error;
use crate::fields::{self, LAST_SEEN_AT, LEAD_SCORE};
use crate::time::NEVER;
use crate::value::RawValue;

/// Events may be stamped at most this far ahead of the server's clock.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// An event as a client sent it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventInput {
    /// Idempotency key: an event whose id was already accepted is
    /// acknowledged and not applied again.
    pub id: Option<String>,
    pub contact_id: String,
    pub event_type: String,
    /// Defaults to now.
    pub at: Option<DateTime>,
    /// What conditions can read: scalars and lists of strings. A value the
    /// engine cannot read (an object, a list of numbers) is given as
    /// `RawValue::Unsupported` and ignored.
    pub properties: Vec<(String, RawValue)>,
    /// The properties exactly as sent (a JSON object's text; `{}` when none).
    pub properties_json: String,
    /// For a contact the event creates: whether it is anonymous.
    pub anonymous: Option<bool>,
}

fn valid_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && !text.chars().any(char::is_control)
}

impl Workspace {
    /// Accepts events, all or nothing: every item is checked before any is
    /// applied. A replayed id is listed in `Write::duplicates` and skipped.
    pub fn ingest_events(&mut self, items: &[EventInput], now: DateTime) -> Result<Write, Error> {
        self.ingest(items.to_vec(), now)
    }

    /// [`Workspace::ingest_events`], taking the events: their properties move
    /// into the records instead of being copied.
    pub fn ingest(&mut self, items: Vec<EventInput>, now: DateTime) -> Result<Write, Error> {
        if items.len() > MAX_BATCH {
            return Err(Error::Invalid(format!(
                "a batch holds at most {MAX_BATCH} events, this one has {}",
                items.len()
            )));
        }
        // Checked against the clock as it would be: a refused batch must
        // not move time (its timers' changes would have no write to carry them).
        let mut failures = self.check_events(&items, now);
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
        for (index, item) in items.into_iter().enumerate() {
            if let Some(id) = &item.id {
                if self.events.seen(id) {
                    write.duplicates.push(index);
                    continue;
                }
                self.events.remember(id);
            }
            self.apply_event(item, now, &mut write);
            write.accepted += 1;
        }
        Ok(self.finish(write))
    }

    /// Checks events without applying any: the index of each item
    /// [`Workspace::ingest_events`] would refuse, and why.
    pub fn check_events(&self, items: &[EventInput], now: DateTime) -> Vec<(usize, Error)> {
        let now = now.max(self.clock);
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| self.check_event(item, now).err().map(|e| (index, e)))
            .collect()
    }

    fn check_event(&self, item: &EventInput, now: DateTime) -> Result<(), Error> {
        if !fields::valid_contact_id(&item.contact_id) {
            return Err(Error::InvalidContactId(item.contact_id.clone()));
        }
        if !valid_name(&item.event_type) {
            return Err(Error::Invalid(format!(
                "event type {:?} is invalid: it must be 1 to 128 bytes without control characters",
                item.event_type
            )));
        }
        if let Some(id) = &item.id
            && !valid_name(id)
        {
            return Err(Error::Invalid(format!(
                "event id {id:?} is invalid: it must be 1 to 128 bytes without control characters"
            )));
        }
        if let Some(at) = item.at
            && at > now.saturating_add(MAX_FUTURE_MS)
        {
            return Err(Error::EventInFuture {
                at: crate::value::format_datetime(at),
                now: crate::value::format_datetime(now),
            });
        }
        if let Some((name, _)) = item.properties.iter().find(|(name, _)| !valid_name(name)) {
            return Err(Error::Invalid(format!(
                "event property name {name:?} is invalid: it must be 1 to 128 bytes without control characters"
            )));
        }
        Ok(())
    }

    /// Applies one checked, new event.
    fn apply_event(&mut self, item: EventInput, now: DateTime, write: &mut Write) {
        let no = match self.resolve(&item.contact_id) {
            Some(no) => no,
            None => {
                let create = ContactInput {
                    id: item.contact_id.clone(),
                    properties: Vec::new(),
                    anonymous: Some(item.anonymous.unwrap_or(false)),
                };
                self.apply_input(&create, now, Cause::Event, write);
                match self.resolve(&item.contact_id) {
                    Some(no) => no,
                    None => return,
                }
            }
        };
        let at = item.at.unwrap_or(now);
        self.events.push(no, &item.event_type, at, &item.properties);
        let mut slots: Vec<Slot> = Vec::new();
        let mut next = NEVER;
        let Some(event) = self.events.of(no).last() else {
            return;
        };
        let lasting = if self.on_disk() {
            self.rules.lasting_points(event, &self.events)
        } else {
            0.0
        };
        for &index in self.aggregates.on_type(event.kind).to_vec().iter() {
            let Some(aggregate) = self.aggregates.get_mut(index) else {
                continue;
            };
            let exit = aggregate.exit(at);
            if exit <= now || !aggregate.selects(event, &self.events) {
                continue;
            }
            let old = (aggregate.count(no), aggregate.sum(no));
            let count = old.0 + 1;
            let sum = if aggregate.property.is_some() {
                old.1 + aggregate.addend(event)
            } else {
                old.1
            };
            aggregate.set(no, count, sum);
            next = next.min(exit);
            flips(&self.agg_tests, index, old, (count, sum), &mut slots);
        }
        if !self.rules.is_empty() {
            let before = self.lead_score(no);
            let mut score = before;
            self.rules
                .score_event(event, &self.events, now, &mut score, &mut next);
            if score.to_bits() != before.to_bits() {
                self.set_tracked(no, LEAD_SCORE, Some(Value::Number(score)), now, &mut slots);
            }
        }
        self.add_lasting(no, lasting);
        let seen = match self.contacts.get(no, LAST_SEEN_AT) {
            Some(Value::DateTime(t)) => t,
            _ => i64::MIN,
        };
        if at > seen {
            self.set_tracked(no, LAST_SEEN_AT, Some(Value::DateTime(at)), now, &mut slots);
            self.schedule_columns(no, &[LAST_SEEN_AT], now);
        }
        self.timers.schedule(no, next);
        self.event_hits(no, item.id.as_ref(), at, write);
        // Everything that reads a new event has read it: memory keeps only
        // what windowed counts and expiring rules will read again.
        if self.on_disk() {
            self.events.strip_last(no, &self.kept);
        }
        write.records.push(Record::Event(EventRecord {
            no,
            id: item.id,
            event_type: item.event_type,
            at,
            properties: item.properties,
            properties_json: item.properties_json,
        }));
        self.propagate_contact(no, slots, false, Cause::Event, now, write);
        // On disk, the event stays in memory only while a window reads it.
        self.trim(no, now);
    }

    pub(super) fn lead_score(&self, no: u32) -> f64 {
        match self.contacts.get(no, LEAD_SCORE) {
            Some(Value::Number(n)) => n,
            _ => 0.0,
        }
    }

    /// Sets a column of contact `no`, adding to `slots` the readers of every
    /// test whose answer (at `now`) the new value flips.
    pub(super) fn set_tracked(
        &mut self,
        no: u32,
        column: usize,
        value: Option<Value>,
        now: DateTime,
        slots: &mut Vec<Slot>,
    ) {
        let name = &self.fields.def(column).name;
        let tests = self.segments.tests_on(name);
        let before: Vec<bool> = tests
            .iter()
            .map(|(check, _)| check.holds(self.contacts.column(column).get_ref(no), now))
            .collect();
        self.contacts.set(no, column, value.as_ref());
        for ((check, readers), was) in tests.iter().zip(before) {
            if check.holds(self.contacts.column(column).get_ref(no), now) != was {
                slots.extend_from_slice(readers);
            }
        }
    }
}

/// Adds to `slots` the readers of every test on aggregate `index` whose
/// answer differs between the `old` and `new` (count, sum).
pub(super) fn flips(
    tests: &[Vec<(AggTest, Vec<Slot>)>],
    index: usize,
    old: (u32, f64),
    new: (u32, f64),
    slots: &mut Vec<Slot>,
) {
    for (test, readers) in tests.get(index).map_or(&[][..], Vec::as_slice) {
        if test.holds(old.0, old.1) != test.holds(new.0, new.1) {
            slots.extend_from_slice(readers);
        }
    }
}

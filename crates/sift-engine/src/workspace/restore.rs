//! Rebuilding a workspace from stored state.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use sift_lang::DateTime;

use super::*;
use crate::changes::{ContactSnapshot, EventRecord, SegmentDef};
use crate::eval::evaluate_all;
use crate::fields::{ANONYMOUS, CREATED_AT, FieldDef, LAST_SEEN_AT, LEAD_SCORE, UPDATED_AT};
use crate::scoring::ScoringRule;
use crate::segments::{Segment, Slot};
use crate::value::Value;
use crate::workflows::{DroppedTriggers, QueueBatch, ScoreGrant, WorkflowDef};

/// Everything a store keeps about a workspace.
#[derive(Clone, Debug, Default)]
pub struct StoredState {
    /// In declaration order (column order).
    pub fields: Vec<FieldDef>,
    pub contacts: Vec<ContactSnapshot>,
    /// Numbers and ids of deleted contacts.
    pub tombstones: Vec<(u32, String)>,
    pub segments: Vec<SegmentDef>,
    pub static_members: HashMap<String, RoaringBitmap>,
    /// In arrival order.
    pub events: Vec<EventRecord>,
    pub scoring_rules: Vec<ScoringRule>,
    /// In creation order.
    pub workflows: Vec<WorkflowDef>,
    /// Queued triggers, in number order (consumed ones may be included).
    pub queue: Vec<QueueBatch>,
    /// The first trigger number not yet consumed.
    pub run_cursor: u64,
    /// The next trigger number to hand out (at least every stored one's end).
    pub next_run_id: u64,
    /// Triggers dropped because a workflow's queue was full, per workflow.
    pub dropped_triggers: Vec<DroppedTriggers>,
    pub score_grants: Vec<ScoreGrant>,
    /// Ids identified into other contacts: (alias, contact number).
    pub aliases: Vec<(String, u32)>,
    pub next_seq: u64,
    /// The last stored [`Record::Clock`].
    pub clock: DateTime,
}

impl Workspace {
    /// Rebuilds a workspace as it was at `state.clock`: dynamic membership,
    /// behavioural aggregates and scores are computed afresh at that instant
    /// and the timer queue is rebuilt. The caller then calls
    /// [`Workspace::advance`] with the real time, which fires the timers that
    /// fell due meanwhile, and stores what it returns.
    pub fn restore_from(state: StoredState) -> Workspace {
        let clock = state.clock;
        let mut ws = Workspace::new();
        ws.clock = clock;
        ws.restore_fields(state.fields);
        for contact in state.contacts {
            ws.restore_contact(contact);
        }
        ws.reserve_numbers(state.tombstones);
        for (alias, no) in &state.aliases {
            if ws.contacts.is_alive(*no) && ws.contacts.lookup(alias).is_none() {
                ws.aliases.insert(alias, *no);
            }
        }
        for grant in &state.score_grants {
            if ws.contacts.is_alive(grant.no) {
                ws.grants
                    .add(grant.no, grant.points, grant.expires_at, grant.run_id);
            }
        }
        for rule in state.scoring_rules {
            ws.rules.put(rule, &mut ws.events);
        }
        let mut seen = vec![i64::MIN; ws.contacts.capacity() as usize];
        for event in state.events {
            if let Some(id) = &event.id {
                ws.events.remember(id);
            }
            // A deleted contact's events keep only their idempotency key.
            if !ws.contacts.is_alive(event.no) {
                continue;
            }
            ws.events
                .push(event.no, &event.event_type, event.at, &event.properties);
            if let Some(last) = seen.get_mut(event.no as usize) {
                *last = (*last).max(event.at);
            }
        }
        // `last_seen_at` and `lead_score` follow from the history and rules.
        for no in ws.contacts.alive().iter().collect::<Vec<u32>>() {
            if let Some(&last) = seen.get(no as usize)
                && last > i64::MIN
            {
                ws.contacts
                    .set(no, LAST_SEEN_AT, Some(&Value::DateTime(last)));
            }
            let (score, _) = ws.full_score(no, clock);
            ws.contacts.set(no, LEAD_SCORE, Some(&Value::Number(score)));
        }
        ws.restore_segments(state.segments, &state.static_members, clock);
        ws.restore_workflows(
            state.workflows,
            (state.run_cursor, state.next_run_id),
            state.queue,
            state.dropped_triggers,
        );
        // An empty log stores no seq: the first change still gets FIRST_SEQ.
        ws.next_seq = state.next_seq.max(crate::changes::FIRST_SEQ);
        ws.rebuild_timers();
        ws
    }

    /// Workflow definitions, the trigger queue with its cursor (first
    /// unconsumed, next to hand out) and the drop counts, as stored.
    pub(super) fn restore_workflows(
        &mut self,
        workflows: Vec<WorkflowDef>,
        (run_cursor, next_run_id): (u64, u64),
        queue: Vec<QueueBatch>,
        dropped: Vec<DroppedTriggers>,
    ) {
        for def in workflows {
            self.workflows.put(def, &mut self.events);
        }
        self.workflows.restore_cursor(run_cursor, next_run_id);
        for batch in queue {
            self.workflows.restore_batch(batch);
        }
        for drop in dropped {
            self.workflows.restore_dropped(drop);
        }
    }

    pub(super) fn restore_fields(&mut self, fields: Vec<FieldDef>) {
        for def in fields {
            match self.fields.index(&def.name) {
                // A built-in keeps its type and flags; only a relabel is stored.
                Some(index) => {
                    let mut current = self.fields.def(index).clone();
                    current.label = def.label;
                    self.fields.push(current);
                }
                None => {
                    self.add_field(def);
                }
            }
        }
    }

    /// Inserts the segments and evaluates the dynamic ones at `now`, in rank order.
    pub(super) fn restore_segments(
        &mut self,
        segments: Vec<SegmentDef>,
        static_members: &HashMap<String, RoaringBitmap>,
        now: DateTime,
    ) {
        for def in segments {
            let members = static_members.get(&def.id).cloned().unwrap_or_default();
            self.segments
                .insert(Segment::new(def, members, &self.fields, &self.aggregates));
        }
        self.sync_aggregates(None, now);
        let mut order: Vec<(u32, Slot)> = self
            .segments
            .iter()
            .filter(|(_, s)| s.def.condition.is_some())
            .map(|(slot, _)| (self.segments.rank(slot), slot))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            let Some(cond) = self.segments.at(slot).and_then(|s| s.def.condition.clone()) else {
                continue;
            };
            let members = evaluate_all(&cond, &self.ctx(now));
            self.segments.replace_members(slot, members);
        }
        self.refresh_blank_true(now);
        self.reindex_time();
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
        Workspace::restore_from(StoredState {
            fields,
            contacts,
            segments,
            static_members,
            next_seq,
            clock: now,
            ..StoredState::default()
        })
    }

    pub(super) fn restore_contact(&mut self, contact: ContactSnapshot) {
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

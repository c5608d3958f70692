//! The persistence boundary: a workspace's writes leave the engine as
//! [`Record`]s, and a [`Store`] keeps them and rebuilds the workspace from
//! them. [`MemoryStore`] is the in-memory implementation tests use; the
//! SQLite one lives in the `sift-store` crate.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use sift_lang::DateTime;

use crate::changes::{ChangeBatch, ContactSnapshot, EventRecord, Record, SegmentDef};
use crate::fields::FieldDef;
use crate::scoring::ScoringRule;
use crate::workflows::{
    DroppedTriggers, QueueBatch, RunRecord, ScoreGrant, WebhookCall, WorkflowDef,
};
use crate::workspace::{StoredState, Workspace};

/// Keeps a workspace's records durably (or not) and rebuilds it.
pub trait Store {
    type Error;

    /// Applies several writes' records, in order, as one unit.
    fn commit(&mut self, writes: &[&[Record]]) -> Result<(), Self::Error>;

    /// Rebuilds the workspace as it was at its last stored clock (see
    /// [`Workspace::restore_from`]); the caller then advances it to now.
    fn load(&self) -> Result<Workspace, Self::Error>;
}

/// Records kept in memory, folded into the latest state as they arrive.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    /// In declaration order, which is column order.
    fields: Vec<FieldDef>,
    contacts: BTreeMap<u32, ContactSnapshot>,
    tombstones: BTreeMap<u32, String>,
    segments: BTreeMap<String, SegmentDef>,
    static_members: HashMap<String, RoaringBitmap>,
    changes: Vec<ChangeBatch>,
    /// With their sequence numbers (arrival order, never reused), as the
    /// SQLite store keeps them.
    events: Vec<(u64, EventRecord)>,
    last_event_seq: u64,
    scoring_rules: Vec<ScoringRule>,
    workflows: Vec<WorkflowDef>,
    queue: Vec<QueueBatch>,
    run_cursor: u64,
    next_run_id: u64,
    dropped: Vec<DroppedTriggers>,
    grants: Vec<ScoreGrant>,
    /// Alias → contact number (identify).
    aliases: BTreeMap<String, u32>,
    runs: Vec<RunRecord>,
    webhooks: Vec<WebhookCall>,
    next_seq: u64,
    clock: DateTime,
}

impl MemoryStore {
    /// Every change batch committed so far, in seq order.
    pub fn changes(&self) -> &[ChangeBatch] {
        &self.changes
    }

    /// Every run recorded so far, in the order runs were committed.
    pub fn runs(&self) -> &[RunRecord] {
        &self.runs
    }

    /// The points workflow runs gave, to contacts not deleted since.
    pub fn grants(&self) -> &[ScoreGrant] {
        &self.grants
    }

    /// Every webhook queued so far.
    pub fn webhooks(&self) -> &[WebhookCall] {
        &self.webhooks
    }

    fn apply(&mut self, record: &Record) {
        match record {
            Record::Field(def) => match self.fields.iter_mut().find(|f| f.name == def.name) {
                Some(field) => *field = def.clone(),
                None => self.fields.push(def.clone()),
            },
            Record::Contact(contact) => {
                self.tombstones.remove(&contact.no);
                self.contacts.insert(contact.no, contact.clone());
            }
            Record::ContactDeleted { no } => {
                if let Some(contact) = self.contacts.remove(no) {
                    self.tombstones.insert(*no, contact.id);
                }
                for members in self.static_members.values_mut() {
                    members.remove(*no);
                }
                self.grants.retain(|g| g.no != *no);
                self.aliases.retain(|_, target| *target != *no);
                // Events are erased, but an idempotency key stays accepted
                // so a replay cannot bring the erased contact back.
                self.events.retain(|(_, e)| e.no != *no || e.id.is_some());
                for (_, event) in self.events.iter_mut().filter(|(_, e)| e.no == *no) {
                    event.event_type.clear();
                    event.properties.clear();
                    event.properties_json = "{}".into();
                }
            }
            Record::Merge { from, into, alias } => {
                if let Some(from) = *from {
                    for (_, event) in self.events.iter_mut().filter(|(_, e)| e.no == from) {
                        event.no = *into;
                    }
                    for grant in self.grants.iter_mut().filter(|g| g.no == from) {
                        grant.no = *into;
                    }
                    for target in self.aliases.values_mut().filter(|t| **t == from) {
                        *target = *into;
                    }
                    if let Some(contact) = self.contacts.remove(&from) {
                        self.tombstones.insert(from, contact.id);
                    }
                }
                self.aliases.insert(alias.clone(), *into);
            }
            Record::Segment(def) => {
                self.segments.insert(def.id.clone(), def.clone());
            }
            Record::SegmentDeleted { id } => {
                self.segments.remove(id);
                self.static_members.remove(id);
            }
            Record::StaticMembers {
                segment_id,
                contacts,
                present,
            } => {
                let members = self.static_members.entry(segment_id.clone()).or_default();
                if *present {
                    *members |= contacts;
                } else {
                    *members -= contacts;
                }
            }
            Record::Changes(batch) => {
                self.next_seq = self.next_seq.max(batch.seq_end());
                self.changes.push(batch.clone());
            }
            Record::Event(event) => {
                self.last_event_seq += 1;
                self.events.push((self.last_event_seq, event.clone()));
            }
            Record::ScoringRule(rule) => {
                match self.scoring_rules.iter_mut().find(|r| r.id == rule.id) {
                    Some(existing) => *existing = rule.clone(),
                    None => self.scoring_rules.push(rule.clone()),
                }
            }
            Record::ScoringRuleDeleted { id } => self.scoring_rules.retain(|r| r.id != *id),
            Record::Workflow(def) => match self.workflows.iter_mut().find(|w| w.id == def.id) {
                Some(existing) => *existing = def.clone(),
                None => self.workflows.push(def.clone()),
            },
            Record::WorkflowDeleted { id } => {
                self.workflows.retain(|w| w.id != *id);
                self.dropped.retain(|d| d.workflow_id != *id);
            }
            Record::TriggersDropped(drop) => {
                match self
                    .dropped
                    .iter_mut()
                    .find(|d| d.workflow_id == drop.workflow_id)
                {
                    Some(known) => known.merge(drop),
                    None => self.dropped.push(drop.clone()),
                }
            }
            Record::Triggers(batch) => {
                self.next_run_id = self.next_run_id.max(batch.end_id());
                self.queue.push(batch.clone());
            }
            Record::RunCursor(cursor) => {
                self.run_cursor = self.run_cursor.max(*cursor);
                let cursor = self.run_cursor;
                self.queue.retain(|b| b.end_id() > cursor);
            }
            Record::Run(run) => self.runs.push(run.clone()),
            Record::ScoreGrant(grant) => self.grants.push(grant.clone()),
            Record::Webhook(call) => self.webhooks.push(call.clone()),
            Record::WebhookAttempt(_) | Record::SegmentRevision(_) => {}
            Record::Clock(at) => self.clock = self.clock.max(*at),
        }
    }
}

impl Store for MemoryStore {
    type Error = std::convert::Infallible;

    fn commit(&mut self, writes: &[&[Record]]) -> Result<(), Self::Error> {
        for records in writes {
            for record in *records {
                self.apply(record);
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<Workspace, Self::Error> {
        let mut state = self.state();
        state.events = self.events.iter().map(|(_, e)| e.clone()).collect();
        Ok(Workspace::restore_from(state))
    }
}

impl MemoryStore {
    /// Every stored event with its sequence number, in arrival order.
    pub fn stored_events(&self) -> &[(u64, EventRecord)] {
        &self.events
    }

    /// Rebuilds the workspace as [`Store::load`] does, but with its events
    /// left in `history` (which must hold this store's events): memory keeps
    /// only the recent ones (see [`Workspace::restore_streaming`]).
    pub fn load_streaming(
        &self,
        history: std::sync::Arc<dyn crate::history::EventHistory>,
    ) -> Result<Workspace, crate::Error> {
        Workspace::restore_streaming(self.state(), crate::history::HistorySource(history))
    }

    /// Everything but the events.
    fn state(&self) -> StoredState {
        StoredState {
            fields: self.fields.clone(),
            contacts: self.contacts.values().cloned().collect(),
            tombstones: self
                .tombstones
                .iter()
                .map(|(no, id)| (*no, id.clone()))
                .collect(),
            segments: self.segments.values().cloned().collect(),
            static_members: self.static_members.clone(),
            events: Vec::new(),
            scoring_rules: self.scoring_rules.clone(),
            workflows: self.workflows.clone(),
            queue: self.queue.clone(),
            run_cursor: self.run_cursor,
            next_run_id: self.next_run_id,
            dropped_triggers: self.dropped.clone(),
            score_grants: self.grants.clone(),
            aliases: self
                .aliases
                .iter()
                .map(|(id, no)| (id.clone(), *no))
                .collect(),
            next_seq: self.next_seq,
            clock: self.clock,
        }
    }
}

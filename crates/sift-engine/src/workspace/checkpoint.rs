//! Checkpoints: the engine's state as plain parts a store can write, and a
//! workspace rebuilt from those parts plus what was stored after them.
//!
//! A start from a full rebuild reads every contact and event and evaluates
//! every segment; a start from a checkpoint takes the columns, histories,
//! aggregates and memberships as they were at the checkpoint's clock, then
//! catches up: definitions come from the store, time advances silently to
//! the stored clock (the flips on the way were recorded by the process that
//! took them), and only the contacts a write touched after the checkpoint
//! are reloaded from their stored row and full stored history and
//! re-evaluated. The engine stays pure: the store reads and writes the parts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime, Duration};

use super::retention::{SCORE_ROLLUP, rollup_key};
use super::*;
use crate::changes::{Cause, ContactSnapshot, EventRecord, SegmentDef};
use crate::column_builder::ColumnBuilder;
use crate::columns::{Column, Interner};
use crate::events::{EventLog, StoredEvent};
use crate::fields::{LAST_SEEN_AT, LEAD_SCORE};
use crate::segments::Segment;
use crate::time::NEVER;
use crate::value::Value;

/// An aggregate's key and its per-contact counts and sums.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregatePart {
    pub event_type: String,
    pub filter: Option<Condition>,
    pub window: Option<Duration>,
    pub property: Option<String>,
    /// Shared page by page with the workspace's (a copy is cheap).
    pub counts: crate::counts::Counts,
    pub sums: crate::sparse::SparseVec<f64>,
}

/// The in-memory event histories.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventsPart {
    /// Interned event types, property names and string values, in id order.
    pub types: Vec<String>,
    pub names: Vec<String>,
    pub strings: Vec<String>,
    /// Histories by contact number, in arrival order; contacts without
    /// events are left out.
    pub by_contact: Vec<(u32, Vec<StoredEvent>)>,
    /// 128-bit hashes of the accepted idempotency keys.
    pub ids: Vec<u128>,
    pub next_arrival: u32,
    /// The properties every event in `by_contact` holds, by type id and
    /// name ids (`KeptProps::parts`): `None` when they hold every one.
    pub held: Option<Vec<(u32, Vec<u32>)>>,
}

/// One column of a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnPart {
    /// Each live contact's value, by number.
    Values(Vec<(u32, Value)>),
    /// A string column: the distinct strings live contacts hold, and each
    /// one's position among them, by number. A start then interns each
    /// distinct string once, instead of hashing every contact's value.
    Strings {
        dictionary: Vec<Arc<str>>,
        positions: Vec<(u32, u32)>,
    },
}

impl ColumnPart {
    pub fn len(&self) -> usize {
        match self {
            ColumnPart::Values(values) => values.len(),
            ColumnPart::Strings { positions, .. } => positions.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything a checkpoint holds of a workspace, at its clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineCheckpoint {
    pub clock: DateTime,
    /// In column order.
    pub fields: Vec<FieldDef>,
    /// Every number handed out: (number, id, alive).
    pub contacts: Vec<(u32, String, bool)>,
    /// By column: each live contact's value, by number.
    pub columns: Vec<ColumnPart>,
    /// Every segment's definition and members.
    pub segments: Vec<(SegmentDef, RoaringBitmap)>,
    pub aggregates: Vec<AggregatePart>,
    pub events: EventsPart,
    /// Each contact's pending timer instant, by number.
    pub timers: Vec<DateTime>,
    /// With events on disk, by number: the points of scoring rules without
    /// expiry over each contact's whole history (empty in memory mode).
    pub lasting: Vec<f64>,
    /// Whether the workspace kept only recent events in memory (a history
    /// source lent), or every event.
    pub on_disk: bool,
}

/// Why a checkpoint cannot be used with the stored definitions (the caller
/// then falls back to an older checkpoint or a full rebuild).
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch(pub String);

impl Workspace {
    /// A copy of the whole state, taken under the caller's write lock so
    /// that it is consistent; [`Workspace::into_checkpoint`] then turns it
    /// into parts without holding anything.
    ///
    /// Writes wait while it is taken, so it must not be proportional to the
    /// state: per-contact vectors are paged copy-on-write
    /// ([`crate::paged::PagedVec`]), memberships are shared bitmaps, and the
    /// lookup indexes (ids to numbers, strings to ids, the timer heap) are
    /// left out, since a checkpoint rebuilds them when it is loaded. The copy
    /// is only good for [`Workspace::into_checkpoint`]. Not during a burst
    /// ([`Workspace::burst_in_progress`]): its flips so far are in memory
    /// but in no write yet.
    pub fn checkpoint_copy(&self) -> Workspace {
        // Field by field, so that a new field cannot be forgotten here.
        Workspace {
            fields: self.fields.clone(),
            contacts: self.contacts.copy_without_index(),
            segments: self.segments.copy_for_checkpoint(),
            next_seq: self.next_seq,
            blank_true: self.blank_true.clone(),
            events: self.events.copy_for_checkpoint(),
            aggregates: self.aggregates.clone(),
            agg_tests: self.agg_tests.clone(),
            temporal: self.temporal.clone(),
            rules: self.rules.clone(),
            grants: self.grants.clone(),
            workflows: self.workflows.clone(),
            timers: self.timers.copy_for_checkpoint(),
            clock: self.clock,
            pending: self.pending.clone(),
            burst: self.burst.clone(),
            burst_serial: self.burst_serial,
            aliases: self.aliases.clone(),
            field_limits: self.field_limits,
            history: self.history.clone(),
            horizon: self.horizon.clone(),
            kept: self.kept.clone(),
            held: self.held.clone(),
            lasting: self.lasting.clone(),
            prepared: self.prepared.clone(),
            retention_days: self.retention_days,
        }
    }

    /// The checkpoint parts of this workspace (a [`Workspace::checkpoint_copy`]).
    pub fn into_checkpoint(self) -> EngineCheckpoint {
        let strings = |i: &Interner| i.strings().map(|s| s.to_string()).collect();
        let capacity = self.contacts.capacity();
        let contacts = (0..capacity)
            .map(|no| {
                let id = self.contacts.id(no).to_string();
                (no, id, self.contacts.is_alive(no))
            })
            .collect();
        let alive = &self.contacts.alive_from_bits();
        let columns = (0..self.fields.all().len())
            .map(
                |index| match self.contacts.column(index).string_part(alive) {
                    Some((dictionary, positions)) => ColumnPart::Strings {
                        dictionary,
                        positions,
                    },
                    None => ColumnPart::Values(
                        alive
                            .iter()
                            .filter_map(|no| Some((no, self.contacts.get(no, index)?)))
                            .collect(),
                    ),
                },
            )
            .collect();
        let segments = self
            .segments
            .iter()
            .map(|(_, s)| (s.def.clone(), s.members.bitmap().into_owned()))
            .collect();
        let aggregates = self
            .aggregates
            .iter()
            .map(|(_, a)| AggregatePart {
                event_type: a.key.event_type.clone(),
                filter: a.key.filter.clone(),
                window: a.key.window,
                property: a.key.property.clone(),
                counts: a.counts.clone(),
                sums: a.sums.clone(),
            })
            .collect();
        let timers = (0..capacity).map(|no| self.timers.armed(no)).collect();
        let (types, names, interned) = (
            strings(&self.events.types),
            strings(&self.events.names),
            strings(&self.events.strings),
        );
        let (by_contact, ids, next_arrival) = self.events.into_parts();
        let by_contact = by_contact
            .into_iter()
            .enumerate()
            .filter(|(_, list)| !list.is_empty())
            .map(|(no, list)| (no as u32, list))
            .collect();
        EngineCheckpoint {
            clock: self.clock,
            fields: self.fields.all().to_vec(),
            contacts,
            columns,
            segments,
            aggregates,
            events: EventsPart {
                types,
                names,
                strings: interned,
                by_contact,
                ids,
                next_arrival,
                held: self.held.parts(),
            },
            timers,
            on_disk: self.history.is_some(),
            lasting: self.lasting.into_vec(),
        }
    }

    /// Rebuilds a workspace from a checkpoint and what the store holds now:
    /// `stored` carries every definition (fields, segments, static members,
    /// rules, workflows, queue, grants, aliases, next seq, clock) but, for
    /// contacts and events, only the contacts a write touched after the
    /// checkpoint (`contacts` alive, `tombstones` deleted) and their full
    /// stored histories (`events`, in seq order). The result is the
    /// workspace at `stored.clock`, as [`Workspace::restore_from`] would
    /// build it from everything; the caller then advances it to now.
    ///
    /// With `history` (events on disk), memory holds the checkpoint's recent
    /// events, the touched contacts' counts and lasting points are folded
    /// from their full stored histories and roll-ups, and a segment saved
    /// after the checkpoint that needs a count memory cannot answer is a
    /// [`Mismatch`] (the caller then rebuilds from the whole history).
    pub fn from_checkpoint(
        mut ckpt: EngineCheckpoint,
        mut stored: StoredState,
        history: Option<crate::history::HistorySource>,
    ) -> Result<Workspace, Mismatch> {
        let fields = std::mem::take(&mut stored.fields);
        let mut load = Workspace::begin_checkpoint(ckpt.clock, &ckpt.fields, fields)?;
        load.contacts(
            ckpt.contacts
                .iter()
                .map(|(no, id, alive)| (*no, id.as_str(), *alive)),
        );
        for (index, part) in std::mem::take(&mut ckpt.columns).into_iter().enumerate() {
            let field_type = ckpt.fields[index].field_type;
            let column = match part {
                ColumnPart::Values(values) => {
                    let mut column = ColumnBuilder::new(field_type, values.len());
                    for (no, value) in values {
                        column.push(no, &value);
                    }
                    column
                }
                ColumnPart::Strings {
                    dictionary,
                    positions,
                } => {
                    let mut column = ColumnBuilder::with_dictionary(
                        field_type,
                        dictionary.iter().map(|s| &**s),
                        positions.len(),
                    );
                    for (no, position) in positions {
                        if !column.push_position(no, position) {
                            return Err(Mismatch(format!(
                                "column {index} names string {position} of a shorter dictionary"
                            )));
                        }
                    }
                    column
                }
            };
            load.set_column(index, column.finish());
        }
        load.finish(ckpt, stored, history)
    }

    /// The first step of [`Workspace::from_checkpoint`] for a caller that
    /// decodes the checkpoint's parts one at a time (so that they are never
    /// all decoded at once): the stored fields and the checkpoint's fields.
    /// Then [`CheckpointLoad::contacts`], [`CheckpointLoad::set_column`] for
    /// each column (built apart, on any thread, by a [`ColumnBuilder`]) and
    /// [`CheckpointLoad::finish`] with the rest.
    pub fn begin_checkpoint(
        clock: DateTime,
        ckpt_fields: &[FieldDef],
        stored_fields: Vec<FieldDef>,
    ) -> Result<CheckpointLoad, Mismatch> {
        let mut ws = Workspace::new();
        ws.clock = clock;
        ws.restore_fields(stored_fields);
        let mut columns = Vec::with_capacity(ckpt_fields.len());
        for def in ckpt_fields {
            match ws.fields.index(&def.name) {
                Some(index) if ws.fields.def(index).field_type == def.field_type => {
                    columns.push(index)
                }
                _ => {
                    return Err(Mismatch(format!(
                        "field {:?} changed type or disappeared after the checkpoint",
                        def.name
                    )));
                }
            }
        }
        Ok(CheckpointLoad { ws, columns })
    }
}

/// A workspace being built from a checkpoint (see
/// [`Workspace::begin_checkpoint`]).
pub struct CheckpointLoad {
    ws: Workspace,
    /// The workspace's column of each checkpoint column.
    columns: Vec<usize>,
}

impl CheckpointLoad {
    /// The checkpoint's contacts (number, id, alive), numbers ascending.
    pub fn contacts<'a>(&mut self, contacts: impl ExactSizeIterator<Item = (u32, &'a str, bool)>) {
        self.ws.contacts.load(contacts);
    }

    /// The checkpoint's column `index`, built whole (an index it does not
    /// have is ignored).
    pub fn set_column(&mut self, index: usize, column: Column) {
        if let Some(&field) = self.columns.get(index) {
            self.ws.contacts.replace_column(field, column);
        }
    }

    /// Completes the workspace from the rest of the checkpoint (its
    /// fields, contacts and columns are not read again) and `stored`
    /// (whose fields were given to [`Workspace::begin_checkpoint`]).
    pub fn finish(
        self,
        ckpt: EngineCheckpoint,
        stored: StoredState,
        history: Option<crate::history::HistorySource>,
    ) -> Result<Workspace, Mismatch> {
        let mut ws = self.ws;
        let rollups = match &history {
            Some(source) => touched_rollups(source, &stored)?,
            None => Vec::new(),
        };
        // A checkpoint of a workspace holding every event can start one with
        // events on disk: it starts in memory and lends the source at the
        // end. The reverse cannot be: memory lacks the older events.
        let lend_later = match (&history, ckpt.on_disk) {
            (Some(_), true) => {
                ws.lasting = ckpt.lasting.into();
                ws.history = history;
                None
            }
            (Some(_), false) => history,
            (None, true) => {
                return Err(Mismatch(
                    "it holds only recent events, and no history source was lent".into(),
                ));
            }
            (None, false) => None,
        };
        let interner = |list: Vec<String>| {
            let mut interner = Interner::default();
            for s in &list {
                interner.intern(s);
            }
            interner
        };
        let mut histories: Vec<Vec<StoredEvent>> = Vec::new();
        for (no, list) in ckpt.events.by_contact {
            let index = no as usize;
            if index >= histories.len() {
                histories.resize_with(index + 1, Vec::new);
            }
            histories[index] = list;
        }
        ws.events = EventLog::from_parts(
            [
                interner(ckpt.events.types),
                interner(ckpt.events.names),
                interner(ckpt.events.strings),
            ],
            histories,
            ckpt.events.ids,
            ckpt.events.next_arrival,
        );
        ws.held = crate::events::KeptProps::from_parts(ckpt.events.held);

        // Grants of contacts no later write touched count while time passes
        // silently below; the touched ones are reloaded after it.
        let touched_set: HashSet<u32> = stored
            .contacts
            .iter()
            .map(|c| c.no)
            .chain(stored.tombstones.iter().map(|t| t.0))
            .collect();
        for grant in &stored.score_grants {
            if ws.contacts.is_alive(grant.no) && !touched_set.contains(&grant.no) {
                ws.grants
                    .add(grant.no, grant.points, grant.expires_at, grant.run_id);
            }
        }
        for rule in stored.scoring_rules {
            ws.rules.put(rule, &mut ws.events);
        }

        // Segments: unchanged dynamic ones keep the checkpoint's members;
        // new or edited ones, and those referring to them, are evaluated.
        let kept: HashMap<String, (SegmentDef, RoaringBitmap)> = ckpt
            .segments
            .into_iter()
            .map(|(def, members)| (def.id.clone(), (def, members)))
            .collect();
        for part in ckpt.aggregates {
            let key = AggKey {
                event_type: part.event_type,
                filter: part.filter,
                window: part.window,
                property: part.property,
            };
            ws.aggregates
                .install(key, part.counts, part.sums, &mut ws.events);
        }
        let mut dirty = Vec::new();
        for def in stored.segments {
            let members = match def.kind {
                SegmentKind::Static => stored
                    .static_members
                    .get(&def.id)
                    .cloned()
                    .unwrap_or_default(),
                SegmentKind::Dynamic => match kept.get(&def.id) {
                    Some((old, members))
                        if old.condition == def.condition && old.kind == def.kind =>
                    {
                        members.clone()
                    }
                    _ => {
                        dirty.push(def.id.clone());
                        RoaringBitmap::new()
                    }
                },
            };
            ws.segments
                .insert(Segment::new(def, members, &ws.fields, &ws.aggregates));
        }
        ws.refresh_horizon();
        if ws.on_disk() {
            // A rule saved after the checkpoint may read what memory lacks.
            if !ws.held.covers_all(&ws.kept) {
                return Err(Mismatch(
                    "a scoring rule saved after it reads event properties its events do not hold"
                        .into(),
                ));
            }
            for id in &dirty {
                let needs = ws
                    .segments
                    .get(id)
                    .and_then(|s| s.def.condition.as_ref())
                    .is_some_and(|c| ws.needs_history(c));
                if needs {
                    return Err(Mismatch(format!(
                        "segment {id:?}, saved after the checkpoint, counts events memory does not hold"
                    )));
                }
            }
        }
        let clock = ws.clock;
        ws.sync_aggregates(None, clock);
        ws.refresh_horizon();
        ws.segments.recompile(&ws.fields, &ws.aggregates);
        ws.evaluate_dirty(&dirty, clock);
        ws.refresh_blank_true(clock);
        ws.reindex_time();
        if dirty.is_empty() {
            // Armed as they were at the checkpoint; contacts created since
            // are all touched and armed below. A new segment's tests need
            // every contact looked at again.
            ws.timers.rebuild(ckpt.timers);
        } else {
            ws.rebuild_timers();
        }

        // Time passes silently up to the stored clock: the flips on the way
        // are in the log already.
        let _ = ws.advance(stored.clock);
        let now = ws.clock;

        // The touched contacts as stored now: rows, liveness and full
        // histories (after the silent advance, whose timers would trim a
        // reloaded history before its all-time counts are taken).
        let touched = ws.reload_rows(stored.contacts, stored.tombstones, stored.events);
        for (alias, no) in &stored.aliases {
            if ws.contacts.is_alive(*no) && ws.contacts.lookup(alias).is_none() {
                ws.aliases.insert(alias, *no);
            }
        }
        for grant in &stored.score_grants {
            if ws.contacts.is_alive(grant.no) && touched_set.contains(&grant.no) {
                ws.grants
                    .add(grant.no, grant.points, grant.expires_at, grant.run_id);
            }
        }
        ws.reevaluate(&touched, &rollups, now);

        ws.restore_workflows(
            stored.workflows,
            (stored.run_cursor, stored.next_run_id),
            stored.queue,
            stored.dropped_triggers,
        );
        ws.next_seq = stored.next_seq.max(crate::changes::FIRST_SEQ);
        ws.pending = Write::default();
        if let Some(source) = lend_later {
            ws.set_history(source);
        }
        Ok(ws)
    }
}

impl Workspace {
    /// Replaces what the checkpoint held of each touched contact by its
    /// stored row (or tombstone) and its full stored history. Answers the
    /// touched numbers.
    fn reload_rows(
        &mut self,
        rows: Vec<ContactSnapshot>,
        tombstones: Vec<(u32, String)>,
        events: Vec<EventRecord>,
    ) -> Vec<u32> {
        let mut touched: Vec<u32> = rows
            .iter()
            .map(|c| c.no)
            .chain(tombstones.iter().map(|t| t.0))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for &no in &touched {
            self.events.forget(no);
            if self.contacts.is_alive(no) {
                self.contacts.delete(no);
            }
        }
        for (no, id) in tombstones {
            self.contacts.insert_tombstone(no, &id);
        }
        for row in rows {
            self.restore_contact(row);
        }
        let mut seen: HashMap<u32, DateTime> = HashMap::new();
        for event in events {
            if let Some(id) = &event.id {
                self.events.remember(id);
            }
            if !self.contacts.is_alive(event.no) {
                continue;
            }
            self.events
                .push(event.no, &event.event_type, event.at, &event.properties);
            let last = seen.entry(event.no).or_insert(i64::MIN);
            *last = (*last).max(event.at);
        }
        for (no, last) in seen {
            self.contacts
                .set(no, LAST_SEEN_AT, Some(&Value::DateTime(last)));
        }
        touched
    }

    /// Evaluates the segments `ids` and every segment referring to them,
    /// directly or not, in rank order.
    fn evaluate_dirty(&mut self, ids: &[String], now: DateTime) {
        let mut slots: HashSet<Slot> = HashSet::new();
        let mut stack: Vec<Slot> = ids.iter().filter_map(|id| self.segments.slot(id)).collect();
        while let Some(slot) = stack.pop() {
            if slots.insert(slot) {
                stack.extend_from_slice(self.segments.dependents_of(slot));
            }
        }
        let mut order: Vec<(u32, Slot)> = slots
            .into_iter()
            .map(|slot| (self.segments.rank(slot), slot))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            let Some(cond) = self.segments.at(slot).and_then(|s| s.def.condition.clone()) else {
                continue;
            };
            let members = evaluate_all(&cond, &self.ctx(now));
            self.segments.replace_members(slot, members);
        }
    }

    /// Recomputes, at `now`, everything the touched contacts' stored rows
    /// and histories imply: counts and sums, score, memberships, timer.
    fn reevaluate(&mut self, touched: &[u32], rollups: &[(String, u32, u32, f64)], now: DateTime) {
        let indexes: Vec<usize> = self.aggregates.iter().map(|(i, _)| i).collect();
        let dynamic: Vec<Slot> = self
            .segments
            .iter()
            .filter(|(_, s)| s.plan.is_some())
            .map(|(slot, _)| slot)
            .collect();
        let mut scratch = Write::default();
        for &no in touched {
            if !self.contacts.is_alive(no) {
                for index in &indexes {
                    if let Some(aggregate) = self.aggregates.get_mut(*index) {
                        aggregate.set(no, 0, 0.0);
                    }
                }
                let slots: Vec<Slot> = self.segments.iter().map(|(slot, _)| slot).collect();
                for slot in slots {
                    self.set_member(slot, no, false);
                }
                self.timers.schedule(no, NEVER);
                continue;
            }
            for index in &indexes {
                let tally = self
                    .aggregates
                    .get(*index)
                    .map(|a| a.tally(self.events.of(no), &self.events, now));
                if let (Some(tally), Some(aggregate)) = (tally, self.aggregates.get_mut(*index)) {
                    aggregate.set(no, tally.count, tally.sum);
                }
            }
            if self.on_disk() {
                // Memory holds the contact's full stored history until the
                // trim below: what deleted events gave is added back.
                let mut lasting = 0.0;
                for event in self.events.of(no) {
                    lasting += self.rules.lasting_points(event, &self.events);
                }
                for (key, _, count, sum) in rollups.iter().filter(|r| r.1 == no) {
                    if key == SCORE_ROLLUP {
                        lasting += sum;
                        continue;
                    }
                    for index in &indexes {
                        if let Some(aggregate) = self.aggregates.get_mut(*index)
                            && aggregate.window.is_none()
                            && rollup_key(&aggregate.key) == *key
                        {
                            aggregate.add(no, *count, *sum);
                        }
                    }
                }
                self.set_lasting(no, lasting);
                self.trim(no, now);
            }
            let (score, _) = self.full_score(no, now);
            self.contacts
                .set(no, LEAD_SCORE, Some(&Value::Number(score)));
            self.propagate_contact(no, dynamic.clone(), true, Cause::Time, now, &mut scratch);
            let next = self.next_instant(no, now);
            self.timers.schedule(no, next);
        }
    }
}

/// What deleted events gave to the touched contacts' all-time counts and
/// lasting points: (roll-up key, contact, count, sum).
fn touched_rollups(
    source: &crate::history::HistorySource,
    stored: &StoredState,
) -> Result<Vec<(String, u32, u32, f64)>, Mismatch> {
    let touched: HashSet<u32> = stored
        .contacts
        .iter()
        .map(|c| c.no)
        .chain(stored.tombstones.iter().map(|t| t.0))
        .collect();
    let mut found = Vec::new();
    source
        .0
        .rollups(&mut |key, no, count, sum| {
            if touched.contains(&no) {
                found.push((key.to_string(), no, count, sum));
            }
        })
        .map_err(|e| Mismatch(format!("cannot read the event roll-ups: {e}")))?;
    Ok(found)
}

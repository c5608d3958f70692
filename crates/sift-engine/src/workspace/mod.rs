//! One workspace's whole in-memory state, and every write to it.
//!
//! A write validates everything first (and changes nothing when it fails),
//! then applies itself, re-evaluates only the segments it can affect — in
//! rank order so that `in segment` always sees its target's new membership —
//! and returns the [`Record`]s the store must persist, change log included.

use std::borrow::Cow;

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime, FieldType, Schema};

use crate::aggregates::{AggKey, AggTest, Aggregates};
use crate::aliases::Aliases;
use crate::changes::{ChangeBatch, Record, SegmentKind};
use crate::contacts::Contacts;
use crate::error::Error;
use crate::eval::{Ctx, SegmentLookup, evaluate_all, matches};
use crate::events::EventLog;
use crate::fields::{self, FieldDef, FieldLimits, Fields};
use crate::scoring::{Grants, Rules};
use crate::segments::{Segment, Segments, Slot};
use crate::timers::Timers;
use crate::workflows::{QueuedItem, Workflows};

mod burst;
mod checkpoint;
mod contacts;
mod events;
mod explain;
mod history;
mod identify;
mod ondisk;
mod restore;
mod retention;
mod runs;
mod scoring;
mod segment_writes;
mod staging;
mod temporal;
mod time;
mod workflows;
use crate::value::{RawValue, Value};
pub use checkpoint::{
    AggregatePart, CheckpointLoad, ColumnPart, EngineCheckpoint, EventsPart, Mismatch,
};
pub use events::{EventInput, MAX_FUTURE_MS};
pub use history::{EventView, SUGGESTIONS_MAX};
pub use restore::StoredState;
pub use retention::{Rollup, SCORE_ROLLUP, longest_days, rollup_key};
use staging::Staged;

/// Most upserts one batch may hold (docs/api.md).
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
    /// Membership changes recorded (entries and exits of every segment);
    /// the changes themselves are in [`Write::change_batches`].
    pub membership_changes: u64,
    /// Events applied by an event write.
    pub accepted: u64,
    /// Indexes of the items of an event write whose id was already accepted.
    pub duplicates: Vec<usize>,
    /// Contacts whose `lead_score` a scoring-rule write changed.
    pub rescored: u64,
    /// Workflow triggers the write queued.
    pub queued: u64,
    /// Stored events a write streamed from the history source (a new
    /// all-time count, a longer window, a scoring rule on disk).
    pub history_read: u64,
    /// Workflow triggers the write did not queue: their workflow's queue
    /// was full (each drop is a [`Record::TriggersDropped`]).
    pub dropped: u64,
    /// Triggers a run write consumed.
    pub runs: u64,
    /// Actions a run write applied.
    pub actions: u64,
    /// Webhooks a run write queued for delivery.
    pub webhooks: u64,
    /// Whether an identify moved a contact's data into another.
    pub merged: bool,
    /// Changes not yet numbered; [`Workspace::finish`] turns them into records.
    staged: Staged,
    /// The cascade depth of the write's changes (a run's: one below the run).
    depth: u32,
    /// Events that trigger workflows: (workflow index, trigger), queued by
    /// [`Workspace::finish`].
    event_hits: Vec<(usize, String, QueuedItem)>,
}

impl Write {
    /// The numbered membership changes among the records, a batch per
    /// commit point.
    pub fn change_batches(&self) -> impl Iterator<Item = &ChangeBatch> {
        self.records.iter().filter_map(|r| match r {
            Record::Changes(batch) => Some(batch),
            _ => None,
        })
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

/// One node of an explanation: whether it holds for the contact, the value
/// it tested (a field's value, an event count or sum), and the next instant
/// its result will change by the passing of time alone.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainNode {
    pub condition: Condition,
    pub result: bool,
    pub value: Option<Value>,
    pub next_change: Option<DateTime>,
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
    events: EventLog,
    aggregates: Aggregates,
    /// By aggregate index, each distinct test segments make on it, with the
    /// segments making it: a new count re-evaluates only those it flips.
    agg_tests: Vec<Vec<(AggTest, Vec<Slot>)>>,
    /// Relative-time tests of dynamic segments, by column.
    temporal: Vec<temporal::ColumnTests>,
    rules: Rules,
    /// Points given by workflow actions.
    grants: Grants,
    workflows: Workflows,
    timers: Timers,
    /// The instant up to which time has been processed.
    clock: DateTime,
    /// Changes made by timers that no write has carried to the store yet.
    pending: Write,
    /// Timers due at one instant being fired a slice at a time (`burst.rs`).
    burst: Option<burst::Burst>,
    /// Numbers bursts, so that a slice of an earlier one is never applied.
    burst_serial: u64,
    /// Ids merged into other contacts (identify), naming them from now on.
    aliases: Aliases,
    /// Checked when a write creates fields; a restore loads every stored field.
    field_limits: FieldLimits,
    /// Where the events memory no longer holds are (`ondisk.rs`); without
    /// one, memory holds every event.
    history: Option<crate::history::HistorySource>,
    /// With a history source, the windows memory keeps events for.
    horizon: Vec<sift_lang::Duration>,
    /// With a history source, the properties memory keeps of each new
    /// event: those its windowed counts and expiring rules read.
    kept: crate::events::KeptProps,
    /// The properties every event in memory holds (when it had them): what
    /// `kept` has kept since memory was last loaded. A count reading others
    /// cannot be answered from memory.
    held: crate::events::KeptProps,
    /// With a history source, by contact: the points of rules without
    /// expiry over its whole history.
    lasting: crate::paged::PagedVec<f64>,
    /// Aggregates counted from the history before the write that saves
    /// them (`prepare_history`), installed by its sync.
    prepared: Vec<crate::aggregates::Aggregate>,
    /// Days raw events are kept in the store (`None`: forever); no live
    /// window may be longer.
    retention_days: Option<u32>,
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

    fn field_names(&self) -> Vec<String> {
        self.fields.all().iter().map(|f| f.name.clone()).collect()
    }

    fn segment_names(&self) -> Vec<String> {
        self.segments
            .iter()
            .map(|(_, s)| s.def.name.clone())
            .collect()
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
    fn members(&self, segment_id: &str) -> Option<Cow<'_, RoaringBitmap>> {
        let slot = self.segments.slot(segment_id)?;
        Some(Cow::Borrowed(if self.blank[slot] {
            &self.yes
        } else {
            &self.no
        }))
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let mut ws = Workspace {
            next_seq: crate::changes::FIRST_SEQ,
            ..Workspace::default()
        };
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

    /// The live contact `id` names: its own, or the one it was merged
    /// into (an alias, docs/concepts.md "Identify").
    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.resolve(id)
    }

    pub(super) fn resolve(&self, id: &str) -> Option<u32> {
        self.contacts.lookup(id).or_else(|| {
            self.aliases
                .get(id)
                .filter(|no| self.contacts.is_alive(*no))
        })
    }

    /// Every (alias, contact number) pair, sorted by alias.
    pub fn aliases(&self) -> Vec<(String, u32)> {
        self.aliases.all()
    }

    /// The former ids (aliases) that name contact `no`.
    pub fn aliases_of(&self, no: u32) -> Vec<String> {
        self.aliases.of(no)
    }

    pub fn contact(&self, no: u32) -> Option<ContactView> {
        if !self.contacts.is_alive(no) {
            return None;
        }
        let mut view = self.contact_without_segments(no);
        view.segments = self.segments_of(no);
        Some(view)
    }

    /// (id, name) of the segments contact `no` belongs to, in the order
    /// people read lists (by name, so the list reads the same before and
    /// after a restart, when slots are reassigned), from its membership
    /// row (`memberships.rs`).
    pub fn segments_of(&self, no: u32) -> Vec<(String, String)> {
        let list: Vec<(String, String)> = self
            .segments
            .of_contact(no)
            .map(|s| (s.def.id.clone(), s.def.name.clone()))
            .collect();
        debug_assert_eq!(
            list,
            self.segments
                .in_name_order()
                .filter(|s| s.members.contains(no))
                .map(|s| (s.def.id.clone(), s.def.name.clone()))
                .collect::<Vec<_>>(),
            "contact {no}'s membership rows disagree with the member bitmaps"
        );
        list
    }

    /// A contact's data without its segment list, which costs a look at
    /// every segment; for exports.
    pub fn contact_data(&self, no: u32) -> Option<ContactView> {
        self.contacts
            .is_alive(no)
            .then(|| self.contact_without_segments(no))
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
            Some(id) => self.segment_or_not_found(id)?.members.bitmap(),
            None => Cow::Borrowed(self.contacts.alive()),
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

    pub(super) fn ctx(&self, now: DateTime) -> Ctx<'_> {
        Ctx {
            fields: &self.fields,
            contacts: &self.contacts,
            segments: &self.segments,
            events: &self.events,
            aggregates: &self.aggregates,
            from_history: false,
            extra: None,
            now,
        }
    }

    pub(super) fn segment_or_not_found(&self, id: &str) -> Result<&Segment, Error> {
        self.segments.get(id).ok_or_else(|| Error::NotFound {
            what: "segment",
            id: id.to_string(),
        })
    }

    /// Members of an unsaved condition.
    pub fn preview(&self, condition: &Condition, now: DateTime) -> Result<RoaringBitmap, Error> {
        check_supported(condition)?;
        let now = now.max(self.clock);
        if self.needs_history(condition) {
            let extra = self.count_from_history(condition, now)?;
            let ctx = Ctx {
                extra: Some(&extra),
                ..self.ctx(now)
            };
            return Ok(evaluate_all(condition, &ctx));
        }
        Ok(evaluate_all(condition, &self.ctx(now)))
    }

    /// Events kept in memory.
    pub fn event_count(&self) -> u64 {
        self.events.len()
    }

    /// Approximate heap bytes of the event history and idempotency keys.
    pub fn event_bytes(&self) -> u64 {
        self.events.heap_bytes()
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
                    || self.workflows.sets_field(name)
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
        self.check_new_field(name, 1)?;
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

    pub fn field_limits(&self) -> FieldLimits {
        self.field_limits
    }

    /// Sets the limits later writes are checked against; fields a workspace
    /// already has are kept even beyond them.
    pub fn set_field_limits(&mut self, limits: FieldLimits) {
        self.field_limits = limits;
    }

    /// Refuses `field`, the `created`th new field of one write (counting from 1).
    pub(super) fn check_new_field(&self, field: &str, created: usize) -> Result<(), Error> {
        let limits = self.field_limits;
        if created > limits.max_new_per_write {
            return Err(Error::TooManyNewFields {
                field: field.to_string(),
                limit: limits.max_new_per_write,
            });
        }
        if self.fields.custom_count() + created > limits.max_fields {
            return Err(Error::TooManyFields {
                field: field.to_string(),
                limit: limits.max_fields,
            });
        }
        Ok(())
    }

    pub(super) fn add_field(&mut self, def: FieldDef) -> usize {
        let field_type = def.field_type;
        let index = self.fields.push(def);
        if index >= self.contacts.columns().len() {
            self.contacts.add_column(field_type);
        }
        index
    }
}

/// Relative-time operators inside an event's `where` would make every
/// stored event a timer of its own; they are refused with a way out.
pub(super) fn check_supported(cond: &Condition) -> Result<(), Error> {
    let mut unsupported = false;
    cond.walk(&mut |node| {
        if let Condition::Event {
            filter: Some(filter),
            ..
        }
        | Condition::EventSum {
            filter: Some(filter),
            ..
        } = node
        {
            filter.walk(&mut |inner| {
                if let Condition::Field { test, .. } = inner
                    && time::is_relative(test)
                {
                    unsupported = true;
                }
            });
        }
    });
    if unsupported {
        return Err(Error::Unsupported(
            "relative-time operators (in last, before … ago, after … ago) cannot test event properties inside `where`; put the window on the event instead: `performed purchase in last 30 days`".into(),
        ));
    }
    Ok(())
}

fn checked_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a segment name must have 1 to 200 characters and no control characters".into(),
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

//! Sift's segmentation engine: contacts, fields and segments in memory, the
//! membership of every segment as a roaring bitmap over dense contact numbers,
//! and the change log of every entry and exit.
//!
//! The engine does no IO, spawns no threads of its own (bulk evaluation uses
//! rayon's pool), and never reads the clock: every write takes `now`. Writes
//! return the [`Record`]s to persist; the storage crate writes them and the
//! server acknowledges only after they are durable.

mod aggregates;
mod aliases;
mod bits;
pub(crate) mod catalog;
mod changes;
mod column_builder;
pub mod columns;
mod contacts;
mod counts;
mod error;
mod eval;
mod events;
mod fields;
mod fold;
mod history;
mod members;
mod memberships;
mod paged;
mod scoring;
mod segments;
mod slots;
mod sparse;
mod store;
mod str_index;
mod time;
mod timers;
mod value;
mod workflows;
mod workspace;

pub use aggregates::SUM_BOUND;
pub use catalog::{CATALOG_PROPERTIES, CATALOG_TYPES, CATALOG_VALUES, EventTypeSeen, PropertySeen};
pub use changes::{
    Cause, ChangeBatch, ChangeKind, ContactSnapshot, EventRecord, FIRST_SEQ, Record, SegmentDef,
    SegmentKind, SegmentRevision,
};
pub use column_builder::ColumnBuilder;
pub use contacts::Contacts;
pub use counts::Counts;
pub use error::{Error, Usage, UsageKind, UsageRole};
pub use eval::{Check, Ctx, RowPlan, SegmentLookup, ValueRef, evaluate_all, field_test, matches};
pub use events::{Prop, StoredEvent};
pub use fields::{
    BUILTIN_FIELDS, FieldDef, FieldLimits, SYSTEM_FIELDS, valid_contact_id, valid_field_name,
};
pub use history::{EventColumns, EventHistory, HistorySource, PropValues};
pub use members::Members;
pub use paged::PagedVec;
pub use scoring::{ScorePart, ScoreSource, ScoringRule, ScoringRuleInput, ScoringRulePatch};
pub use segments::{Segment, Segments};
pub use sparse::SparseVec;
pub use store::{MemoryStore, Store};
pub use time::add as add_duration;
pub use value::{RawValue, Value, format_date, format_datetime, parse_date, parse_datetime};
pub use workflows::{
    Action, ActionDone, ActionResult, ActionType, DEFAULT_MAX_QUEUED, DroppedTriggers, MAX_ACTIONS,
    MAX_CASCADE_DEPTH, QueueBatch, QueuedItem, RunRecord, RunStatus, ScoreGrant, Trigger,
    TriggerKind, WebhookAttempt, WebhookCall, WorkflowDef, WorkflowInput, WorkflowStatus,
};
pub use workspace::{
    AggregatePart, CheckpointLoad, ColumnPart, ContactInput, ContactView, EngineCheckpoint,
    EventInput, EventView, EventsPart, ExplainNode, MAX_BATCH, MAX_FUTURE_MS, Mismatch, Rollup,
    SCORE_ROLLUP, SUGGESTIONS_MAX, SegmentInput, SegmentPatch, StoredState, Workspace,
    WorkspaceSchema, Write, longest_days, rollup_key,
};

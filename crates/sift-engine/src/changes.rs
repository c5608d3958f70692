//! Membership changes and the records a write hands to the store.

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime};

use crate::fields::FieldDef;
use crate::scoring::ScoringRule;
use crate::value::{RawValue, Value};
use crate::workflows::{
    DroppedTriggers, QueueBatch, RunRecord, ScoreGrant, WebhookAttempt, WebhookCall, WorkflowDef,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Entered,
    Exited,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Entered => "entered",
            ChangeKind::Exited => "exited",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        match text {
            "entered" => Some(ChangeKind::Entered),
            "exited" => Some(ChangeKind::Exited),
            _ => None,
        }
    }
}

/// Why a membership changed (docs/concepts.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    ContactUpdate,
    Event,
    Time,
    SegmentEdit,
    SegmentRef,
    StaticAdd,
    StaticRemove,
    Merge,
    ContactDelete,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::ContactUpdate,
        Cause::Event,
        Cause::Time,
        Cause::SegmentEdit,
        Cause::SegmentRef,
        Cause::StaticAdd,
        Cause::StaticRemove,
        Cause::Merge,
        Cause::ContactDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ContactUpdate => "contact_update",
            Cause::Event => "event",
            Cause::Time => "time",
            Cause::SegmentEdit => "segment_edit",
            Cause::SegmentRef => "segment_ref",
            Cause::StaticAdd => "static_add",
            Cause::StaticRemove => "static_remove",
            Cause::Merge => "merge",
            Cause::ContactDelete => "contact_delete",
        }
    }

    pub fn parse(text: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// The seq of a workspace's first change. Seqs start at 1 so that 0 can be
/// every reader's "nothing seen yet": `after=0` and no `after` are the same,
/// as with JetStream's stream sequences, which cluster mode will carry.
pub const FIRST_SEQ: u64 = 1;

/// Changes of one segment with one kind and cause at one instant: contact `n`
/// of `contacts` (in ascending number order) has seq `seq_start + n`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeBatch {
    pub seq_start: u64,
    pub segment_id: String,
    pub kind: ChangeKind,
    pub cause: Cause,
    pub at: DateTime,
    pub contacts: RoaringBitmap,
}

impl ChangeBatch {
    pub fn len(&self) -> u64 {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// The seq after the last one of this batch.
    pub fn seq_end(&self) -> u64 {
        self.seq_start + self.len()
    }
}

/// One contact's whole stored state.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactSnapshot {
    pub no: u32,
    pub id: String,
    pub anonymous: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub last_seen_at: Option<DateTime>,
    pub lead_score: f64,
    /// Client-writable properties only (no system fields).
    pub properties: Vec<(String, Value)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    Dynamic,
    Static,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Dynamic => "dynamic",
            SegmentKind::Static => "static",
        }
    }

    pub fn parse(text: &str) -> Option<SegmentKind> {
        match text {
            "dynamic" => Some(SegmentKind::Dynamic),
            "static" => Some(SegmentKind::Static),
            _ => None,
        }
    }
}

/// A segment's definition, without its members.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDef {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    pub condition: Option<Condition>,
    pub test: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// One saved version of a segment's definition: each create and each edit
/// makes one, so a segment's history reads who changed what and what it
/// did to the membership.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRevision {
    pub segment_id: String,
    pub at: DateTime,
    pub name: String,
    pub description: String,
    /// The condition as text, naming referenced segments as they were
    /// named then (a rename later does not rewrite history).
    pub condition: Option<String>,
    /// The condition's JSON tree, as `to_json` writes it.
    pub condition_tree: Option<String>,
    pub entered: u64,
    pub exited: u64,
    /// The public id of the key that made it, when the caller knows it.
    pub key_id: Option<String>,
    /// Through what it was made: `api`, `ui`, or `system` (the demo, the
    /// command line) until a caller says otherwise.
    pub via: String,
}

/// What a write changed, in the order it must be stored. The store applies a
/// write's records in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Field(FieldDef),
    Contact(ContactSnapshot),
    ContactDeleted {
        no: u32,
    },
    /// Identify (docs/concepts.md "Identify"): `alias` names contact `into` from now on. With
    /// `from`, that contact was merged into `into` first: its events, score
    /// grants and aliases now belong to `into`, and it is erased (its
    /// number stays a tombstone for the change log). Its static
    /// memberships move by `StaticMembers` records beside this one, and
    /// `into`'s new state follows in a `Contact` record.
    Merge {
        from: Option<u32>,
        into: u32,
        alias: String,
    },
    Segment(SegmentDef),
    /// A saved version of a segment's definition, for its history.
    SegmentRevision(SegmentRevision),
    SegmentDeleted {
        id: String,
    },
    /// Static membership added (`present`) or removed.
    StaticMembers {
        segment_id: String,
        contacts: RoaringBitmap,
        present: bool,
    },
    Changes(ChangeBatch),
    /// An accepted event, in arrival order.
    Event(EventRecord),
    ScoringRule(ScoringRule),
    ScoringRuleDeleted {
        id: String,
    },
    Workflow(WorkflowDef),
    WorkflowDeleted {
        id: String,
    },
    /// Triggers queued for a workflow (see `workflows.rs`).
    Triggers(QueueBatch),
    /// Triggers a write did not queue because the workflow's queue was full.
    TriggersDropped(DroppedTriggers),
    /// A run's history entry.
    Run(RunRecord),
    /// Every trigger numbered below this has been consumed (run or dropped).
    RunCursor(u64),
    /// Points an `add_score` action gave.
    ScoreGrant(ScoreGrant),
    /// A webhook for the server to deliver.
    Webhook(WebhookCall),
    /// The outcome of a delivery attempt.
    WebhookAttempt(WebhookAttempt),
    /// Time has been processed up to this instant: every timer due at or
    /// before it has fired. A restart evaluates the workspace at the last
    /// stored clock, then fires the timers that fell due while it was down.
    Clock(DateTime),
}

/// An accepted event as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// The contact's number.
    pub no: u32,
    /// The client's idempotency key, if it gave one.
    pub id: Option<String>,
    pub event_type: String,
    pub at: DateTime,
    /// The properties conditions can read (scalars and lists of strings);
    /// anything else the client sent is only in `properties_json`.
    pub properties: Vec<(String, RawValue)>,
    /// The properties exactly as sent: a JSON object's text (`{}` when none).
    pub properties_json: String,
}

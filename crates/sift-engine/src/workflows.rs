//! Workflows (docs/concepts.md): their definitions, the index that finds the
//! workflows a membership change or an event triggers, the queue of
//! triggers waiting to run, and what a run records.
//!
//! A trigger is queued by the write that causes it, in the same records (so
//! it is durable exactly when its cause is), and numbered: trigger `n` runs
//! as run `n`. Runs consume the queue in number order, each run's effects
//! and the advanced cursor in one write, so a restart neither loses nor
//! repeats a run.
//!
//! The queue is bounded per workflow ([`DEFAULT_MAX_QUEUED`], set by the
//! server): one segment edit can make a million contacts enter at once,
//! and queueing a run for each would hold their triggers in memory and in
//! the causing write's commit. Triggers beyond the bound are dropped
//! unqueued, and the drop is recorded in the same write (a
//! [`DroppedTriggers`] record), so what is queued runs exactly once and
//! what is dropped is counted exactly once.

use std::collections::VecDeque;

use foldhash::HashMap;
use sift_lang::{Condition, DateTime, Duration};

use crate::changes::ChangeKind;
use crate::events::{EventLog, Filter};
use crate::value::RawValue;
use crate::workspace::ContactView;

mod queue;
pub use queue::{DroppedTriggers, QueueHead};

/// Runs set off by runs are this many levels deep at most: a trigger queued
/// at this depth is recorded as stopped instead of run.
pub const MAX_CASCADE_DEPTH: u32 = 8;
/// Most actions one workflow may have.
pub const MAX_ACTIONS: usize = 50;
/// Most triggers of one workflow waiting to run, unless the server sets
/// another bound ([`Workspace::set_max_queued_runs`]).
///
/// [`Workspace::set_max_queued_runs`]: crate::Workspace::set_max_queued_runs
pub const DEFAULT_MAX_QUEUED: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    /// Saved, never runs.
    Draft,
    /// Runs only for contacts in its test segment.
    Test,
    Active,
    /// Does not run; triggers while paused are not replayed later.
    Paused,
}

impl WorkflowStatus {
    pub const ALL: [WorkflowStatus; 4] = [
        WorkflowStatus::Draft,
        WorkflowStatus::Test,
        WorkflowStatus::Active,
        WorkflowStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Draft => "draft",
            WorkflowStatus::Test => "test",
            WorkflowStatus::Active => "active",
            WorkflowStatus::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> Option<WorkflowStatus> {
        WorkflowStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether triggers are queued for it.
    pub fn runs(self) -> bool {
        matches!(self, WorkflowStatus::Test | WorkflowStatus::Active)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    SegmentEntered(String),
    SegmentExited(String),
    /// An accepted event of this type matching `filter` (a condition over
    /// the event's properties, like a scoring rule's `where`).
    Event {
        event_type: String,
        filter: Option<Condition>,
    },
}

impl Trigger {
    pub fn type_name(&self) -> &'static str {
        match self {
            Trigger::SegmentEntered(_) => "segment_entered",
            Trigger::SegmentExited(_) => "segment_exited",
            Trigger::Event { .. } => "event",
        }
    }

    pub fn segment(&self) -> Option<&str> {
        match self {
            Trigger::SegmentEntered(id) | Trigger::SegmentExited(id) => Some(id),
            Trigger::Event { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    AddToSegment(String),
    RemoveFromSegment(String),
    AddScore {
        points: f64,
        expires_after: Option<Duration>,
    },
    SetProperty {
        field: String,
        /// Checked against the field's type when the workflow is saved.
        value: RawValue,
    },
    Webhook {
        url: String,
        secret: Option<String>,
    },
}

impl Action {
    pub fn action_type(&self) -> ActionType {
        match self {
            Action::AddToSegment(_) => ActionType::AddToSegment,
            Action::RemoveFromSegment(_) => ActionType::RemoveFromSegment,
            Action::AddScore { .. } => ActionType::AddScore,
            Action::SetProperty { .. } => ActionType::SetProperty,
            Action::Webhook { .. } => ActionType::Webhook,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.action_type().as_str()
    }
}

/// An action's type without its settings: what a run's history keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionType {
    AddToSegment,
    RemoveFromSegment,
    AddScore,
    SetProperty,
    Webhook,
}

impl ActionType {
    pub const ALL: [ActionType; 5] = [
        ActionType::AddToSegment,
        ActionType::RemoveFromSegment,
        ActionType::AddScore,
        ActionType::SetProperty,
        ActionType::Webhook,
    ];

    /// The name clients write and see (`type` of an action).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::AddToSegment => "add_to_segment",
            ActionType::RemoveFromSegment => "remove_from_segment",
            ActionType::AddScore => "add_score",
            ActionType::SetProperty => "set_property",
            ActionType::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<ActionType> {
        ActionType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// What an applied action did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionResult {
    /// The contact joined the static segment, or got the points.
    Added,
    /// `add_to_segment` for a contact already in the segment.
    AlreadyMember,
    Removed,
    /// `remove_from_segment` for a contact not in the segment.
    NotMember,
    /// The property was written.
    Set,
    /// The webhook was queued for delivery.
    Queued,
}

impl ActionResult {
    pub const ALL: [ActionResult; 6] = [
        ActionResult::Added,
        ActionResult::AlreadyMember,
        ActionResult::Removed,
        ActionResult::NotMember,
        ActionResult::Set,
        ActionResult::Queued,
    ];

    /// The name clients see (`result` of a run's action).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Added => "added",
            ActionResult::AlreadyMember => "already_member",
            ActionResult::Removed => "removed",
            ActionResult::NotMember => "not_member",
            ActionResult::Set => "set",
            ActionResult::Queued => "queued",
        }
    }

    pub fn parse(text: &str) -> Option<ActionResult> {
        ActionResult::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A saved workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowDef {
    pub id: String,
    pub name: String,
    pub status: WorkflowStatus,
    /// A static test segment; required by status `test`.
    pub test_segment: Option<String>,
    pub trigger: Trigger,
    /// A contact condition (docs/conditions.md), evaluated when the run executes.
    pub filter: Option<Condition>,
    pub actions: Vec<Action>,
    /// Counts the times the workflow started running (became `test` or
    /// `active`, or changed its trigger while running). Triggers queued
    /// under an older generation are dropped unrun, so a paused workflow
    /// does not catch up on what happened while it was paused.
    pub generation: u32,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A workflow to create or to replace; the id is chosen by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowInput {
    pub id: String,
    pub name: String,
    pub status: WorkflowStatus,
    pub test_segment: Option<String>,
    pub trigger: Trigger,
    pub filter: Option<Condition>,
    pub actions: Vec<Action>,
}

/// What set off the runs of a queued batch.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    Change {
        segment_id: String,
        kind: ChangeKind,
    },
    Event {
        event_type: String,
    },
}

/// One trigger: a contact's change (with its seq) or event (with its id,
/// when the client gave one).
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedItem {
    pub no: u32,
    pub seq: Option<u64>,
    pub event_id: Option<String>,
    /// When the change or the event happened.
    pub at: DateTime,
}

/// Triggers of one workflow with one cause, queued by one write: item `k`
/// is trigger (and run) `first_id + k`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueBatch {
    pub first_id: u64,
    pub workflow_id: String,
    pub generation: u32,
    /// 0 for triggers caused by clients and time; a run's own changes
    /// queue triggers one deeper than the run.
    pub depth: u32,
    pub trigger: TriggerKind,
    pub items: Vec<QueuedItem>,
}

impl QueueBatch {
    /// The id after the last one of this batch.
    pub fn end_id(&self) -> u64 {
        self.first_id + self.items.len() as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Every action was applied.
    Done,
    /// An action failed; the ones before it were applied.
    Failed,
    /// The filter did not hold; nothing was applied.
    Filtered,
    /// Not run: the contact left the test segment or was deleted.
    Skipped,
    /// Not run: the cascade depth limit was reached.
    Stopped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Filtered,
        RunStatus::Skipped,
        RunStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Filtered => "filtered",
            RunStatus::Skipped => "skipped",
            RunStatus::Stopped => "stopped",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One applied action of a run: its position in the workflow, its type and
/// what it did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActionDone {
    pub index: u32,
    pub kind: ActionType,
    pub result: ActionResult,
}

/// A run as its history keeps it. Runs are written, never read back by the
/// engine.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// The trigger's number.
    pub id: u64,
    pub workflow_id: String,
    pub no: u32,
    pub contact_id: String,
    pub trigger: TriggerKind,
    pub item: QueuedItem,
    pub depth: u32,
    /// Whether the workflow ran in test mode.
    pub test: bool,
    pub status: RunStatus,
    pub actions: Vec<ActionDone>,
    pub error: Option<String>,
    pub at: DateTime,
}

/// Points an `add_score` action gave: part of the contact's `lead_score`
/// until `expires_at` (exclusive), if any.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreGrant {
    pub run_id: u64,
    pub action: u32,
    pub no: u32,
    pub points: f64,
    pub at: DateTime,
    pub expires_at: Option<DateTime>,
}

/// A webhook a run queued: delivered at least once by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookCall {
    /// `run_<run id>_<action index>`: the receiver's idempotency key.
    pub id: String,
    pub run_id: u64,
    pub workflow_id: String,
    pub url: String,
    pub secret: Option<String>,
    /// The contact as the run left it up to this action.
    pub contact: ContactView,
    pub trigger: TriggerKind,
    pub item: QueuedItem,
    pub test: bool,
    pub at: DateTime,
}

/// The outcome of one delivery attempt of a [`WebhookCall`].
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookAttempt {
    pub id: String,
    pub attempts: u32,
    pub delivered: bool,
    /// No more attempts will be made.
    pub given_up: bool,
    pub next_attempt_at: Option<DateTime>,
    pub last_error: Option<String>,
    pub at: DateTime,
}

/// The workspace's workflows, the index of their triggers and the queue.
#[derive(Clone, Debug, Default)]
pub struct Workflows {
    /// In creation order.
    defs: Vec<WorkflowDef>,
    /// Running workflows by trigger segment: [entered, exited].
    on_change: HashMap<String, [Vec<usize>; 2]>,
    /// Running workflows by event type (interned), with compiled filters.
    on_event: HashMap<u32, Vec<(usize, Option<Filter>)>>,
    queue: VecDeque<QueueBatch>,
    /// Items of the front batch already consumed.
    head: usize,
    /// The first trigger id not yet consumed.
    cursor: u64,
    next_id: u64,
    /// Triggers waiting, by workflow id.
    waiting: HashMap<String, u64>,
    /// The bound on `waiting` per workflow; `None`: [`DEFAULT_MAX_QUEUED`].
    max_queued: Option<u64>,
    /// Triggers dropped because the bound was reached, by workflow id.
    dropped: HashMap<String, DroppedTriggers>,
}

impl Workflows {
    pub fn all(&self) -> &[WorkflowDef] {
        &self.defs
    }

    pub fn get(&self, id: &str) -> Option<&WorkflowDef> {
        self.defs.iter().find(|w| w.id == id)
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.defs.iter().position(|w| w.id == id)
    }

    pub fn at(&self, index: usize) -> &WorkflowDef {
        &self.defs[index]
    }

    /// Adds a workflow or replaces the one with its id, and reindexes.
    pub fn put(&mut self, def: WorkflowDef, log: &mut EventLog) {
        match self.index(&def.id) {
            Some(i) => self.defs[i] = def,
            None => self.defs.push(def),
        }
        self.reindex(log);
    }

    pub fn remove(&mut self, id: &str, log: &mut EventLog) -> Option<WorkflowDef> {
        let i = self.index(id)?;
        let def = self.defs.remove(i);
        self.dropped.remove(id);
        self.reindex(log);
        Some(def)
    }

    fn reindex(&mut self, log: &mut EventLog) {
        self.on_change.clear();
        self.on_event.clear();
        for (i, def) in self.defs.iter().enumerate() {
            if !def.status.runs() {
                continue;
            }
            match &def.trigger {
                Trigger::SegmentEntered(id) => {
                    self.on_change.entry(id.clone()).or_default()[0].push(i)
                }
                Trigger::SegmentExited(id) => {
                    self.on_change.entry(id.clone()).or_default()[1].push(i)
                }
                Trigger::Event { event_type, filter } => {
                    let kind = log.types.intern(event_type);
                    let filter = filter.as_ref().map(|f| Filter::compile(f, &mut log.names));
                    self.on_event.entry(kind).or_default().push((i, filter));
                }
            }
        }
    }

    /// Running workflows a change of `segment_id` of `kind` triggers.
    pub fn on_change(&self, segment_id: &str, kind: ChangeKind) -> &[usize] {
        self.on_change
            .get(segment_id)
            .map_or(&[], |lists| match kind {
                ChangeKind::Entered => &lists[0],
                ChangeKind::Exited => &lists[1],
            })
    }

    pub fn watches_changes(&self) -> bool {
        !self.on_change.is_empty()
    }

    /// Running workflows an event of `kind` may trigger, with their filters.
    pub fn on_event(&self, kind: u32) -> &[(usize, Option<Filter>)] {
        self.on_event.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// Whether a workflow sets field `name` (its type must not change).
    pub fn sets_field(&self, name: &str) -> bool {
        self.defs.iter().any(|w| {
            w.actions
                .iter()
                .any(|a| matches!(a, Action::SetProperty { field, .. } if field == name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ActionResult, ActionType};

    // The store keeps these names in run history and reads them back with
    // `parse`: every name must come back as the value that wrote it.
    #[test]
    fn action_types_and_results_read_back_their_names() {
        for kind in ActionType::ALL {
            assert_eq!(ActionType::parse(kind.as_str()), Some(kind));
        }
        for result in ActionResult::ALL {
            assert_eq!(ActionResult::parse(result.as_str()), Some(result));
        }
        assert_eq!(ActionType::parse("Webhook"), None);
        assert_eq!(ActionResult::parse(""), None);
    }
}

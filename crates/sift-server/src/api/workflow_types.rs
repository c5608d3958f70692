//! The bodies workflow routes take and answer (docs/api.md "Workflows"), as
//! the OpenAPI document describes them.
//!
//! A workflow body is read by `workflow_body`, not by serde: its faults
//! name the part at fault (`actions[1].points`) and a `PATCH` is merged into
//! the saved workflow's JSON form before it is read. [`WorkflowBody`],
//! [`Trigger`] and [`Action`] are the contract that reader keeps; the
//! tests check it against real answers. Answers list their fields in
//! alphabetical order, as the sorted JSON maps they were built from before
//! they were typed.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

/// `draft` (never runs), `test` (runs only for its test segment),
/// `active`, or `paused`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = WorkflowStatus)]
pub enum Status {
    Draft,
    Test,
    Active,
    Paused,
}

/// What sets a run off: a contact entering or leaving a segment, or an
/// event of a type (optionally filtered on its properties).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = WorkflowTrigger)]
pub enum Trigger {
    SegmentEntered {
        /// The segment's id (or its name, when no id matches).
        segment: String,
    },
    SegmentExited {
        segment: String,
    },
    Event {
        event_type: String,
        /// A condition over the event's properties, as text or a JSON
        /// tree; answers give the tree (or null).
        #[serde(rename = "where", default)]
        #[schema(value_type = Value)]
        filter: Option<Json>,
        /// In answers only: `where` as text, when there is one.
        #[serde(default)]
        where_text: Option<String>,
    },
}

/// One step of a run, in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = WorkflowAction)]
pub enum Action {
    AddToSegment {
        /// A static segment's id (or name).
        segment: String,
    },
    RemoveFromSegment {
        segment: String,
    },
    AddScore {
        points: f64,
        /// Like `30d` or `30 days`; null: never.
        #[serde(default)]
        expires_after: Option<String>,
    },
    SetProperty {
        field: String,
        /// The new value; null removes the property.
        value: Json,
    },
    Webhook {
        url: String,
        /// Signs the request; never answered back (see `secret_hint`). A
        /// `PATCH` that leaves it out keeps the saved action's secret for
        /// the same URL.
        #[serde(default)]
        secret: Option<String>,
        /// In answers: the end of the secret; ignored in a request.
        #[serde(default)]
        secret_hint: Option<String>,
    },
}

/// `POST /v1/workflows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Welcome big spenders", "status": "test", "test_segment": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v",
    "trigger": {"type": "event", "event_type": "purchase", "where": "amount > 100"},
    "filter": "country = \"ES\"",
    "actions": [{"type": "add_score", "points": 20, "expires_after": "30d"},
                {"type": "webhook", "url": "https://example.com/hooks/vip", "secret": "a-long-random-string"}]
}))]
pub struct WorkflowBody {
    pub name: String,
    /// `draft` unless given.
    #[serde(default)]
    pub status: Option<Status>,
    /// The segment a `test` workflow runs for (id or name).
    #[serde(default)]
    pub test_segment: Option<String>,
    pub trigger: Trigger,
    /// A contact condition (text or JSON tree) a contact must meet to run.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub filter: Option<Json>,
    pub actions: Vec<Action>,
}

/// `PATCH /v1/workflows/{id}`: the keys given replace the saved ones
/// (`trigger` and `actions` whole).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "paused"}))]
pub struct WorkflowPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub test_segment: Option<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    #[schema(value_type = Value)]
    pub filter: Option<Json>,
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
}

/// A workflow: its body (secrets only as hints), the text forms of its
/// conditions, the triggers waiting to run, and what was dropped.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "wf_01j9zq3v4k5m6n7p8q9r0s1t2v", "name": "Welcome", "status": "active", "test_segment": null,
    "trigger": {"type": "segment_entered", "segment": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v"},
    "filter": null, "filter_text": null,
    "actions": [{"type": "add_score", "points": 5, "expires_after": null}],
    "queued": 0, "dropped": 0, "dropped_since": null, "last_dropped_at": null,
    "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:00.000Z"
}))]
pub struct Workflow {
    #[schema(value_type = Vec<Action>)]
    pub actions: Json,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Triggers dropped (queue full, or the workflow paused) since `dropped_since`.
    pub dropped: u64,
    #[schema(format = DateTime, required = true)]
    pub dropped_since: Option<String>,
    /// The contact condition as a JSON tree.
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties, required = true)]
    pub filter: Option<Json>,
    #[schema(required = true)]
    pub filter_text: Option<String>,
    pub id: String,
    #[schema(format = DateTime, required = true)]
    pub last_dropped_at: Option<String>,
    pub name: String,
    /// Triggers waiting to run.
    pub queued: u64,
    #[schema(value_type = Status)]
    pub status: String,
    #[schema(required = true)]
    pub test_segment: Option<String>,
    #[schema(value_type = Trigger)]
    pub trigger: Json,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// One run of a workflow for one contact.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "run_7", "workflow_id": "wf_01j9zq3v4k5m6n7p8q9r0s1t2v", "contact_id": "c1",
    "trigger": {"type": "segment_entered", "segment": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v", "seq": 12, "at": "2026-01-05T10:00:00.000Z"},
    "mode": "active", "status": "done", "depth": 0,
    "actions": [{"index": 0, "type": "add_score", "result": "added 5 points"}],
    "error": null, "at": "2026-01-05T10:00:00.010Z"
}))]
#[schema(as = WorkflowRun)]
pub struct Run {
    pub actions: Vec<RunAction>,
    #[schema(format = DateTime)]
    pub at: String,
    pub contact_id: String,
    /// How many runs led to this one (a run's writes can trigger others).
    pub depth: u32,
    /// Why the run stopped, when it did.
    #[schema(required = true)]
    pub error: Option<String>,
    pub id: String,
    /// `test` or `active`: the mode the workflow ran in.
    pub mode: String,
    /// `done`, `failed`, `filtered`, `skipped` or `stopped`.
    pub status: String,
    pub trigger: RunTrigger,
    pub workflow_id: String,
}

/// What set a run off: a change (`segment_entered`/`segment_exited`, with
/// `segment` and `seq`) or an event (`event`, with `event_type` and
/// `event_id`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorkflowRunTrigger)]
pub struct RunTrigger {
    #[schema(format = DateTime)]
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub event_id: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub seq: Option<Json>,
    #[serde(rename = "type")]
    pub kind: String,
}

/// What one action of a run did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorkflowRunAction)]
pub struct RunAction {
    /// A webhook action's delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<RunDelivery>,
    pub index: u32,
    pub result: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Where a webhook action's request stands.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorkflowRunDelivery)]
pub struct RunDelivery {
    pub attempts: u32,
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
    pub id: String,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// While `pending`.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    /// `pending`, `delivered` or `failed` (retries given up).
    pub state: String,
    pub url: String,
}

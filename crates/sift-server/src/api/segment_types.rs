//! The bodies segment routes take and answer (docs/api.md "Segments"), as
//! the OpenAPI document describes them.
//!
//! Answers list their fields in alphabetical order: they were serialized
//! from sorted JSON maps before they were typed, and keep the same bytes.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sift_engine::{Segment as EngineSegment, SegmentKind, Usage, Workspace, format_datetime};
use utoipa::ToSchema;

use super::contact_types::Contact;

/// `dynamic` (members follow the condition) or `static` (members are added
/// and removed by hand).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = SegmentKind)]
pub enum Kind {
    Dynamic,
    Static,
}

impl From<SegmentKind> for Kind {
    fn from(kind: SegmentKind) -> Kind {
        match kind {
            SegmentKind::Dynamic => Kind::Dynamic,
            SegmentKind::Static => Kind::Static,
        }
    }
}

/// A segment with its current size.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v", "name": "Spanish shoppers", "description": "",
    "kind": "dynamic", "condition": "country = \"ES\"",
    "condition_tree": {"field": "country", "op": "eq", "value": "ES"}, "test": false,
    "size": 2, "size_known": 2, "size_anonymous": 0,
    "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:00.000Z"
}))]
pub struct Segment {
    /// The condition as text; null for a static segment.
    #[schema(required = true)]
    pub condition: Option<String>,
    /// The condition as a JSON tree (docs/conditions.md); null for a static segment.
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties, required = true)]
    pub condition_tree: Option<Json>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub description: String,
    /// What the write did: only in the answers of create and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    pub id: String,
    pub kind: Kind,
    pub name: String,
    /// Members, anonymous ones included.
    pub size: u64,
    pub size_anonymous: u64,
    pub size_known: u64,
    /// A test segment is left out of counts meant for production.
    pub test: bool,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl Segment {
    pub fn of(engine: &Workspace, segment: &EngineSegment) -> Segment {
        let def = &segment.def;
        let schema = engine.schema();
        let size = segment.members.len();
        let anonymous = segment
            .members
            .intersection_len(engine.contacts().anonymous());
        Segment {
            condition: def
                .condition
                .as_ref()
                .map(|c| sift_lang::to_text(c, &schema)),
            condition_tree: def.condition.as_ref().map(sift_lang::to_json),
            created_at: format_datetime(def.created_at),
            description: def.description.clone(),
            evaluation: None,
            id: def.id.clone(),
            kind: def.kind.into(),
            name: def.name.clone(),
            size,
            size_anonymous: anonymous,
            size_known: size - anonymous,
            test: def.test,
            updated_at: format_datetime(def.updated_at),
        }
    }
}

/// How many contacts a create or an update moved, and how long the
/// evaluation took.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SegmentEvaluation)]
pub struct Evaluation {
    pub entered: u64,
    pub exited: u64,
    pub took_ms: f64,
    /// Stored events read from disk to count what memory does not hold
    /// (an all-time count, or a window longer than any a live segment or
    /// scoring rule reads); 0 when memory answered.
    pub history_events_read: u64,
    /// The part of `took_ms` spent reading them (included in `took_ms`).
    pub history_ms: f64,
}

/// `POST /v1/segments`. Give the condition as text (`condition`) or as a
/// JSON tree (`condition_tree`), not both; a static segment has none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Spanish shoppers", "condition": "country = \"ES\" and performed purchase in last 30 days"}))]
pub struct SegmentCreate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `dynamic` unless given.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// The condition as text (docs/conditions.md).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub condition: Option<Json>,
    /// The condition as a JSON tree (docs/conditions.md).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties)]
    pub condition_tree: Option<Json>,
    /// Marks a segment for trying things out.
    #[serde(default)]
    pub test: Option<bool>,
}

/// `PATCH /v1/segments/{id}`: the keys given replace the saved ones; a new
/// condition is evaluated over every contact before the answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"condition": "country = \"ES\" and lead_score >= 50"}))]
pub struct SegmentUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The new condition as text.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub condition: Option<Json>,
    /// The new condition as a JSON tree.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties)]
    pub condition_tree: Option<Json>,
}

/// `POST /v1/segments:preview`: an unsaved condition (none: every contact).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"condition": "lead_score >= 50", "segment_id": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v", "sample": 5}))]
#[schema(as = SegmentPreviewRequest)]
pub struct PreviewRequest {
    /// The condition as text.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub condition: Option<Json>,
    /// The condition as a JSON tree.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties)]
    pub condition_tree: Option<Json>,
    /// A saved segment to compare with: the answer adds `entering` and `leaving`.
    #[serde(default)]
    pub segment_id: Option<String>,
    /// How many members to show, 10 unless given.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub sample: Option<u64>,
}

/// The size and a sample of an unsaved condition's members.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "size": 1, "size_anonymous": 0, "sample": [], "condition": "lead_score >= 50",
    "condition_tree": {"field": "lead_score", "op": "gte", "value": 50}, "took_ms": 0.2,
    "warnings": []
}))]
#[schema(as = SegmentPreview)]
pub struct Preview {
    /// The condition, printed canonically.
    pub condition: String,
    pub condition_tree: Json,
    /// With `segment_id`: members the segment would gain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entering: Option<u64>,
    /// With `segment_id`: members the segment would lose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaving: Option<u64>,
    /// The first members, as contacts (`GET /v1/contacts/{id}`).
    pub sample: Vec<Contact>,
    pub size: u64,
    /// How many of `size` are anonymous contacts (docs/concepts.md
    /// "Identify"); the rest are known.
    pub size_anonymous: u64,
    pub took_ms: f64,
    /// Parts of the condition that are valid but can never (or always)
    /// hold, such as a reversed `between`; saving is still allowed.
    pub warnings: Vec<ConditionWarning>,
}

/// Advice on a valid condition, shown before saving it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "message": "lead_score between 10 and 5 is never true: its first bound is above its second (write between 5 and 10)",
    "path": "/all/1"
}))]
pub struct ConditionWarning {
    /// What is wrong and what to write instead.
    pub message: String,
    /// A JSON pointer into `condition_tree` to the node the warning is about
    /// (`""`: the whole condition).
    pub path: String,
}

impl From<sift_lang::Warning> for ConditionWarning {
    fn from(warning: sift_lang::Warning) -> ConditionWarning {
        ConditionWarning {
            message: warning.message,
            path: warning.path,
        }
    }
}

/// The contacts to add to or remove from a static segment.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"contact_ids": ["c1", "c2"]}))]
#[schema(as = SegmentMembers)]
pub struct MembersBody {
    /// At most 10,000 contact ids.
    pub contact_ids: Vec<String>,
}

/// What an add or a remove changed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"added": 2, "removed": 0, "size": 2}))]
#[schema(as = SegmentMembersChanged)]
pub struct MembersChanged {
    pub added: u64,
    pub removed: u64,
    /// The segment's size after the change.
    pub size: u64,
}

/// Something that refers to a segment (or a field).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"type": "workflow", "id": "wf_01j9zq3v4k5m6n7p8q9r0s1t2v", "name": "Welcome", "role": "trigger", "status": "active"}))]
pub struct SegmentUsage {
    pub id: String,
    pub name: String,
    /// `condition` for a segment; `trigger`, `filter`, `action_target` or
    /// `test_segment` for a workflow.
    pub role: String,
    /// A workflow's status; absent for a segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `segment` or `workflow`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl SegmentUsage {
    /// Read from the JSON the 409 of a delete also carries, so the two
    /// stay the same shape.
    pub fn list(usages: &[Usage]) -> Result<Vec<SegmentUsage>, crate::error::ApiError> {
        serde_json::from_value(super::usages_json(usages)).map_err(crate::error::ApiError::internal)
    }
}

/// The answer of a delete.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v", "deleted": true}))]
pub struct Deleted {
    pub deleted: bool,
    pub id: String,
}

impl Deleted {
    pub fn new(id: String) -> Deleted {
        Deleted { deleted: true, id }
    }
}

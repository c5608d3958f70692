//! The bodies scoring-rule routes take and answer (docs/api.md "Scoring
//! rules"), as the OpenAPI document describes them.
//!
//! Answers list their fields in alphabetical order: they were serialized
//! from sorted JSON maps before they were typed, and keep the same bytes.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sift_engine::{ScoringRule as EngineRule, Workspace, format_datetime};
use utoipa::ToSchema;

use super::number;

/// A scoring rule: each matching event adds `points` to its contact's
/// `lead_score`, taken away again `expires_after` after the event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "rule_01j9zq3v4k5m6n7p8q9r0s1t2v", "event_type": "purchase",
    "where": {"field": "amount", "op": "gt", "value": 50}, "where_text": "amount > 50",
    "points": 10, "expires_after": "30d",
    "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:00.000Z"
}))]
pub struct ScoringRule {
    /// Changes of segment membership the write recorded: only in the
    /// answers of create and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<u64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub event_type: String,
    /// How long the points count, like `30d`; null: for ever.
    #[schema(required = true)]
    pub expires_after: Option<String>,
    pub id: String,
    /// Integral points print without a fraction.
    #[schema(value_type = f64)]
    pub points: Json,
    /// Contacts rescored by the write: only in the answers of create and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescored: Option<u64>,
    /// Stored events read from disk to rescore (every contact's points of
    /// rules without expiry come from the whole history): only in the
    /// answers of create and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_events_read: Option<u64>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The filter over the event's properties as a JSON tree; null: every event of the type.
    #[serde(rename = "where")]
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties, required = true)]
    pub filter: Option<Json>,
    /// The filter as text.
    #[schema(required = true)]
    pub where_text: Option<String>,
}

impl ScoringRule {
    pub fn of(engine: &Workspace, rule: &EngineRule) -> ScoringRule {
        let schema = engine.schema();
        ScoringRule {
            changes: None,
            created_at: format_datetime(rule.created_at),
            event_type: rule.event_type.clone(),
            expires_after: rule.expires_after.map(sift_lang::duration_to_json),
            id: rule.id.clone(),
            points: number(rule.points),
            rescored: None,
            history_events_read: None,
            updated_at: format_datetime(rule.updated_at),
            filter: rule.filter.as_ref().map(sift_lang::to_json),
            where_text: rule.filter.as_ref().map(|f| sift_lang::to_text(f, &schema)),
        }
    }
}

/// `POST /v1/scoring-rules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "purchase", "where": "amount > 50", "points": 10, "expires_after": "30 days"}))]
pub struct ScoringRuleCreate {
    /// The event type the rule scores, like `purchase`.
    pub event_type: String,
    /// A condition over the event's properties, as text (`amount > 50`) or
    /// as a JSON tree; absent or null: every event of the type.
    #[serde(default, rename = "where")]
    #[schema(value_type = Value)]
    pub filter: Option<Json>,
    pub points: f64,
    /// `30d` or `30 days`; absent or null: the points never expire.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub expires_after: Option<Json>,
}

/// `PATCH /v1/scoring-rules/{id}`: the keys given replace the saved ones;
/// `null` removes `where` or `expires_after`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"points": 15, "expires_after": null}))]
pub struct ScoringRuleUpdate {
    #[serde(default)]
    pub event_type: Option<String>,
    /// As text or a JSON tree; null removes the filter.
    #[serde(default, rename = "where", deserialize_with = "super::present")]
    #[schema(value_type = Value)]
    pub filter: Option<Json>,
    #[serde(default)]
    pub points: Option<f64>,
    /// Null: the points never expire.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub expires_after: Option<Json>,
}

/// The answer of a delete: the rule's points are taken away again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "rule_01j9zq3v4k5m6n7p8q9r0s1t2v", "deleted": true, "rescored": 3, "changes": 1, "history_events_read": 120}))]
pub struct ScoringRuleDeleted {
    pub changes: u64,
    pub deleted: bool,
    /// Stored events read from disk to rescore.
    pub history_events_read: u64,
    pub id: String,
    pub rescored: u64,
}

//! `GET /v1/contacts/{id}/score`: where a contact's `lead_score` comes from
//! (docs/api.md "Where a score comes from"). The engine splits the score by
//! source from the same events and grants that make it; here a workflow
//! run's grants are put under the workflow that ran, read from the store.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sift_engine::{ScorePart, ScoreSource, format_datetime};
use utoipa::ToSchema;

use super::{Path, Ws, contact_no, serialize_number};
use crate::error::{ApiError, ApiResult};
use crate::state::WorkspaceHandle;

/// Where a contact's `lead_score` comes from.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "contact_id": "c_123", "lead_score": 25, "at": "2026-01-05T10:00:00.000Z",
    "items": [
        {"source": "rule", "rule_id": "rule_01j9zq3v4k5m6n7p8q9r0s1t2v", "event_type": "purchase",
         "where_text": "amount > 50", "points": 20, "events": 2, "expires_at": null},
        {"source": "workflow", "workflow_id": "wf_01j9zq3v4k5m6n7p8q9r0s1t2v", "workflow_name": "Welcome",
         "points": 5, "grants": 1, "expires_at": "2026-02-04T10:00:00.000Z"}
    ]
}))]
pub struct ContactScore {
    pub contact_id: String,
    /// The score the parts add up to (exactly, for whole-number points).
    #[schema(value_type = f64)]
    #[serde(serialize_with = "serialize_number")]
    pub lead_score: f64,
    /// The instant the score was last brought up to date: expiries at or
    /// before it have been taken away.
    #[schema(format = DateTime)]
    pub at: String,
    /// Rules in their order, then workflows in the order they first gave
    /// points, then deleted events. Only sources giving points now.
    pub items: Vec<ScoreItem>,
}

/// What one source gives a contact now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreItem {
    /// `rule`: a scoring rule's points for the contact's events; `workflow`:
    /// points `add_score` actions of a workflow gave; `deleted_events`:
    /// what rules without expiry gave events deleted past the retention.
    #[schema(value_type = String, pattern = "^(rule|workflow|deleted_events)$")]
    pub source: &'static str,
    /// The rule (source `rule`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The rule's event type (source `rule`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The rule's filter as text (source `rule`; absent: every event of the type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub where_text: Option<String>,
    /// The workflow (source `workflow`; absent when the runs that gave the
    /// points are past the run retention, or the workflow was deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "serialize_number")]
    pub points: f64,
    /// The events whose points count now (source `rule`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// The `add_score` grants whose points count now (source `workflow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<u64>,
    /// The earliest instant some of these points are taken away; null: none expire.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
}

impl ScoreItem {
    fn new(source: &'static str, points: f64, expires_at: Option<i64>) -> ScoreItem {
        ScoreItem {
            source,
            rule_id: None,
            event_type: None,
            where_text: None,
            workflow_id: None,
            workflow_name: None,
            points,
            events: None,
            grants: None,
            expires_at: expires_at.map(format_datetime),
        }
    }
}

/// What the engine answers, before runs are put under their workflows.
struct Read {
    contact_id: String,
    lead_score: f64,
    at: i64,
    rules: Vec<ScoreItem>,
    runs: Vec<(u64, ScorePart)>,
    deleted: Option<ScoreItem>,
}

/// A contact's score with where it comes from; the UI's contact page shows
/// the same.
pub async fn score_of(ws: &Arc<WorkspaceHandle>, id: String) -> ApiResult<ContactScore> {
    let handle = ws.clone();
    // The engine reads the contact's stored events behind the writer's
    // flush: a blocking wait, off the async threads.
    let read = tokio::task::spawn_blocking(move || {
        handle.read(|engine| {
            let no = contact_no(engine, &id)?;
            let parts = engine.score_parts(no)?;
            let view = engine
                .contact(no)
                .ok_or_else(|| ApiError::not_found(format!("contact {id:?} does not exist")))?;
            let schema = engine.schema();
            let mut read = Read {
                contact_id: view.id.clone(),
                lead_score: view.lead_score,
                at: engine.clock(),
                rules: Vec::new(),
                runs: Vec::new(),
                deleted: None,
            };
            for part in parts {
                match &part.source {
                    ScoreSource::Rule(rule_id) => {
                        let rule = engine.scoring_rule(rule_id);
                        let mut item = ScoreItem::new("rule", part.points, part.next_expiry);
                        item.rule_id = Some(rule_id.clone());
                        item.event_type = rule.map(|r| r.event_type.clone());
                        item.where_text = rule
                            .and_then(|r| r.filter.as_ref())
                            .map(|f| sift_lang::to_text(f, &schema));
                        item.events = Some(part.count);
                        read.rules.push(item);
                    }
                    ScoreSource::Run(run) => read.runs.push((*run, part)),
                    ScoreSource::Deleted => {
                        read.deleted = Some(ScoreItem::new(
                            "deleted_events",
                            part.points,
                            part.next_expiry,
                        ));
                    }
                }
            }
            Ok::<_, ApiError>(read)
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))???;
    let run_ids: Vec<u64> = read.runs.iter().map(|(run, _)| *run).collect();
    let workflows: HashMap<u64, String> = if run_ids.is_empty() {
        HashMap::new()
    } else {
        ws.service
            .reads
            .run(move |reader| reader.run_workflows(&run_ids).map_err(ApiError::internal))
            .await?
            .into_iter()
            .collect()
    };
    let names: HashMap<String, String> = ws.read(|engine| {
        workflows
            .values()
            .filter_map(|id| Some((id.clone(), engine.workflow(id)?.name.clone())))
            .collect()
    })?;
    let mut items = read.rules;
    // One item per workflow, in the order its first grant came.
    let mut by_workflow: Vec<ScoreItem> = Vec::new();
    for (run, part) in read.runs {
        let workflow = workflows.get(&run).filter(|id| names.contains_key(*id));
        let at = by_workflow
            .iter()
            .position(|item| item.workflow_id.as_ref() == workflow);
        let at = match at {
            Some(at) => at,
            None => {
                let mut item = ScoreItem::new("workflow", 0.0, None);
                item.workflow_id = workflow.cloned();
                item.workflow_name = workflow.and_then(|id| names.get(id)).cloned();
                item.grants = Some(0);
                by_workflow.push(item);
                by_workflow.len() - 1
            }
        };
        let Some(item) = by_workflow.get_mut(at) else {
            continue;
        };
        item.points += part.points;
        item.grants = Some(item.grants.unwrap_or(0) + part.count);
        if let Some(next) = part.next_expiry {
            let next = format_datetime(next);
            // Same-format UTC instants order as text.
            if item.expires_at.as_ref().is_none_or(|e| next < *e) {
                item.expires_at = Some(next);
            }
        }
    }
    items.extend(by_workflow);
    items.extend(read.deleted);
    Ok(ContactScore {
        contact_id: read.contact_id,
        lead_score: read.lead_score,
        at: format_datetime(read.at),
        items,
    })
}

/// Where a contact's `lead_score` comes from: per scoring rule (points,
/// events counting, the next expiry), per workflow that gave points with
/// `add_score`, and what events deleted past the retention gave.
#[utoipa::path(get, path = "/v1/contacts/{id}/score", operation_id = "contacts_score", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    responses((status = 200, description = "the score and its sources", body = ContactScore),
              (status = 404, description = "no such contact")))]
pub async fn score(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<ContactScore>> {
    Ok(axum::Json(score_of(&ws, id).await?))
}

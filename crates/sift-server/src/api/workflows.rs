//! Workflows (docs/concepts.md, §4): create, list, read, edit, delete, and each
//! workflow's run history. Runs happen in the server's runner
//! (`runner.rs`), after the write that triggered them is durable; the
//! history shows only durable runs.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::{
    ActionType, QueuedItem, RunRecord, RunStatus, Trigger, TriggerKind, WorkflowDef, Workspace,
    format_datetime,
};
use sift_store::{Delivery, RunFilter};

use super::segment_types::Deleted;
use super::workflow_body::{
    WORKFLOW_KEYS, body_of, check_destinations, keep_secrets, mask_secrets, workflow_input,
};
use super::workflow_types::{
    Run, RunAction, RunDelivery, RunTrigger, Workflow, WorkflowBody, WorkflowPatch,
};
use super::{Body, Path, Query, Ws, limit, run_id, unknown_key};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("workflow {id:?} does not exist"))
        .with(json!({"kind": "workflow", "id": id}))
}

/// A workflow as the API answers it: the body's form, plus its id, the
/// text forms of its conditions, the triggers waiting to run and times.
pub fn workflow_view(engine: &Workspace, def: &WorkflowDef) -> Workflow {
    let schema = engine.schema();
    let mut body = body_of(def);
    mask_secrets(&mut body);
    if let Trigger::Event {
        filter: Some(filter),
        ..
    } = &def.trigger
    {
        body["trigger"]["where_text"] = json!(sift_lang::to_text(filter, &schema));
    }
    let dropped = engine.dropped_runs_for(&def.id);
    Workflow {
        actions: body["actions"].take(),
        created_at: format_datetime(def.created_at),
        dropped: dropped.map_or(0, |d| d.count),
        dropped_since: dropped.map(|d| format_datetime(d.since)),
        filter: def.filter.as_ref().map(sift_lang::to_json),
        filter_text: def.filter.as_ref().map(|f| sift_lang::to_text(f, &schema)),
        id: def.id.clone(),
        last_dropped_at: dropped.map(|d| format_datetime(d.last_at)),
        name: def.name.clone(),
        queued: engine.queued_runs_for(&def.id),
        status: def.status.as_str().to_string(),
        test_segment: def.test_segment.clone(),
        trigger: body["trigger"].take(),
        updated_at: format_datetime(def.updated_at),
    }
}

fn run_trigger(trigger: &TriggerKind, item: &QueuedItem) -> RunTrigger {
    match trigger {
        TriggerKind::Change { segment_id, kind } => RunTrigger {
            at: format_datetime(item.at),
            event_id: None,
            event_type: None,
            segment: Some(segment_id.clone()),
            seq: Some(json!(item.seq)),
            kind: format!("segment_{}", kind.as_str()),
        },
        TriggerKind::Event { event_type } => RunTrigger {
            at: format_datetime(item.at),
            event_id: Some(json!(item.event_id)),
            event_type: Some(event_type.clone()),
            segment: None,
            seq: None,
            kind: "event".to_string(),
        },
    }
}

fn delivery_view(delivery: &Delivery) -> RunDelivery {
    RunDelivery {
        attempts: delivery.attempts,
        delivered_at: delivery.delivered_at.map(format_datetime),
        id: delivery.id.clone(),
        last_error: delivery.last_error.clone(),
        next_attempt_at: (delivery.state == "pending")
            .then(|| format_datetime(delivery.next_attempt_at)),
        state: delivery.state.clone(),
        url: delivery.url.clone(),
    }
}

/// One run: what set it off, in which mode, what each action did (a
/// webhook with its delivery state), and why it stopped if it did.
pub fn run_view(run: &RunRecord, deliveries: &[Delivery]) -> Run {
    let actions = run
        .actions
        .iter()
        .map(|action| {
            let id = format!("{}_{}", run_id(run.id), action.index);
            RunAction {
                delivery: deliveries.iter().find(|d| d.id == id).map(delivery_view),
                index: action.index,
                result: action.result.as_str().to_string(),
                kind: action.kind.as_str().to_string(),
            }
        })
        .collect();
    Run {
        actions,
        at: format_datetime(run.at),
        contact_id: run.contact_id.clone(),
        depth: run.depth,
        error: run.error.clone(),
        id: run_id(run.id),
        mode: if run.test { "test" } else { "active" }.to_string(),
        status: run.status.as_str().to_string(),
        trigger: run_trigger(&run.trigger, &run.item),
        workflow_id: run.workflow_id.clone(),
    }
}

/// Every workflow, in creation order.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "workflows_list", security(("bearer" = [])), tag = "workflows",
    responses((status = 200, description = "the workflows", body = Page<Workflow>)))]
pub async fn list(Ws(ws): Ws) -> ApiResult<axum::Json<Page<Workflow>>> {
    let items = ws.read(|engine| {
        engine
            .workflows()
            .iter()
            .map(|def| workflow_view(engine, def))
            .collect()
    })?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The workflow after a write.
fn written(engine: &Workspace, id: &str) -> Result<Workflow, ApiError> {
    engine
        .workflow(id)
        .map(|def| workflow_view(engine, def))
        .ok_or_else(|| ApiError::internal(format!("workflow {id} is missing after its write")))
}

/// Creates a workflow. A `test` or `active` one runs for changes and events
/// from now on, never for earlier ones.
#[utoipa::path(post, path = "/v1/workflows", operation_id = "workflows_create", security(("bearer" = [])), tag = "workflows", request_body = WorkflowBody,
    responses((status = 201, description = "the workflow", body = Workflow),
              (status = 409, description = "the name is taken"),
              (status = 422, description = "an invalid part, named in details.field")))]
pub async fn create(
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<Workflow>)> {
    let id = crate::ids::new_id("wf");
    let (_, view) = ws
        .write(|engine, now| {
            let input = workflow_input(id.clone(), &body, engine)?;
            check_destinations(&input.actions, &ws.tasks.destinations)?;
            let write = engine.create_workflow(input, now)?;
            let view = written(engine, &id)?;
            Ok((write, view))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// One workflow.
#[utoipa::path(get, path = "/v1/workflows/{id}", operation_id = "workflows_get", security(("bearer" = [])), tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "the workflow", body = Workflow), (status = 404, description = "no such workflow")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Workflow>> {
    let view = ws.read(|engine| engine.workflow(&id).map(|def| workflow_view(engine, def)))?;
    view.map(axum::Json).ok_or_else(|| not_found(&id))
}

/// Edits a workflow: the given keys replace the saved ones (`trigger` and
/// `actions` whole). Pausing takes effect at once: triggers not yet run are
/// dropped, and resuming does not replay what happened meanwhile.
#[utoipa::path(patch, path = "/v1/workflows/{id}", operation_id = "workflows_update", security(("bearer" = [])), tag = "workflows", request_body = WorkflowPatch,
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "the workflow", body = Workflow), (status = 404, description = "no such workflow"),
              (status = 422, description = "an invalid part, named in details.field"),
              (status = 409, description = "the name is taken")))]
pub async fn update(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<Workflow>> {
    let Json::Object(patch) = &body else {
        return Err(ApiError::validation("the body must be a JSON object"));
    };
    if let Some(key) = unknown_key(patch, &WORKFLOW_KEYS) {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}; expected {}",
            WORKFLOW_KEYS.join(", ")
        ))
        .with(json!({"field": key})));
    }
    let (_, view) = ws
        .write(|engine, now| {
            let def = engine.workflow(&id).ok_or_else(|| not_found(&id))?;
            let mut merged = body_of(def);
            for (key, value) in patch {
                merged[key.as_str()] = value.clone();
            }
            keep_secrets(&mut merged["actions"], &def.actions);
            let input = workflow_input(id.clone(), &merged, engine)?;
            // Only new actions are checked: pausing a workflow saved before
            // the policy must not fail (its deliveries are refused anyway).
            if patch.contains_key("actions") {
                check_destinations(&input.actions, &ws.tasks.destinations)?;
            }
            let write = engine.update_workflow(input, now)?;
            let view = written(engine, &id)?;
            Ok((write, view))
        })
        .await?;
    Ok(axum::Json(view))
}

/// Deletes a workflow and its run history; triggers not yet run are
/// dropped. Points and memberships its runs gave stay.
#[utoipa::path(delete, path = "/v1/workflows/{id}", operation_id = "workflows_delete", security(("bearer" = [])), tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "deleted", body = Deleted), (status = 404, description = "no such workflow")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Deleted>> {
    ws.write(|engine, now| {
        if engine.workflow(&id).is_none() {
            return Err(not_found(&id));
        }
        Ok((engine.delete_workflow(&id, now)?, ()))
    })
    .await?;
    Ok(axum::Json(Deleted::new(id)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// `done`, `failed`, `filtered`, `skipped` or `stopped`.
    status: Option<String>,
    /// `test` or `active`: the mode the workflow ran in.
    mode: Option<String>,
    /// Only the runs for this contact.
    contact_id: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// A workflow's runs, newest first: one per trigger (a change, with its
/// seq, or an event), with what each action did.
#[utoipa::path(get, path = "/v1/workflows/{id}/runs", operation_id = "workflow_runs_list", security(("bearer" = [])), tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id"), RunsQuery),
    responses((status = 200, description = "a page of runs", body = Page<Run>), (status = 404, description = "no such workflow")))]
pub async fn runs(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<RunsQuery>,
) -> ApiResult<axum::Json<Page<Run>>> {
    if ws.read(|engine| engine.workflow(&id).is_none())? {
        return Err(not_found(&id));
    }
    let limit = limit(query.limit)?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be done, failed, filtered, skipped or stopped, got {text:?}"
            ))
        })?),
    };
    let test = match query.mode.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some("test") => Some(true),
        Some("active") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode must be test or active, got {other:?}"
            )));
        }
    };
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.strip_prefix("r")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("cursor {c:?} is not one this API returned"))
                })?,
        ),
    };
    let filter = RunFilter {
        before,
        status,
        test,
        contact_id: query.contact_id.as_deref(),
    };
    let (mut runs, deliveries) = {
        let reader = ws.reader()?;
        let runs = reader
            .runs(&id, &filter, limit + 1)
            .map_err(ApiError::internal)?;
        let with_webhooks: Vec<u64> = runs
            .iter()
            .filter(|r| r.actions.iter().any(|a| a.kind == ActionType::Webhook))
            .map(|r| r.id)
            .collect();
        let deliveries = reader
            .deliveries_of(&with_webhooks)
            .map_err(ApiError::internal)?;
        (runs, deliveries)
    };
    let more = runs.len() > limit;
    runs.truncate(limit);
    let next = more
        .then(|| runs.last().map(|r| format!("r{}", r.id)))
        .flatten();
    let items = runs.iter().map(|r| run_view(r, &deliveries)).collect();
    Ok(axum::Json(Page {
        items,
        next_cursor: next,
    }))
}

//! Workflows (docs/concepts.md, §4): create, list, read, edit, delete, and each
//! workflow's run history. Runs happen in the server's runner
//! (`runner.rs`), after the write that triggered them is durable; the
//! history shows only durable runs.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::{RunRecord, RunStatus, Trigger, WorkflowDef, Workspace};
use sift_store::{Delivery, RunFilter};

use super::workflow_body::{
    WORKFLOW_KEYS, body_of, check_destinations, keep_secrets, mask_secrets, workflow_input,
};
use super::{Body, Path, Query, Ws, datetime, limit, run_id, trigger_json};
use crate::error::{ApiError, ApiResult};
use crate::reply::{JsonResponse, ok, page};

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("workflow {id:?} does not exist"))
        .with(json!({"kind": "workflow", "id": id}))
}

/// A workflow as the API answers it: the body's form, plus its id, the
/// text forms of its conditions, the triggers waiting to run and times.
pub fn workflow_json(engine: &Workspace, def: &WorkflowDef) -> Json {
    let schema = engine.schema();
    let mut out = body_of(def);
    mask_secrets(&mut out);
    out["id"] = json!(def.id);
    out["filter_text"] = json!(def.filter.as_ref().map(|f| sift_lang::to_text(f, &schema)));
    if let Trigger::Event {
        filter: Some(filter),
        ..
    } = &def.trigger
    {
        out["trigger"]["where_text"] = json!(sift_lang::to_text(filter, &schema));
    }
    out["queued"] = json!(engine.queued_runs_for(&def.id));
    let dropped = engine.dropped_runs_for(&def.id);
    out["dropped"] = json!(dropped.map_or(0, |d| d.count));
    out["dropped_since"] = dropped.map_or(Json::Null, |d| datetime(d.since));
    out["last_dropped_at"] = dropped.map_or(Json::Null, |d| datetime(d.last_at));
    out["created_at"] = datetime(def.created_at);
    out["updated_at"] = datetime(def.updated_at);
    out
}

fn delivery_json(delivery: &Delivery) -> Json {
    json!({
        "id": delivery.id,
        "url": delivery.url,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": (delivery.state == "pending").then(|| datetime(delivery.next_attempt_at)),
        "delivered_at": delivery.delivered_at.map(datetime),
    })
}

/// One run: what set it off, in which mode, what each action did (a
/// webhook with its delivery state), and why it stopped if it did.
pub fn run_json(run: &RunRecord, deliveries: &[Delivery]) -> Json {
    let actions: Vec<Json> = run
        .actions
        .iter()
        .map(|action| {
            let mut out =
                json!({"index": action.index, "type": action.kind, "result": action.result});
            let id = format!("{}_{}", run_id(run.id), action.index);
            if let Some(delivery) = deliveries.iter().find(|d| d.id == id) {
                out["delivery"] = delivery_json(delivery);
            }
            out
        })
        .collect();
    json!({
        "id": run_id(run.id),
        "workflow_id": run.workflow_id,
        "contact_id": run.contact_id,
        "trigger": trigger_json(&run.trigger, &run.item),
        "mode": if run.test { "test" } else { "active" },
        "status": run.status.as_str(),
        "depth": run.depth,
        "actions": actions,
        "error": run.error,
        "at": datetime(run.at),
    })
}

/// Every workflow, in creation order.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "workflows_list", security(("bearer" = [])), tag = "workflows",
    responses((status = 200, description = "the workflows")))]
pub async fn list(Ws(ws): Ws) -> ApiResult<JsonResponse> {
    let body = ws.read(|engine| {
        let items = engine
            .workflows()
            .iter()
            .map(|def| workflow_json(engine, def))
            .collect();
        page(items, None)
    })?;
    Ok(ok(body))
}

/// Creates a workflow. A `test` or `active` one runs for changes and events
/// from now on, never for earlier ones.
#[utoipa::path(post, path = "/v1/workflows", operation_id = "workflows_create", security(("bearer" = [])), tag = "workflows", request_body = Object,
    responses((status = 201, description = "the workflow"),
              (status = 409, description = "the name is taken"),
              (status = 422, description = "an invalid part, named in details.field")))]
pub async fn create(
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<Json>)> {
    let id = format!("wf_{}", ulid::Ulid::new().to_string().to_lowercase());
    let (_, json) = ws
        .write(|engine, now| {
            let input = workflow_input(id.clone(), &body, engine)?;
            check_destinations(&input.actions, &ws.tasks.destinations)?;
            let write = engine.create_workflow(input, now)?;
            let json = engine
                .workflow(&id)
                .map_or(Json::Null, |def| workflow_json(engine, def));
            Ok((write, json))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json)))
}

/// One workflow.
#[utoipa::path(get, path = "/v1/workflows/{id}", operation_id = "workflows_get", security(("bearer" = [])), tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "the workflow"), (status = 404, description = "no such workflow")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    let body = ws.read(|engine| engine.workflow(&id).map(|def| workflow_json(engine, def)))?;
    body.map(ok).ok_or_else(|| not_found(&id))
}

/// Edits a workflow: the given keys replace the saved ones (`trigger` and
/// `actions` whole). Pausing takes effect at once: triggers not yet run are
/// dropped, and resuming does not replay what happened meanwhile.
#[utoipa::path(patch, path = "/v1/workflows/{id}", operation_id = "workflows_update", security(("bearer" = [])), tag = "workflows", request_body = Object,
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "the workflow"), (status = 404, description = "no such workflow"),
              (status = 422, description = "an invalid part, named in details.field"),
              (status = 409, description = "the name is taken")))]
pub async fn update(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<JsonResponse> {
    let Json::Object(patch) = &body else {
        return Err(ApiError::validation("the body must be a JSON object"));
    };
    if let Some(key) = patch.keys().find(|k| !WORKFLOW_KEYS.contains(&k.as_str())) {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}; expected {}",
            WORKFLOW_KEYS.join(", ")
        ))
        .with(json!({"field": key})));
    }
    let (_, json) = ws
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
            let json = engine
                .workflow(&id)
                .map_or(Json::Null, |def| workflow_json(engine, def));
            Ok((write, json))
        })
        .await?;
    Ok(ok(json))
}

/// Deletes a workflow and its run history; triggers not yet run are
/// dropped. Points and memberships its runs gave stay.
#[utoipa::path(delete, path = "/v1/workflows/{id}", operation_id = "workflows_delete", security(("bearer" = [])), tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, description = "deleted"), (status = 404, description = "no such workflow")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    ws.write(|engine, now| {
        if engine.workflow(&id).is_none() {
            return Err(not_found(&id));
        }
        Ok((engine.delete_workflow(&id, now)?, ()))
    })
    .await?;
    Ok(ok(json!({"id": id, "deleted": true})))
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
    responses((status = 200, description = "a page of runs"), (status = 404, description = "no such workflow")))]
pub async fn runs(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<RunsQuery>,
) -> ApiResult<JsonResponse> {
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
            .filter(|r| r.actions.iter().any(|a| a.kind == "webhook"))
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
    let items = runs.iter().map(|r| run_json(r, &deliveries)).collect();
    Ok(ok(page(items, next)))
}

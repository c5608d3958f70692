//! Workspaces and keys, managed with the admin key.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{Admin, Body, Path};
use crate::error::{ApiError, ApiResult};
use crate::reply::{JsonResponse, ok};
use crate::state::{AppState, key_id};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    name: String,
}

/// Creates a workspace and answers its first key (shown only this once).
#[utoipa::path(post, path = "/v1/workspaces", operation_id = "workspaces_create", security(("bearer" = [])), tag = "admin", request_body = Object,
    responses((status = 201, description = "{id, name, key}"), (status = 403, description = "not the admin key"),
              (status = 422, description = "a name of 1 to 200 characters is needed")))]
pub async fn create(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Body(body): Body<NewWorkspace>,
) -> ApiResult<JsonResponse> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation(
            "a workspace name must have 1 to 200 characters",
        ));
    }
    let (id, key) = state.create_workspace(&name).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "name": name, "key": key})),
    ))
}

/// Lists workspaces.
#[utoipa::path(get, path = "/v1/workspaces", operation_id = "workspaces_list", security(("bearer" = [])), tag = "admin", responses((status = 200, description = "the workspaces")))]
pub async fn list(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<JsonResponse> {
    let items: Vec<_> = state
        .workspace_rows()
        .into_iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    Ok(ok(json!({"items": items, "next_cursor": null})))
}

fn known(state: &AppState, ws: &str) -> ApiResult<()> {
    state
        .workspace(ws)
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("workspace {ws:?} does not exist")))
}

/// Adds a key to a workspace.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/keys", operation_id = "workspace_keys_create", security(("bearer" = [])), tag = "admin",
    params(("ws" = String, Path, description = "the workspace's id")),
    responses((status = 201, description = "{id, key}"),
              (status = 404, description = "no such workspace")))]
pub async fn add_key(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(ws): Path<String>,
) -> ApiResult<JsonResponse> {
    known(&state, &ws)?;
    let key = state.add_key(&ws).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": key_id(&key), "key": key})),
    ))
}

/// Lists a workspace's keys by id (the keys themselves are not stored).
#[utoipa::path(get, path = "/v1/workspaces/{ws}/keys", operation_id = "workspace_keys_list", security(("bearer" = [])), tag = "admin",
    params(("ws" = String, Path, description = "the workspace's id")),
    responses((status = 200, description = "key ids"),
              (status = 404, description = "no such workspace")))]
pub async fn list_keys(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(ws): Path<String>,
) -> ApiResult<JsonResponse> {
    known(&state, &ws)?;
    let keys = state.keys(&ws).map_err(ApiError::internal)?;
    let items: Vec<_> = keys
        .into_iter()
        .map(|(id, created)| json!({"id": id, "created_at": super::datetime(created)}))
        .collect();
    Ok(ok(json!({"items": items, "next_cursor": null})))
}

/// Revokes a key, named by its id or given whole.
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/keys/{key}", operation_id = "workspace_keys_revoke", security(("bearer" = [])), tag = "admin",
    params(("ws" = String, Path, description = "the workspace's id"), ("key" = String, Path, description = "the key's id or the key")),
    responses((status = 200, description = "revoked"), (status = 404, description = "no such key")))]
pub async fn revoke_key(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((ws, key)): Path<(String, String)>,
) -> ApiResult<JsonResponse> {
    known(&state, &ws)?;
    if state.revoke_key(&ws, &key).map_err(ApiError::internal)? {
        Ok(ok(json!({"id": key_id(&key), "revoked": true})))
    } else {
        Err(ApiError::not_found(format!(
            "workspace {ws:?} has no key {key:?}"
        )))
    }
}

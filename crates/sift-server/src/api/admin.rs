//! Workspaces and keys, managed with the admin key.

use axum::Json as Reply;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::{Admin, Body, Path};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;
use crate::state::{AppState, key_id};

// Answers declare their keys in alphabetical order, the order the untyped
// JSON they replace was printed in.

/// The body of `POST /v1/workspaces`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme marketing"}))]
pub struct NewWorkspace {
    /// 1 to 200 characters, after trimming spaces.
    name: String,
}

/// A new workspace with its first key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "ws_01jdx8e9m3n5p7q9r1s3t5v7w9", "key": "sk_3f2a9c1e7b5d0a4f8e6c2b1d9a7f5e3c", "name": "Acme marketing"}))]
pub struct CreatedWorkspace {
    pub id: String,
    /// The workspace's first key: shown only this once.
    pub key: String,
    pub name: String,
}

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "ws_01jdx8e9m3n5p7q9r1s3t5v7w9", "name": "Acme marketing"}))]
pub struct WorkspaceSummary {
    pub id: String,
    pub name: String,
}

/// A new key of a workspace.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "sk_3f2a9c1e", "key": "sk_3f2a9c1e7b5d0a4f8e6c2b1d9a7f5e3c"}))]
pub struct NewKey {
    /// Names the key from now on (to list or revoke it).
    pub id: String,
    /// The key: shown only this once.
    pub key: String,
}

/// A key of a workspace, by id (the key itself is not stored).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"created_at": "2026-11-29T15:00:00Z", "id": "sk_3f2a9c1e"}))]
pub struct KeyInfo {
    #[schema(format = DateTime)]
    pub created_at: String,
    pub id: String,
}

/// A revoked key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "sk_3f2a9c1e", "revoked": true}))]
pub struct KeyRevoked {
    pub id: String,
    /// Always `true`.
    pub revoked: bool,
}

/// Creates a workspace and answers its first key (shown only this once).
#[utoipa::path(post, path = "/v1/workspaces", operation_id = "workspaces_create", security(("bearer" = [])), tag = "admin", request_body = NewWorkspace,
    responses((status = 201, description = "the workspace and its first key", body = CreatedWorkspace), (status = 403, description = "not the admin key"),
              (status = 422, description = "a name of 1 to 200 characters is needed")))]
pub async fn create(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Body(body): Body<NewWorkspace>,
) -> ApiResult<(StatusCode, Reply<CreatedWorkspace>)> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation(
            "a workspace name must have 1 to 200 characters",
        ));
    }
    let (id, key) = state.create_workspace(&name).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Reply(CreatedWorkspace { id, key, name }),
    ))
}

/// Lists workspaces.
#[utoipa::path(get, path = "/v1/workspaces", operation_id = "workspaces_list", security(("bearer" = [])), tag = "admin", responses((status = 200, description = "every workspace, on one page", body = Page<WorkspaceSummary>)))]
pub async fn list(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Reply<Page<WorkspaceSummary>>> {
    let items = state
        .workspace_rows()
        .into_iter()
        .map(|(id, name)| WorkspaceSummary { id, name })
        .collect();
    Ok(Reply(Page {
        items,
        next_cursor: None,
    }))
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
    responses((status = 201, description = "the key, shown only this once", body = NewKey),
              (status = 404, description = "no such workspace")))]
pub async fn add_key(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(ws): Path<String>,
) -> ApiResult<(StatusCode, Reply<NewKey>)> {
    known(&state, &ws)?;
    let key = state.add_key(&ws).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Reply(NewKey {
            id: key_id(&key),
            key,
        }),
    ))
}

/// Lists a workspace's keys by id (the keys themselves are not stored).
#[utoipa::path(get, path = "/v1/workspaces/{ws}/keys", operation_id = "workspace_keys_list", security(("bearer" = [])), tag = "admin",
    params(("ws" = String, Path, description = "the workspace's id")),
    responses((status = 200, description = "the key ids, on one page", body = Page<KeyInfo>),
              (status = 404, description = "no such workspace")))]
pub async fn list_keys(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(ws): Path<String>,
) -> ApiResult<Reply<Page<KeyInfo>>> {
    known(&state, &ws)?;
    let keys = state.keys(&ws).map_err(ApiError::internal)?;
    let items = keys
        .into_iter()
        .map(|(id, created)| KeyInfo {
            created_at: sift_engine::format_datetime(created),
            id,
        })
        .collect();
    Ok(Reply(Page {
        items,
        next_cursor: None,
    }))
}

/// Revokes a key, named by its id or given whole.
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/keys/{key}", operation_id = "workspace_keys_revoke", security(("bearer" = [])), tag = "admin",
    params(("ws" = String, Path, description = "the workspace's id"), ("key" = String, Path, description = "the key's id or the key")),
    responses((status = 200, description = "revoked", body = KeyRevoked), (status = 404, description = "no such key")))]
pub async fn revoke_key(
    _: Admin,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((ws, key)): Path<(String, String)>,
) -> ApiResult<Reply<KeyRevoked>> {
    known(&state, &ws)?;
    if state.revoke_key(&ws, &key).map_err(ApiError::internal)? {
        Ok(Reply(KeyRevoked {
            id: key_id(&key),
            revoked: true,
        }))
    } else {
        Err(ApiError::not_found(format!(
            "workspace {ws:?} has no key {key:?}"
        )))
    }
}

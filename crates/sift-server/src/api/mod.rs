//! The HTTP API of docs/api.md: extractors (auth, JSON with our error shape) and
//! the conversions between engine types and JSON. Handlers live in the
//! submodules, one per resource.

pub mod admin;
pub mod changes;
pub mod contact_score;
pub mod contact_types;
pub mod contacts;
pub mod doc;
pub mod events;
pub mod export;
pub mod facebook;
pub mod facebook_audiences;
pub mod fields;
pub mod identify;
pub mod ops;
pub mod scoring;
pub mod scoring_types;
pub mod segment_history;
pub mod segment_match;
pub mod segment_types;
pub mod segments;
pub mod suggestions;
pub mod webhook_types;
pub mod webhooks;
pub mod workflow_body;
pub mod workflow_types;
pub mod workflows;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};
use sift_engine::Workspace;

use crate::error::{ApiError, Code};
use crate::state::{AppState, WorkspaceHandle};

/// The workspace of the request's bearer key.
pub struct Ws(pub Arc<WorkspaceHandle>);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                Code::Unauthorized,
                "missing Authorization header: send `Authorization: Bearer <key>`",
            )
        })?;
    let text = header.to_str().map_err(|_| {
        ApiError::new(
            Code::Unauthorized,
            "the Authorization header is not valid text",
        )
    })?;
    text.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::Unauthorized,
                "the Authorization header must be `Bearer <key>`",
            )
        })
}

/// The session cookie a request is signed with: only when it has no
/// `Authorization` header, which always wins.
fn signing_cookie(parts: &Parts) -> Option<&str> {
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return None;
    }
    crate::session::cookie(&parts.headers)
}

impl FromRequestParts<AppState> for Ws {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(cookie) = signing_cookie(parts) {
            return session_workspace(parts, state, cookie).map(Ws);
        }
        let key = bearer(parts)?;
        match state.workspace_for_key(key) {
            Some(ws) => Ok(Ws(ws)),
            None if state.is_admin(key) => Err(ApiError::new(
                Code::Forbidden,
                "the admin key manages workspaces; use a workspace key for workspace data",
            )),
            None => Err(ApiError::new(Code::Unauthorized, "unknown or revoked key")),
        }
    }
}

/// The web UI's scripts call the API with the session cookie. A cookie is
/// sent by the browser on its own, so a request that changes something must
/// also carry `Sift-UI: 1`, which a cross-site form cannot set.
fn session_workspace(
    parts: &Parts,
    state: &AppState,
    cookie: &str,
) -> Result<Arc<WorkspaceHandle>, ApiError> {
    let ws = state.workspace_for_session(cookie).ok_or_else(|| {
        ApiError::new(
            Code::Unauthorized,
            "your session has ended; sign in again at /ui/login",
        )
    })?;
    let marked = parts
        .headers
        .get("sift-ui")
        .is_some_and(|v| v.as_bytes() == b"1");
    if !parts.method.is_safe() && !marked {
        return Err(ApiError::new(
            Code::Forbidden,
            "a request signed in by the session cookie that changes data must send the header `Sift-UI: 1`",
        ));
    }
    Ok(ws)
}

/// Who made a request, for the history of what it changed: the public id
/// of its key (of the key its UI session was made from), and whether it
/// came through the API or the web UI. Authentication is [`Ws`]'s; this
/// only names the caller.
pub struct Author {
    pub key_id: Option<String>,
    pub via: &'static str,
}

impl FromRequestParts<AppState> for Author {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(cookie) = signing_cookie(parts) {
            return Ok(Author {
                key_id: state.sessions.key_id(cookie),
                via: "ui",
            });
        }
        Ok(Author {
            key_id: bearer(parts).ok().map(crate::ids::key_id),
            via: "api",
        })
    }
}

impl Author {
    /// Signs the revisions a segment write made.
    pub fn sign(&self, write: &mut sift_engine::Write) {
        for record in &mut write.records {
            if let sift_engine::Record::SegmentRevision(rev) = record {
                rev.key_id.clone_from(&self.key_id);
                rev.via = self.via.to_string();
            }
        }
    }
}

/// A request made with the admin key.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts)?;
        if state.is_admin(key) {
            Ok(Admin)
        } else if state.workspace_for_key(key).is_some() {
            Err(ApiError::new(
                Code::Forbidden,
                "this needs the admin key, not a workspace key",
            ))
        } else {
            Err(ApiError::new(Code::Unauthorized, "unknown key"))
        }
    }
}

/// Query parameters whose rejections use the API's error shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| Query(query.0))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Path parameters whose rejections use the API's error shape.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Path(path.0))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// A JSON body whose rejections use the API's error shape.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(Code::PayloadTooLarge, "the request body is too large")
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            })?;
        let value: T = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the body is not valid JSON for this request: {e}"))
                .with(json!({"line": e.line(), "column": e.column()}))
        })?;
        Ok(Body(value))
    }
}

/// The value conversions the store also uses (a workflow webhook's body
/// holds a contact and its values): one definition for both.
pub use sift_store::json::{datetime, number, run_id, value_json};

/// A client's JSON value as the engine reads it; the store rebuilds stored
/// events with the same mapping.
pub use sift_store::raw_value;

/// A number as [`number`] prints it, for typed answers.
pub fn serialize_number<S: serde::Serializer>(n: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&number(*n), serializer)
}

/// The first key of `map` that is not in `allowed`. Bodies are checked by
/// hand before they are read into their types so that each resource keeps
/// its own message (and a 422) where serde's `deny_unknown_fields` would
/// answer a generic 400; each caller words its own refusal.
pub fn unknown_key<'a>(map: &'a Map<String, Json>, allowed: &[&str]) -> Option<&'a str> {
    map.keys()
        .map(String::as_str)
        .find(|key| !allowed.contains(key))
}

pub use contact_types::Contact;

pub use crate::reply::usages_json;

/// Cursors are opaque to clients: `c` + the last contact number seen.
pub fn parse_cursor(cursor: Option<&str>) -> Result<Option<u32>, ApiError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c
            .strip_prefix('c')
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!("cursor {c:?} is not one this API returned"))
            }),
    }
}

pub fn cursor(no: u32) -> String {
    format!("c{no}")
}

/// A list's page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;

/// The largest `limit` a list takes.
pub const MAX_LIMIT: usize = 1000;

/// `limit` between 1 and [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent. Every
/// list's `limit` goes through here, so the OpenAPI document states these
/// bounds for every parameter of that name (`doc::complete`).
pub fn limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// The contact number of `id`, or 404.
pub fn contact_no(ws: &Workspace, id: &str) -> Result<u32, ApiError> {
    ws.lookup(id).ok_or_else(|| {
        ApiError::not_found(format!("contact {id:?} does not exist"))
            .with(json!({"kind": "contact", "id": id}))
    })
}

/// A body already checked by hand, read into its typed form. The checks
/// come first because they name the part at fault in the API's words; a
/// failure here means a check is missing, so it still answers 422.
pub fn checked<T: DeserializeOwned>(body: Json) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        ApiError::validation(format!("the body does not have the documented shape: {e}"))
    })
}

/// For a `PATCH` key where `null` (remove) differs from absent (keep):
/// with `#[serde(default)]`, absent is `None` and `null` is `Some(Null)`.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

//! `POST /v1/segments/{id}/exports/facebook` starts an export to a Facebook
//! Custom Audience (docs/api.md "CSV export" and "Facebook Custom Audience export"); `GET /v1/exports/{id}` follows it,
//! `GET /v1/segments/{id}/exports` lists a segment's, `DELETE
//! /v1/exports/{id}` stops one. The job itself is `crate::facebook`.
//!
//! The access token is taken here and handed to the job's task; no answer
//! carries it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use utoipa::ToSchema;
use utoipa::openapi::Schema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};

use super::{Body, Path, Ws, checked, present, unknown_key};
use crate::error::{ApiError, ApiResult, Code};
use crate::facebook::connection::Connection;
use crate::facebook::graph::Secret;
use crate::facebook::normalize::GENDER_FIELD;
use crate::facebook::{self, ExportJob, Key, Request};
use crate::reply::Page;
use crate::state::AppState;

const KEYS: [&str; 6] = [
    "audience_id",
    "access_token",
    "identifiers",
    "sync",
    "graph_url",
    "version",
];

/// `POST /v1/segments/{id}/exports/facebook`. Each key is read as any JSON
/// (`None` when absent, `Some(Null)` when null) and checked by the steps
/// below, which name the key at fault; the schema says what a valid body
/// holds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"audience_id": "23850000000000000", "access_token": "EAAB...", "identifiers": ["EMAIL", "PHONE"], "sync": true}))]
pub struct FacebookExport {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = audience_id_schema, required = true)]
    pub audience_id: Option<Json>,
    /// A token with `ads_management` permission for the ad account; never
    /// answered back or logged. Absent: the workspace's saved Facebook
    /// connection's (`PUT /v1/facebook/connection`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 4096)]
    pub access_token: Option<Json>,
    /// Identifiers to send (`EMAIL`, `PHONE`, `FN`, `LN`, `COUNTRY`,
    /// `DOBY`, `DOBM`, `DOBD`, `GEN`, `EXTERN_ID`, in any case); absent or
    /// null: every one the workspace can fill.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub identifiers: Option<Json>,
    /// Keep the audience equal to the segment afterwards; false unless given.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub sync: Option<Json>,
    /// Where the Graph API is; the saved connection's, else the server's setting, unless given.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub graph_url: Option<Json>,
    /// The Graph API version, like `v21.0`; the saved connection's, else the server's setting, unless given.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub version: Option<Json>,
}

/// What [`parse_audience_id`] takes: digits as a string, or a whole number
/// (ids are numeric, and a client may well send one as a number).
fn audience_id_schema() -> Schema {
    digits_or_number(
        "^[0-9]{1,32}$",
        "The Custom Audience's numeric id (a string, or a number).",
    )
}

/// A numeric Facebook id: a string matching `pattern`, or a whole number.
pub(super) fn digits_or_number(pattern: &str, description: &str) -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX)),
            )
            .description(Some(description))
            .build(),
    )
}

pub(super) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(message).with(json!({"field": field}))
}

fn valid_keys() -> String {
    Key::ALL.map(Key::name).join(", ")
}

pub(super) fn string<'a>(
    value: Option<&'a Json>,
    key: &str,
    example: &str,
) -> ApiResult<Option<&'a str>> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(invalid(
            key,
            format!("{key:?} must be a string like {example}, got {other}"),
        )),
    }
}

/// An export body, checked; what it leaves out comes from the workspace's
/// Facebook connection, else from the server's settings ([`complete`]).
struct Parsed {
    audience_id: String,
    token: Option<Secret>,
    keys: Vec<Key>,
    sync: bool,
    graph_url: Option<String>,
    version: Option<String>,
}

/// Checks the body whole; nothing starts unless all of it is valid.
fn parse(
    body: &Json,
    has_gender: bool,
    destinations: &crate::destination::Destinations,
) -> ApiResult<Parsed> {
    known_object(body)?;
    let body: FacebookExport = checked(body.clone())?;
    let audience_id = parse_audience_id(body.audience_id.as_ref())?;
    let token = parse_access_token(body.access_token.as_ref())?;
    let keys = parse_identifiers(body.identifiers.as_ref(), has_gender)?;
    let sync = parse_sync(body.sync.as_ref())?;
    let graph_url = parse_graph_url(body.graph_url.as_ref(), destinations)?;
    let version = parse_version(body.version.as_ref())?;
    Ok(Parsed {
        audience_id,
        token: token.map(|t| Secret::new(t.to_string())),
        keys,
        sync,
        graph_url,
        version,
    })
}

/// The workspace's connection, opened; a 409 when there is none.
pub(super) fn connection(
    ws: &crate::state::WorkspaceHandle,
    config: &crate::config::Config,
) -> ApiResult<Connection> {
    let row = facebook::connection::stored(&ws.service)
        .map_err(ApiError::internal)?
        .ok_or_else(not_connected)?;
    facebook::connection::open(&ws.service, row, config).map_err(|why| {
        ApiError::new(
            Code::FacebookNotConnected,
            format!("the saved Facebook access token cannot be opened ({why}): save the connection again"),
        )
    })
}

pub(super) fn not_connected() -> ApiError {
    ApiError::new(
        Code::FacebookNotConnected,
        "no Facebook connection is saved for this workspace: save an access token and ad account first (PUT /v1/facebook/connection)",
    )
}

/// The request a parsed body makes: a token the body lacks is the
/// connection's, and so are the Graph URL and version, before the server's.
fn complete(
    parsed: Parsed,
    segment_id: String,
    ws: &crate::state::WorkspaceHandle,
    config: &crate::config::Config,
) -> ApiResult<Request> {
    let settings = &config.facebook;
    let (token, graph_url, version) = match parsed.token {
        Some(token) => {
            let row = facebook::connection::stored(&ws.service).map_err(ApiError::internal)?;
            let (graph_url, version) = facebook::connection::effective(row.as_ref(), settings);
            (token, graph_url, version)
        }
        None => {
            let connection = connection(ws, config)?;
            (connection.token, connection.graph_url, connection.version)
        }
    };
    Ok(Request {
        segment_id,
        audience_id: parsed.audience_id,
        token,
        keys: parsed.keys,
        sync: parsed.sync,
        graph_url: parsed.graph_url.unwrap_or(graph_url),
        version: parsed.version.unwrap_or(version),
        retry_of: None,
    })
}

/// Step 1: the body is an object holding only keys an export takes.
fn known_object(body: &Json) -> ApiResult<()> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(
            "the body must be a JSON object like {\"audience_id\": \"23850000000000000\", \"access_token\": \"EAAB…\"}",
        ));
    };
    if let Some(key) = unknown_key(map, &KEYS) {
        return Err(invalid(
            key,
            format!("unknown key {key:?}; an export takes {}", KEYS.join(", ")),
        ));
    }
    Ok(())
}

/// Step 2: the required numeric `audience_id`.
fn parse_audience_id(value: Option<&Json>) -> ApiResult<String> {
    // Audience ids are numeric; a number is accepted as well as a string.
    match value {
        Some(Json::Number(n)) if n.is_u64() => Ok(n.to_string()),
        other => {
            let text = string(other, "audience_id", "\"23850000000000000\"")?.unwrap_or_default();
            if text.is_empty() {
                return Err(invalid(
                    "audience_id",
                    "\"audience_id\" is required: the id of the Custom Audience (Ads Manager → Audiences)",
                ));
            }
            if !text.chars().all(|c| c.is_ascii_digit()) || text.len() > 32 {
                return Err(invalid(
                    "audience_id",
                    format!(
                        "\"audience_id\" must be the audience's numeric id, got {}",
                        other.map_or_else(String::new, Json::to_string)
                    ),
                ));
            }
            Ok(text.to_string())
        }
    }
}

/// Step 3: the `access_token`, of a plausible size and shape; absent (or
/// empty): the workspace's saved connection's.
pub(super) fn parse_access_token(value: Option<&Json>) -> ApiResult<Option<&str>> {
    let token = string(value, "access_token", "\"EAAB…\"")?.unwrap_or_default();
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > 4096 || token.chars().any(char::is_control) {
        return Err(invalid(
            "access_token",
            "\"access_token\" is not a valid token (too long or holding control characters)",
        ));
    }
    Ok(Some(token))
}

/// Step 4: the `identifiers` to send; every one the workspace can fill when absent.
fn parse_identifiers(value: Option<&Json>, has_gender: bool) -> ApiResult<Vec<Key>> {
    match value {
        None | Some(Json::Null) => Ok(Key::ALL
            .into_iter()
            .filter(|k| *k != Key::Gen || has_gender)
            .collect()),
        Some(Json::Array(items)) => identifier_list(items),
        Some(other) => Err(invalid(
            "identifiers",
            format!("\"identifiers\" must be an array like [\"EMAIL\", \"PHONE\"], got {other}"),
        )),
    }
}

/// Step 4, given an array: known names, deduplicated, at least one hashed.
fn identifier_list(items: &[Json]) -> ApiResult<Vec<Key>> {
    let mut keys: Vec<Key> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let key = item.as_str().and_then(Key::parse).ok_or_else(|| {
            ApiError::validation(format!(
                "identifiers[{index}] is {item}, not an identifier Facebook matches on; valid ones: {}",
                valid_keys()
            ))
            .with(json!({"field": "identifiers", "index": index, "valid": Key::ALL.map(Key::name)}))
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if !keys.iter().any(|k| k.hashed()) {
        return Err(invalid(
            "identifiers",
            format!(
                "\"identifiers\" needs at least one identifier besides EXTERN_ID; valid ones: {}",
                valid_keys()
            ),
        ));
    }
    Ok(keys)
}

/// Step 5: whether the export keeps following the segment (`sync`).
fn parse_sync(value: Option<&Json>) -> ApiResult<bool> {
    match value {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid(
            "sync",
            format!("\"sync\" must be true or false, got {other}"),
        )),
    }
}

/// Step 6: where the Graph API is (`graph_url`), checked against the
/// allowed destinations; `None` when not given.
pub(super) fn parse_graph_url(
    value: Option<&Json>,
    destinations: &crate::destination::Destinations,
) -> ApiResult<Option<String>> {
    match string(value, "graph_url", "\"https://graph.facebook.com\"")? {
        None | Some("") => Ok(None),
        Some(text) => {
            let parsed = destinations.parse(text).map_err(|why| {
                invalid(
                    "graph_url",
                    format!("\"graph_url\" {why}; use https://graph.facebook.com"),
                )
            })?;
            if parsed.query().is_some() {
                return Err(invalid(
                    "graph_url",
                    "\"graph_url\" must be an http(s) address without a query, like https://graph.facebook.com",
                ));
            }
            Ok(Some(text.trim_end_matches('/').to_string()))
        }
    }
}

/// Step 7: the Graph API `version`, shaped like v21.0; `None` when not given.
pub(super) fn parse_version(value: Option<&Json>) -> ApiResult<Option<String>> {
    match string(value, "version", "\"v21.0\"")? {
        None | Some("") => Ok(None),
        Some(text) if is_graph_version(text) => Ok(Some(text.to_string())),
        Some(text) => Err(invalid(
            "version",
            format!("\"version\" must be a Graph API version like v21.0, got {text:?}"),
        )),
    }
}

/// Whether `text` is `v` followed by two dot-separated runs of digits.
fn is_graph_version(text: &str) -> bool {
    text.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let (major, minor) = (parts.next(), parts.next());
        parts.next().is_none()
            && [major, minor]
                .iter()
                .all(|p| p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("export {id:?} does not exist"))
        .with(json!({"kind": "export", "id": id}))
}

/// A job's JSON (running or stored) as its typed answer.
fn view(json: Json) -> ApiResult<ExportJob> {
    ExportJob::from_json(json).map_err(ApiError::internal)
}

/// Starts an export of the segment's members to a Custom Audience.
#[utoipa::path(post, path = "/v1/segments/{id}/exports/facebook", operation_id = "facebook_exports_start", security(("bearer" = [])), tag = "segments", request_body = FacebookExport,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 202, description = "the job, queued", body = ExportJob), (status = 404, description = "no such segment"),
              (status = 409, description = "no access token given and no Facebook connection saved (`facebook_not_connected`)"),
              (status = 422, description = "a missing or invalid key, named in details.field")))]
pub async fn start(
    State(state): State<AppState>,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<ExportJob>)> {
    let has_gender = ws.read(|e| {
        e.segment(&id).ok_or_else(|| {
            ApiError::not_found(format!("segment {id:?} does not exist"))
                .with(json!({"kind": "segment", "id": id}))
        })?;
        Ok::<_, ApiError>(e.field(GENDER_FIELD).is_some())
    })??;
    // Retries and timeouts are the server's; the body may only pick where
    // to send.
    let parsed = parse(&body, has_gender, &ws.tasks.destinations)?;
    let request = complete(parsed, id, &ws, &state.config)?;
    let job = launch(&state, &ws, request)?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(job.to_json())?)))
}

/// Starts a checked request's job (a sync's token sealed first).
fn launch(
    state: &AppState,
    ws: &crate::state::WorkspaceHandle,
    request: Request,
) -> ApiResult<std::sync::Arc<facebook::Job>> {
    let settings = state.config.facebook.clone();
    let sealer = if request.sync {
        let config = &state.config;
        Some(
            crate::secrets::Sealer::load(config.secret_key.as_ref(), &config.data_dir, true)
                .map_err(|why| {
                    ApiError::internal(format!(
                        "the access token cannot be stored encrypted for the sync to survive restarts: {why}"
                    ))
                })?,
        )
    } else {
        None
    };
    facebook::start(
        &ws.service,
        &ws.tasks.exports,
        &ws.tasks.destinations,
        request,
        &settings,
        sealer.as_ref(),
    )
    .map_err(ApiError::internal)
}

/// An export job: state, progress, batches, errors.
#[utoipa::path(get, path = "/v1/exports/{id}", operation_id = "facebook_exports_get", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the export's id")),
    responses((status = 200, description = "the job", body = ExportJob), (status = 404, description = "no such export")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<ExportJob>> {
    let job = ws
        .tasks
        .exports
        .job_json(&id)
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(view(job)?))
}

/// Stops an export (a sync stops following the segment; the audience keeps
/// what was sent).
#[utoipa::path(delete, path = "/v1/exports/{id}", operation_id = "facebook_exports_stop", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the export's id")),
    responses((status = 200, description = "the job, stopping", body = ExportJob), (status = 404, description = "no such export")))]
pub async fn stop(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<ExportJob>> {
    // A job of an earlier run of the server has nothing left to stop.
    let Some(job) = ws.tasks.exports.get(&id) else {
        let stored = ws
            .tasks
            .exports
            .job_json(&id)
            .ok_or_else(|| not_found(&id))?;
        return Ok(axum::Json(view(stored)?));
    };
    job.stop.send_replace(true);
    Ok(axum::Json(view(job.to_json())?))
}

/// A segment's exports, newest first.
#[utoipa::path(get, path = "/v1/segments/{id}/exports", operation_id = "facebook_exports_list", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the jobs", body = Page<ExportJob>), (status = 404, description = "no such segment")))]
pub async fn list(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Page<ExportJob>>> {
    ws.read(|e| {
        e.segment(&id).map(|_| ()).ok_or_else(|| {
            ApiError::not_found(format!("segment {id:?} does not exist"))
                .with(json!({"kind": "segment", "id": id}))
        })
    })??;
    let items = ws
        .tasks
        .exports
        .list_json(&id)
        .into_iter()
        .map(view)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Starts a failed export again: a new job for the same segment, audience,
/// identifiers, sync, Graph URL and version, with the workspace's saved
/// token (a job keeps none once it ended). The failed job stays as it was;
/// the new one names it in `retry_of`.
#[utoipa::path(post, path = "/v1/exports/{id}/retry", operation_id = "facebook_exports_retry", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the failed export's id")),
    responses((status = 202, description = "the new job, queued", body = ExportJob), (status = 404, description = "no such export, or its segment was deleted"),
              (status = 409, description = "the export did not fail (`export_not_failed`), or no Facebook connection is saved (`facebook_not_connected`)")))]
pub async fn retry(
    State(state): State<AppState>,
    Ws(ws): Ws,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<ExportJob>)> {
    let failed = ws
        .tasks
        .exports
        .job_json(&id)
        .ok_or_else(|| not_found(&id))?;
    let state_now = failed["state"].as_str().unwrap_or_default().to_string();
    if state_now != "failed" {
        return Err(ApiError::new(
            Code::ExportNotFailed,
            format!(
                "export {id:?} is {state_now}, not failed: only a failed export can be retried"
            ),
        )
        .with(json!({"id": id, "state": state_now})));
    }
    let text = |key: &str| failed[key].as_str().unwrap_or_default().to_string();
    let segment_id = text("segment_id");
    ws.read(|e| {
        e.segment(&segment_id).map(|_| ()).ok_or_else(|| {
            ApiError::not_found(format!(
                "segment {segment_id:?} of this export was deleted: there is nothing to export again"
            ))
            .with(json!({"kind": "segment", "id": segment_id}))
        })
    })??;
    let connection = connection(&ws, &state.config)?;
    let keys: Vec<Key> = failed["identifiers"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().and_then(Key::parse))
                .collect()
        })
        .unwrap_or_default();
    let request = Request {
        segment_id,
        audience_id: text("audience_id"),
        token: connection.token,
        keys,
        sync: failed["sync"] == json!(true),
        graph_url: text("graph_url"),
        version: text("version"),
        retry_of: Some(id),
    };
    let job = launch(&state, &ws, request)?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(job.to_json())?)))
}

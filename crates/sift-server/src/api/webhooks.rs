//! Webhook subscriptions (docs/api.md `webhook`): create, list, read, edit,
//! delete. A subscription is `{url, secret, segments?, events?, enabled?}`;
//! its deliveries, signatures and retries are in `crate::webhooks` and
//! docs/api.md "Webhooks". Every answer carries a `delivery` object: status,
//! cursors, lag, attempts and the last error.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use sift_store::WebhookRow;

use super::segment_types::Deleted;
use super::webhook_types::{WebhookCreate, WebhookUpdate};
use super::{Body, Path, Ws, checked, unknown_key};
use crate::destination::Destinations;
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;
use crate::webhooks::{self, Webhook};

const KEYS: [&str; 5] = ["url", "secret", "segments", "events", "enabled"];
const MAX_URL_BYTES: usize = 2048;
const MAX_SECRET_BYTES: usize = 1024;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(message).with(json!({"field": field}))
}

fn check_keys(body: &Json) -> ApiResult<()> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(
            "the body must be a JSON object like {\"url\": \"https://example.com/hooks/sift\", \"secret\": \"…\"}",
        ));
    };
    match unknown_key(map, &KEYS) {
        Some(key) => Err(invalid(
            key,
            format!("unknown key {key:?}; a webhook has {}", KEYS.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The subscription's URL, checked against the destination policy
/// (`crate::destination`): a refused one answers 422 with the reason.
fn url_of(value: &Json, destinations: &Destinations) -> ApiResult<String> {
    let example = "like https://example.com/hooks/sift";
    let Json::String(text) = value else {
        return Err(invalid(
            "url",
            format!("\"url\" must be a string {example}, got {value}"),
        ));
    };
    let text = text.trim();
    if text.len() > MAX_URL_BYTES {
        return Err(invalid(
            "url",
            format!("\"url\" is longer than {MAX_URL_BYTES} bytes"),
        ));
    }
    let parsed = destinations
        .parse(text)
        .map_err(|why| invalid("url", format!("\"url\" {why} (an address {example})")))?;
    Ok(parsed.to_string())
}

fn secret_of(value: &Json) -> ApiResult<String> {
    match value {
        Json::String(s) if s.trim().is_empty() => Err(invalid(
            "secret",
            "\"secret\" must not be empty: deliveries are signed with it (use a long random string)",
        )),
        Json::String(s) if s.len() > MAX_SECRET_BYTES => Err(invalid(
            "secret",
            format!("\"secret\" is longer than {MAX_SECRET_BYTES} bytes"),
        )),
        Json::String(s) => Ok(s.clone()),
        other => Err(invalid(
            "secret",
            format!("\"secret\" must be a string, got {other}"),
        )),
    }
}

/// `null` (or absent) is every segment; otherwise ids of existing segments.
fn segments_of(value: &Json, ws: &crate::state::WorkspaceHandle) -> ApiResult<Option<Vec<String>>> {
    let items = match value {
        Json::Null => return Ok(None),
        Json::Array(items) => items,
        other => {
            return Err(invalid(
                "segments",
                format!(
                    "\"segments\" must be a list of segment ids, or null for every segment; got {other}"
                ),
            ));
        }
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Json::String(id) = item else {
            return Err(ApiError::validation(format!(
                "\"segments\" must hold segment ids (strings); item {index} is {item}"
            ))
            .with(json!({"field": "segments", "index": index})));
        };
        if !ws.read(|engine| engine.segment(id).is_some())? {
            return Err(ApiError::validation(format!(
                "\"segments\" item {index}: segment {id:?} does not exist (give segment ids, as GET /v1/segments lists them)"
            ))
            .with(json!({"field": "segments", "index": index, "id": id})));
        }
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Ok(Some(ids))
}

fn bool_of(value: &Json, field: &str) -> ApiResult<bool> {
    value.as_bool().ok_or_else(|| {
        invalid(
            field,
            format!("\"{field}\" must be true or false, got {value}"),
        )
    })
}

/// A subscription that would never send anything is a mistake.
fn check_sends_something(row: &WebhookRow) -> ApiResult<()> {
    if row.segments.as_ref().is_some_and(Vec::is_empty) && !row.events {
        return Err(invalid(
            "segments",
            "with \"segments\": [] and no \"events\" the webhook would never send anything; list segment ids, give null for every segment, or set \"events\": true",
        ));
    }
    Ok(())
}

/// Every webhook, oldest first, each with its delivery status.
#[utoipa::path(get, path = "/v1/webhooks", operation_id = "webhooks_list", security(("bearer" = [])), tag = "webhooks",
    responses((status = 200, description = "the webhooks", body = Page<Webhook>)))]
pub async fn list(Ws(ws): Ws) -> ApiResult<axum::Json<Page<Webhook>>> {
    let items = ws
        .tasks
        .webhooks
        .list()
        .iter()
        .map(|s| Webhook::of(&ws.service, s))
        .collect::<ApiResult<Vec<Webhook>>>()?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Subscribes a URL to membership changes (of the given segments, or all)
/// and, with `"events": true`, to accepted events. It receives what is
/// committed from its creation on.
#[utoipa::path(post, path = "/v1/webhooks", operation_id = "webhooks_create", security(("bearer" = [])), tag = "webhooks", request_body = WebhookCreate,
    responses((status = 201, description = "the webhook with its delivery status", body = Webhook),
              (status = 422, description = "a missing or invalid key, named in details.field")))]
pub async fn create(
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<Webhook>)> {
    check_keys(&body)?;
    let body: WebhookCreate = checked(body)?;
    let url = url_of(
        body.url.as_ref().ok_or_else(|| {
            invalid(
                "url",
                "a webhook needs \"url\", like https://example.com/hooks/sift",
            )
        })?,
        &ws.tasks.destinations,
    )?;
    let secret = secret_of(body.secret.as_ref().ok_or_else(|| {
        invalid(
            "secret",
            "a webhook needs \"secret\": deliveries are signed with it",
        )
    })?)?;
    let segments = segments_of(body.segments.as_ref().unwrap_or(&Json::Null), &ws)?;
    let events = body
        .events
        .as_ref()
        .map(|v| bool_of(v, "events"))
        .transpose()?
        .unwrap_or(false);
    let enabled = body
        .enabled
        .as_ref()
        .map(|v| bool_of(v, "enabled"))
        .transpose()?
        .unwrap_or(true);
    let now = ws.clock().now_ms();
    let row = WebhookRow {
        id: crate::ids::new_id("wh"),
        url,
        secret,
        segments,
        events,
        enabled,
        created_at: now,
        updated_at: now,
    };
    check_sends_something(&row)?;
    let subscription = ws.tasks.webhooks.create(&ws.service, row).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Webhook::of(&ws.service, &subscription)?),
    ))
}

/// One webhook with its delivery status.
#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "webhooks_get", security(("bearer" = [])), tag = "webhooks",
    params(("id" = String, Path, description = "the webhook's id")),
    responses((status = 200, description = "the webhook", body = Webhook), (status = 404, description = "no such webhook")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Webhook>> {
    let subscription = ws
        .tasks
        .webhooks
        .get(&id)
        .ok_or_else(|| webhooks::not_found(&id))?;
    Ok(axum::Json(Webhook::of(&ws.service, &subscription)?))
}

/// Edits any of url, secret, segments (null: every segment), events,
/// enabled. A disabled webhook keeps its cursor; enabled again, it sends
/// what it missed.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", operation_id = "webhooks_update", security(("bearer" = [])), tag = "webhooks", request_body = WebhookUpdate,
    params(("id" = String, Path, description = "the webhook's id")),
    responses((status = 200, description = "the webhook", body = Webhook), (status = 404, description = "no such webhook"),
              (status = 422, description = "an invalid key, named in details.field")))]
pub async fn update(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<Webhook>> {
    check_keys(&body)?;
    let body: WebhookUpdate = checked(body)?;
    if ws.tasks.webhooks.get(&id).is_none() {
        return Err(webhooks::not_found(&id));
    }
    let url = body
        .url
        .as_ref()
        .map(|v| url_of(v, &ws.tasks.destinations))
        .transpose()?;
    let secret = body.secret.as_ref().map(secret_of).transpose()?;
    let segments = body
        .segments
        .as_ref()
        .map(|v| segments_of(v, &ws))
        .transpose()?;
    let events = body
        .events
        .as_ref()
        .map(|v| bool_of(v, "events"))
        .transpose()?;
    let enabled = body
        .enabled
        .as_ref()
        .map(|v| bool_of(v, "enabled"))
        .transpose()?;
    let subscription = ws
        .tasks
        .webhooks
        .update(&ws.service, &id, |row| {
            if let Some(url) = url {
                row.url = url;
            }
            if let Some(secret) = secret {
                row.secret = secret;
            }
            if let Some(segments) = segments {
                row.segments = segments;
            }
            if let Some(events) = events {
                row.events = events;
            }
            if let Some(enabled) = enabled {
                row.enabled = enabled;
            }
            check_sends_something(row)
        })
        .await?;
    Ok(axum::Json(Webhook::of(&ws.service, &subscription)?))
}

/// Deletes a webhook; a delivery in flight is abandoned.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "webhooks_delete", security(("bearer" = [])), tag = "webhooks",
    params(("id" = String, Path, description = "the webhook's id")),
    responses((status = 200, description = "deleted", body = Deleted), (status = 404, description = "no such webhook")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Deleted>> {
    ws.tasks.webhooks.delete(&ws.service, &id).await?;
    Ok(axum::Json(Deleted::new(id)))
}

//! Events (docs/concepts.md "Event"): `POST /v1/events` takes one event or a batch of
//! up to 10,000, all or nothing. An `id` is an idempotency key: a replayed
//! event is acknowledged (counted in `duplicates`) and not applied again.

use serde_json::{Map, Value as Json, json};
use sift_engine::{EventInput, MAX_BATCH, Workspace};

use super::{Body, Ws};
use crate::error::{ApiError, ApiResult, Code};
use crate::reply::{JsonResponse, ok};

const EVENT_KEYS: [&str; 6] = ["id", "contact_id", "type", "at", "properties", "anonymous"];

/// Why one item cannot become an event, with the key at fault.
struct ItemError {
    message: String,
    field: &'static str,
}

fn item_error(field: &'static str, message: impl Into<String>) -> ItemError {
    ItemError {
        message: message.into(),
        field,
    }
}

/// An optional string; `null` counts as absent.
fn optional_string(
    map: &Map<String, Json>,
    key: &'static str,
) -> Result<Option<String>, ItemError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(item_error(
            key,
            format!("\"{key}\" must be a string, got {}", kind_of(other)),
        )),
    }
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Reads `{id?, contact_id, type, at?, properties?, anonymous?}`. What only
/// the engine can check (the contact id's form, `at` too far ahead) is left
/// to it.
fn event_input(item: &Json) -> Result<EventInput, ItemError> {
    let Json::Object(map) = item else {
        return Err(item_error(
            "event",
            format!(
                "an event must be a JSON object like {{\"contact_id\": \"ana\", \"type\": \"purchase\"}}, got {}",
                kind_of(item)
            ),
        ));
    };
    if let Some(key) = map.keys().find(|k| !EVENT_KEYS.contains(&k.as_str())) {
        return Err(item_error(
            "event",
            format!(
                "unknown key {key:?}: an event has {}",
                EVENT_KEYS.join(", ")
            ),
        ));
    }
    let id = optional_string(map, "id")?;
    if id.as_deref() == Some("") {
        return Err(item_error(
            "id",
            "\"id\" must not be empty; omit it to send an event without an idempotency key",
        ));
    }
    let contact_id = optional_string(map, "contact_id")?
        .ok_or_else(|| item_error("contact_id", "an event needs a \"contact_id\" string"))?;
    let event_type = optional_string(map, "type")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            item_error(
                "type",
                "an event needs a \"type\": a non-empty string like \"purchase\"",
            )
        })?;
    let at = match optional_string(map, "at")? {
        None => None,
        Some(text) => Some(sift_lang::datetime_in_range(&text).map_err(|error| {
            let message = match error {
                sift_lang::DateError::OutOfRange => format!(
                    "\"at\" must be from 0001-01-01 to 9999-12-31 (UTC), got {text:?}"
                ),
                sift_lang::DateError::Invalid => format!(
                    "\"at\" must be an RFC 3339 datetime like \"2026-11-29T15:00:00Z\", got {text:?}"
                ),
            };
            item_error("at", message)
        })?),
    };
    let (properties, properties_json) = match map.get("properties") {
        None | Some(Json::Null) => (Vec::new(), "{}".to_string()),
        Some(Json::Object(properties)) => (
            // The store rebuilds stored events with the same mapping; values
            // a condition cannot read (objects, lists of numbers) stay only
            // in the JSON.
            sift_store::event_properties(properties),
            serde_json::to_string(properties).unwrap_or_else(|_| "{}".to_string()),
        ),
        Some(other) => {
            return Err(item_error(
                "properties",
                format!(
                    "\"properties\" must be an object of names to values, got {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let anonymous = match map.get("anonymous") {
        None | Some(Json::Null) => None,
        Some(Json::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(item_error(
                "anonymous",
                format!(
                    "\"anonymous\" must be true or false, got {}",
                    kind_of(other)
                ),
            ));
        }
    };
    Ok(EventInput {
        id,
        contact_id,
        event_type,
        at,
        properties,
        properties_json,
        anonymous,
    })
}

/// One failing item of a batch, as `details.items` lists them.
fn failure(index: usize, error: &ApiError) -> Json {
    json!({"index": index, "code": error.code.as_str(), "message": error.message, "details": error.details})
}

fn batch_error(mut failures: Vec<Json>, total: usize) -> ApiError {
    failures.sort_by_key(|f| f["index"].as_u64());
    ApiError::validation(format!(
        "{} of the {total} events are invalid",
        failures.len()
    ))
    .with(json!({"items": failures}))
}

/// Every item the engine refuses, by index, as one error.
fn engine_refusals(engine: &Workspace, inputs: &[EventInput], now: i64) -> Vec<Json> {
    engine
        .check_events(inputs, now)
        .into_iter()
        .map(|(index, error)| failure(index, &ApiError::from(error)))
        .collect()
}

/// Accepts one event or `{"events": [...]}` (up to 10,000), all or nothing,
/// durable before the answer.
#[utoipa::path(post, path = "/v1/events", operation_id = "events_ingest", security(("bearer" = [])), tag = "events", request_body = Object,
    responses((status = 200, description = "{accepted, duplicates, duplicate_indexes, changes}"),
              (status = 413, description = "more than 10,000 events"),
              (status = 422, description = "an invalid event; in a batch, every failing item by index")))]
pub async fn ingest(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<JsonResponse> {
    let batch = match &body {
        Json::Object(map) if map.contains_key("events") => {
            if let Some(key) = map.keys().find(|k| *k != "events") {
                return Err(ApiError::validation(format!(
                    "unknown key {key:?} beside \"events\": send one event, or {{\"events\": [...]}}"
                )));
            }
            match &map["events"] {
                Json::Array(items) => Some(items.as_slice()),
                other => {
                    return Err(ApiError::validation(format!(
                        "\"events\" must be a list of events, got {}",
                        kind_of(other)
                    )));
                }
            }
        }
        _ => None,
    };
    match batch {
        Some(items) => ingest_batch(&ws, items).await,
        None => ingest_one(&ws, &body).await,
    }
}

async fn ingest_one(ws: &crate::state::WorkspaceHandle, body: &Json) -> ApiResult<JsonResponse> {
    let input = event_input(body)
        .map_err(|e| ApiError::validation(e.message).with(json!({"field": e.field})))?;
    let (write, ()) = ws
        .write(|engine, now| Ok((engine.ingest(vec![input], now)?, ())))
        .await?;
    Ok(ok(answer(&write)))
}

async fn ingest_batch(
    ws: &crate::state::WorkspaceHandle,
    items: &[Json],
) -> ApiResult<JsonResponse> {
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "a batch holds at most {MAX_BATCH} events, this one has {}; split it",
                items.len()
            ),
        ));
    }
    let mut inputs = Vec::with_capacity(items.len());
    let mut indexes = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match event_input(item) {
            Ok(input) => {
                inputs.push(input);
                indexes.push(index);
            }
            Err(e) => failures.push(json!({"index": index, "code": Code::ValidationFailed.as_str(), "message": e.message, "details": {"field": e.field}})),
        }
    }
    if !failures.is_empty() {
        // Report every failing item, not only the malformed ones (docs/concepts.md "Guarantees").
        let refused = ws.read(|engine| engine_refusals(engine, &inputs, ws.clock.now_ms()))?;
        for mut item in refused {
            let at = item["index"].as_u64().unwrap_or(0) as usize;
            item["index"] = json!(indexes.get(at).copied().unwrap_or(at));
            failures.push(item);
        }
        return Err(batch_error(failures, items.len()));
    }
    let total = items.len();
    let (write, ()) = ws
        .write(|engine, now| {
            // Refusals are reported by index before the events move into
            // the engine (which then takes their properties without copying).
            let refused = engine_refusals(engine, &inputs, now);
            if !refused.is_empty() {
                return Err(batch_error(refused, total));
            }
            Ok((engine.ingest(inputs, now)?, ()))
        })
        .await?;
    Ok(ok(answer(&write)))
}

fn answer(write: &sift_engine::Write) -> Json {
    json!({
        "accepted": write.accepted,
        "duplicates": write.duplicates.len(),
        "duplicate_indexes": write.duplicates,
        "changes": write.membership_changes,
    })
}

#[cfg(test)]
mod tests {
    use sift_engine::RawValue;

    use super::*;

    #[test]
    fn an_event_is_read_with_its_properties_kept_as_sent() {
        let input = event_input(&json!({
            "id": "e1", "contact_id": "ana", "type": "purchase", "at": "2026-11-29T16:00:00+01:00",
            "properties": {"amount": 60, "tags": ["a"], "meta": {"x": 1}, "gone": null},
            "anonymous": true,
        }))
        .ok()
        .unwrap();
        assert_eq!(input.id.as_deref(), Some("e1"));
        assert_eq!(input.event_type, "purchase");
        assert_eq!(
            input.at,
            sift_engine::parse_datetime("2026-11-29T15:00:00Z"),
            "offsets are converted to UTC"
        );
        assert_eq!(input.anonymous, Some(true));
        let properties: std::collections::HashMap<_, _> = input.properties.into_iter().collect();
        assert_eq!(properties["amount"], RawValue::Number(60.0));
        assert_eq!(properties["tags"], RawValue::StringList(vec!["a".into()]));
        assert!(matches!(properties["meta"], RawValue::Unsupported(_)));
        assert_eq!(properties["gone"], RawValue::Null);
        let kept: Json = serde_json::from_str(&input.properties_json).unwrap();
        assert_eq!(kept["meta"], json!({"x": 1}));

        let bare = event_input(&json!({"contact_id": "ana", "type": "ping"}))
            .ok()
            .unwrap();
        assert_eq!((bare.id, bare.at, bare.anonymous), (None, None, None));
        assert_eq!(bare.properties_json, "{}");
    }

    #[test]
    fn a_malformed_event_names_the_key_at_fault() {
        for (event, field) in [
            (json!({"type": "ping"}), "contact_id"),
            (
                json!({"contact_id": "ana", "type": "ping", "at": "2026-11-29"}),
                "at",
            ),
            (
                json!({"contact_id": "ana", "type": "ping", "properties": "x"}),
                "properties",
            ),
            (json!("ping"), "event"),
        ] {
            let error = event_input(&event).err().unwrap();
            assert_eq!(error.field, field, "{event}: {}", error.message);
        }
    }
}

//! Events (docs/concepts.md "Event"): `POST /v1/events` takes one event or a batch of
//! up to 10,000, all or nothing. An `id` is an idempotency key: a replayed
//! event is acknowledged (counted in `duplicates`) and not applied again.

use axum::Json as Reply;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use sift_engine::{EventInput, MAX_BATCH, Workspace};
use utoipa::ToSchema;

use super::{Body, Ws, unknown_key};
use crate::error::{ApiError, ApiResult, Code, ItemError};

const EVENT_KEYS: [&str; 6] = ["id", "contact_id", "type", "at", "properties", "anonymous"];

/// One event, the body of `POST /v1/events` (or an item of a batch).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"id": "ord_1001", "contact_id": "ana", "type": "purchase", "at": "2026-11-29T15:00:00Z", "properties": {"amount": 60}}))]
pub struct Event {
    /// An idempotency key: an event whose id was seen before is
    /// acknowledged (as a duplicate) and not applied again. Not empty.
    pub id: Option<String>,
    /// The contact it happened to; created if it does not exist yet.
    pub contact_id: String,
    /// What happened, like `purchase`; not empty.
    #[schema(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339; from 0001-01-01 to 9999-12-31 UTC, and
    /// not too far ahead of the server's clock); the server's time if absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<i64>,
    /// Names to values; conditions read strings, numbers, booleans and
    /// lists of strings, and every value is kept as sent.
    #[schema(additional_properties, nullable, required = false)]
    pub properties: Map<String, Json>,
    /// Whether a contact this event creates is an anonymous visitor.
    pub anonymous: Option<bool>,
}

/// A batch: up to 10,000 events, applied all or nothing.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"events": [
    {"id": "ord_1001", "contact_id": "ana", "type": "purchase", "properties": {"amount": 60}},
    {"contact_id": "ben", "type": "page_view"}
]}))]
pub struct EventBatch {
    pub events: Vec<Event>,
}

/// The body of `POST /v1/events`: one [`Event`], or an [`EventBatch`]. The
/// handler tells them apart by the `events` key.
pub struct EventsBody;

impl utoipa::PartialSchema for EventsBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        use utoipa::openapi::{Ref, RefOr};
        let one = RefOr::Ref(Ref::from_schema_name("Event"));
        let batch = RefOr::Ref(Ref::from_schema_name("EventBatch"));
        OneOfBuilder::new()
            .item(one)
            .item(batch)
            .description(Some("one event, or `{\"events\": [...]}`"))
            .examples([
                json!({"contact_id": "ana", "type": "purchase", "properties": {"amount": 60}}),
            ])
            .into()
    }
}

impl ToSchema for EventsBody {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "Event".to_string(),
            <Event as utoipa::PartialSchema>::schema(),
        ));
        schemas.push((
            "EventBatch".to_string(),
            <EventBatch as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// What an ingest did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"accepted": 2, "changes": 1, "duplicate_indexes": [1], "duplicates": 1}))]
pub struct Ingested {
    // Keys in alphabetical order: the order the untyped answer had.
    /// Events applied (duplicates excluded).
    pub accepted: u64,
    /// Segment entries and exits they caused.
    pub changes: u64,
    /// The positions (from 0) of the events acknowledged as duplicates.
    pub duplicate_indexes: Vec<usize>,
    /// How many were duplicates: ids seen before, or repeated in the batch.
    pub duplicates: usize,
}

/// Why one item cannot become an event, with the key at fault.
struct Refusal {
    message: String,
    field: &'static str,
}

fn item_error(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        field,
    }
}

/// An optional string; `null` counts as absent.
fn optional_string(map: &Map<String, Json>, key: &'static str) -> Result<Option<String>, Refusal> {
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
fn event_input(item: &Json) -> Result<EventInput, Refusal> {
    parse_event(item).map(Event::input)
}

fn parse_event(item: &Json) -> Result<Event, Refusal> {
    let Json::Object(map) = item else {
        return Err(item_error(
            "event",
            format!(
                "an event must be a JSON object like {{\"contact_id\": \"ana\", \"type\": \"purchase\"}}, got {}",
                kind_of(item)
            ),
        ));
    };
    if let Some(key) = unknown_key(map, &EVENT_KEYS) {
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
    let properties = match map.get("properties") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(properties)) => properties.clone(),
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
    Ok(Event {
        id,
        contact_id,
        event_type,
        at,
        properties,
        anonymous,
    })
}

impl Event {
    fn input(self) -> EventInput {
        // The store rebuilds stored events with the same mapping; values a
        // condition cannot read (objects, lists of numbers) stay only in
        // the JSON.
        let properties_json =
            serde_json::to_string(&self.properties).unwrap_or_else(|_| "{}".to_string());
        EventInput {
            id: self.id,
            contact_id: self.contact_id,
            event_type: self.event_type,
            at: self.at,
            properties: sift_store::event_properties(&self.properties),
            properties_json,
            anonymous: self.anonymous,
        }
    }
}

fn batch_error(mut failures: Vec<ItemError>, total: usize) -> ApiError {
    failures.sort_by_key(|f| f.index);
    ApiError::validation(format!(
        "{} of the {total} events are invalid",
        failures.len()
    ))
    .with(ItemError::details(&failures))
}

/// Every item the engine refuses, by index, as one error.
fn engine_refusals(engine: &Workspace, inputs: &[EventInput], now: i64) -> Vec<ItemError> {
    engine
        .check_events(inputs, now)
        .into_iter()
        .map(|(index, error)| ItemError::new(index, ApiError::from(error)))
        .collect()
}

/// Accepts one event or `{"events": [...]}` (up to 10,000), all or nothing,
/// durable before the answer.
#[utoipa::path(post, path = "/v1/events", operation_id = "events_ingest", security(("bearer" = [])), tag = "events", request_body = EventsBody,
    responses((status = 200, description = "what was applied", body = Ingested),
              (status = 413, description = "more than 10,000 events"),
              (status = 422, description = "an invalid event (`details.field` names the key at fault); in a batch, every failing item by index in `details.items` (a list of `ItemError`)", body = super::doc::ErrorBody,
                  example = json!({"error": {"code": "validation_failed", "message": "1 of the 2 events are invalid", "details": {"items": [
                      {"code": "validation_failed", "details": {"field": "type"}, "index": 1, "message": "an event needs a \"type\": a non-empty string like \"purchase\""}]}}}))))]
pub async fn ingest(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<Reply<Ingested>> {
    let batch = match &body {
        Json::Object(map) if map.contains_key("events") => {
            if let Some(key) = unknown_key(map, &["events"]) {
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

async fn ingest_one(ws: &crate::state::WorkspaceHandle, body: &Json) -> ApiResult<Reply<Ingested>> {
    let input = event_input(body)
        .map_err(|e| ApiError::validation(e.message).with(json!({"field": e.field})))?;
    let (write, ()) = ws
        .write(|engine, now| Ok((engine.ingest(vec![input], now)?, ())))
        .await?;
    Ok(answer(&write))
}

async fn ingest_batch(
    ws: &crate::state::WorkspaceHandle,
    items: &[Json],
) -> ApiResult<Reply<Ingested>> {
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
            Err(e) => failures.push(ItemError::new(
                index,
                ApiError::validation(e.message).with(json!({"field": e.field})),
            )),
        }
    }
    if !failures.is_empty() {
        // Report every failing item, not only the malformed ones (docs/concepts.md "Guarantees").
        let refused = ws.read(|engine| engine_refusals(engine, &inputs, ws.clock().now_ms()))?;
        for mut item in refused {
            item.index = indexes.get(item.index).copied().unwrap_or(item.index);
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
    Ok(answer(&write))
}

fn answer(write: &sift_engine::Write) -> Reply<Ingested> {
    Reply(Ingested {
        accepted: write.accepted,
        changes: write.membership_changes,
        duplicate_indexes: write.duplicates.clone(),
        duplicates: write.duplicates.len(),
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

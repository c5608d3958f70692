//! What the condition builder offers to pick: the event types with the
//! properties their events had, and the most frequent values of a text field
//! or a text event property (`sift_engine` counts them from what it holds).

use axum::Json as Reply;
use serde::{Deserialize, Serialize};
use sift_engine::SUGGESTIONS_MAX;
use utoipa::ToSchema;

use super::{Path, Query, Ws};
use crate::error::{ApiError, ApiResult};

/// One property of an event type.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "category", "type": "string", "count": 1200}))]
pub struct EventProperty {
    pub name: String,
    /// The kind of value most of its events had, as a field type
    /// (`string`, `number`, `boolean`, `date`, `datetime`, `string_list`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Events of the type that had the property.
    pub count: u64,
}

/// An event type and the properties its events had, most frequent first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "purchase", "events": 1500, "properties": [{"name": "amount", "type": "number", "count": 1500}]}))]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    pub event_type: String,
    /// Events of the type counted.
    pub events: u64,
    pub properties: Vec<EventProperty>,
}

/// Every event type, sorted by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypes {
    pub items: Vec<EventTypeInfo>,
}

/// A value and how often it occurs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"value": "gold", "count": 312}))]
pub struct ValueCount {
    pub value: String,
    /// Contacts holding it (a field), or events having it (an event property).
    pub count: u64,
}

/// Values, most frequent first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCounts {
    pub items: Vec<ValueCount>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValuesQuery {
    /// Only values containing this text, ignoring case.
    q: Option<String>,
    /// At most this many values.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<usize>,
}

const DEFAULT_VALUES: usize = 20;

/// The query's text and limit, checked.
fn read(query: &ValuesQuery) -> Result<(&str, usize), ApiError> {
    let limit = match query.limit {
        None => DEFAULT_VALUES,
        Some(n) if (1..=SUGGESTIONS_MAX).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {SUGGESTIONS_MAX}, got {n}"
            )));
        }
    };
    let q = query.q.as_deref().unwrap_or("");
    if q.len() > 200 {
        return Err(ApiError::bad_request(
            "q is longer than 200 bytes: type the start of a value",
        ));
    }
    Ok((q, limit))
}

fn values(items: Vec<(String, u64)>) -> ValueCounts {
    ValueCounts {
        items: items
            .into_iter()
            .map(|(value, count)| ValueCount { value, count })
            .collect(),
    }
}

/// The event types seen, each with the properties its events had (how many
/// events had each, and the kind of value). Counted over the events
/// received since the server started and those it holds from before, up to
/// 1,000 types and 200 properties per type.
#[utoipa::path(get, path = "/v1/event-types", operation_id = "event_types_list", security(("bearer" = [])), tag = "events",
    responses((status = 200, description = "the event types", body = EventTypes)))]
pub async fn event_types(Ws(ws): Ws) -> ApiResult<Reply<EventTypes>> {
    let seen = ws.read(|engine| engine.event_catalog())?;
    let items = seen
        .into_iter()
        .map(|t| EventTypeInfo {
            event_type: t.event_type,
            events: t.events,
            properties: t
                .properties
                .into_iter()
                .map(|p| EventProperty {
                    name: p.name,
                    kind: p.kind.to_string(),
                    count: p.count,
                })
                .collect(),
        })
        .collect();
    Ok(Reply(EventTypes { items }))
}

/// The most frequent text values of an event property (counted like
/// `GET /v1/event-types`, up to 1,000 distinct values per property); an
/// unknown type or property has none.
#[utoipa::path(get, path = "/v1/event-types/{type}/properties/{name}/values", operation_id = "event_property_values", security(("bearer" = [])), tag = "events",
    params(("type" = String, Path, description = "the event type"), ("name" = String, Path, description = "the property"), ValuesQuery),
    responses((status = 200, description = "values, most frequent first", body = ValueCounts)))]
pub async fn event_property_values(
    Ws(ws): Ws,
    Path((event_type, name)): Path<(String, String)>,
    Query(query): Query<ValuesQuery>,
) -> ApiResult<Reply<ValueCounts>> {
    let (q, limit) = read(&query)?;
    let items = ws.read(|engine| engine.event_property_values(&event_type, &name, q, limit))?;
    Ok(Reply(values(items)))
}

/// The most frequent values of a `string` or `string_list` field among the
/// contacts, with how many contacts hold each.
#[utoipa::path(get, path = "/v1/fields/{name}/values", operation_id = "field_values", security(("bearer" = [])), tag = "fields",
    params(("name" = String, Path, description = "the field"), ValuesQuery),
    responses((status = 200, description = "values, most frequent first", body = ValueCounts),
              (status = 404, description = "no such field"),
              (status = 422, description = "the field holds no text")))]
pub async fn field_values(
    Ws(ws): Ws,
    Path(name): Path<String>,
    Query(query): Query<ValuesQuery>,
) -> ApiResult<Reply<ValueCounts>> {
    let (q, limit) = read(&query)?;
    let found = ws.read(|engine| {
        let field_type = engine.field(&name).map(|f| f.field_type);
        (field_type, engine.field_values(&name, q, limit))
    })?;
    match found {
        (None, _) => Err(ApiError::not_found(format!(
            "field {name:?} does not exist"
        ))),
        (Some(_), Some(items)) => Ok(Reply(values(items))),
        (Some(field_type), None) => Err(ApiError::validation(format!(
            "field {name:?} is a {} field: only string and string_list fields have values to suggest",
            field_type.name()
        ))),
    }
}

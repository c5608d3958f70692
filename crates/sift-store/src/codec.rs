//! How engine values are written into SQLite columns: properties as a JSON
//! object decoded by field type, conditions as the JSON tree of docs/conditions.md,
//! member sets as serialized roaring bitmaps, and how an event's JSON
//! properties become what conditions read.

use roaring::RoaringBitmap;
use serde_json::{Map, Value as Json};
use sift_engine::{RawValue, Value, format_date, format_datetime, parse_date, parse_datetime};
use sift_lang::{Condition, FieldType, Schema};

use crate::StoreError;

pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Date(d) => Json::String(format_date(*d)),
        Value::DateTime(t) => Json::String(format_datetime(*t)),
        Value::StringList(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
    }
}

pub fn value_from_json(json: &Json, field_type: FieldType) -> Option<Value> {
    Some(match (field_type, json) {
        (FieldType::String, Json::String(s)) => Value::String(s.clone()),
        (FieldType::Number, Json::Number(n)) => Value::Number(n.as_f64()?),
        (FieldType::Boolean, Json::Bool(b)) => Value::Boolean(*b),
        (FieldType::Date, Json::String(s)) => Value::Date(parse_date(s)?),
        (FieldType::DateTime, Json::String(s)) => Value::DateTime(parse_datetime(s)?),
        (FieldType::StringList, Json::Array(items)) => Value::StringList(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        _ => return None,
    })
}

pub fn properties_to_json(properties: &[(String, Value)]) -> String {
    let map: Map<String, Json> = properties
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect();
    Json::Object(map).to_string()
}

pub fn bitmap_to_blob(bitmap: &RoaringBitmap) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    bitmap.serialize_into(&mut bytes)?;
    Ok(bytes)
}

pub fn bitmap_from_blob(bytes: &[u8]) -> Result<RoaringBitmap, StoreError> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| StoreError::Corrupt(format!("bitmap: {e}")))
}

/// A client's JSON value as the engine reads it: `null`, booleans, numbers
/// and strings as such, an array of strings as a list; anything else (an
/// object, an array holding a non-string) is `RawValue::Unsupported`, which
/// contact writes refuse and event conditions ignore.
///
/// The server maps request bodies with this and the store rebuilds stored
/// events with it, so an event reads the same before and after a restart.
pub fn raw_value(json: &Json) -> RawValue {
    match json {
        Json::Null => RawValue::Null,
        Json::Bool(b) => RawValue::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(
            RawValue::Unsupported("a number out of range"),
            RawValue::Number,
        ),
        Json::String(s) => RawValue::String(s.clone()),
        Json::Array(items) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect();
            strings.map_or(
                RawValue::Unsupported("a list holding something other than strings"),
                RawValue::StringList,
            )
        }
        Json::Object(_) => RawValue::Unsupported("an object"),
    }
}

/// An event's `properties` object as the engine reads it
/// (`EventInput::properties`, `EventRecord::properties`): every member
/// through [`raw_value`], in the object's order. The object's text itself is
/// what is stored and shown (`properties_json`).
pub fn event_properties(object: &Map<String, Json>) -> Vec<(String, RawValue)> {
    object
        .iter()
        .map(|(name, value)| (name.clone(), raw_value(value)))
        .collect()
}

/// [`event_properties`] of stored JSON text.
pub(crate) fn event_properties_from_text(text: &str) -> Result<Vec<(String, RawValue)>, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(object)) => Ok(event_properties(&object)),
        Ok(_) => Err("not a JSON object".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A scoring rule's filter (a condition over event properties) as its JSON tree.
pub(crate) fn filter_to_json(filter: &Condition) -> String {
    sift_lang::to_json(filter).to_string()
}

/// Reads a filter back. The language reads event filters only inside an
/// event node, so the tree is wrapped in one and taken out again; a filter
/// names event properties, never contact fields or segments, so the schema
/// is empty.
pub(crate) fn filter_from_json(event_type: &str, text: &str) -> Result<Condition, String> {
    let tree: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let wrapped = serde_json::json!({"event": event_type, "where": tree});
    match sift_lang::from_json(&wrapped, &NoFields) {
        Ok(Condition::Event {
            filter: Some(filter),
            ..
        }) => Ok(*filter),
        Ok(_) => Err("not an event filter".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

struct NoFields;

impl Schema for NoFields {
    fn field_type(&self, _: &str) -> Option<FieldType> {
        None
    }

    fn segment_id(&self, _: &str) -> Option<String> {
        None
    }

    fn segment_name(&self, _: &str) -> Option<String> {
        None
    }
}

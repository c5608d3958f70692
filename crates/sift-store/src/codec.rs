//! How engine values are written into SQLite columns: properties as a JSON
//! object decoded by field type, conditions as the JSON tree of SPEC §2,
//! member sets as serialized roaring bitmaps.

use roaring::RoaringBitmap;
use serde_json::{Map, Value as Json};
use sift_engine::{Value, format_date, format_datetime, parse_date, parse_datetime};
use sift_lang::FieldType;

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

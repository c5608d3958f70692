//! The JSON shapes that are both stored and shown: values, instants,
//! contacts and changes as the API writes them, and the body of a workflow's webhook,
//! which is rendered here, as its record is committed, so that the stored
//! body, what is sent and what the API shows cannot drift apart.

use crate::StoredChange;
use serde_json::{Map, Value as Json, json};
use sift_engine::{
    ContactView, QueuedItem, TriggerKind, Value, WebhookCall, format_date, format_datetime,
};

pub fn datetime(ms: i64) -> Json {
    Json::String(format_datetime(ms))
}

pub fn value_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => number(*n),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Date(d) => Json::String(format_date(*d)),
        Value::DateTime(t) => datetime(*t),
        Value::StringList(items) => json!(items),
    }
}

/// Integral numbers print without a fraction (50, not 50.0).
pub fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

pub fn contact_json(view: &ContactView) -> Json {
    let properties: Map<String, Json> = view
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect();
    json!({
        "id": view.id,
        "anonymous": view.anonymous,
        "properties": properties,
        "lead_score": number(view.lead_score),
        "created_at": datetime(view.created_at),
        "updated_at": datetime(view.updated_at),
        "last_seen_at": view.last_seen_at.map(datetime),
        "segments": view.segments.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
    })
}

/// A change as docs/concepts.md shapes it (the stream, the pages and webhook
/// deliveries all send this).
pub fn change_json(change: &StoredChange, contact_id: &str) -> Json {
    json!({
        "seq": change.seq,
        "segment_id": change.segment_id,
        "contact_id": contact_id,
        "change": change.kind.as_str(),
        "at": datetime(change.at),
        "cause": change.cause.as_str(),
    })
}

pub fn run_id(id: u64) -> String {
    format!("run_{id}")
}

/// What set a workflow run off.
pub fn trigger_json(trigger: &TriggerKind, item: &QueuedItem) -> Json {
    match trigger {
        TriggerKind::Change { segment_id, kind } => json!({
            "type": format!("segment_{}", kind.as_str()),
            "segment": segment_id,
            "seq": item.seq,
            "at": datetime(item.at),
        }),
        TriggerKind::Event { event_type } => json!({
            "type": "event",
            "event_type": event_type,
            "event_id": item.event_id,
            "at": datetime(item.at),
        }),
    }
}

/// The JSON body a workflow's webhook action POSTs (docs/workflows.md).
pub fn webhook_body(call: &WebhookCall) -> String {
    json!({
        "workflow_id": call.workflow_id,
        "run": {
            "id": run_id(call.run_id),
            "delivery_id": call.id,
            "mode": if call.test { "test" } else { "active" },
            "at": datetime(call.at),
        },
        "contact": contact_json(&call.contact),
        "trigger": trigger_json(&call.trigger, &call.item),
    })
    .to_string()
}

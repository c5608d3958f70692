//! The JSON shapes that are both stored and shown: values, instants,
//! contacts as the API writes them, and the body of a workflow's webhook,
//! which is rendered here, as its record is committed, so that the stored
//! body, what is sent and what the API shows cannot drift apart.

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

#[cfg(test)]
mod tests {
    use super::*;
    use sift_engine::ChangeKind;

    /// The body is stored and signed byte for byte: its bytes must not
    /// change when the code that renders it moves.
    #[test]
    fn a_webhook_body_keeps_its_bytes() {
        let call = WebhookCall {
            id: "run_7_0".into(),
            run_id: 7,
            workflow_id: "wf_1".into(),
            url: "https://example.com/hook".into(),
            secret: None,
            contact: ContactView {
                no: 3,
                id: "c\"3".into(),
                anonymous: false,
                created_at: 0,
                updated_at: 1_500,
                last_seen_at: None,
                lead_score: 12.0,
                properties: vec![
                    ("plan".into(), Value::String("pro".into())),
                    ("spend".into(), Value::Number(19.5)),
                ],
                segments: vec![("seg_vip".into(), "VIP".into())],
            },
            trigger: TriggerKind::Change {
                segment_id: "seg_vip".into(),
                kind: ChangeKind::Entered,
            },
            item: QueuedItem {
                no: 3,
                seq: Some(4),
                event_id: None,
                at: 1_000,
            },
            test: true,
            at: 2_000,
        };
        assert_eq!(
            webhook_body(&call),
            concat!(
                r#"{"contact":{"anonymous":false,"created_at":"1970-01-01T00:00:00Z","id":"c\"3","last_seen_at":null,"#,
                r#""lead_score":12,"properties":{"plan":"pro","spend":19.5},"segments":[{"id":"seg_vip","name":"VIP"}],"#,
                r#""updated_at":"1970-01-01T00:00:01.500Z"},"run":{"at":"1970-01-01T00:00:02Z","delivery_id":"run_7_0","#,
                r#""id":"run_7","mode":"test"},"trigger":{"at":"1970-01-01T00:00:01Z","segment":"seg_vip","seq":4,"#,
                r#""type":"segment_entered"},"workflow_id":"wf_1"}"#
            )
        );
    }
}

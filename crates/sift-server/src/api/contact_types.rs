//! The bodies the contact operations take and answer, as types: the OpenAPI
//! document's schemas are derived from them, so they are the one description
//! of each shape.
//!
//! Answers declare their keys in alphabetical order, the order the untyped
//! JSON they replace was printed in, so every answer stays byte for byte.
//! Request bodies are checked by hand first (see [`ContactBody::parse`]): the
//! checks word each refusal for a person and keep it a 422 where a plain
//! serde derive would answer a generic 400.

use serde::Serialize;
use serde_json::{Map, Value};
use sift_engine::{ContactInput, ContactView, ExplainNode};
use utoipa::ToSchema;

use super::{raw_value, serialize_number, unknown_key, value_json};

/// The body of `PUT /v1/contacts/{id}`: the properties to set.
#[derive(Debug, Default, ToSchema)]
#[schema(example = json!({"properties": {"email": "ana@example.com", "country": "ES", "plan": null}}))]
pub struct ContactBody {
    /// Field names to values. A given property is set, `null` removes it,
    /// one not given is left as it is. A new name makes a new field of the
    /// value's type.
    #[schema(additional_properties, required = false)]
    pub properties: Map<String, Value>,
    /// Whether the contact is an anonymous visitor (a device or cookie id)
    /// that `POST /v1/identify` may later merge into a known contact.
    #[schema(value_type = bool, required = false)]
    pub anonymous: Option<bool>,
}

/// Keys a contact body may have; `id` is the batch's (and ignored beside a
/// path that names the contact).
const CONTACT_KEYS: [&str; 3] = ["id", "properties", "anonymous"];

impl ContactBody {
    /// Reads `{"properties": {...}, "anonymous"?}`, or says what is wrong.
    pub fn parse(body: &Value) -> Result<ContactBody, String> {
        let Value::Object(map) = body else {
            return Err("a contact must be a JSON object like {\"properties\": {...}}".into());
        };
        if let Some(other) = unknown_key(map, &CONTACT_KEYS) {
            return Err(format!(
                "unknown key {other:?}: a contact has \"properties\" and \"anonymous\""
            ));
        }
        let properties = match map.get("properties") {
            None => Map::new(),
            Some(Value::Object(properties)) => properties.clone(),
            Some(_) => {
                return Err("\"properties\" must be an object of field names to values".into());
            }
        };
        let anonymous = match map.get("anonymous") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("\"anonymous\" must be true or false".into()),
        };
        Ok(ContactBody {
            properties,
            anonymous,
        })
    }

    /// The engine's input for contact `id`.
    pub fn input(&self, id: String) -> ContactInput {
        ContactInput {
            id,
            properties: self
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), raw_value(v)))
                .collect(),
            anonymous: self.anonymous,
        }
    }
}

/// One contact of a batch: its id beside what `PUT /v1/contacts/{id}` takes.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"id": "ana", "properties": {"email": "ana@example.com", "country": "ES"}}))]
pub struct BatchContact {
    /// The contact's id.
    pub id: String,
    /// As in `PUT /v1/contacts/{id}`.
    #[schema(additional_properties, required = false)]
    pub properties: Map<String, Value>,
    /// As in `PUT /v1/contacts/{id}`.
    #[schema(value_type = bool, required = false)]
    pub anonymous: Option<bool>,
}

/// The body of `POST /v1/contacts:batch`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(example = json!({"contacts": [
    {"id": "ana", "properties": {"email": "ana@example.com", "country": "ES"}},
    {"id": "ben", "properties": {"country": "FR", "plan": "pro"}}
]}))]
pub struct ContactBatch {
    /// Up to 10,000 contacts, written all or nothing.
    // Each item is read on its own, so that every failing one is reported
    // by its index.
    #[schema(value_type = Vec<BatchContact>)]
    pub contacts: Vec<Value>,
}

/// A segment the contact is a member of.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentRef {
    pub id: String,
    pub name: String,
}

/// A contact with its segments.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "anonymous": false,
    "created_at": "2026-11-29T15:00:00Z",
    "id": "ana",
    "last_seen_at": "2026-11-29T16:30:00.250Z",
    "lead_score": 15,
    "properties": {"country": "ES", "email": "ana@example.com", "tags": ["vip"]},
    "segments": [{"id": "seg_1", "name": "Spain"}],
    "updated_at": "2026-11-29T15:00:00Z"
}))]
pub struct Contact {
    pub anonymous: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub id: String,
    /// When its latest event happened; `null` before its first event.
    #[schema(format = DateTime, required = true)]
    pub last_seen_at: Option<String>,
    /// The sum of the points of the scoring rules it matches.
    #[serde(serialize_with = "serialize_number")]
    pub lead_score: f64,
    /// Field names to values: a string, a number, a boolean, a date
    /// (`YYYY-MM-DD`), a datetime (RFC 3339, UTC) or a list of strings.
    #[schema(additional_properties)]
    pub properties: Map<String, Value>,
    pub segments: Vec<SegmentRef>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl Contact {
    /// The contact's answer, taking the view's strings rather than copying
    /// them: a contact in hundreds of segments answers hundreds of names.
    pub fn new(view: ContactView) -> Contact {
        Contact {
            anonymous: view.anonymous,
            created_at: format(view.created_at),
            id: view.id,
            last_seen_at: view.last_seen_at.map(format),
            lead_score: view.lead_score,
            properties: view
                .properties
                .into_iter()
                .map(|(k, v)| {
                    let json = value_json(&v);
                    (k, json)
                })
                .collect(),
            segments: view
                .segments
                .into_iter()
                .map(|(id, name)| SegmentRef { id, name })
                .collect(),
            updated_at: format(view.updated_at),
        }
    }
}

/// A [`Contact`] written out with its segment list read in place from the
/// engine, under the read lock: the same JSON, without first copying the
/// id and name of each of hundreds of segments.
#[derive(Serialize)]
pub struct ContactAnswer<'a, S: Serialize> {
    anonymous: bool,
    created_at: &'a str,
    id: &'a str,
    last_seen_at: Option<&'a str>,
    #[serde(serialize_with = "serialize_number")]
    lead_score: f64,
    properties: &'a Map<String, Value>,
    segments: S,
    updated_at: &'a str,
}

impl Contact {
    /// This contact (its own segment list left aside) with `segments`.
    pub fn answer_with<S: Serialize>(&self, segments: S) -> ContactAnswer<'_, S> {
        ContactAnswer {
            anonymous: self.anonymous,
            created_at: &self.created_at,
            id: &self.id,
            last_seen_at: self.last_seen_at.as_deref(),
            lead_score: self.lead_score,
            properties: &self.properties,
            segments,
            updated_at: &self.updated_at,
        }
    }
}

fn format(ms: i64) -> String {
    sift_engine::format_datetime(ms)
}

/// What a batch wrote.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"changes": 3, "written": 2}))]
pub struct BatchWritten {
    /// Segment entries and exits the batch caused.
    pub changes: u64,
    /// Contacts written: every one of the batch.
    pub written: usize,
}

/// A deleted contact.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"deleted": true, "exited": 2, "id": "ana"}))]
pub struct ContactDeleted {
    /// Always `true`.
    pub deleted: bool,
    /// How many segments it left.
    pub exited: u64,
    pub id: String,
}

/// Why a contact is or is not in a segment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "contact_id": "ana",
    "explanation": {
        "children": [
            {"condition": "country = \"ES\"", "next_change": null, "result": true, "value": "ES"},
            {"condition": "count(purchase, last 30 days) >= 1", "next_change": "2026-12-29T15:00:00Z", "result": true, "value": 1}
        ],
        "condition": "country = \"ES\" and count(purchase, last 30 days) >= 1",
        "next_change": "2026-12-29T15:00:00Z",
        "result": true
    },
    "member": true,
    "segment_id": "seg_1"
}))]
pub struct ContactExplanation {
    pub contact_id: String,
    /// The segment's condition, node by node.
    pub explanation: ExplainStep,
    /// Whether the contact is a member now.
    pub member: bool,
    pub segment_id: String,
}

/// One node of a condition, evaluated for a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainStep {
    /// The node's sub-conditions (of `and`, `or`, `not`, a segment
    /// reference); absent on a leaf.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<ExplainStep>,
    /// The node in the condition language.
    pub condition: String,
    /// When the result will next change by the passing of time alone;
    /// `null` if it will not.
    #[schema(format = DateTime, required = true)]
    pub next_change: Option<String>,
    /// Whether the node holds for the contact.
    pub result: bool,
    /// What the node tested (a field's value, an event count or sum), on
    /// field and event nodes only; `null` if the contact has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl ExplainStep {
    pub fn new(node: &ExplainNode, schema: &dyn sift_lang::Schema) -> ExplainStep {
        // What the node tested: a field's value, an event count or sum.
        let tests_a_value = matches!(
            node.condition,
            sift_lang::Condition::Field { .. }
                | sift_lang::Condition::Event { .. }
                | sift_lang::Condition::EventSum { .. }
        );
        ExplainStep {
            children: node
                .children
                .iter()
                .map(|c| ExplainStep::new(c, schema))
                .collect(),
            condition: sift_lang::to_text(&node.condition, schema),
            next_change: node.next_change.map(format),
            result: node.result,
            value: tests_a_value.then(|| node.value.as_ref().map_or(Value::Null, value_json)),
        }
    }
}

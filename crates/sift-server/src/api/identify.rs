//! Identify (docs/concepts.md "Identify"): `POST /v1/identify {"anonymous_id", "contact_id"}`
//! merges an anonymous contact into a known one. The merge is one write:
//! its records (events moved, the anonymous contact erased, the alias, the
//! known contact's new state, every membership change with cause `merge`)
//! are committed together before the answer.

use axum::Json as Reply;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use sift_engine::ChangeKind;
use utoipa::ToSchema;

use super::{Body, Contact, Ws, unknown_key};
use crate::error::{ApiError, ApiResult};

/// The body of `POST /v1/identify`.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"anonymous_id": "anon_42", "contact_id": "ana"}))]
pub struct IdentifyBody {
    /// The anonymous contact (a device or cookie id) to merge.
    pub anonymous_id: String,
    /// The known contact it is merged into; created if it does not exist.
    pub contact_id: String,
}

/// A merge's outcome.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "contact": {"anonymous": false, "created_at": "2026-11-29T15:00:00Z", "id": "ana", "last_seen_at": "2026-11-29T16:30:00Z",
        "lead_score": 0, "properties": {"email": "ana@example.com"}, "segments": [], "updated_at": "2026-11-29T16:31:00Z"},
    "evaluation": {"entered": 1, "exited": 0},
    "merged": true
}))]
pub struct Identified {
    // Keys in alphabetical order: the order the untyped answer had.
    /// The known contact after the merge.
    pub contact: Contact,
    pub evaluation: Evaluation,
    /// Whether the anonymous contact's data was moved into the known one.
    pub merged: bool,
}

/// Segment entries and exits the merge caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct Evaluation {
    pub entered: u64,
    pub exited: u64,
}

/// The two ids of a body, each a string.
fn ids(body: &Json) -> Result<IdentifyBody, ApiError> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(
            "identify takes a JSON object like {\"anonymous_id\": \"anon_42\", \"contact_id\": \"ana\"}",
        ));
    };
    if let Some(key) = unknown_key(map, &["anonymous_id", "contact_id"]) {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}: identify takes \"anonymous_id\" and \"contact_id\""
        ))
        .with(json!({"field": key})));
    }
    Ok(IdentifyBody {
        anonymous_id: string(map, "anonymous_id")?,
        contact_id: string(map, "contact_id")?,
    })
}

fn string(map: &Map<String, Json>, key: &str) -> Result<String, ApiError> {
    match map.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        None | Some(Json::Null) => Err(ApiError::validation(format!(
            "\"{key}\" is required: the {} id",
            if key == "anonymous_id" {
                "anonymous (device or cookie)"
            } else {
                "known contact's"
            }
        ))
        .with(json!({"field": key}))),
        Some(_) => {
            Err(ApiError::validation(format!("\"{key}\" must be a string"))
                .with(json!({"field": key})))
        }
    }
}

/// Merges contact `anonymous_id` into `contact_id`.
#[utoipa::path(post, path = "/v1/identify", operation_id = "contacts_identify", security(("bearer" = [])), tag = "contacts", request_body = IdentifyBody,
    responses((status = 200, description = "the known contact after the merge", body = Identified),
              (status = 409, description = "anonymous_id is a known contact, or was merged into another contact"),
              (status = 422, description = "invalid or equal ids")))]
pub async fn identify(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<Reply<Identified>> {
    let IdentifyBody {
        anonymous_id,
        contact_id,
    } = ids(&body)?;
    let (write, (view, entered, exited)) = ws
        .write(|engine, now| {
            let write = engine.identify(&anonymous_id, &contact_id, now)?;
            let view = engine.lookup(&contact_id).and_then(|no| engine.contact(no));
            // Counted before the records leave for the writer.
            let (mut entered, mut exited) = (0u64, 0u64);
            for batch in write.change_batches() {
                match batch.kind {
                    ChangeKind::Entered => entered += batch.len(),
                    ChangeKind::Exited => exited += batch.len(),
                }
            }
            Ok((write, (view, entered, exited)))
        })
        .await?;
    let view = view.ok_or_else(|| ApiError::internal("identified contact vanished"))?;
    Ok(Reply(Identified {
        contact: Contact::new(view),
        evaluation: Evaluation { entered, exited },
        merged: write.merged,
    }))
}

//! Identify (docs/concepts.md "Identify"): `POST /v1/identify {"anonymous_id", "contact_id"}`
//! merges an anonymous contact into a known one. The merge is one write:
//! its records (events moved, the anonymous contact erased, the alias, the
//! known contact's new state, every membership change with cause `merge`)
//! are committed together before the answer.

use serde_json::{Map, Value as Json, json};
use sift_engine::ChangeKind;

use super::{Body, Ws, contact_json};
use crate::error::{ApiError, ApiResult};
use crate::reply::{JsonResponse, ok};

/// The two ids of a body, each a string.
fn ids(body: &Json) -> Result<(String, String), ApiError> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(
            "identify takes a JSON object like {\"anonymous_id\": \"anon_42\", \"contact_id\": \"ana\"}",
        ));
    };
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "anonymous_id" | "contact_id"))
    {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}: identify takes \"anonymous_id\" and \"contact_id\""
        ))
        .with(json!({"field": key})));
    }
    Ok((string(map, "anonymous_id")?, string(map, "contact_id")?))
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
#[utoipa::path(post, path = "/v1/identify", operation_id = "contacts_identify", security(("bearer" = [])), tag = "contacts", request_body = Object,
    responses((status = 200, description = "{\"contact\", \"merged\", \"evaluation\": {\"entered\", \"exited\"}}"),
              (status = 409, description = "anonymous_id is a known contact, or was merged into another contact"),
              (status = 422, description = "invalid or equal ids")))]
pub async fn identify(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<JsonResponse> {
    let (anonymous_id, contact_id) = ids(&body)?;
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
    Ok(ok(json!({
        "contact": contact_json(&view),
        "merged": write.merged,
        "evaluation": {"entered": entered, "exited": exited},
    })))
}

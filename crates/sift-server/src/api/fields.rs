//! Fields: list, declare.

use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::FieldDef;
use sift_lang::FieldType;

use super::contacts::{JsonResponse, ok};
use super::{Body, Path, Ws, page};
use crate::error::{ApiError, ApiResult};

pub fn field_json(def: &FieldDef) -> Json {
    json!({"name": def.name, "type": def.field_type.name(), "label": def.label, "builtin": def.builtin, "system": def.system})
}

/// Every field of the workspace: built-in, system, declared and inferred.
#[utoipa::path(get, path = "/v1/fields", tag = "fields", responses((status = 200, description = "the fields")))]
pub async fn list(Ws(ws): Ws) -> ApiResult<JsonResponse> {
    let items = ws.read(|engine| engine.fields().iter().map(field_json).collect())?;
    Ok(ok(page(items, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(rename = "type")]
    field_type: String,
    label: Option<String>,
}

/// Declares a field (or relabels one; a type change needs the field to hold no data).
#[utoipa::path(put, path = "/v1/fields/{name}", tag = "fields", request_body = Object,
    params(("name" = String, Path, description = "the field's name")),
    responses((status = 200, description = "the field"), (status = 409, description = "the field holds data of another type")))]
pub async fn declare(
    Ws(ws): Ws,
    Path(name): Path<String>,
    Body(body): Body<Declaration>,
) -> ApiResult<JsonResponse> {
    let field_type = FieldType::from_name(&body.field_type).ok_or_else(|| {
        ApiError::validation(format!(
            "unknown field type {:?}: use string, number, boolean, date, datetime or string_list",
            body.field_type
        ))
    })?;
    let (_, def) = ws
        .write(|engine, _| {
            let write = engine.declare_field(&name, field_type, body.label.as_deref())?;
            let def = engine.field(&name).cloned();
            Ok((write, def))
        })
        .await?;
    let def = def.ok_or_else(|| ApiError::internal("declared field vanished"))?;
    Ok(ok(field_json(&def)))
}

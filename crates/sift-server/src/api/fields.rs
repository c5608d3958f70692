//! Fields: list, declare.

use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::FieldDef;
use sift_lang::FieldType;

use super::{Body, Path, Query, Ws, cursor, limit, parse_cursor};
use crate::error::{ApiError, ApiResult};
use crate::reply::{JsonResponse, ok, page};

pub fn field_json(def: &FieldDef) -> Json {
    json!({"name": def.name, "type": def.field_type.name(), "label": def.label, "builtin": def.builtin, "system": def.system})
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The fields of the workspace, a page at a time: built-in and system ones
/// first, then declared and inferred ones in creation order.
#[utoipa::path(get, path = "/v1/fields", operation_id = "fields_list", security(("bearer" = [])), tag = "fields", params(FieldsQuery),
    responses((status = 200, description = "a page of fields")))]
pub async fn list(Ws(ws): Ws, Query(query): Query<FieldsQuery>) -> ApiResult<JsonResponse> {
    let after = parse_cursor(query.cursor.as_deref())?;
    let limit = limit(query.limit)?;
    // The cursor is the position of the last field given: fields are never
    // removed or reordered, so a position names the same field for good.
    let start = after.map_or(0, |n| n as usize + 1);
    let (items, next) = ws.read(|engine| {
        let fields = engine.fields();
        let end = fields.len().min(start.saturating_add(limit));
        let items: Vec<Json> = fields
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(field_json)
            .collect();
        let next = (end < fields.len()).then(|| cursor(end as u32 - 1));
        (items, next)
    })?;
    Ok(ok(page(items, next)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(rename = "type")]
    field_type: String,
    label: Option<String>,
}

/// Declares a field (or relabels one; a type change needs the field to hold no data).
#[utoipa::path(put, path = "/v1/fields/{name}", operation_id = "fields_declare", security(("bearer" = [])), tag = "fields", request_body = Object,
    params(("name" = String, Path, description = "the field's name")),
    responses((status = 200, description = "the field"), (status = 409, description = "the field holds data of another type"),
              (status = 422, description = "an unknown type, an invalid field name, or past the field limit (field_limit_exceeded)")))]
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

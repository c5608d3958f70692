//! Fields: list, declare.

use axum::Json as Reply;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sift_engine::FieldDef;
use sift_lang::FieldType;
use utoipa::ToSchema;

use super::{Body, Path, Query, Ws, cursor, limit, parse_cursor};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;

/// The types a field can have.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    String,
    Number,
    Boolean,
    Date,
    Datetime,
    StringList,
}

impl From<FieldType> for FieldKind {
    fn from(field_type: FieldType) -> FieldKind {
        match field_type {
            FieldType::String => FieldKind::String,
            FieldType::Number => FieldKind::Number,
            FieldType::Boolean => FieldKind::Boolean,
            FieldType::Date => FieldKind::Date,
            FieldType::DateTime => FieldKind::Datetime,
            FieldType::StringList => FieldKind::StringList,
        }
    }
}

/// A field of the workspace.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"builtin": false, "label": "Plan", "name": "plan", "system": false, "type": "string"}))]
pub struct Field {
    // Keys in alphabetical order: the order the untyped answer had.
    /// Built in: every workspace has it (like `email`).
    pub builtin: bool,
    /// The name a person reads; empty if none was given.
    pub label: String,
    pub name: String,
    /// Kept by the server (like `lead_score`); a client cannot set it.
    pub system: bool,
    #[serde(rename = "type")]
    pub field_type: FieldKind,
}

impl Field {
    pub fn new(def: &FieldDef) -> Field {
        Field {
            builtin: def.builtin,
            label: def.label.clone(),
            name: def.name.clone(),
            system: def.system,
            field_type: def.field_type.into(),
        }
    }
}

/// A field as untyped JSON, for the web UI's pages.
pub fn field_json(def: &FieldDef) -> Json {
    serde_json::to_value(Field::new(def)).unwrap_or_default()
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
    responses((status = 200, description = "a page of fields", body = Page<Field>)))]
pub async fn list(Ws(ws): Ws, Query(query): Query<FieldsQuery>) -> ApiResult<Reply<Page<Field>>> {
    let after = parse_cursor(query.cursor.as_deref())?;
    let limit = limit(query.limit)?;
    // The cursor is the position of the last field given: fields are never
    // removed or reordered, so a position names the same field for good.
    let start = after.map_or(0, |n| n as usize + 1);
    let (items, next) = ws.read(|engine| {
        let fields = engine.fields();
        let end = fields.len().min(start.saturating_add(limit));
        let items: Vec<Field> = fields
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(Field::new)
            .collect();
        let next = (end < fields.len()).then(|| cursor(end as u32 - 1));
        (items, next)
    })?;
    Ok(Reply(Page {
        items,
        next_cursor: next,
    }))
}

/// The body of `PUT /v1/fields/{name}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "string", "label": "Plan"}))]
pub struct Declaration {
    /// The field's type. Changing it needs the field to hold no data.
    // A string, so that an unknown type gets its own 422.
    #[serde(rename = "type")]
    #[schema(value_type = FieldKind)]
    field_type: String,
    /// The name a person reads.
    label: Option<String>,
}

/// Declares a field (or relabels one; a type change needs the field to hold no data).
#[utoipa::path(put, path = "/v1/fields/{name}", operation_id = "fields_declare", security(("bearer" = [])), tag = "fields", request_body = Declaration,
    params(("name" = String, Path, description = "the field's name")),
    responses((status = 200, description = "the field", body = Field), (status = 409, description = "the field holds data of another type"),
              (status = 422, description = "an unknown type, an invalid field name, or past the field limit (field_limit_exceeded)")))]
pub async fn declare(
    Ws(ws): Ws,
    Path(name): Path<String>,
    Body(body): Body<Declaration>,
) -> ApiResult<Reply<Field>> {
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
    Ok(Reply(Field::new(&def)))
}

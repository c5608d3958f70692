//! `GET /v1/segments/{id}/export.csv`: a segment's members as CSV (RFC 4180,
//! header row, the chosen fields), streamed a thousand contacts at a time so
//! that no export is ever held whole in memory.
//!
//! Each chunk is read under its own short engine lock, so a long export does
//! not hold up writes; contacts that enter or leave while it runs may or may
//! not be in it (the same as paging `GET /v1/segments/{id}/contacts`).

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sift_engine::ContactView;

use super::{Path, Query, Ws};
use crate::error::{ApiError, ApiResult};

const CHUNK: usize = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// Comma-separated columns: `id`, any field name, or a system field.
    /// Default: `id` and every non-system field.
    fields: Option<String>,
}

/// A segment's members as CSV, streamed.
#[utoipa::path(get, path = "/v1/segments/{id}/export.csv", tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), ExportQuery),
    responses((status = 200, description = "text/csv"), (status = 422, description = "an unknown column")))]
pub async fn export_csv(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let (name, columns) = ws.read(|engine| {
        let segment = engine
            .segment(&id)
            .ok_or_else(|| ApiError::not_found(format!("segment {id:?} does not exist")))?;
        let columns: Vec<String> = match query
            .fields
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            None => std::iter::once("id".to_string())
                .chain(
                    engine
                        .fields()
                        .iter()
                        .filter(|f| !f.system)
                        .map(|f| f.name.clone()),
                )
                .collect(),
            Some(list) => list
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        };
        for column in &columns {
            if column != "id" && engine.field(column).is_none() {
                return Err(ApiError::validation(format!(
                    "unknown column {column:?} in fields: use id or a field name (GET /v1/fields)"
                ))
                .with(serde_json::json!({"field": "fields", "column": column})));
            }
        }
        Ok((segment.def.name.clone(), columns))
    })??;
    let header_row = csv_row(columns.iter().map(String::as_str));
    let chunks = futures_util::stream::unfold(
        (ws, id, columns, None::<u32>, Some(header_row)),
        |(ws, id, columns, after, header_row)| async move {
            if after == Some(u32::MAX) {
                return None;
            }
            let read = ws.read(|engine| {
                let (numbers, more) = engine.list_contacts(None, Some(&id), after, CHUNK).ok()?;
                let mut out = header_row.unwrap_or_default();
                for view in numbers.iter().filter_map(|no| engine.contact_data(*no)) {
                    out.extend(csv_row(
                        columns
                            .iter()
                            .map(|c| cell(&view, c, ";"))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str),
                    ));
                }
                let next = if more {
                    numbers.last().copied()
                } else {
                    Some(u32::MAX)
                };
                Some((out, next))
            });
            // The segment was deleted, or the server is stopping: end here.
            let (bytes, next) = read.ok().flatten()?;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(bytes)),
                (ws, id, columns, next, None),
            ))
        },
    );
    let filename: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}.csv\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

fn csv_row<'a>(cells: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(cells);
    writer.into_inner().unwrap_or_default()
}

/// A column's value as text: `id`, a system field or a property; lists
/// are joined with `separator`, a missing value is empty.
pub fn cell(view: &ContactView, column: &str, separator: &str) -> String {
    use serde_json::Value as Json;
    let value = match column {
        "id" => return view.id.clone(),
        "lead_score" => super::number(view.lead_score),
        "created_at" => super::datetime(view.created_at),
        "updated_at" => super::datetime(view.updated_at),
        "last_seen_at" => view.last_seen_at.map_or(Json::Null, super::datetime),
        "anonymous" => Json::Bool(view.anonymous),
        name => view
            .properties
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Json::Null, |(_, v)| super::value_json(v)),
    };
    match value {
        Json::Null => String::new(),
        Json::String(s) => s,
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(separator),
        other => other.to_string(),
    }
}

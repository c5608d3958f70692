//! `GET /v1/segments/{id}/export.csv`: a segment's members as CSV (RFC 4180,
//! header row, the chosen fields; rows made by `csv_export.rs`), streamed a
//! thousand contacts at a time so that no export is ever held whole in memory.
//!
//! Each chunk is read under its own short engine lock, so a long export does
//! not hold up writes; contacts that enter or leave while it runs may or may
//! not be in it (the same as paging `GET /v1/segments/{id}/contacts`).

use super::{Path, Query, Ws};
use crate::csv_export::{self, Next};
use crate::error::{ApiError, ApiResult};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Comma-separated columns: `id`, any field name, or a system field.
    /// Default: `id` and every non-system field.
    fields: Option<String>,
    /// `true`: cells exactly as stored, for programs. By default a cell
    /// starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
    /// leading `'` so that a spreadsheet shows it instead of running it
    /// (plain negative numbers excepted).
    raw: Option<bool>,
    /// The members at this past instant (RFC 3339) instead of now, as
    /// `GET /v1/segments/{id}/contacts?as_of=` lists them.
    as_of: Option<String>,
}

/// A segment's members as CSV, streamed.
#[utoipa::path(get, path = "/v1/segments/{id}/export.csv", operation_id = "segments_export_csv", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), ExportQuery),
    responses((status = 200, description = "the members, a header row first", content_type = "text/csv", body = String), (status = 422, description = "an unknown column, or as_of before the segment existed or in the future"),
              (status = 404, description = "no such segment")))]
pub async fn export_csv(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let (name, columns) = ws.read(|engine| {
        let segment = engine
            .segment(&id)
            .ok_or_else(|| ApiError::not_found(format!("segment {id:?} does not exist")))?;
        let columns = csv_export::columns(engine, query.fields.as_deref()).map_err(|column| {
            ApiError::validation(format!(
                "unknown column {column:?} in fields: use id or a field name (GET /v1/fields)"
            ))
            .with(serde_json::json!({"field": "fields", "column": column}))
        })?;
        Ok::<_, ApiError>((segment.def.name.clone(), columns))
    })??;
    let cells = if query.raw.unwrap_or(false) {
        csv_export::Cells::Raw
    } else {
        csv_export::Cells::Neutralised
    };
    let as_of = match &query.as_of {
        Some(text) => Some(std::sync::Arc::new(
            super::segment_history::members_as_of(&ws, &id, text).await?,
        )),
        None => None,
    };
    let mut header_row = Vec::new();
    csv_export::header(&columns, &mut header_row);
    // The state is where the next chunk starts: `None` before the first
    // member, and the stream ends after `Next::Done`.
    let chunks = futures_util::stream::unfold(
        (ws, id, columns, Some(None::<u32>), Some(header_row), as_of),
        move |(ws, id, columns, next, header_row, as_of)| async move {
            let after = next?;
            let mut out = header_row.unwrap_or_default();
            let read = ws.read(|engine| {
                let members = match &as_of {
                    Some(members) => csv_export::Members::Past(members),
                    None => csv_export::Members::Now(&id),
                };
                csv_export::chunk(engine, members, &columns, cells, after, &mut out)
            });
            // The segment was deleted, or the server is stopping: end here.
            let (_, next) = read.ok().flatten()?;
            let next = match next {
                Next::After(no) => Some(Some(no)),
                Next::Done => None,
            };
            Some((
                Ok::<_, std::io::Error>(Bytes::from(out)),
                (ws, id, columns, next, None, as_of),
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

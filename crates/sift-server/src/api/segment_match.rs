//! `POST /v1/segments/{id}/contacts:match`: which contacts a pasted list or
//! an uploaded CSV names, before they are added to a static segment by hand
//! (docs/api.md "Matching contacts for a static segment"). Nothing changes:
//! the UI shows the answer and adds the matched ids with
//! `POST /v1/segments/{id}/contacts`.
//!
//! A CSV is sent as text and read with the `csv` crate (quoting, embedded
//! newlines, a BOM), so that no browser or server code splits lines by hand.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sift_engine::{MAX_BATCH, SegmentKind};
use utoipa::ToSchema;

use super::{Body, Path, Ws, unknown_key};
use crate::error::{ApiError, ApiResult, Code};

const KEYS: [&str; 4] = ["values", "csv", "header", "column"];

/// Headers a column of ids or emails is likely to have, chosen when the
/// request names no column.
const LIKELY: [&str; 5] = ["id", "contact_id", "email", "e-mail", "email_address"];

/// `POST /v1/segments/{id}/contacts:match`: either `values` or `csv`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"values": ["c_123", "ann@example.com"]}))]
pub struct MatchBody {
    /// Contact ids or emails, at most 10,000.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// A CSV file's text (comma separated, quoted as RFC 4180); one column
    /// holds contact ids or emails. At most 10,000 rows besides the header.
    #[serde(default)]
    pub csv: Option<String>,
    /// Whether the CSV's first row is a header; absent: guessed (a header
    /// when none of its cells is an email or a contact's id).
    #[serde(default)]
    pub header: Option<bool>,
    /// The CSV column to read: its header (without case) or its position
    /// from 1; absent: the first column headed id, contact_id or email, or
    /// else the first.
    #[serde(default)]
    #[schema(value_type = Option<Json>)]
    pub column: Option<Json>,
}

/// One value and a contact it names.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedValue {
    pub value: String,
    pub contact_id: String,
}

/// What a list names. Nothing is changed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "values": 3, "duplicates": 0,
    "matched": [{"value": "c_123", "contact_id": "c_123"}, {"value": "ann@example.com", "contact_id": "c_9"}],
    "unknown": ["zed@example.com"], "contacts": 2, "already_members": 1
}))]
pub struct MatchAnswer {
    /// The distinct non-empty values read.
    pub values: u64,
    /// Values left out because they repeat an earlier one.
    pub duplicates: u64,
    /// Each value that names a contact, with it: a contact id (or a former
    /// one) names that contact; an email (without case) every contact
    /// with it, so one value may come with several contacts.
    pub matched: Vec<MatchedValue>,
    /// The values that name no contact, in the order read.
    pub unknown: Vec<String>,
    /// The distinct contacts matched.
    pub contacts: u64,
    /// Of those, the ones already in the segment.
    pub already_members: u64,
    /// For a CSV: its columns (headers, or `Column 1`, `Column 2`… without
    /// a header), the column read (from 1), and whether the first row was
    /// taken as a header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
}

fn too_many() -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!(
            "at most {} values per request; split the list and add it in parts",
            with_separators(MAX_BATCH as u64)
        ),
    )
}

/// `10000` → `10,000`.
fn with_separators(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn values_of(value: &Json) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::validation("\"values\" must be a list of contact ids or emails (strings)")
            .with(json!({"field": "values"}))
    };
    let Json::Array(items) = value else {
        return Err(invalid());
    };
    if items.len() > MAX_BATCH {
        return Err(too_many());
    }
    items
        .iter()
        .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
        .collect()
}

/// The CSV's rows, each a list of cells.
fn read_csv(text: &str) -> Result<Vec<Vec<String>>, ApiError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            ApiError::validation(format!(
                "the CSV could not be read at row {}: {e}",
                with_separators(i as u64 + 1)
            ))
            .with(json!({"field": "csv"}))
        })?;
        // A header and at most MAX_BATCH rows: anything longer is refused
        // before it is all held.
        if rows.len() > MAX_BATCH {
            return Err(too_many());
        }
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(rows)
}

/// Whether `cell` reads as a value rather than a header.
fn looks_like_value(cell: &str, engine: &sift_engine::Workspace) -> bool {
    let cell = cell.trim();
    cell.contains('@') || engine.lookup(cell).is_some()
}

/// The column to read (from 0) among `columns`.
fn column_of(choice: Option<&Json>, columns: &[String], header: bool) -> Result<usize, ApiError> {
    let invalid = |message: String| ApiError::validation(message).with(json!({"field": "column"}));
    match choice {
        None | Some(Json::Null) => Ok(header
            .then(|| {
                columns
                    .iter()
                    .position(|c| LIKELY.contains(&c.trim().to_lowercase().as_str()))
            })
            .flatten()
            .unwrap_or(0)),
        Some(Json::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 && (n as usize) <= columns.len() => Ok(n as usize - 1),
            _ => Err(invalid(format!(
                "\"column\" {n} is not a column of this CSV: it has {} (numbered from 1)",
                columns.len()
            ))),
        },
        Some(Json::String(name)) if header => columns
            .iter()
            .position(|c| c.trim().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                invalid(format!(
                    "the CSV has no column {name:?}; its columns are {}",
                    columns.join(", ")
                ))
            }),
        Some(Json::String(_)) => Err(invalid(
            "without a header row, name the column by its position from 1".into(),
        )),
        Some(other) => Err(invalid(format!(
            "\"column\" must be a header or a position from 1, got {other}"
        ))),
    }
}

/// Which contacts a list of ids or emails, or a CSV column of them, names;
/// with how many of them are already members. Changes nothing.
#[utoipa::path(post, path = "/v1/segments/{id}/contacts:match", operation_id = "segment_members_match", security(("bearer" = [])), tag = "segments", request_body = MatchBody,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the values matched and unknown", body = MatchAnswer),
              (status = 404, description = "no such segment"),
              (status = 409, description = "the segment is dynamic"),
              (status = 413, description = "more than 10,000 values or rows"),
              (status = 422, description = "neither or both of values and csv, an unreadable CSV or an unknown column")))]
pub async fn match_contacts(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<MatchAnswer>> {
    let Json::Object(map) = &body else {
        return Err(ApiError::validation(
            "the body must be a JSON object like {\"values\": [\"ann@example.com\"]}",
        ));
    };
    if let Some(key) = unknown_key(map, &KEYS) {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}; the body has values, or csv with header and column"
        ))
        .with(json!({"field": key})));
    }
    let header_choice = match map.get("header") {
        None | Some(Json::Null) => None,
        Some(Json::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "\"header\" must be true or false, got {other}"
            ))
            .with(json!({"field": "header"})));
        }
    };
    enum Input {
        Values(Vec<String>),
        Csv(Vec<Vec<String>>),
    }
    let input = match (map.get("values"), map.get("csv")) {
        (Some(values), None) => Input::Values(values_of(values)?),
        (None, Some(Json::String(text))) => Input::Csv(read_csv(text)?),
        (None, Some(other)) => {
            return Err(ApiError::validation(format!(
                "\"csv\" must be the file's text, got {other}"
            ))
            .with(json!({"field": "csv"})));
        }
        _ => {
            return Err(ApiError::validation(
                "send either \"values\" (a list of ids or emails) or \"csv\" (a file's text)",
            ));
        }
    };
    let answer = ws.read(|engine| {
        let segment = engine.segment(&id).ok_or_else(|| {
            ApiError::not_found(format!("segment {id:?} does not exist"))
                .with(json!({"kind": "segment", "id": id}))
        })?;
        if segment.def.kind != SegmentKind::Static {
            return Err(ApiError::from(sift_engine::Error::WrongKind {
                id: id.clone(),
                kind: segment.def.kind,
                reason: "its members follow its condition; only static segments take contacts by hand",
            }));
        }
        let (raw, csv_part) = match input {
            Input::Values(values) => (values, None),
            Input::Csv(rows) => {
                let width = rows.iter().map(Vec::len).max().unwrap_or(0);
                let header = header_choice.unwrap_or_else(|| {
                    rows.first()
                        .is_some_and(|row| !row.iter().any(|c| looks_like_value(c, engine)))
                });
                let columns: Vec<String> = match rows.first().filter(|_| header) {
                    Some(first) => (0..width)
                        .map(|i| {
                            first
                                .get(i)
                                .map(|c| c.trim().to_string())
                                .filter(|c| !c.is_empty())
                                .unwrap_or_else(|| format!("Column {}", i + 1))
                        })
                        .collect(),
                    None => (0..width).map(|i| format!("Column {}", i + 1)).collect(),
                };
                let column = column_of(map.get("column"), &columns, header)?;
                let data = rows.iter().skip(usize::from(header));
                if data.len() > MAX_BATCH {
                    return Err(too_many());
                }
                let values = data
                    .map(|row| row.get(column).cloned().unwrap_or_default())
                    .collect();
                (values, Some((columns, column as u64 + 1, header)))
            }
        };
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        let mut values = Vec::new();
        for value in raw {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if seen.insert(value.to_string()) {
                values.push(value.to_string());
            } else {
                duplicates += 1;
            }
        }
        let found = engine.match_contacts(&values);
        let mut matched = Vec::new();
        let mut unknown = Vec::new();
        let mut contacts = roaring::RoaringBitmap::new();
        for (value, numbers) in values.iter().zip(found) {
            if numbers.is_empty() {
                unknown.push(value.clone());
            }
            for no in numbers {
                contacts.insert(no);
                matched.push(MatchedValue {
                    value: value.clone(),
                    contact_id: engine.contacts().id(no).to_string(),
                });
            }
        }
        let already = (&contacts & &*segment.members.bitmap()).len();
        let (columns, column, header) = match csv_part {
            Some((columns, column, header)) => (Some(columns), Some(column), Some(header)),
            None => (None, None, None),
        };
        Ok(MatchAnswer {
            values: values.len() as u64,
            duplicates,
            matched,
            unknown,
            contacts: contacts.len(),
            already_members: already,
            columns,
            column,
            header,
        })
    })??;
    Ok(axum::Json(answer))
}

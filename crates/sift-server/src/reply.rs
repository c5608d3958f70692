//! Shapes every API module answers with: a JSON body with its status, and the
//! page of a list. Bottom-level: it imports nothing from the rest of the
//! crate, so any module may use it.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value as Json, json};
use sift_engine::Usage;

/// An answer whose body was built as untyped JSON.
pub type JsonResponse = (StatusCode, axum::Json<Json>);

/// `200 OK` with `value` as the body.
pub fn ok(value: Json) -> JsonResponse {
    (StatusCode::OK, axum::Json(value))
}

/// `{"items": [...], "next_cursor": ...}` (docs/api.md), untyped.
pub fn page(items: Vec<Json>, next_cursor: Option<String>) -> Json {
    json!({"items": items, "next_cursor": next_cursor})
}

/// One page of a list: `next_cursor` is null on the last page; pass it as
/// `cursor` to read the next one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    // Always sent, `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Where a segment is used (a segment's `usages` and the `segment_in_use`
/// error both list them).
pub fn usages_json(usages: &[Usage]) -> Json {
    json!(
        usages
            .iter()
            .map(|u| {
                let mut usage = json!({"type": u.kind.as_str(), "id": u.id, "name": u.name, "role": u.role.as_str()});
                if let Some(status) = u.status {
                    usage["status"] = json!(status.as_str());
                }
                usage
            })
            .collect::<Vec<_>>()
    )
}

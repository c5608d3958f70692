//! Shapes several modules answer with: the page of a list, and a segment's
//! usages (the API's 409 and the UI). Bottom-level: it imports nothing from the rest of the
//! crate, so any module may use it.

use serde::Serialize;
use serde_json::{Value as Json, json};
use sift_engine::Usage;

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

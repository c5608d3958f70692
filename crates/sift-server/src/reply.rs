//! Shapes several modules answer with: the page of a list, a change of the
//! log (the API's pages and stream, webhook deliveries) and a segment's
//! usages (the API's 409 and the UI). Bottom-level: it imports nothing from the rest of the
//! crate, so any module may use it.

use serde::Serialize;
use serde_json::{Value as Json, json};
use sift_engine::{Usage, format_datetime};
use sift_store::StoredChange;
use utoipa::ToSchema;

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

/// A contact's entry into or exit from a segment, as docs/concepts.md
/// shapes it (the stream, the pages and webhook deliveries all send this).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"at": "2026-11-29T15:00:00Z", "cause": "event", "change": "entered", "contact_id": "ana", "segment_id": "seg_1", "seq": 42}))]
pub struct Change {
    // Keys in alphabetical order: the order the untyped JSON was printed in,
    // and the order `write_event` writes by hand.
    #[schema(format = DateTime)]
    pub at: String,
    /// What caused it.
    #[schema(value_type = CauseName)]
    pub cause: &'static str,
    #[schema(value_type = ChangeName)]
    pub change: &'static str,
    pub contact_id: String,
    pub segment_id: String,
    /// Its place in the workspace's change log, from 1.
    #[schema(minimum = 1)]
    pub seq: u64,
}

/// What caused a change: the names of the engine's `Cause`, for the
/// document (a test keeps the two lists equal).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CauseName {
    ContactUpdate,
    Event,
    Time,
    SegmentEdit,
    SegmentRef,
    StaticAdd,
    StaticRemove,
    Merge,
    ContactDelete,
}

/// A change's direction: the names of the engine's `ChangeKind`.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ChangeName {
    Entered,
    Exited,
}

impl Change {
    pub fn new(change: &StoredChange, contact_id: &str) -> Change {
        Change {
            at: format_datetime(change.at),
            cause: change.cause.as_str(),
            change: change.kind.as_str(),
            contact_id: contact_id.to_string(),
            segment_id: change.segment_id.clone(),
            seq: change.seq,
        }
    }
}

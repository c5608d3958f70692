//! The change log: a segment's changes after a seq, and the live stream of
//! all changes as server-sent events. The stream reads only durable changes
//! and wakes when the writer commits more; it never polls.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_store::StoredChange;

use super::contacts::{JsonResponse, ok};
use super::{Path, Query, Ws, datetime};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, WorkspaceHandle};

/// A change as SPEC §1 shapes it (the stream, the pages and webhook
/// deliveries all send this).
pub fn change_json(change: &StoredChange, contact_id: &str) -> Json {
    json!({
        "seq": change.seq,
        "segment_id": change.segment_id,
        "contact_id": contact_id,
        "change": change.kind.as_str(),
        "at": datetime(change.at),
        "cause": change.cause.as_str(),
    })
}

fn read_changes(
    ws: &WorkspaceHandle,
    after: u64,
    segment: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Json>> {
    let changes = ws
        .reader()?
        .changes(after, segment, limit)
        .map_err(ApiError::internal)?;
    ws.read(|engine| {
        changes
            .iter()
            .map(|c| change_json(c, engine.contacts().id(c.no)))
            .collect()
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ChangesQuery {
    /// Only changes with a greater seq (seqs start at 1: 0, like no
    /// `after`, is from the beginning).
    after: Option<u64>,
    limit: Option<usize>,
}

/// A segment's entries and exits after a seq, in seq order.
#[utoipa::path(get, path = "/v1/segments/{id}/changes", tag = "changes",
    params(("id" = String, Path, description = "the segment's id"), ChangesQuery),
    responses((status = 200, description = "a page of changes")))]
pub async fn segment_changes(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ChangesQuery>,
) -> ApiResult<JsonResponse> {
    let limit = super::limit(query.limit)?;
    let known = ws.read(|engine| engine.segment(&id).is_some())?;
    let items = read_changes(&ws, query.after.unwrap_or(0), Some(&id), limit)?;
    if !known && items.is_empty() {
        return Err(ApiError::not_found(format!(
            "segment {id:?} does not exist"
        )));
    }
    let next = if items.len() == limit {
        items
            .last()
            .and_then(|c| c["seq"].as_u64())
            .map(|s| s.to_string())
    } else {
        None
    };
    Ok(ok(json!({"items": items, "next_cursor": next})))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StreamQuery {
    /// Resume after this seq (the `Last-Event-ID` header does the same);
    /// 0, like none, is from the first change (seq 1).
    after: Option<u64>,
}

/// Every membership change, live, as server-sent events (`event: change`,
/// `id: <seq>`, data: the change as JSON).
#[utoipa::path(get, path = "/v1/changes/stream", tag = "changes", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of changes")))]
pub async fn stream(
    Ws(ws): Ws,
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = last_event_id.or(query.after).unwrap_or(0);
    let durable = ws.durable.subscribe();
    let stopping = app.stopping.subscribe();
    let state = (
        ws,
        after,
        (durable, stopping),
        std::collections::VecDeque::<Event>::new(),
    );
    let events = futures_util::stream::unfold(
        state,
        |(ws, mut after, (mut durable, mut stopping), mut pending)| async move {
            loop {
                if *stopping.borrow() {
                    return None;
                }
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (ws, after, (durable, stopping), pending)));
                }
                durable.borrow_and_update();
                let batch = read_changes(&ws, after, None, 1000).ok()?;
                for change in batch {
                    let mut event = Event::default().event("change").data(change.to_string());
                    if let Some(seq) = change["seq"].as_u64() {
                        after = seq;
                        event = event.id(seq.to_string());
                    }
                    pending.push_back(event);
                }
                if pending.is_empty() {
                    tokio::select! {
                        changed = durable.changed() => changed.ok()?,
                        // The server is shutting down (or gone): end the stream.
                        _ = stopping.changed() => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

pub type Handle = Arc<WorkspaceHandle>;

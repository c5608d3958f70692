//! The change log: a segment's changes after a seq, and the live stream of
//! all changes as server-sent events. The stream reads only durable changes
//! and wakes when the writer commits more; it never polls.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json as Reply;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sift_engine::format_datetime;
use sift_store::StoredChange;

use super::{Path, Query, Ws};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;
use crate::state::{AppState, WorkspaceHandle};

pub use crate::reply::{CauseName, Change, ChangeName};

/// Changes after a seq, with their contacts' ids, read on a blocking
/// thread with a connection of the read pool. The engine lock is taken
/// only to name the contacts, after the read.
async fn read_changes(
    ws: &Handle,
    after: u64,
    segment: Option<String>,
    limit: usize,
) -> ApiResult<Vec<Change>> {
    let handle = ws.clone();
    ws.service
        .reads
        .clone()
        .run(move |reader| {
            let changes = reader
                .changes(after, segment.as_deref(), limit)
                .map_err(ApiError::internal)?;
            Ok(handle.read(|engine| {
                changes
                    .iter()
                    .map(|c| Change::new(c, engine.contacts().id(c.no)))
                    .collect()
            })?)
        })
        .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes with a greater seq (seqs start at 1: 0, like no
    /// `after`, is from the beginning).
    after: Option<u64>,
    limit: Option<usize>,
}

/// Seqs are stored as SQLite integers (i64) and documented as int64: a
/// larger `after` names no change there can be, and is refused rather than
/// wrapped (a wrap would read the log from the beginning).
fn seq_after(after: Option<u64>, what: &str) -> Result<u64, ApiError> {
    match after {
        Some(seq) if seq > i64::MAX as u64 => Err(ApiError::bad_request(format!(
            "{what} must be a seq between 0 and {}, got {seq}",
            i64::MAX
        ))
        .with(json!({"field": "after"}))),
        Some(seq) => Ok(seq),
        None => Ok(0),
    }
}

/// A segment's entries and exits after a seq, in seq order.
#[utoipa::path(get, path = "/v1/segments/{id}/changes", operation_id = "segment_changes_list", security(("bearer" = [])), tag = "changes",
    params(("id" = String, Path, description = "the segment's id"), ChangesQuery),
    responses((status = 200, description = "a page of changes; `next_cursor` is the seq to pass as `after` for the next", body = Page<Change>),
              (status = 404, description = "no such segment")))]
pub async fn segment_changes(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ChangesQuery>,
) -> ApiResult<Reply<Page<Change>>> {
    let limit = super::limit(query.limit)?;
    let known = ws.read(|engine| engine.segment(&id).is_some())?;
    let after = seq_after(query.after, "after")?;
    let items = read_changes(&ws, after, Some(id.clone()), limit).await?;
    if !known && items.is_empty() {
        return Err(ApiError::not_found(format!(
            "segment {id:?} does not exist"
        )));
    }
    let next = if items.len() == limit {
        items.last().map(|c| c.seq.to_string())
    } else {
        None
    };
    Ok(Reply(Page {
        items,
        next_cursor: next,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this seq (the `Last-Event-ID` header does the same);
    /// 0, like none, is from the first change (seq 1).
    after: Option<u64>,
}

/// Most changes read (and sent) at once by a stream: a bounded page, so a
/// stream whose client reads slowly holds one page and no connection.
const STREAM_PAGE: usize = 500;
/// A comment sent on a quiet stream, so that proxies and clients see it
/// alive (and the connection is never idle).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One change as a server-sent event, its data byte for byte what
/// a [`Change`] serializes to, written without building a JSON value (a replay
/// writes millions).
pub fn write_event(out: &mut Vec<u8>, change: &StoredChange, contact_id: &str) {
    // Keys in serde_json's (sorted) order.
    let _ = write!(
        out,
        "event: change\ndata: {{\"at\":\"{}\",\"cause\":\"{}\",\"change\":\"{}\",\"contact_id\":",
        format_datetime(change.at),
        change.cause.as_str(),
        change.kind.as_str(),
    );
    let _ = serde_json::to_writer(&mut *out, contact_id);
    out.extend_from_slice(b",\"segment_id\":");
    let _ = serde_json::to_writer(&mut *out, &change.segment_id);
    let _ = write!(out, ",\"seq\":{}}}\nid: {}\n\n", change.seq, change.seq);
}

/// A page of changes in the server-sent-events format, and the seq of its
/// last change.
async fn stream_page(ws: &Handle, after: u64) -> ApiResult<(Vec<u8>, Option<u64>)> {
    let handle = ws.clone();
    ws.service
        .reads
        .clone()
        .run(move |reader| {
            let changes = reader
                .changes(after, None, STREAM_PAGE)
                .map_err(ApiError::internal)?;
            let mut text = Vec::with_capacity(changes.len() * 224);
            handle.read(|engine| {
                for change in &changes {
                    write_event(&mut text, change, engine.contacts().id(change.no));
                }
            })?;
            Ok((text, changes.last().map(|c| c.seq)))
        })
        .await
}

/// Every membership change, live, as server-sent events (`event: change`,
/// `id: <seq>`, data: the change as JSON).
///
/// The stream reads a page, sends it, and reads the next only once the
/// client has taken it (hyper polls for more only then); it waits on the
/// durable-seq watch when caught up. It ends when the server stops or the
/// key (or session) that opened it is revoked.
#[utoipa::path(get, path = "/v1/changes/stream", operation_id = "changes_stream", security(("bearer" = [])), tag = "changes", params(StreamQuery),
    responses((status = 200, description = "the changes after `after` (or `Last-Event-ID`), then each new one as it commits: one `event: change` with `id:` (its seq) and `data:` (the change as JSON) per change", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    Ws(ws): Ws,
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Response> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = match last_event_id {
        Some(id) => seq_after(Some(id), "the Last-Event-ID header")?,
        None => seq_after(query.after, "after")?,
    };
    let durable = ws.signals().durable.subscribe();
    let stopping = app.stopping.subscribe();
    let pages = futures_util::stream::unfold(
        (ws, after, durable, stopping),
        |(ws, mut after, mut durable, mut stopping)| async move {
            loop {
                if *stopping.borrow() {
                    return None;
                }
                let next = *durable.borrow_and_update();
                let from = after.saturating_add(1);
                if from < next {
                    let (text, last) = match stream_page(&ws, after).await {
                        Ok(page) => page,
                        Err(error) => {
                            tracing::warn!(error = %error.message, "a change stream ended on a failed read");
                            return None;
                        }
                    };
                    if let Some(last) = last {
                        after = last;
                        let chunk = Ok::<_, Infallible>(Bytes::from(text));
                        return Some((chunk, (ws, after, durable, stopping)));
                    }
                }
                tokio::select! {
                    changed = durable.changed() => changed.ok()?,
                    // The server is shutting down (or gone): end the stream.
                    _ = stopping.changed() => return None,
                    () = tokio::time::sleep(KEEP_ALIVE) => {
                        let chunk = Ok(Bytes::from_static(b":\n\n"));
                        return Some((chunk, (ws, after, durable, stopping)));
                    }
                }
            }
        },
    );
    let pages = crate::revoke::until_revoked(&app, &headers, pages);
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

pub type Handle = Arc<WorkspaceHandle>;

#[cfg(test)]
mod tests {
    use sift_engine::{Cause, ChangeKind};

    use super::*;

    #[test]
    fn the_documented_names_are_the_engines() {
        use serde_json::json;
        use utoipa::PartialSchema;
        let names = |schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
            serde_json::to_value(schema).unwrap()["enum"].clone()
        };
        let causes: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names(CauseName::schema()), json!(causes));
        let kinds = [ChangeKind::Entered, ChangeKind::Exited].map(ChangeKind::as_str);
        assert_eq!(names(ChangeName::schema()), json!(kinds));
    }

    #[test]
    fn an_event_carries_exactly_the_json_of_the_change() {
        for contact in [
            "ana",
            "quote\"back\\slash",
            "tab\tnewline\n\u{1}",
            "ñandú 🦤",
        ] {
            let change = StoredChange {
                seq: 42,
                segment_id: "seg_\"x\"".to_string(),
                kind: ChangeKind::Exited,
                cause: Cause::Time,
                at: 1_790_000_000_123,
                no: 7,
            };
            let mut out = Vec::new();
            write_event(&mut out, &change, contact);
            let text = String::from_utf8(out).unwrap();
            let expected = format!(
                "event: change\ndata: {}\nid: 42\n\n",
                serde_json::to_string(&Change::new(&change, contact)).unwrap()
            );
            assert_eq!(text, expected);
        }
    }
}

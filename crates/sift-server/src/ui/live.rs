//! Server-sent events for the UI: segment sizes for the list, and a
//! segment's size and latest changes for its page. Both wake on the
//! workspace's durable-commit signal (never a timer) and read only what
//! changed: sizes are bitmap lengths, changes come from the change log.
//!
//! A big batch (a segment edit moving 100,000 contacts) arrives as one
//! message with the newest 50 changes and the count of the rest, rather than
//! as 100,000 browser events.
//!
//! A Facebook export job's page follows the job the same way: woken by the
//! job's progress watch, at most one message per `JOB_COALESCE`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::Signed;
use crate::api::{Path, Query, datetime};
use crate::error::ApiError;
use crate::state::AppState;

/// Commits closer together than this are reported as one message.
const COALESCE: Duration = Duration::from_millis(150);
const CHANGES_PER_MESSAGE: usize = 50;
/// A job reports after every batch; a browser needs no more than this.
const JOB_COALESCE: Duration = Duration::from_millis(250);

/// Waits for the next durable commit, then a moment for more to join it;
/// None once the server stops.
async fn next_commit(
    durable: &mut watch::Receiver<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> Option<()> {
    tokio::select! {
        changed = durable.changed() => changed.ok()?,
        _ = stopping.changed() => return None,
    }
    tokio::time::sleep(COALESCE).await;
    Some(())
}

pub async fn sizes(
    Signed(ws): Signed,
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let durable = ws.signals().durable.subscribe();
    let stopping = app.stopping.subscribe();
    // Size and anonymous members: identify changes the split, not the size.
    let sent: HashMap<String, (u64, u64)> = HashMap::new();
    let events = futures_util::stream::unfold(
        (ws, durable, stopping, sent, true),
        |(ws, mut durable, mut stopping, mut sent, first)| async move {
            loop {
                if !first {
                    next_commit(&mut durable, &mut stopping).await?;
                }
                durable.borrow_and_update();
                let current: Vec<(String, (u64, u64))> = ws
                    .read(|engine| {
                        let anonymous = engine.contacts().anonymous();
                        engine
                            .segments()
                            .iter()
                            .map(|(_, s)| {
                                let split =
                                    (s.members.len(), s.members.intersection_len(anonymous));
                                (s.def.id.clone(), split)
                            })
                            .collect()
                    })
                    .ok()?;
                let mut changed = serde_json::Map::new();
                let mut split = serde_json::Map::new();
                for (id, (size, anonymous)) in current {
                    if sent.get(&id) != Some(&(size, anonymous)) {
                        changed.insert(id.clone(), json!(size));
                        split.insert(id.clone(), json!([size - anonymous, anonymous]));
                        sent.insert(id, (size, anonymous));
                    }
                }
                if changed.is_empty() && !first {
                    continue;
                }
                let data =
                    json!({"sizes": changed, "split": split, "at": datetime(ws.clock().now_ms())});
                let event = Event::default().event("sizes").data(data.to_string());
                return Some((Ok(event), (ws, durable, stopping, sent, false)));
            }
        },
    );
    let events = crate::revoke::until_revoked(&app, &headers, events);
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
pub struct SegmentQuery {
    /// The first seq the page has not shown.
    from: Option<u64>,
}

pub async fn segment(
    Signed(ws): Signed,
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<SegmentQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::UiError> {
    if ws.read(|engine| engine.segment(&id).is_none())? {
        return Err(ApiError::not_found(format!("segment {id:?} does not exist")).into());
    }
    let durable = ws.signals().durable.subscribe();
    let stopping = app.stopping.subscribe();
    let from = query.from.unwrap_or(0);
    let events = futures_util::stream::unfold(
        (ws, id, durable, stopping, from, true),
        |(ws, id, mut durable, mut stopping, mut from, first)| async move {
            loop {
                if !first {
                    next_commit(&mut durable, &mut stopping).await?;
                }
                durable.borrow_and_update();
                let segment = id.clone();
                let recent = ws
                    .service
                    .reads
                    .clone()
                    .run(move |reader| {
                        reader
                            .recent_changes(&segment, CHANGES_PER_MESSAGE + 1)
                            .map_err(ApiError::internal)
                    })
                    .await
                    .ok()?;
                let fresh: Vec<_> = recent.into_iter().filter(|c| c.seq >= from).collect();
                if fresh.is_empty() {
                    if first {
                        // Nothing new since the page was rendered.
                        return Some((
                            Ok(Event::default().comment("up to date")),
                            (ws, id, durable, stopping, from, false),
                        ));
                    }
                    continue;
                }
                let newest = fresh.first().map_or(from, |c| c.seq);
                // More than a message holds: report how many were left out.
                let more = fresh.len() > CHANGES_PER_MESSAGE;
                let ((size, anonymous), changes) = ws
                    .read(|engine| {
                        let size = engine.segment(&id).map_or((0, 0), |s| {
                            let anonymous = engine.contacts().anonymous();
                            (s.members.len(), s.members.intersection_len(anonymous))
                        });
                        let changes: Vec<serde_json::Value> = fresh
                            .iter()
                            .take(CHANGES_PER_MESSAGE)
                            .map(|c| {
                                json!({
                                    "seq": c.seq,
                                    "contact_id": engine.contacts().id(c.no),
                                    "change": c.kind.as_str(),
                                    "cause": c.cause.as_str(),
                                    "at": datetime(c.at),
                                })
                            })
                            .collect();
                        (size, changes)
                    })
                    .ok()?;
                from = newest + 1;
                let data = json!({
                    "size": size,
                    "size_known": size - anonymous,
                    "size_anonymous": anonymous,
                    "changes": changes,
                    "more": more,
                });
                let event = Event::default()
                    .event("segment")
                    .id(newest.to_string())
                    .data(data.to_string());
                return Some((Ok(event), (ws, id, durable, stopping, from, false)));
            }
        },
    );
    let events = crate::revoke::until_revoked(&app, &headers, events);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /ui/live/exports/{id}`: the job as `GET /v1/exports/{id}` answers
/// it, first at once, then after each change of its progress. The page
/// closes the stream when the job has ended.
pub async fn export_job(
    Signed(ws): Signed,
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::UiError> {
    let job = ws
        .tasks
        .exports
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("export job {id:?} does not exist")))?;
    let progress = job.progress.subscribe();
    let stopping = app.stopping.subscribe();
    let events = futures_util::stream::unfold(
        (job, progress, stopping, true),
        |(job, mut progress, mut stopping, first)| async move {
            if !first {
                tokio::select! {
                    changed = progress.changed() => changed.ok()?,
                    _ = stopping.changed() => return None,
                }
                tokio::time::sleep(JOB_COALESCE).await;
            }
            progress.borrow_and_update();
            let event = Event::default()
                .event("job")
                .data(job.to_json().to_string());
            Some((Ok(event), (job, progress, stopping, false)))
        },
    );
    let events = crate::revoke::until_revoked(&app, &headers, events);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

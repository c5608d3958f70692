//! Syncs resume when their workspace opens: a sync whose stored state was
//! `queued` or `running` and whose sealed token is stored is running again,
//! with the rows its audience holds; its first step compares every member
//! and every stored row, so the contacts that left while the server was
//! down are removed and those that entered are added. If the token cannot
//! be opened (the key is missing or another one), the job fails saying so
//! and nothing is sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use roaring::RoaringBitmap;
use serde_json::{Value as Json, json};
use sift_store::{ExportRow, StoreError, WorkspaceReader};
use tokio::sync::watch;

use super::graph::Secret;
use super::{Job, Key, Progress, State, save, task};
use crate::config::Config;
use crate::destination::Destinations;
use crate::secrets::Sealer;
use crate::workspace::service::WorkspaceService;

/// A sync to start again, with its sealed token.
pub struct Resumable {
    row: ExportRow,
    job: Json,
    sealed: Vec<u8>,
}

/// Splits the stored jobs into those shown as stored (finished ones, and
/// unfinished ones that cannot resume) and the syncs that resume. When
/// syncs do not resume here (`sift import`, or no runtime to run them),
/// nothing is changed: they resume at the server's next start.
pub fn resumable(
    reader: &WorkspaceReader,
    enabled: bool,
) -> Result<(Vec<ExportRow>, Vec<Resumable>), StoreError> {
    let rows = reader.exports()?;
    if !enabled || tokio::runtime::Handle::try_current().is_err() {
        return Ok((rows, Vec::new()));
    }
    let mut stored = Vec::new();
    let mut resumable = Vec::new();
    for row in rows {
        let job: Json = serde_json::from_str(&row.job).unwrap_or(Json::Null);
        let unfinished = matches!(job["state"].as_str(), Some("queued" | "running"));
        let sealed = if unfinished && job["sync"] == json!(true) {
            reader.export_token(&row.id)?
        } else {
            None
        };
        match sealed {
            Some(sealed) => resumable.push(Resumable { row, job, sealed }),
            None => stored.push(row),
        }
    }
    Ok((stored, resumable))
}

/// Starts each resumable sync's task again (or fails it, saying why).
pub fn resume(
    handle: &Arc<WorkspaceService>,
    exports: &super::Registry,
    destinations: &Destinations,
    syncs: Vec<Resumable>,
    config: &Config,
) {
    if syncs.is_empty() {
        return;
    }
    let sealer = Sealer::load(config.secret_key.as_ref(), &config.data_dir, false);
    for sync in syncs {
        let job = Arc::new(job_of(&sync.row, &sync.job, handle.clock.now_ms()));
        exports.add(job.clone());
        let token = sealer
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|sealer| sealer.open(&job.id, &sync.sealed))
            .and_then(|plain| {
                String::from_utf8(plain).map_err(|_| "the stored token is damaged".to_string())
            });
        let sent = token.and_then(|token| {
            let rows = handle
                .reader()
                .map_err(|e| e.to_string())?
                .export_sent(&job.id)
                .map_err(|e| format!("its stored rows cannot be read ({e})"))?;
            Ok((Secret::new(token), rows))
        });
        let (token, sent) = match sent {
            Ok(found) => found,
            Err(why) => {
                tracing::error!(job = %job.id, workspace = %handle.id(), reason = %why, "a Facebook sync cannot resume");
                job.progress.send_modify(|p| {
                    p.state = State::Failed;
                    p.phase = Some("stopped");
                    let now = handle.clock.now_ms();
                    p.record_error(now, format!(
                        "the sync cannot resume after the restart: {why}. Nothing was sent; start the export again with an access token"
                    ));
                    p.updated_at = now;
                });
                save(handle, &job);
                super::forget(handle, &job);
                continue;
            }
        };
        let mut pending = RoaringBitmap::new();
        let sent_rows: HashMap<u32, Vec<String>> = sent
            .into_iter()
            .filter_map(|(no, text)| {
                let (row, is_pending) = stored_row(&text)?;
                if is_pending {
                    pending.insert(no);
                }
                Some((no, row))
            })
            .collect();
        tracing::info!(
            job = %job.id,
            workspace = %handle.id(),
            segment = %job.segment_id,
            rows = sent_rows.len(),
            pending = pending.len(),
            "resuming a Facebook sync after the restart: the audience is compared with the segment"
        );
        task::spawn_resumed(
            handle,
            destinations,
            job,
            token,
            &config.facebook,
            sent_rows,
            pending,
        );
    }
}

/// A stored `export_sent` row and whether it is pending (stored before its
/// batch was sent and never confirmed): `["…", …]` is held,
/// `{"pending": ["…", …]}` pending.
fn stored_row(text: &str) -> Option<(Vec<String>, bool)> {
    match serde_json::from_str(text).ok()? {
        Json::Object(mut stored) => Some((
            serde_json::from_value(stored.remove("pending")?).ok()?,
            true,
        )),
        held => Some((serde_json::from_value(held).ok()?, false)),
    }
}

/// The job as it was stored, running again from `now`.
fn job_of(row: &ExportRow, stored: &Json, now: i64) -> Job {
    let text = |key: &str| stored[key].as_str().unwrap_or_default().to_string();
    let count = |key: &str| stored[key].as_u64().unwrap_or(0);
    let list = |key: &str| stored[key].as_array().cloned().unwrap_or_default();
    let keys: Vec<Key> = stored["identifiers"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().and_then(Key::parse))
                .collect()
        })
        .unwrap_or_default();
    Job {
        id: row.id.clone(),
        segment_id: row.segment_id.clone(),
        audience_id: text("audience_id"),
        sync: true,
        keys,
        graph_url: text("graph_url"),
        version: text("version"),
        created_at: row.created_at,
        retry_of: stored["retry_of"].as_str().map(str::to_string),
        progress: watch::channel(Progress {
            state: State::Running,
            phase: Some("syncing"),
            total: count("total"),
            sent: count("sent"),
            removed: count("removed"),
            // Recounted by the first comparison.
            skipped: 0,
            unsubscribed: 0,
            batch_count: count("batch_count"),
            num_received: count("num_received"),
            num_invalid_entries: count("num_invalid_entries"),
            retries: count("retries"),
            batches: VecDeque::new(),
            errors: VecDeque::new(),
            earlier_batches: list("batches"),
            earlier_errors: list("errors"),
            updated_at: now,
        })
        .0,
        stop: watch::channel(false).0,
    }
}

//! Facebook Custom Audience exports (docs/api.md "CSV export" and "Facebook Custom Audience export"): a job per export, uploading a
//! segment's members as hashed identifiers and, with `sync`, keeping the
//! audience equal to the segment afterwards.
//!
//! Jobs run in the memory of their workspace (`Registry`); their state
//! (never the token) is stored after each batch, so they can be read after
//! a restart. No GET returns the access token and nothing logs it. A sync
//! stores it sealed (`crate::secrets`, key outside the database) with the
//! rows its audience holds, and resumes after a restart (`resume.rs`),
//! removing exactly the rows of contacts that left meanwhile. A one-off
//! export that was running when the server stopped shows `failed`, asking
//! to start it again; what was sent stays in the audience.
//! `normalize.rs` holds the identifier rules, `graph.rs` the HTTP side and
//! the retries, `task.rs` the job itself; `connection.rs` the workspace's
//! stored token and ad account, `audiences.rs` listing and creating the
//! account's audiences.

pub mod audiences;
pub mod connection;
pub mod graph;
pub mod normalize;
mod resume;
mod task;
mod view;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use tokio::sync::watch;

use sift_store::{ExportRow, ExportWrite};

pub use crate::config::facebook::Settings;
use crate::destination::Destinations;
use crate::workspace::service::WorkspaceService;
pub use normalize::Key;
pub use resume::{Resumable, resumable, resume};
use sift_store::json::datetime;
pub use view::{ExportBatch, ExportError, ExportJob};

/// Facebook's limit of rows per request to the `users` edge.
pub const MAX_ROWS: usize = 10_000;
/// The batch list on a job keeps the most recent ones; totals count all.
const KEPT_BATCHES: usize = 100;
const KEPT_ERRORS: usize = 100;
/// Finished jobs kept per workspace for the lists.
const KEPT_JOBS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct BatchInfo {
    pub n: u64,
    pub method: graph::Method,
    pub rows: usize,
    pub status: Option<u16>,
    pub num_received: Option<u64>,
    pub num_invalid_entries: Option<u64>,
    pub session_id: Option<String>,
    pub attempts: u32,
    pub at: i64,
}

/// A job's progress, published on a watch so the UI can follow it.
#[derive(Clone, Debug)]
pub struct Progress {
    pub state: State,
    /// `initial`, `syncing` or `stopped` (sync jobs only).
    pub phase: Option<&'static str>,
    pub total: u64,
    pub sent: u64,
    pub removed: u64,
    pub skipped: u64,
    pub unsubscribed: u64,
    pub batch_count: u64,
    pub num_received: u64,
    pub num_invalid_entries: u64,
    pub retries: u64,
    pub batches: VecDeque<BatchInfo>,
    pub errors: VecDeque<(i64, String)>,
    /// Batches and errors of the job before the server restarted, as they
    /// were answered then.
    pub earlier_batches: Vec<Json>,
    pub earlier_errors: Vec<Json>,
    pub updated_at: i64,
}

impl Progress {
    pub fn record_batch(&mut self, batch: BatchInfo) {
        self.batch_count += 1;
        self.num_received += batch.num_received.unwrap_or(0);
        self.num_invalid_entries += batch.num_invalid_entries.unwrap_or(0);
        if self.batches.len() == KEPT_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }

    pub fn record_error(&mut self, at: i64, message: String) {
        if self.errors.len() == KEPT_ERRORS {
            self.errors.pop_front();
        }
        self.errors.push_back((at, message));
    }
}

/// One export job. It holds no token: only its task does.
pub struct Job {
    pub id: String,
    pub segment_id: String,
    pub audience_id: String,
    pub sync: bool,
    pub keys: Vec<Key>,
    pub graph_url: String,
    pub version: String,
    pub created_at: i64,
    /// The failed job this one started again (`POST /v1/exports/{id}/retry`).
    pub retry_of: Option<String>,
    pub progress: watch::Sender<Progress>,
    /// Turns true when a client stops the job (`DELETE /v1/exports/{id}`).
    pub stop: watch::Sender<bool>,
}

impl Job {
    pub fn to_json(&self) -> Json {
        let p = self.progress.borrow();
        let current = p.batches.iter().map(|b| {
            json!({
                "n": b.n, "method": b.method.http(), "rows": b.rows, "status": b.status,
                "num_received": b.num_received, "num_invalid_entries": b.num_invalid_entries,
                "session_id": b.session_id, "attempts": b.attempts, "at": datetime(b.at),
            })
        });
        let batches = latest(&p.earlier_batches, current, KEPT_BATCHES);
        let current = p
            .errors
            .iter()
            .map(|(at, message)| json!({"at": datetime(*at), "message": message}));
        let errors = latest(&p.earlier_errors, current, KEPT_ERRORS);
        json!({
            "id": self.id,
            "segment_id": self.segment_id,
            "audience_id": self.audience_id,
            "state": p.state.as_str(),
            "sync": self.sync,
            "phase": p.phase,
            "identifiers": self.keys.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "graph_url": self.graph_url,
            "version": self.version,
            "total": p.total,
            "sent": p.sent,
            "removed": p.removed,
            "skipped": p.skipped,
            "unsubscribed": p.unsubscribed,
            "batch_count": p.batch_count,
            "num_received": p.num_received,
            "num_invalid_entries": p.num_invalid_entries,
            "retries": p.retries,
            "batches": batches,
            "errors": errors,
            "created_at": datetime(self.created_at),
            "updated_at": datetime(p.updated_at),
            "retry_of": self.retry_of,
        })
    }
}

/// The last `keep` of the earlier items followed by the current ones.
fn latest(earlier: &[Json], current: impl Iterator<Item = Json>, keep: usize) -> Vec<Json> {
    let mut all: Vec<Json> = earlier.to_vec();
    all.extend(current);
    let extra = all.len().saturating_sub(keep);
    all.split_off(extra)
}

/// What a client asked for, checked.
#[derive(Debug)]
pub struct Request {
    pub segment_id: String,
    pub audience_id: String,
    pub token: graph::Secret,
    pub keys: Vec<Key>,
    pub sync: bool,
    pub graph_url: String,
    pub version: String,
    pub retry_of: Option<String>,
}

/// What a one-off job that was running when the server stopped says after a
/// restart (syncs resume instead).
pub const RESTARTED: &str = "the server restarted while this export ran: start the export again (the audience keeps what was sent)";

/// The export jobs of one workspace.
#[derive(Default)]
pub struct Registry {
    jobs: Mutex<VecDeque<Arc<Job>>>,
    /// Jobs of earlier runs of the server, as last stored (oldest first).
    stored: Vec<Json>,
}

impl Registry {
    /// The registry of a workspace that opens with these stored jobs; those
    /// that had not finished are shown failed at `now`, asking to start
    /// again.
    pub fn restore(rows: Vec<ExportRow>, now: i64) -> Registry {
        let stored = rows
            .into_iter()
            .filter_map(|row| {
                let mut job: Json = serde_json::from_str(&row.job).ok()?;
                if matches!(job["state"].as_str(), Some("queued" | "running")) {
                    job["state"] = json!("failed");
                    if job["sync"] == json!(true) {
                        job["phase"] = json!("stopped");
                    }
                    if let Some(errors) = job["errors"].as_array_mut() {
                        errors.push(json!({"at": datetime(now), "message": RESTARTED}));
                    }
                }
                Some(job)
            })
            .collect();
        Registry {
            jobs: Mutex::default(),
            stored,
        }
    }

    /// A job as `GET /v1/exports/{id}` answers it, running or stored.
    pub fn job_json(&self, id: &str) -> Option<Json> {
        self.get(id)
            .map(|job| job.to_json())
            .or_else(|| self.stored.iter().find(|j| j["id"] == id).cloned())
    }

    /// A segment's jobs, newest first: this run's, then stored ones.
    pub fn list_json(&self, segment_id: &str) -> Vec<Json> {
        let mut items: Vec<Json> = self
            .list(Some(segment_id))
            .iter()
            .map(|job| job.to_json())
            .collect();
        items.extend(
            self.stored
                .iter()
                .rev()
                .filter(|j| j["segment_id"] == segment_id)
                .cloned(),
        );
        items
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().ok()?;
        jobs.iter().find(|j| j.id == id).cloned()
    }

    /// Newest first, of one segment or all.
    pub fn list(&self, segment_id: Option<&str>) -> Vec<Arc<Job>> {
        let Ok(jobs) = self.jobs.lock() else {
            return Vec::new();
        };
        jobs.iter()
            .rev()
            .filter(|j| segment_id.is_none_or(|s| j.segment_id == s))
            .cloned()
            .collect()
    }

    pub(crate) fn add(&self, job: Arc<Job>) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= KEPT_JOBS
                && let Some(finished) = jobs
                    .iter()
                    .position(|j| matches!(j.progress.borrow().state, State::Done | State::Failed))
            {
                jobs.remove(finished);
            }
            jobs.push_back(job);
        }
    }
}

/// Creates the job and starts its task. A sync's token is stored sealed
/// with `sealer` first, so that the sync can resume after a restart.
pub fn start(
    ws: &Arc<WorkspaceService>,
    exports: &Registry,
    destinations: &Destinations,
    request: Request,
    settings: &Settings,
    sealer: Option<&crate::secrets::Sealer>,
) -> Result<Arc<Job>, String> {
    let now = ws.clock.now_ms();
    let job = Arc::new(Job {
        id: crate::ids::new_id("fbx"),
        segment_id: request.segment_id.clone(),
        audience_id: request.audience_id.clone(),
        sync: request.sync,
        keys: request.keys.clone(),
        graph_url: request.graph_url.clone(),
        version: request.version.clone(),
        created_at: now,
        retry_of: request.retry_of.clone(),
        progress: watch::channel(Progress {
            state: State::Queued,
            phase: request.sync.then_some("initial"),
            total: 0,
            sent: 0,
            removed: 0,
            skipped: 0,
            unsubscribed: 0,
            batch_count: 0,
            num_received: 0,
            num_invalid_entries: 0,
            retries: 0,
            batches: VecDeque::new(),
            errors: VecDeque::new(),
            earlier_batches: Vec::new(),
            earlier_errors: Vec::new(),
            updated_at: now,
        })
        .0,
        stop: watch::channel(false).0,
    });
    let token = match (request.sync, sealer) {
        (true, Some(sealer)) => Some(sealer.seal(&job.id, request.token.expose().as_bytes())?),
        (true, None) => return Err("a sync needs the key for secrets at rest".to_string()),
        (false, _) => None,
    };
    exports.add(job.clone());
    save(ws, &job);
    if let Some(sealed) = token {
        let _ = ws.queue_exports(vec![ExportWrite::Token {
            job_id: job.id.clone(),
            sealed,
        }]);
    }
    task::spawn(ws, destinations, job.clone(), request, settings);
    Ok(job)
}

/// Stores the job's state (never its token) in the writer's next group
/// commit, so `GET /v1/exports/{id}` answers after a restart.
pub fn save(ws: &WorkspaceService, job: &Job) {
    let row = ExportRow {
        id: job.id.clone(),
        segment_id: job.segment_id.clone(),
        created_at: job.created_at,
        job: job.to_json().to_string(),
    };
    // A closed writer only means this last state is not stored; the job
    // then reads as interrupted after the restart, which it was.
    let _ = ws.queue_exports(vec![ExportWrite::Job(row)]);
}

/// Drops a sync's stored token and rows once it ended for good.
pub fn forget(ws: &WorkspaceService, job: &Job) {
    let _ = ws.queue_exports(vec![ExportWrite::Forget {
        job_id: job.id.clone(),
    }]);
}

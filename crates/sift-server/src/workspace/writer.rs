//! A workspace's writer thread: it commits queued writes in groups (one
//! transaction and one fsync for every write that arrived meanwhile) before
//! they are acknowledged, publishes the durable seq, and asks a second
//! thread to checkpoint the WAL every few commits.

use std::sync::mpsc;
use std::time::Instant;

use sift_engine::Record;
use sift_store::{Pending, StoreError, WebhookWrite, WorkspaceDb, WorkspaceReader};
use tokio::sync::{oneshot, watch};

/// Most writes one group commit takes.
const MAX_GROUP: usize = 1024;
/// How long a commit waits for more writes while writers are concurrent.
const GATHER: std::time::Duration = std::time::Duration::from_micros(300);
/// Commits between two WAL checkpoints.
const COMMITS_PER_CHECKPOINT: u32 = 64;
/// The WAL's size past which the writer empties it itself, between two
/// commits (`WorkspaceDb::truncate_wal_if_over`): a writer that never pauses
/// (a bulk import) outruns the checkpointer.
const WAL_TRUNCATE_AT: u64 = 256 * 1024 * 1024;

/// One write to commit, and whom to tell once it is durable (or failed).
pub(crate) struct Job {
    pub(crate) records: Vec<Record>,
    /// Webhook subscriptions and cursors, committed after `records`.
    pub(crate) webhooks: Vec<WebhookWrite>,
    /// Facebook export jobs' state, sync tokens and sent rows, committed last.
    pub(crate) exports: Vec<sift_store::ExportWrite>,
    /// A chunk of old workflow history to delete (`retention.rs`).
    pub(crate) prune: Option<sift_store::Prune>,
    /// A chunk of events past the retention to delete (`event_retention.rs`).
    pub(crate) prune_events: Option<sift_store::EventPrune>,
    /// Touched-contact rows no kept checkpoint needs, up to this write
    /// (`WorkspaceService::checkpoint_blocking`).
    pub(crate) forget_touched: Option<u64>,
    pub(crate) next_seq: u64,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
    /// A flush barrier's answer, for a waiter on a plain thread (one holding
    /// the engine's lock while the engine streams the history).
    pub(crate) flushed: Option<mpsc::Sender<Result<(), String>>>,
}

/// Starts the writer (and its checkpointer) over `db`; answers the queue
/// writes are sent to and the writer's thread.
pub(crate) fn spawn(
    mut db: WorkspaceDb,
    checkpointer: WorkspaceReader,
    workspace_id: &str,
    durable: watch::Sender<u64>,
    committed: watch::Sender<u64>,
    committed_write: watch::Sender<u64>,
) -> Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>), StoreError> {
    let (checkpoint_tx, checkpoint_rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name(format!("checkpoint-{workspace_id}"))
        .spawn(move || {
            while checkpoint_rx.recv().is_ok() {
                if let Err(error) = checkpointer.checkpoint() {
                    tracing::warn!(%error, "WAL checkpoint failed; it will be retried");
                }
            }
        })?;
    let (tx, rx) = mpsc::channel::<Job>();
    let durable_writer = durable;
    let committed_writer = committed;
    let workspace_id = workspace_id.to_string();
    let thread = std::thread::Builder::new()
        .name(format!("writer-{workspace_id}"))
        .spawn(move || {
            let mut commits_since_checkpoint = 0;
            let mut last_group = 0;
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                // Writers are concurrent when the last group held several:
                // then waiting a moment gathers more into this commit, and
                // a commit's fixed cost (its fsync, its WAL pages) is shared
                // by more writes. A lone writer never waits.
                if last_group > 1 && jobs.len() < last_group.min(MAX_GROUP) {
                    let deadline = Instant::now() + GATHER;
                    while jobs.len() < MAX_GROUP {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                }
                last_group = jobs.len();
                let started = Instant::now();
                let result = db.commit_all(jobs.iter().flat_map(|j| {
                    [
                        Pending::Records(&j.records),
                        Pending::Webhooks(&j.webhooks),
                        Pending::Exports(&j.exports),
                    ]
                    .into_iter()
                    .chain(j.prune.as_ref().map(Pending::Prune))
                    .chain(j.prune_events.as_ref().map(Pending::PruneEvents))
                    .chain(j.forget_touched.map(Pending::ForgetTouched))
                }));
                metrics::histogram!("sift_store_commit_seconds").record(started.elapsed().as_secs_f64());
                metrics::histogram!("sift_store_commit_batch_writes").record(jobs.len() as f64);
                match result {
                    Ok(()) => {
                        // Checkpoint every few commits, so that each copies
                        // many pages at once; full means one is pending.
                        commits_since_checkpoint += 1;
                        if commits_since_checkpoint >= COMMITS_PER_CHECKPOINT {
                            commits_since_checkpoint = 0;
                            let _ = checkpoint_tx.try_send(());
                        }
                        let next = jobs.iter().map(|j| j.next_seq).max().unwrap_or(0);
                        durable_writer.send_if_modified(|seq| {
                            let advanced = next > *seq;
                            *seq = (*seq).max(next);
                            advanced
                        });
                        if jobs.iter().any(|j| !j.records.is_empty()) {
                            committed_writer.send_modify(|n| *n += 1);
                        }
                        committed_write.send_replace(db.last_write());
                        for job in jobs {
                            if let Some(flushed) = &job.flushed {
                                let _ = flushed.send(Ok(()));
                            }
                            let _ = job.done.send(Ok(()));
                        }
                        // After the answers (the commit is durable already);
                        // the writes queued meanwhile wait for this pause.
                        let truncate = Instant::now();
                        match db.truncate_wal_if_over(WAL_TRUNCATE_AT) {
                            Ok(true) => {
                                metrics::histogram!("sift_store_wal_truncate_seconds")
                                    .record(truncate.elapsed().as_secs_f64());
                            }
                            Ok(false) => {}
                            Err(error) => {
                                tracing::warn!(workspace = %workspace_id, %error, "emptying the WAL failed; it will be retried");
                            }
                        }
                    }
                    Err(error) => {
                        // Memory is now ahead of disk; refuse everything after.
                        tracing::error!(workspace = %workspace_id, %error, "commit failed; the workspace stops taking writes");
                        for job in jobs {
                            if let Some(flushed) = &job.flushed {
                                let _ = flushed.send(Err(error.to_string()));
                            }
                            let _ = job.done.send(Err(error.to_string()));
                        }
                        return;
                    }
                }
            }
        })?;
    Ok((tx, thread))
}

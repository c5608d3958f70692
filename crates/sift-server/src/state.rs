//! Server state: the catalog and the open workspaces, each with its engine,
//! its writer (`writer.rs`), readers and background tasks.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use sift_engine::{Workspace, Write};
use sift_store::{
    Catalog, StoreError, WebhookWrite, WorkspaceDb, WorkspaceReader, WorkspaceRow, hash_key,
};
use tokio::sync::{oneshot, watch};

pub use crate::config::Config;
use crate::error::{ApiError, ApiResult, Code};
use crate::written::WRITTEN_CAPACITY;
pub use crate::written::Written;

/// One open workspace.
pub struct WorkspaceHandle {
    pub id: String,
    pub name: String,
    pub engine: RwLock<Workspace>,
    writer: Mutex<Option<mpsc::Sender<crate::writer::Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<WorkspaceReader>,
    /// Read connections for the change log, used off the async workers.
    pub reads: Arc<crate::reads::ReadPool>,
    /// The seq after the last durable change; the change stream waits on it.
    pub durable: watch::Sender<u64>,
    /// Signalled after every client write, which may have scheduled an
    /// earlier timer: the timer task then re-reads `next_timer` (`timers.rs`).
    pub timer_wake: tokio::sync::Notify,
    /// Counts the commits that held engine records (a webhook's own
    /// cursor writes do not count); webhooks that send events wait on it,
    /// since an event need not change membership.
    pub committed: watch::Sender<u64>,
    /// Turns true when the workspace closes; the timer and webhook tasks end on it.
    pub closed: watch::Sender<bool>,
    /// The webhook subscriptions and their delivery tasks (`webhooks/`).
    pub webhooks: crate::webhooks::Registry,
    /// Signalled after a durable write that queued workflow triggers; the
    /// runner (`runner.rs`) waits on it.
    pub runs_wake: tokio::sync::Notify,
    /// Signalled after a durable write that queued webhooks, and when a
    /// delivery ends; the outbox task (`outbox.rs`) waits on it.
    pub outbox_wake: tokio::sync::Notify,
    /// Published after each durable write that had records, only while
    /// someone listens (a Facebook sync).
    pub written: tokio::sync::broadcast::Sender<Arc<Written>>,
    /// Facebook export jobs (in memory, see `facebook/`).
    pub exports: crate::facebook::Registry,
    /// Where webhooks, workflow webhooks and Facebook exports may send
    /// (`destination.rs`).
    pub destinations: crate::destination::Destinations,
    /// Business time (`clock.rs`): the server's configured clock.
    pub clock: crate::clock::Clock,
}

impl WorkspaceHandle {
    fn open(config: &Config, row: &WorkspaceRow) -> Result<Arc<WorkspaceHandle>, StoreError> {
        let path = config.data_dir.join(format!("{}.db", row.id));
        let mut db = WorkspaceDb::open(&path)?;
        let started = Instant::now();
        let mut engine = db.load()?;
        engine.set_max_queued_runs(config.workflow_queue_max);
        engine.set_field_limits(config.field_limits);
        // The workspace comes back at its stored clock; timers that fell due
        // while it was closed fire now, and their changes are made durable
        // before it serves anyone.
        let caught_up = engine.advance(config.clock.now_ms());
        db.commit(std::iter::once(caught_up.records.as_slice()))?;
        tracing::info!(
            workspace = %row.id,
            contacts = engine.contact_count(),
            segments = engine.segments().len(),
            took_ms = started.elapsed().as_millis() as u64,
            "workspace loaded"
        );
        let reader = WorkspaceReader::open(&path)?;
        let reads = Arc::new(crate::reads::ReadPool::open(&path, config.read_pool_size)?);
        let (stored_exports, resumable) = crate::facebook::resumable(&reader, config.resume_syncs)?;
        let webhooks = crate::webhooks::Registry::open(&path, config)?;
        let (durable, _) = watch::channel(engine.next_seq());
        let (committed, _) = watch::channel(0u64);
        let (tx, thread) = crate::writer::spawn(
            db,
            WorkspaceReader::open(&path)?,
            &row.id,
            durable.clone(),
            committed.clone(),
        )?;
        let handle = Arc::new(WorkspaceHandle {
            id: row.id.clone(),
            name: row.name.clone(),
            engine: RwLock::new(engine),
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            reader: Mutex::new(reader),
            reads,
            durable,
            timer_wake: tokio::sync::Notify::new(),
            committed,
            closed: watch::channel(false).0,
            webhooks,
            runs_wake: tokio::sync::Notify::new(),
            outbox_wake: tokio::sync::Notify::new(),
            written: tokio::sync::broadcast::channel(WRITTEN_CAPACITY).0,
            exports: crate::facebook::Registry::restore(stored_exports, config.clock.now_ms()),
            destinations: config.destinations(),
            clock: config.clock.clone(),
        });
        crate::timers::spawn(&handle);
        crate::webhooks::start(&handle)?;
        if config.run_workflows {
            crate::runner::spawn(&handle);
        }
        crate::outbox::spawn(&handle, config.action_retry_base, config.action_timeout);
        crate::retention::spawn(&handle, config.workflow_retention);
        crate::facebook::resume(&handle, resumable, config);
        Ok(handle)
    }

    pub fn read<T>(&self, f: impl FnOnce(&Workspace) -> T) -> ApiResult<T> {
        let ws = self
            .engine
            .read()
            .map_err(|_| ApiError::internal("engine lock poisoned"))?;
        Ok(f(&ws))
    }

    /// Applies a write to the engine, queues its records for the writer and
    /// waits until they are durable. Queueing happens under the engine lock,
    /// so the store commits writes in the order the engine applied them.
    pub async fn write<T>(
        &self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), ApiError>,
    ) -> ApiResult<(Write, T)> {
        let applied = self.apply(f, false).await?;
        applied.ok_or_else(|| ApiError::internal("a write was skipped"))
    }

    /// Fires the timers due by now (see `timers.rs`) through the same path
    /// as any write. `None` when nothing was due: no records, no commit.
    pub async fn advance(&self) -> ApiResult<Option<Write>> {
        // A closed workspace takes no writes; firing would only move memory
        // ahead of disk.
        if *self.closed.borrow() {
            return Err(ApiError::new(Code::Unavailable, "the workspace is closed"));
        }
        let applied = self
            .apply(|ws, now| Ok((ws.advance(now), ())), true)
            .await?;
        Ok(applied.map(|(write, ())| write))
    }

    /// Runs a batch of queued workflow triggers (see `runner.rs`) through
    /// the same path as any write. `None` when nothing was queued.
    pub async fn run_workflows(&self) -> ApiResult<Option<Write>> {
        if *self.closed.borrow() {
            return Err(ApiError::new(Code::Unavailable, "the workspace is closed"));
        }
        let applied = self
            .apply(
                |ws, now| {
                    let mut write = ws.run_workflows(now, crate::runner::RUN_BATCH);
                    crate::api::workflows::render_webhooks(&mut write.records);
                    Ok((write, ()))
                },
                true,
            )
            .await?;
        Ok(applied.map(|(write, ())| write))
    }

    /// [`WorkspaceHandle::write`]; with `skip_empty`, a write without
    /// records is neither queued nor waited for and answers `None`. Client
    /// writes never skip: even a write that changed nothing must not answer
    /// before the writes queued ahead of it are durable.
    async fn apply<T>(
        &self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), ApiError>,
        skip_empty: bool,
    ) -> ApiResult<Option<(Write, T)>> {
        let started = Instant::now();
        let (done, write, value, written) = {
            let mut ws = self
                .engine
                .write()
                .map_err(|_| ApiError::internal("engine lock poisoned"))?;
            let armed = ws.next_timer();
            let (mut write, value) = f(&mut ws, self.clock.now_ms())?;
            // A client write may have scheduled a timer earlier than the one
            // the timer task sleeps towards; only then is it woken (waking it
            // on every write would take the engine lock thousands of times a
            // second for nothing). The task's own firings (the skipping kind)
            // need no wake-up: it re-reads the queue after each.
            let earlier = match (ws.next_timer(), armed) {
                (Some(next), Some(armed)) => next < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !skip_empty && earlier {
                self.timer_wake.notify_one();
            }
            if skip_empty && write.records.is_empty() {
                return Ok(None);
            }
            if write.dropped > 0 {
                crate::runner::log_dropped(&self.id, &ws, &write.records);
            }
            let written = (self.written.receiver_count() > 0)
                .then(|| Written::of(&write.records))
                .filter(|w| !w.is_empty());
            let (done_tx, done_rx) = oneshot::channel();
            let writer = self
                .writer
                .lock()
                .map_err(|_| ApiError::internal("writer lock poisoned"))?;
            let Some(sender) = writer.as_ref() else {
                return Err(ApiError::new(
                    Code::Unavailable,
                    "the server is shutting down",
                ));
            };
            let job = crate::writer::Job {
                // The records go to the writer; the caller keeps the counts.
                records: std::mem::take(&mut write.records),
                webhooks: Vec::new(),
                exports: Vec::new(),
                prune: None,
                next_seq: ws.next_seq(),
                done: done_tx,
            };
            sender
                .send(job)
                .map_err(|_| ApiError::internal("the workspace's writer has stopped"))?;
            (done_rx, write, value, written)
        };
        metrics::histogram!("sift_engine_apply_seconds").record(started.elapsed().as_secs_f64());
        match done.await {
            Ok(Ok(())) => {
                // Runs, deliveries and audience syncs start only from durable writes.
                if let Some(written) = written {
                    let _ = self.written.send(Arc::new(written));
                }
                if write.queued > 0 {
                    self.runs_wake.notify_one();
                }
                if write.webhooks > 0 {
                    self.outbox_wake.notify_one();
                }
                metrics::counter!("sift_writes_total").increment(1);
                metrics::counter!("sift_membership_changes_total")
                    .increment(write.membership_changes);
                Ok(Some((write, value)))
            }
            Ok(Err(error)) => Err(ApiError::internal(error)),
            Err(_) => Err(ApiError::internal("the workspace's writer has stopped")),
        }
    }

    /// Commits webhook subscription and cursor writes through the writer
    /// (in the next group commit) and waits until they are durable. They
    /// touch no engine state, so the engine lock is not taken.
    pub async fn commit_webhooks(&self, writes: Vec<WebhookWrite>) -> ApiResult<()> {
        let done_rx = self.queue_webhooks(writes)?;
        match done_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ApiError::internal(error)),
            Err(_) => Err(ApiError::internal("the workspace's writer has stopped")),
        }
    }

    /// Queues webhook writes for the writer's next group commit without
    /// waiting; the receiver answers when they are durable. A graceful
    /// close commits everything queued.
    pub fn queue_webhooks(
        &self,
        writes: Vec<WebhookWrite>,
    ) -> ApiResult<oneshot::Receiver<Result<(), String>>> {
        self.queue(writes, Vec::new())
    }

    /// Queues Facebook export writes (a job's state, a sync's sealed token
    /// or sent rows) for the writer's next group commit, without waiting;
    /// the receiver answers when they are durable.
    pub fn queue_exports(
        &self,
        rows: Vec<sift_store::ExportWrite>,
    ) -> ApiResult<oneshot::Receiver<Result<(), String>>> {
        self.queue(Vec::new(), rows)
    }

    /// Deletes one chunk of workflow history through the writer (see
    /// `retention.rs`) and waits until it is committed.
    pub async fn prune(&self, prune: sift_store::Prune) -> ApiResult<()> {
        let done = self.queue_job(Vec::new(), Vec::new(), Some(prune))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ApiError::internal(error)),
            Err(_) => Err(ApiError::internal("the workspace's writer has stopped")),
        }
    }

    fn queue(
        &self,
        writes: Vec<WebhookWrite>,
        exports: Vec<sift_store::ExportWrite>,
    ) -> ApiResult<oneshot::Receiver<Result<(), String>>> {
        self.queue_job(writes, exports, None)
    }

    fn queue_job(
        &self,
        writes: Vec<WebhookWrite>,
        exports: Vec<sift_store::ExportWrite>,
        prune: Option<sift_store::Prune>,
    ) -> ApiResult<oneshot::Receiver<Result<(), String>>> {
        let (done_tx, done_rx) = oneshot::channel();
        {
            let writer = self
                .writer
                .lock()
                .map_err(|_| ApiError::internal("writer lock poisoned"))?;
            let Some(sender) = writer.as_ref() else {
                return Err(ApiError::new(
                    Code::Unavailable,
                    "the server is shutting down",
                ));
            };
            let job = crate::writer::Job {
                records: Vec::new(),
                webhooks: writes,
                exports,
                prune,
                next_seq: 0,
                done: done_tx,
            };
            sender
                .send(job)
                .map_err(|_| ApiError::internal("the workspace's writer has stopped"))?;
        }
        Ok(done_rx)
    }

    pub fn reader(&self) -> ApiResult<std::sync::MutexGuard<'_, WorkspaceReader>> {
        self.reader
            .lock()
            .map_err(|_| ApiError::internal("reader lock poisoned"))
    }

    /// Stops taking writes and waits until every queued one is committed.
    pub fn close(&self) {
        self.closed.send_replace(true);
        // Dropping the sender ends the writer once it has committed what
        // was queued; a poisoned lock must not keep it alive (the join
        // below would then never return).
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

pub struct Inner {
    pub config: Config,
    catalog: Mutex<Catalog>,
    keys: RwLock<HashMap<String, String>>,
    workspaces: RwLock<HashMap<String, Arc<WorkspaceHandle>>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Turns true when the server starts shutting down: responses that would
    /// never end by themselves (the change stream) end on it, so that a
    /// graceful shutdown does not wait for their clients forever.
    pub stopping: watch::Sender<bool>,
    pub sessions: crate::ui::Sessions,
    /// Bumped by every key revocation and sign-out; long-lived responses
    /// re-check their credential on it (`revoke.rs`).
    pub revocations: watch::Sender<u64>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // A second server in the same process (tests) shares the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A key as handed to a client: `sk_` and 32 random hex digits.
pub fn new_key() -> String {
    let bytes: [u8; 16] = rand::random();
    format!(
        "sk_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

impl AppState {
    /// Opens the data directory: the catalog and every workspace in it.
    pub fn open(config: Config) -> Result<AppState, StoreError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let catalog = Catalog::open(&config.data_dir.join("catalog.db"))?;
        let mut workspaces = HashMap::new();
        for row in catalog.workspaces()? {
            workspaces.insert(row.id.clone(), WorkspaceHandle::open(&config, &row)?);
        }
        let keys = catalog.key_hashes()?.into_iter().collect();
        Ok(AppState(Arc::new(Inner {
            config,
            catalog: Mutex::new(catalog),
            keys: RwLock::new(keys),
            workspaces: RwLock::new(workspaces),
            metrics: prometheus(),
            stopping: watch::channel(false).0,
            sessions: crate::ui::Sessions::default(),
            revocations: watch::channel(0).0,
        })))
    }

    pub fn workspace_for_key(&self, key: &str) -> Option<Arc<WorkspaceHandle>> {
        let hash = hash_key(key);
        let ws_id = read_lock(&self.keys).get(&hash)?.clone();
        self.workspace(&ws_id)
    }

    /// The workspace of a UI session cookie, while the session (and the key
    /// it was made from) is valid.
    pub fn workspace_for_session(&self, cookie: &str) -> Option<Arc<WorkspaceHandle>> {
        let keys = read_lock(&self.keys);
        let ws_id = self
            .sessions
            .workspace_of(cookie, |hash| keys.contains_key(hash))?;
        drop(keys);
        self.workspace(&ws_id)
    }

    pub fn key_hash_valid(&self, hash: &str) -> bool {
        read_lock(&self.keys).contains_key(hash)
    }

    pub fn workspace(&self, id: &str) -> Option<Arc<WorkspaceHandle>> {
        read_lock(&self.workspaces).get(id).cloned()
    }

    pub fn workspace_rows(&self) -> Vec<(String, String)> {
        let map = read_lock(&self.workspaces);
        let mut rows: Vec<(String, String)> = map
            .values()
            .map(|w| (w.id.clone(), w.name.clone()))
            .collect();
        rows.sort();
        rows
    }

    pub fn is_admin(&self, key: &str) -> bool {
        self.config.admin_key.as_deref().is_some_and(|admin| {
            !admin.is_empty() && constant_time_eq(admin.as_bytes(), key.as_bytes())
        })
    }

    /// Creates a workspace and its first key. Returns (id, key).
    pub fn create_workspace(&self, name: &str) -> Result<(String, String), StoreError> {
        let id = format!("ws_{}", ulid::Ulid::new().to_string().to_lowercase());
        let row = WorkspaceRow {
            id: id.clone(),
            name: name.to_string(),
            created_at: self.config.clock.now_ms(),
        };
        let handle = WorkspaceHandle::open(&self.config, &row)?;
        let key = new_key();
        {
            let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
            catalog.create_workspace(&row)?;
            catalog.add_key(&id, &key_id(&key), &key, self.config.clock.now_ms())?;
        }
        write_lock(&self.keys).insert(hash_key(&key), id.clone());
        write_lock(&self.workspaces).insert(id.clone(), handle);
        Ok((id, key))
    }

    pub fn add_key(&self, workspace_id: &str) -> Result<String, StoreError> {
        let key = new_key();
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.add_key(
            workspace_id,
            &key_id(&key),
            &key,
            self.config.clock.now_ms(),
        )?;
        write_lock(&self.keys).insert(hash_key(&key), workspace_id.to_string());
        Ok(key)
    }

    pub fn keys(&self, workspace_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.keys(workspace_id)
    }

    /// Revokes a key by its id (or by the key itself).
    pub fn revoke_key(&self, workspace_id: &str, key_or_id: &str) -> Result<bool, StoreError> {
        let id = if key_or_id.starts_with("sk_") {
            key_id(key_or_id)
        } else {
            key_or_id.to_string()
        };
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        let revoked = catalog.revoke_key(workspace_id, &id)?;
        if revoked {
            let hashes = catalog.key_hashes()?;
            let mut keys = write_lock(&self.keys);
            *keys = hashes.into_iter().collect();
            // Sessions made from the key end with it.
            self.sessions.end_made_from(|hash| !keys.contains_key(hash));
            drop(keys);
            drop(catalog);
            self.announce_revocation();
        }
        Ok(revoked)
    }

    /// Finishes every queued write and stops the writers.
    pub fn close(&self) {
        let handles: Vec<Arc<WorkspaceHandle>> =
            read_lock(&self.workspaces).values().cloned().collect();
        for handle in handles {
            handle.close();
        }
    }
}

/// A key's public name: its first 11 characters (`sk_` + 8 hex digits).
pub fn key_id(key: &str) -> String {
    key.chars().take(11).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// A lock is poisoned only by a panic while it was held. The key and
// workspace maps stay consistent through any such panic (each change is one
// insert or one replacement), so the server goes on with them rather than
// ignoring the lock: ignoring it once let a key reach the catalog without
// reaching memory, and a revoked key stay usable.
fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

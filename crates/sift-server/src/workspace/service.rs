//! The workspace service: one workspace's engine, its writer (`writer.rs`)
//! and its readers, and the one path every change takes: applied to the
//! engine under its lock, queued for the writer in that order, answered
//! once durable. Loading it starts no task (`tasks.rs` does that).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use sift_engine::{HistorySource, Record, Workspace, Write};
use sift_store::{ExportWrite, Prune, WebhookWrite, WorkspaceDb, WorkspaceReader};
use tokio::sync::{oneshot, watch};

use super::error::{Lock, WorkspaceError, WorkspaceResult};
use super::history::StoreHistory;
use super::reads::ReadPool;
use super::writer::{self, Job};
use crate::clock::Clock;
use crate::config::Config;
use crate::written::{WRITTEN_CAPACITY, Written};

/// Triggers run per write: large enough to share a commit, small enough
/// to keep the engine's lock short (see `runner.rs`).
pub const RUN_BATCH: usize = 512;

/// What the service raises as writes become durable, and what its
/// background tasks wait on. They live with the service because only its
/// write path knows when to raise them.
pub struct Signals {
    /// The seq after the last durable change; the change stream waits on it.
    pub durable: watch::Sender<u64>,
    /// Counts the commits that held engine records (a webhook's own
    /// cursor writes do not count); webhooks that send events wait on it,
    /// since an event need not change membership.
    pub committed: watch::Sender<u64>,
    /// Turns true when the workspace closes; every task ends on it.
    pub closed: watch::Sender<bool>,
    /// Signalled after a client write that scheduled an earlier timer: the
    /// timer task then re-reads `next_timer` (`timers.rs`).
    pub timer_wake: tokio::sync::Notify,
    /// Signalled after a durable write that queued workflow triggers; the
    /// runner (`runner.rs`) waits on it.
    pub runs_wake: tokio::sync::Notify,
    /// Signalled after a durable write that queued webhooks, and when a
    /// delivery ends; the outbox task (`outbox.rs`) waits on it.
    pub outbox_wake: tokio::sync::Notify,
    /// Published after each durable write that had records, only while
    /// someone listens (a Facebook sync).
    pub written: tokio::sync::broadcast::Sender<Arc<Written>>,
    /// The number of the last committed write (`sift_store::WorkspaceDb::
    /// last_write`): a checkpoint of write `W` is published once it reaches `W`.
    pub committed_write: watch::Sender<u64>,
}

/// Who asked for a write: a client write is always queued and waited for,
/// even when it changed nothing, so it never answers before the writes
/// ahead of it are durable; a task's write without records is skipped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Client,
    Task,
}

pub struct WorkspaceService {
    id: String,
    engine: RwLock<Workspace>,
    /// Held shared by every write for its time under the engine lock, and
    /// exclusively while timers fire a burst (`bursts.rs`): writes then
    /// wait for the burst and reads do not.
    gate: tokio::sync::RwLock<()>,
    /// Shared with the history source's flush barrier; `close` empties it.
    writer: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<WorkspaceReader>,
    /// Read connections for the change log, used off the async workers.
    pub reads: Arc<ReadPool>,
    /// Where the engine streams the events memory does not hold.
    pub history: Arc<StoreHistory>,
    pub signals: Signals,
    /// Business time (`clock.rs`): the server's configured clock.
    pub clock: Clock,
    /// Writes queued to the writer so far, numbered as the store numbers
    /// them (one per job, in queue order): the write number of the last
    /// write the engine applied, read under the engine lock.
    queued_writes: Arc<AtomicU64>,
    checkpoints: Checkpoints,
}

/// Where and how often a workspace's checkpoints are written.
struct Checkpoints {
    dir: PathBuf,
    every: u64,
    pause: Option<std::time::Duration>,
    /// The write number of the newest checkpoint (or of the start's).
    last: AtomicU64,
    /// Held while one is written: one at a time.
    writing: Mutex<()>,
}

/// What writing a checkpoint took.
#[derive(Clone, Debug)]
pub struct CheckpointDone {
    pub path: PathBuf,
    pub bytes: u64,
    pub write_number: u64,
    /// How long the engine's write lock was held for the copy.
    pub stall: std::time::Duration,
    /// From the copy to the file published.
    pub took: std::time::Duration,
}

impl WorkspaceService {
    /// Loads the workspace stored at `path`, fires the timers that fell due
    /// while it was closed (durably, before it serves anyone), and opens
    /// its writer and readers.
    pub fn load(config: &Config, id: &str, path: &Path) -> WorkspaceResult<WorkspaceService> {
        let mut db = WorkspaceDb::open(path)?;
        let started = Instant::now();
        // Events stay on disk: a start reads the newest checkpoint and what
        // was written after it, or streams them once, and memory keeps only
        // those a live window reads (docs/storage.md).
        let history = Arc::new(StoreHistory::new(id, path));
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (mut engine, report) =
            sift_store::checkpoint::load(&db, &dir, id, Some(HistorySource(history.clone())))?;
        for rejected in &report.rejected {
            tracing::error!(
                workspace = %id,
                file = %rejected.path.display(),
                reason = %rejected.reason,
                "checkpoint not used: falling back to an older one or to a full rebuild"
            );
        }
        engine.set_max_queued_runs(config.workflow_queue_max);
        engine.set_field_limits(config.field_limits);
        engine.set_event_retention(config.event_retention_days);
        let past = engine.windows_past_retention();
        if let Some(days) = config.event_retention_days
            && !past.is_empty()
        {
            return Err(WorkspaceError::Retention(format!(
                "workspace {id}: --event-retention {days} days (SIFT_EVENT_RETENTION) is shorter than windows it reads ({}); raise it to at least the longest, or shorten those windows first",
                past.join("; ")
            )));
        }
        // The workspace comes back at its stored clock; timers that fell due
        // while it was closed fire now, and their changes are made durable
        // before it serves anyone.
        let caught_up = engine.advance(config.clock.now_ms());
        db.commit(std::iter::once(caught_up.records.as_slice()))?;
        let from = report.checkpoint.as_ref();
        tracing::info!(
            workspace = %id,
            contacts = engine.contact_count(),
            segments = engine.segments().len(),
            took_ms = started.elapsed().as_millis() as u64,
            checkpoint = %from.map_or_else(|| "none (full rebuild)".to_string(), |c| c.0.display().to_string()),
            checkpoint_write = from.map_or(0, |c| c.1.write_number),
            reloaded_contacts = report.reloaded,
            phases = %report.phases_text(),
            "workspace loaded"
        );
        metrics::gauge!("sift_start_from_checkpoint").set(if from.is_some() { 1.0 } else { 0.0 });
        let last_write = db.last_write();
        let reader = WorkspaceReader::open(path)?;
        let reads = Arc::new(ReadPool::open(path, config.read_pool_size)?);
        let (durable, _) = watch::channel(engine.next_seq());
        let (committed, _) = watch::channel(0u64);
        let (committed_write, _) = watch::channel(last_write);
        let (tx, thread) = writer::spawn(
            db,
            WorkspaceReader::open(path)?,
            id,
            durable.clone(),
            committed.clone(),
            committed_write.clone(),
        )?;
        // From now on a write can be in flight: a stream waits for it.
        let writer = Arc::new(Mutex::new(Some(tx)));
        let queued_writes = Arc::new(AtomicU64::new(last_write));
        history.attach(writer.clone(), queued_writes.clone());
        Ok(WorkspaceService {
            id: id.to_string(),
            engine: RwLock::new(engine),
            gate: tokio::sync::RwLock::new(()),
            writer,
            thread: Mutex::new(Some(thread)),
            reader: Mutex::new(reader),
            reads,
            history,
            clock: config.clock.clone(),
            signals: Signals {
                durable,
                committed,
                closed: watch::channel(false).0,
                timer_wake: tokio::sync::Notify::new(),
                runs_wake: tokio::sync::Notify::new(),
                outbox_wake: tokio::sync::Notify::new(),
                written: tokio::sync::broadcast::channel(WRITTEN_CAPACITY).0,
                committed_write,
            },
            queued_writes,
            checkpoints: Checkpoints {
                dir,
                every: config.checkpoint_every,
                pause: config.checkpoint_pause,
                last: AtomicU64::new(from.map_or(0, |c| c.1.write_number)),
                writing: Mutex::new(()),
            },
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn read<T>(&self, f: impl FnOnce(&Workspace) -> T) -> WorkspaceResult<T> {
        let ws = self
            .engine
            .read()
            .map_err(|_| WorkspaceError::LockPoisoned(Lock::Engine))?;
        Ok(f(&ws))
    }

    pub fn reader(&self) -> WorkspaceResult<MutexGuard<'_, WorkspaceReader>> {
        self.reader
            .lock()
            .map_err(|_| WorkspaceError::LockPoisoned(Lock::Reader))
    }

    pub fn is_closed(&self) -> bool {
        *self.signals.closed.borrow()
    }

    /// Applies a write to the engine, queues its records for the writer and
    /// waits until they are durable. Queueing happens under the engine lock,
    /// so the store commits writes in the order the engine applied them.
    ///
    /// `f` fails in the caller's own error type (a handler's is the API's),
    /// which the service's failures convert into: what `f` refused comes
    /// back exactly as `f` said it.
    pub async fn write<T, E: From<WorkspaceError>>(
        &self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), E>,
    ) -> Result<(Write, T), E> {
        let (write, value, _) = self.apply(f, Origin::Client).await?;
        Ok((write, value))
    }

    /// Fires the timers due by now (see `timers.rs`) through the same path
    /// as any write. `None` when nothing was due: no records, no commit.
    pub async fn advance(&self) -> WorkspaceResult<Option<Write>> {
        // A closed workspace takes no writes; firing would only move memory
        // ahead of disk.
        if self.is_closed() {
            return Err(WorkspaceError::Closed);
        }
        let gate = self.gate.write().await;
        super::bursts::fire(&self.engine, self.clock.now_ms()).await?;
        let (write, (), committed) = self
            .apply_within(
                gate,
                |ws, now| Ok::<_, WorkspaceError>((ws.advance(now), ())),
                Origin::Task,
            )
            .await?;
        Ok(committed.then_some(write))
    }

    /// Runs a batch of queued workflow triggers (see `runner.rs`) through
    /// the same path as any write. `None` when nothing was queued.
    pub async fn run_workflows(&self) -> WorkspaceResult<Option<Write>> {
        if self.is_closed() {
            return Err(WorkspaceError::Closed);
        }
        let (write, (), committed) = self
            .apply(
                |ws, now| Ok::<_, WorkspaceError>((ws.run_workflows(now, RUN_BATCH), ())),
                Origin::Task,
            )
            .await?;
        Ok(committed.then_some(write))
    }

    /// [`WorkspaceService::write`], answering also whether the write was
    /// committed (a task's write without records is not).
    async fn apply<T, E: From<WorkspaceError>>(
        &self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), E>,
        origin: Origin,
    ) -> Result<(Write, T, bool), E> {
        let gate = self.gate.read().await;
        self.apply_within(gate, f, origin).await
    }

    /// [`WorkspaceService::apply`] holding `gate` (a guard of `self.gate`)
    /// until its records are queued.
    async fn apply_within<G, T, E: From<WorkspaceError>>(
        &self,
        gate: G,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), E>,
        origin: Origin,
    ) -> Result<(Write, T, bool), E> {
        let started = Instant::now();
        let (done, write, value, written) = {
            let mut ws = self
                .engine
                .write()
                .map_err(|_| WorkspaceError::LockPoisoned(Lock::Engine))?;
            let armed = ws.next_timer();
            let (mut write, value) = f(&mut ws, self.clock.now_ms())?;
            // A client write may have scheduled a timer earlier than the one
            // the timer task sleeps towards; only then is it woken (waking it
            // on every write would take the engine lock thousands of times a
            // second for nothing). The task's own firings need no wake-up:
            // it re-reads the queue after each.
            let earlier = match (ws.next_timer(), armed) {
                (Some(next), Some(armed)) => next < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if origin == Origin::Client && earlier {
                self.signals.timer_wake.notify_one();
            }
            if origin == Origin::Task && write.records.is_empty() {
                return Ok((write, value, false));
            }
            if write.dropped > 0 {
                log_dropped(&self.id, &ws, &write.records);
            }
            let written = (self.signals.written.receiver_count() > 0)
                .then(|| Written::of(&write.records))
                .filter(|w| !w.is_empty());
            let (done_tx, done_rx) = oneshot::channel();
            self.send(Job {
                // The records go to the writer; the caller keeps the counts.
                records: std::mem::take(&mut write.records),
                webhooks: Vec::new(),
                exports: Vec::new(),
                prune: None,
                prune_events: None,
                forget_touched: None,
                next_seq: ws.next_seq(),
                done: done_tx,
                flushed: None,
            })?;
            if origin == Origin::Client {
                crate::sequenced::applied();
            }
            (done_rx, write, value, written)
        };
        drop(gate);
        metrics::histogram!("sift_engine_apply_seconds").record(started.elapsed().as_secs_f64());
        durable(done).await?;
        // Runs, deliveries and audience syncs start only from durable writes.
        if let Some(written) = written {
            let _ = self.signals.written.send(Arc::new(written));
        }
        if write.queued > 0 {
            self.signals.runs_wake.notify_one();
        }
        if write.webhooks > 0 {
            self.signals.outbox_wake.notify_one();
        }
        metrics::counter!("sift_writes_total").increment(1);
        metrics::counter!("sift_membership_changes_total").increment(write.membership_changes);
        Ok((write, value, true))
    }

    /// Commits webhook subscription and cursor writes through the writer
    /// (in the next group commit) and waits until they are durable. They
    /// touch no engine state, so the engine lock is not taken.
    pub async fn commit_webhooks(&self, writes: Vec<WebhookWrite>) -> WorkspaceResult<()> {
        durable(self.queue_webhooks(writes)?).await
    }

    /// Queues webhook writes for the writer's next group commit without
    /// waiting; the receiver answers when they are durable. A graceful
    /// close commits everything queued.
    pub fn queue_webhooks(
        &self,
        writes: Vec<WebhookWrite>,
    ) -> WorkspaceResult<oneshot::Receiver<Result<(), String>>> {
        self.queue(writes, Vec::new(), None)
    }

    /// Queues Facebook export writes (a job's state, a sync's sealed token
    /// or sent rows) for the writer's next group commit, without waiting;
    /// the receiver answers when they are durable.
    pub fn queue_exports(
        &self,
        rows: Vec<ExportWrite>,
    ) -> WorkspaceResult<oneshot::Receiver<Result<(), String>>> {
        self.queue(Vec::new(), rows, None)
    }

    /// Commits Facebook export writes (the workspace's connection) through
    /// the writer and waits until they are durable, so that an answer
    /// saying "saved" is true after a crash.
    pub async fn commit_exports(&self, rows: Vec<ExportWrite>) -> WorkspaceResult<()> {
        durable(self.queue_exports(rows)?).await
    }

    /// Deletes one chunk of workflow history through the writer (see
    /// `retention.rs`) and waits until it is committed.
    pub async fn prune(&self, prune: Prune) -> WorkspaceResult<()> {
        durable(self.queue(Vec::new(), Vec::new(), Some(prune))?).await
    }

    /// Deletes the next chunk of events past the retention: of the `limit`
    /// events after seq `after`, those before `cutoff`, with what they gave
    /// to all-time counts and lasting points (`Workspace::rollup`). Answers
    /// the last seq examined and how many went, or `None` past the last
    /// event. Under the engine's write lock, after a flush, so the chunk
    /// read is what the engine applied and no write lands between the
    /// roll-up and the delete in the writer's order.
    pub async fn prune_events(
        &self,
        after: u64,
        cutoff: i64,
        limit: usize,
    ) -> WorkspaceResult<Option<(u64, usize)>> {
        let (done, last, deleted) = {
            let ws = self
                .engine
                .read()
                .map_err(|_| WorkspaceError::LockPoisoned(Lock::Engine))?;
            // A read lock is enough: writes queue under the write lock.
            self.history
                .flush()
                .map_err(|_| WorkspaceError::WriterStopped)?;
            let (events, last) = self.reader()?.events_before(after, cutoff, limit)?;
            let Some(last) = last else {
                return Ok(None);
            };
            if events.is_empty() {
                return Ok(Some((last, 0)));
            }
            let prune = sift_store::EventPrune {
                rollups: ws.rollup(&events),
                seqs: events.iter().map(|(seq, _)| *seq).collect(),
            };
            let deleted = prune.seqs.len();
            let (done_tx, done_rx) = oneshot::channel();
            self.send(Job {
                records: Vec::new(),
                webhooks: Vec::new(),
                exports: Vec::new(),
                prune: None,
                prune_events: Some(prune),
                forget_touched: None,
                next_seq: 0,
                done: done_tx,
                flushed: None,
            })?;
            (done_rx, last, deleted)
        };
        durable(done).await?;
        Ok(Some((last, deleted)))
    }

    /// Waits until every write queued before now is committed.
    pub async fn committed(&self) -> WorkspaceResult<()> {
        let done = self.queue(Vec::new(), Vec::new(), None)?;
        durable(done).await
    }

    fn queue(
        &self,
        webhooks: Vec<WebhookWrite>,
        exports: Vec<ExportWrite>,
        prune: Option<Prune>,
    ) -> WorkspaceResult<oneshot::Receiver<Result<(), String>>> {
        let (done_tx, done_rx) = oneshot::channel();
        self.send(Job {
            records: Vec::new(),
            webhooks,
            exports,
            prune,
            prune_events: None,
            forget_touched: None,
            next_seq: 0,
            done: done_tx,
            flushed: None,
        })?;
        Ok(done_rx)
    }

    fn send(&self, job: Job) -> WorkspaceResult<()> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| WorkspaceError::LockPoisoned(Lock::Writer))?;
        // `close` takes the sender: nothing is queued after it.
        let sender = writer.as_ref().ok_or(WorkspaceError::Closed)?;
        sender
            .send(job)
            .map_err(|_| WorkspaceError::WriterStopped)?;
        // Under the writer's lock, so numbers follow the queue's order.
        self.queued_writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Stops taking writes and waits until every queued one is committed.
    pub fn close(&self) {
        self.signals.closed.send_replace(true);
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
        // Everything applied is committed now: the next start catches up
        // from here instead of rebuilding.
        match self.checkpoint_now(true) {
            Ok(Some(done)) => tracing::info!(
                workspace = %self.id,
                file = %done.path.display(),
                bytes = done.bytes,
                write = done.write_number,
                took_ms = done.took.as_millis() as u64,
                "checkpoint written at shutdown"
            ),
            Ok(None) => {}
            Err(error) => tracing::error!(
                workspace = %self.id,
                %error,
                "checkpoint at shutdown failed; the next start rebuilds from an older one or from scratch"
            ),
        }
    }

    /// Workflow triggers waiting to run.
    pub fn queued_runs(&self) -> u64 {
        self.engine.read().map_or(0, |ws| ws.queued_runs())
    }

    /// Writes since the newest checkpoint.
    pub fn writes_since_checkpoint(&self) -> u64 {
        self.queued_writes
            .load(Ordering::SeqCst)
            .saturating_sub(self.checkpoints.last.load(Ordering::SeqCst))
    }

    /// Writes between two periodic checkpoints (0: none).
    pub fn checkpoint_every(&self) -> u64 {
        self.checkpoints.every
    }

    /// Takes a checkpoint (docs/storage.md "Checkpoints"): a copy of the
    /// engine under its write lock (the only time writes wait), then, on
    /// this thread, its parts written to a draft file, published once the
    /// store has committed every write the copy holds, and older ones
    /// pruned. `None` when nothing was written since the newest one or one
    /// is being written. Blocking: call it off the async workers.
    pub fn checkpoint_blocking(&self) -> WorkspaceResult<Option<CheckpointDone>> {
        self.checkpoint_now(false)
    }

    /// [`WorkspaceService::checkpoint_blocking`]; with `wait`, after the one
    /// being written (at close, so that the last one covers every write).
    fn checkpoint_now(&self, wait: bool) -> WorkspaceResult<Option<CheckpointDone>> {
        let _writing = if wait {
            self.checkpoints
                .writing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        } else {
            match self.checkpoints.writing.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(guard)) => guard.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        };
        let any = !sift_store::checkpoint::list(&self.checkpoints.dir, &self.id)?.is_empty();
        let (copy, write_number, stall) = {
            let ws = self
                .engine
                .write()
                .map_err(|_| WorkspaceError::LockPoisoned(Lock::Engine))?;
            // Writes wait from here: the stall.
            let stalled = Instant::now();
            // A burst's flips so far are in no write yet: the next
            // checkpoint will be taken after it.
            if ws.burst_in_progress() {
                return Ok(None);
            }
            let write_number = self.queued_writes.load(Ordering::SeqCst);
            if any && write_number <= self.checkpoints.last.load(Ordering::SeqCst) {
                return Ok(None);
            }
            (ws.checkpoint_copy(), write_number, stalled.elapsed())
        };
        metrics::histogram!("sift_checkpoint_stall_seconds").record(stall.as_secs_f64());
        let started = Instant::now();
        let meta = sift_store::checkpoint::CheckpointMeta {
            write_number,
            clock: copy.clock(),
            taken_at: self.clock.now_ms(),
        };
        let parts = copy.into_checkpoint();
        let committed = self.signals.committed_write.subscribe();
        let written =
            sift_store::checkpoint::write(&self.checkpoints.dir, &self.id, meta, &parts, &|| {
                if let Some(pause) = self.checkpoints.pause {
                    std::thread::sleep(pause);
                }
                // Published only once the store holds every write the
                // copy holds: a start never finds a checkpoint ahead of it.
                let deadline = Instant::now() + std::time::Duration::from_secs(60);
                while *committed.borrow() < write_number {
                    // A closed writer commits nothing more.
                    let stopped = self.writer.lock().map_or(true, |w| w.is_none())
                        && self.thread.lock().map_or(true, |t| t.is_none());
                    if stopped || Instant::now() > deadline {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
        drop(parts);
        let written = written?;
        let reached = *committed.borrow();
        if reached < write_number {
            // The store did not commit what the copy holds (its writer
            // failed): a start must not find this file.
            let _ = std::fs::remove_file(&written.path);
            return Err(WorkspaceError::CommitFailed(format!(
                "the store reached write {reached}, not {write_number}: checkpoint discarded"
            )));
        }
        self.checkpoints.last.store(write_number, Ordering::SeqCst);
        sift_store::checkpoint::prune(&self.checkpoints.dir, &self.id)?;
        // What only older checkpoints needed goes, a chunk per commit. At
        // close the writer is gone: the next checkpoint does it.
        let kept = sift_store::checkpoint::list(&self.checkpoints.dir, &self.id)?;
        if let Some((oldest, _)) = kept.last() {
            let (done_tx, _) = oneshot::channel();
            let _ = self.send(Job {
                records: Vec::new(),
                webhooks: Vec::new(),
                exports: Vec::new(),
                prune: None,
                prune_events: None,
                forget_touched: Some(*oldest),
                next_seq: 0,
                done: done_tx,
                flushed: None,
            });
        }
        let took = started.elapsed();
        metrics::histogram!("sift_checkpoint_seconds").record(took.as_secs_f64());
        metrics::gauge!("sift_checkpoint_bytes").set(written.bytes as f64);
        metrics::gauge!("sift_checkpoint_write_number").set(write_number as f64);
        metrics::gauge!("sift_checkpoint_stall_last_seconds").set(stall.as_secs_f64());
        metrics::counter!("sift_checkpoints_total").increment(1);
        Ok(Some(CheckpointDone {
            path: written.path,
            bytes: written.bytes,
            write_number,
            stall,
            took,
        }))
    }
}

/// Waits for the writer's answer to a queued job.
async fn durable(done: oneshot::Receiver<Result<(), String>>) -> WorkspaceResult<()> {
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(WorkspaceError::CommitFailed(error)),
        Err(_) => Err(WorkspaceError::WriterStopped),
    }
}

/// Logs each workflow whose queue was full in a write, with what it dropped
/// and how many of its triggers are waiting.
fn log_dropped(workspace: &str, engine: &Workspace, records: &[Record]) {
    for record in records {
        if let Record::TriggersDropped(drop) = record {
            metrics::counter!("sift_workflow_triggers_dropped_total").increment(drop.count);
            tracing::warn!(
                workspace,
                workflow = %drop.workflow_id,
                dropped = drop.count,
                queued = engine.queued_runs_for(&drop.workflow_id),
                "a workflow's queue is full: triggers were dropped, not run (see --workflow-queue-max)"
            );
        }
    }
}

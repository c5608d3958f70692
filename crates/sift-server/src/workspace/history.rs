//! The engine's history source: a workspace's events streamed from its
//! SQLite database (`sift_store::EventStream`), behind a flush barrier.
//!
//! The store lags the engine by the writes queued to the writer. The engine
//! streams only inside a call that holds the workspace's lock (a write, or a
//! preview under the read lock), so no write can be applied meanwhile: the
//! barrier — an empty job through the writer, answered once everything
//! queued before it is committed — makes the table hold every event the
//! engine applied. Progress goes to `/metrics`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

use sift_engine::{EventColumns, EventHistory, EventRecord};
use sift_store::EventStream;
use tokio::sync::oneshot;

use super::writer::Job;

/// Events between two updates of the progress gauges.
const PROGRESS_EVERY: u64 = 65_536;

/// A scan that reports how many events it read as it goes, then the total.
type Scan<'a> = dyn FnMut(&mut dyn FnMut(u64)) -> Result<u64, sift_store::StoreError> + 'a;

/// The service's slot holding the sender of the writer's queue.
type WriterSlot = Arc<Mutex<Option<mpsc::Sender<Job>>>>;

pub struct StoreHistory {
    workspace: String,
    stream: EventStream,
    /// The service's slot for the writer's queue, once the writer runs (a
    /// load streams before it starts, when nothing can be in flight). Not a
    /// sender of its own: `close` ends the writer by emptying the slot.
    writer: OnceLock<(WriterSlot, Arc<AtomicU64>)>,
    /// Microseconds spent streaming, and events read, since the start: a
    /// write reads both before and after its engine call (it holds the lock,
    /// so no other stream runs meanwhile) to answer what it cost.
    micros: AtomicU64,
    read: AtomicU64,
}

impl StoreHistory {
    pub fn new(workspace: &str, path: &Path) -> StoreHistory {
        StoreHistory {
            workspace: workspace.to_string(),
            stream: EventStream::new(path),
            writer: OnceLock::new(),
            micros: AtomicU64::new(0),
            read: AtomicU64::new(0),
        }
    }

    /// Builds the columnar copy of the sealed event ranges that lack one
    /// (docs/storage.md "Event blocks"). Blocking: beside the writer, never
    /// under the engine's lock.
    pub fn build_blocks(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<sift_store::BlocksBuilt, sift_store::StoreError> {
        let started = Instant::now();
        let built = self.stream.build_blocks(progress)?;
        let labels = [("workspace", self.workspace.clone())];
        metrics::gauge!("sift_event_blocks", &labels).set(built.valid as f64);
        metrics::gauge!("sift_event_blocks_sealed", &labels).set(built.sealed as f64);
        if built.blocks > 0 || built.raced > 0 {
            metrics::counter!("sift_event_blocks_built_total", "workspace" => self.workspace.clone())
                .increment(built.blocks);
            tracing::info!(
                workspace = %self.workspace,
                blocks = built.blocks,
                events = built.events,
                raced = built.raced,
                took_ms = started.elapsed().as_millis() as u64,
                "built the columnar copy of sealed event ranges"
            );
        }
        Ok(built)
    }

    /// `queued` is the service's count of queued writes: the barrier is a
    /// write the store numbers too (`write_log.rs`), so it counts it.
    pub(crate) fn attach(&self, writer: WriterSlot, queued: Arc<AtomicU64>) {
        let _ = self.writer.set((writer, queued));
    }

    /// (events read, milliseconds spent) by every stream so far.
    pub fn totals(&self) -> (u64, f64) {
        (
            self.read.load(Ordering::Relaxed),
            self.micros.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    /// Waits until the writer has committed every job queued before now.
    pub(crate) fn flush(&self) -> Result<(), String> {
        let Some((writer, queued)) = self.writer.get() else {
            return Ok(());
        };
        let (flushed, answer) = mpsc::channel();
        let (done, _) = oneshot::channel();
        let slot = writer
            .lock()
            .map_err(|_| "the writer's queue lock is poisoned".to_string())?;
        slot.as_ref()
            .ok_or_else(|| "the workspace is closed".to_string())?
            .send(Job {
                records: Vec::new(),
                webhooks: Vec::new(),
                exports: Vec::new(),
                prune: None,
                prune_events: None,
                forget_touched: None,
                next_seq: 0,
                done,
                flushed: Some(flushed),
            })
            .map_err(|_| "the workspace's writer has stopped".to_string())?;
        // Under the writer's lock, as `WorkspaceService::send` counts.
        queued.fetch_add(1, Ordering::SeqCst);
        drop(slot);
        answer
            .recv()
            .map_err(|_| "the workspace's writer has stopped".to_string())?
            .map_err(|e| format!("the writer failed to commit: {e}"))
    }
}

impl StoreHistory {
    /// Streams the events (of `types` only, when given) behind the flush
    /// barrier, with progress in `/metrics`.
    fn scan_with(
        &self,
        types: Option<&[String]>,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.measured(&mut |progress| {
            self.stream.stream_types(types, &mut |seq, event| {
                progress(1);
                visit(seq, event);
            })
        })
    }

    /// Runs `scan` behind the flush barrier, with its progress (events
    /// read, as it reports them) in `/metrics` and the log.
    fn measured(&self, scan: &mut Scan<'_>) -> Result<(), String> {
        let started = Instant::now();
        self.flush()?;
        let labels = [("workspace", self.workspace.clone())];
        let total = self.stream.last_seq().map_err(|e| e.to_string())?;
        metrics::gauge!("sift_history_scan_running", &labels).set(1.0);
        metrics::gauge!("sift_history_scan_total_events", &labels).set(total as f64);
        let scanned = metrics::gauge!("sift_history_scan_events", &labels);
        scanned.set(0.0);
        let mut seen = 0u64;
        let mut reported = 0u64;
        let result = scan(&mut |read| {
            seen += read;
            if seen - reported >= PROGRESS_EVERY {
                scanned.set(seen as f64);
                reported = seen;
            }
        });
        scanned.set(seen as f64);
        metrics::gauge!("sift_history_scan_running", &labels).set(0.0);
        metrics::counter!("sift_history_events_read_total", &labels).increment(seen);
        let took = started.elapsed();
        metrics::histogram!("sift_history_scan_seconds", &labels).record(took.as_secs_f64());
        self.read.fetch_add(seen, Ordering::Relaxed);
        self.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        tracing::info!(
            workspace = %self.workspace,
            events = seen,
            took_ms = took.as_millis() as u64,
            "streamed the stored event history"
        );
        result.map(|_| ()).map_err(|e| e.to_string())
    }
}

impl EventHistory for StoreHistory {
    fn scan(&self, visit: &mut dyn FnMut(u64, &EventRecord)) -> Result<(), String> {
        self.scan_with(None, visit)
    }

    fn scan_types(
        &self,
        types: &[String],
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.scan_with(Some(types), visit)
    }

    fn scan_columns(
        &self,
        types: &[String],
        names: &[String],
        visit: &mut dyn FnMut(&EventColumns<'_>),
    ) -> Result<(), String> {
        self.measured(&mut |progress| {
            self.stream.stream_columns(types, names, &mut |columns| {
                progress(columns.contacts.len() as u64);
                visit(columns);
            })
        })
    }

    fn rollups(&self, visit: &mut dyn FnMut(&str, u32, u32, f64)) -> Result<(), String> {
        self.stream.read_rollups(visit).map_err(|e| e.to_string())
    }

    /// One contact's events, by the index on contacts, behind the barrier
    /// (not counted as a scan of the history: it reads one contact's rows).
    fn scan_contact(
        &self,
        no: u32,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.flush()?;
        self.stream
            .stream_contact(no, visit)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn contact_rollups(
        &self,
        no: u32,
        visit: &mut dyn FnMut(&str, u32, f64),
    ) -> Result<(), String> {
        self.flush()?;
        self.stream
            .read_contact_rollups(no, visit)
            .map_err(|e| e.to_string())
    }
}

//! One export job's task: the initial upload of the segment's members, then
//! (with `sync`) following the workspace's writes to keep the audience equal
//! to the segment.
//!
//! The sync is state-based: it keeps, per contact, the exact row it sent.
//! After each durable commit the workspace service publishes the contacts
//! that commit wrote and the membership changes it recorded
//! (`Signals::written`); the task gathers them for a short debounce, then
//! compares each touched contact's current row (none when it is not a
//! member, was deleted, lost every identifier or unsubscribed) with the row
//! it sent: a different row is removed (`DELETE` with the old identifiers)
//! and the new one added. A lagging receiver compares every member and
//! every sent row instead.
//!
//! A sync stores those rows through the writer: added rows durably before
//! they are sent, as pending, and marked held once Facebook accepted them;
//! removed ones after Facebook accepted the removal. A crash in between
//! leaves a row pending (or a removed one stored), which Facebook may or
//! may not hold: a resumed sync (`resume.rs`) starts with the stored rows,
//! compares every member and every stored row once, and sends a pending
//! row of a member again (Facebook deduplicates) or removes it (harmless
//! when absent). A row the audience holds is never forgotten, and one it
//! may lack is never taken as held.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use roaring::RoaringBitmap;
use sift_engine::ContactView;
use tokio::sync::broadcast::error::RecvError;

use sift_store::ExportWrite;

use super::graph::{self, Method, Secret, Target};
use super::normalize::{Outcome, outcome};
use super::{BatchInfo, Job, MAX_ROWS, Request, Settings, State};
use crate::destination::Destinations;
use crate::workspace::service::WorkspaceService;
use crate::written::Written;

/// Contacts read per engine lock, so an export never holds up writes long.
const READ_CHUNK: usize = 2_000;

pub fn spawn(
    ws: &Arc<WorkspaceService>,
    destinations: &Destinations,
    job: Arc<Job>,
    request: Request,
    settings: &Settings,
) {
    // Subscribed before the members are read, so no write after that
    // snapshot goes unseen.
    let written = job.sync.then(|| ws.signals.written.subscribe());
    let exporter = exporter(
        ws,
        destinations,
        job,
        request.token,
        settings,
        HashMap::new(),
    );
    tokio::spawn(exporter.run(written, false));
}

/// Starts a sync again after a restart, with the rows its audience holds.
pub fn spawn_resumed(
    ws: &Arc<WorkspaceService>,
    destinations: &Destinations,
    job: Arc<Job>,
    token: Secret,
    settings: &Settings,
    sent_rows: HashMap<u32, Vec<String>>,
    pending: RoaringBitmap,
) {
    let written = Some(ws.signals.written.subscribe());
    let mut exporter = exporter(ws, destinations, job, token, settings, sent_rows);
    exporter.pending = pending;
    tokio::spawn(exporter.run(written, true));
}

fn exporter(
    ws: &Arc<WorkspaceService>,
    destinations: &Destinations,
    job: Arc<Job>,
    token: Secret,
    settings: &Settings,
    sent_rows: HashMap<u32, Vec<String>>,
) -> Exporter {
    let target = Target {
        url: format!(
            "{}/{}/{}/users",
            job.graph_url.trim_end_matches('/'),
            job.version,
            job.audience_id
        ),
        token,
        retry_base: Duration::from_millis(settings.retry_base_ms),
        retry_max: Duration::from_millis(settings.retry_max_ms),
        max_attempts: settings.max_attempts,
        destinations: destinations.clone(),
    };
    let batch_n = job.progress.borrow().batch_count;
    Exporter {
        ws: ws.clone(),
        job,
        target,
        client: client(settings, destinations),
        sent_rows,
        pending: RoaringBitmap::new(),
        skipped_now: RoaringBitmap::new(),
        batch_n,
        debounce: Duration::from_millis(settings.debounce_ms),
    }
}

/// How a job's task ended without failing.
enum Flow {
    /// Finished, or stopped by a client.
    Finished,
    /// The workspace closed (the server stops): nothing is stored, so that
    /// a sync resumes after the restart.
    Interrupted,
}

fn client(
    settings: &Settings,
    destinations: &crate::destination::Destinations,
) -> Option<reqwest::Client> {
    // Installing twice (several jobs, tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    destinations
        .client()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .user_agent(concat!("Sift/", env!("CARGO_PKG_VERSION")))
        .build()
        .ok()
}

struct Exporter {
    ws: Arc<WorkspaceService>,
    job: Arc<Job>,
    target: Target,
    client: Option<reqwest::Client>,
    /// Per contact, the row the audience holds for it (sync jobs only).
    sent_rows: HashMap<u32, Vec<String>>,
    /// Contacts whose row in `sent_rows` was stored before its batch and
    /// never confirmed (read back after a restart): Facebook may lack it.
    pending: RoaringBitmap,
    /// Members not sent for lack of identifiers or consent.
    skipped_now: RoaringBitmap,
    batch_n: u64,
    debounce: Duration,
}

impl Exporter {
    async fn run(
        mut self,
        written: Option<tokio::sync::broadcast::Receiver<Arc<Written>>>,
        resumed: bool,
    ) {
        let job = self.job.clone();
        job.progress.send_modify(|p| {
            p.state = State::Running;
            p.updated_at = self.ws.clock.now_ms();
        });
        super::save(&self.ws, &job);
        let mut result = if resumed {
            // Everything that changed while the server was down: every
            // member and every stored row, compared once.
            self.reconcile(RoaringBitmap::new(), true)
                .await
                .map(|()| Flow::Finished)
        } else {
            self.initial().await
        };
        if matches!(result, Ok(Flow::Finished))
            && let Some(written) = written
        {
            job.progress.send_modify(|p| {
                p.phase = Some("syncing");
                p.updated_at = self.ws.clock.now_ms();
            });
            super::save(&self.ws, &job);
            result = self.follow(written).await;
        }
        if matches!(result, Ok(Flow::Interrupted)) {
            tracing::info!(job = %job.id, "the server stops: the Facebook sync resumes at the next start");
            return;
        }
        let result = result.map(|_| ());
        if job.sync {
            super::forget(&self.ws, &job);
        }
        job.progress.send_modify(|p| {
            match result {
                Ok(()) => p.state = State::Done,
                Err(message) => {
                    p.state = State::Failed;
                    p.record_error(self.ws.clock.now_ms(), message);
                }
            }
            if job.sync || *job.stop.borrow() {
                p.phase = Some("stopped");
            }
            p.updated_at = self.ws.clock.now_ms();
        });
        super::save(&self.ws, &job);
        metrics::counter!("sift_facebook_jobs_total", "state" => job.progress.borrow().state.as_str())
            .increment(1);
    }

    fn stopped(&self) -> bool {
        *self.job.stop.borrow()
    }

    fn closed(&self) -> bool {
        *self.ws.signals.closed.borrow()
    }

    async fn initial(&mut self) -> Result<Flow, String> {
        let segment_id = self.job.segment_id.clone();
        let members = self
            .ws
            .read(|e| e.segment(&segment_id).map(|s| s.members.shared()))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("segment {segment_id:?} was deleted"))?;
        self.job.progress.send_modify(|p| {
            p.total = members.len();
            p.updated_at = self.ws.clock.now_ms();
        });
        let numbers: Vec<u32> = members.iter().collect();
        let mut pending: Vec<(u32, Vec<String>)> = Vec::new();
        for chunk in numbers.chunks(READ_CHUNK) {
            if self.closed() {
                return Ok(Flow::Interrupted);
            }
            if self.stopped() {
                return Ok(Flow::Finished);
            }
            let views = self
                .ws
                .read(|e| {
                    chunk
                        .iter()
                        .filter_map(|&no| e.contact_data(no))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string())?;
            for (no, outcome) in self.outcomes(views).await? {
                match outcome {
                    Outcome::Row(row) => pending.push((no, row)),
                    other => self.skip(no, &other),
                }
            }
            while pending.len() >= MAX_ROWS {
                let batch: Vec<_> = pending.drain(..MAX_ROWS).collect();
                self.send(Method::Add, batch).await?;
            }
        }
        if self.closed() {
            return Ok(Flow::Interrupted);
        }
        if !pending.is_empty() && !self.stopped() {
            self.send(Method::Add, pending).await?;
        }
        Ok(Flow::Finished)
    }

    fn skip(&mut self, no: u32, outcome: &Outcome) {
        let fresh = self.skipped_now.insert(no);
        let skipped = self.skipped_now.len();
        self.job.progress.send_modify(|p| {
            p.skipped = skipped;
            if fresh && *outcome == Outcome::Unsubscribed {
                p.unsubscribed += 1;
            }
            p.updated_at = self.ws.clock.now_ms();
        });
    }

    /// Normalizing and hashing run on the blocking pool, off the runtime's
    /// workers.
    async fn outcomes(&self, views: Vec<ContactView>) -> Result<Vec<(u32, Outcome)>, String> {
        let keys = self.job.keys.clone();
        tokio::task::spawn_blocking(move || {
            views
                .iter()
                .map(|view| (view.no, outcome(view, &keys)))
                .collect()
        })
        .await
        .map_err(|_| "hashing the identifiers failed".to_string())
    }

    async fn send(&mut self, method: Method, rows: Vec<(u32, Vec<String>)>) -> Result<(), String> {
        let client = self
            .client
            .clone()
            .ok_or("the server could not build an HTTP client")?;
        self.batch_n += 1;
        let n = self.batch_n;
        let schema: Vec<&str> = self.job.keys.iter().map(|k| k.name()).collect();
        let refs: Vec<&[String]> = rows.iter().map(|(_, row)| row.as_slice()).collect();
        let body = graph::body(&schema, &refs, &self.target.token);
        if self.job.sync && method == Method::Add {
            self.record_sent(&rows, Stored::Pending).await?;
        }
        let job = self.job.clone();
        let result = graph::send(&client, &self.target, method, body, |attempt, message| {
            job.progress.send_modify(|p| {
                p.retries += 1;
                p.record_error(
                    self.ws.clock.now_ms(),
                    format!(
                        "batch {n} ({}, {} rows), attempt {attempt}: {message}; retrying",
                        method.http(),
                        rows.len()
                    ),
                );
                p.updated_at = self.ws.clock.now_ms();
            });
        })
        .await;
        let count = rows.len();
        let info = |status, attempts| BatchInfo {
            n,
            method,
            rows: count,
            status,
            num_received: None,
            num_invalid_entries: None,
            session_id: None,
            attempts,
            at: self.ws.clock.now_ms(),
        };
        match result {
            Ok(accepted) => {
                let mut batch = info(Some(accepted.status), accepted.attempts);
                batch.num_received = accepted.num_received;
                batch.num_invalid_entries = accepted.num_invalid_entries;
                batch.session_id = accepted.session_id;
                self.job.progress.send_modify(|p| {
                    p.record_batch(batch);
                    match method {
                        Method::Add => p.sent += count as u64,
                        Method::Remove => p.removed += count as u64,
                    }
                    p.updated_at = self.ws.clock.now_ms();
                });
                super::save(&self.ws, &self.job);
                if self.job.sync {
                    // Queued, not waited for: a removal or confirmation
                    // stored too late is only sent again after a crash.
                    let stored = match method {
                        Method::Add => Stored::Held,
                        Method::Remove => Stored::Removed,
                    };
                    let _ = self.record_sent(&rows, stored).await;
                    for (no, row) in rows {
                        self.pending.remove(no);
                        match method {
                            Method::Add => self.sent_rows.insert(no, row),
                            Method::Remove => self.sent_rows.remove(&no),
                        };
                    }
                }
                Ok(())
            }
            Err(refused) => {
                let batch = info(refused.status, refused.attempts);
                self.job.progress.send_modify(|p| p.record_batch(batch));
                super::save(&self.ws, &self.job);
                Err(format!(
                    "batch {n} ({}): {}",
                    method.http(),
                    refused.message
                ))
            }
        }
    }

    /// Stores rows as pending, held or removed. Pending rows are waited
    /// for, so that no row reaches the audience before it is stored.
    async fn record_sent(&self, rows: &[(u32, Vec<String>)], stored: Stored) -> Result<(), String> {
        let write = ExportWrite::Sent {
            job_id: self.job.id.clone(),
            rows: rows
                .iter()
                .map(|(no, row)| (*no, stored.text(row)))
                .collect(),
        };
        let done = self
            .ws
            .queue_exports(vec![write])
            .map_err(|e| format!("the sync could not store its rows: {e}"))?;
        if stored == Stored::Pending {
            match done.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    return Err(format!("the sync could not store its rows: {error}"));
                }
                Err(_) => {
                    return Err("the sync could not store its rows: the writer stopped".to_string());
                }
            }
        }
        Ok(())
    }

    /// Follows the workspace's writes until the job is stopped or the
    /// workspace closes.
    async fn follow(
        &mut self,
        mut written: tokio::sync::broadcast::Receiver<Arc<Written>>,
    ) -> Result<Flow, String> {
        let mut closed = self.ws.signals.closed.subscribe();
        let mut stop = self.job.stop.subscribe();
        let segment_id = self.job.segment_id.clone();
        let absorb = |w: &Written, touched: &mut RoaringBitmap| {
            *touched |= &w.contacts;
            for (segment, contacts) in &w.changes {
                if *segment == segment_id {
                    *touched |= contacts;
                }
            }
        };
        // A write between the snapshot and now is already in the channel;
        // a lag means some were lost: compare everything once.
        loop {
            let mut touched = RoaringBitmap::new();
            let mut full = false;
            let mut deleted = false;
            tokio::select! {
                got = written.recv() => match got {
                    Ok(w) => {
                        absorb(&w, &mut touched);
                        deleted |= w.segments_deleted.contains(&segment_id);
                    }
                    Err(RecvError::Lagged(_)) => full = true,
                    Err(RecvError::Closed) => return Ok(Flow::Interrupted),
                },
                _ = stop.wait_for(|s| *s) => return Ok(Flow::Finished),
                _ = closed.wait_for(|c| *c) => return Ok(Flow::Interrupted),
            }
            if touched.is_empty() && !full && !deleted {
                continue;
            }
            // Gather what follows until the writes pause, up to a batch.
            // A close ends the wait at once: what was gathered is compared
            // again after the restart.
            while !full && touched.len() < MAX_ROWS as u64 {
                tokio::select! {
                    got = tokio::time::timeout(self.debounce, written.recv()) => match got {
                        Err(_) => break,
                        Ok(Ok(w)) => absorb(&w, &mut touched),
                        Ok(Err(RecvError::Lagged(_))) => full = true,
                        Ok(Err(RecvError::Closed)) => break,
                    },
                    _ = closed.wait_for(|c| *c) => return Ok(Flow::Interrupted),
                }
            }
            if self.closed() {
                return Ok(Flow::Interrupted);
            }
            if self.stopped() {
                return Ok(Flow::Finished);
            }
            self.reconcile(touched, full).await?;
        }
    }

    async fn reconcile(&mut self, touched: RoaringBitmap, full: bool) -> Result<(), String> {
        let segment_id = self.job.segment_id.clone();
        let sent: RoaringBitmap = if full {
            self.sent_rows.keys().copied().collect()
        } else {
            RoaringBitmap::new()
        };
        let (candidates, views) = self
            .ws
            .read(|e| {
                let segment = e.segment(&segment_id)?;
                let candidates = if full {
                    &*segment.members.bitmap() | &sent
                } else {
                    touched
                };
                let views: Vec<ContactView> = candidates
                    .iter()
                    .filter(|no| segment.members.contains(*no))
                    .filter_map(|no| e.contact_data(no))
                    .collect();
                Some((candidates, views))
            })
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("segment {segment_id:?} was deleted: the sync stopped (the audience keeps what was sent)")
            })?;
        let mut desired: HashMap<u32, Outcome> = self.outcomes(views).await?.into_iter().collect();
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        for no in &candidates {
            let now = desired.remove(&no);
            if !matches!(now, Some(Outcome::NoIdentifier | Outcome::Unsubscribed)) {
                self.skipped_now.remove(no);
            }
            match (self.sent_rows.get(&no), now) {
                (Some(old), Some(Outcome::Row(row))) if *old == row => {
                    if self.pending.contains(no) {
                        adds.push((no, row));
                    }
                }
                (Some(old), Some(Outcome::Row(row))) => {
                    removes.push((no, old.clone()));
                    adds.push((no, row));
                }
                (None, Some(Outcome::Row(row))) => adds.push((no, row)),
                (old, other) => {
                    if let Some(old) = old {
                        removes.push((no, old.clone()));
                    }
                    if let Some(skipped) = other {
                        self.skip(no, &skipped);
                    }
                }
            }
        }
        let skipped = self.skipped_now.len();
        self.job.progress.send_modify(|p| p.skipped = skipped);
        // Removals first: a changed row that shares an identifier with its
        // old one must end up present.
        for batch in chunked(removes) {
            self.send(Method::Remove, batch).await?;
        }
        for batch in chunked(adds) {
            self.send(Method::Add, batch).await?;
        }
        Ok(())
    }
}

/// What a stored row says about the audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// About to be sent: the audience may or may not hold it.
    Pending,
    /// Facebook accepted it.
    Held,
    /// Facebook accepted its removal: no longer stored.
    Removed,
}

impl Stored {
    /// The `export_sent.row` text: a held row is its JSON list, a pending
    /// one `{"pending": [...]}` (read back by `resume::stored_row`).
    fn text(self, row: &[String]) -> Option<String> {
        match self {
            Stored::Pending => Some(serde_json::json!({ "pending": row }).to_string()),
            Stored::Held => Some(serde_json::to_string(row).unwrap_or_default()),
            Stored::Removed => None,
        }
    }
}

fn chunked(mut rows: Vec<(u32, Vec<String>)>) -> Vec<Vec<(u32, Vec<String>)>> {
    let mut out = Vec::new();
    while rows.len() > MAX_ROWS {
        let rest = rows.split_off(MAX_ROWS);
        out.push(std::mem::replace(&mut rows, rest));
    }
    if !rows.is_empty() {
        out.push(rows);
    }
    out
}

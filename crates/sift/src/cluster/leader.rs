//! The leading node's side of cluster mode: the one node that applies the
//! cluster's writes (docs/cluster.md "Writes", "Checkpoints and takeover").
//!
//! It logs each write in the input stream (stored by a JetStream quorum)
//! before applying it through the ordinary API, and answers only once both
//! are done. Its business clock moves only between writes and is recorded
//! with each, and the ids and keys a write makes are drawn from a seed
//! recorded with it: replaying the log on another node applies every write
//! as it was first applied.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sift_cluster::{AppendError, CheckpointStore, PartitionLog};
use sift_server::clock::{Clock, ManualClock, system_now_ms};
use sift_server::{ApiError, AppState, Code, Config};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use super::record::{self, Input, Recorded};

/// The cluster's input log is one partition of the log `all` until
/// workspaces are split by contact (docs/cluster.md "What exists today").
pub const LOG: &str = "all";
pub const PART: u16 = 0;
/// The object store name of the leader's checkpoint.
const CHECKPOINT: &str = "leader";
/// The web UI sessions stored beside a checkpoint's databases (JSON).
const SESSIONS: &str = "sessions.json";
/// How often the business clock catches up with the wall clock between
/// writes: the lateness of a timer at most.
const TICK: Duration = Duration::from_millis(5);

/// What a takeover needs, shared by every lead this node takes.
pub struct Shared {
    pub node: String,
    pub log: PartitionLog,
    pub checkpoints: CheckpointStore,
    /// The leader's data directory: a cache, emptied at every takeover.
    pub dir: PathBuf,
    /// The server settings, given the directory and the clock.
    pub config: Box<dyn Fn(PathBuf, Clock) -> Config + Send + Sync>,
    pub checkpoint_every: Duration,
    /// Most writes between two checkpoints: a takeover replays at most
    /// this many.
    pub checkpoint_writes: u64,
}

struct Writes {
    /// The input sequence of the last write logged.
    last: u64,
    since_checkpoint: u64,
}

pub struct Leader {
    pub state: AppState,
    app: Router,
    clock: ManualClock,
    shared: Arc<Shared>,
    writes: tokio::sync::Mutex<Writes>,
    /// Set when this node must stop leading (another node wrote to the log,
    /// or an append's outcome is unknown): the node takes the lead over
    /// again from the log if it still holds the lease.
    broken: AtomicBool,
    pub broke: Arc<Notify>,
    checkpoint_due: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn moving() -> Response {
    let mut response = ApiError::new(
        Code::Unavailable,
        "the cluster's leading node is changing; retry in a second (a retried event with its id is applied once)",
    )
    .into_response();
    response
        .headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    response
}

impl Leader {
    /// Takes the lead: fences the log, loads the newest checkpoint, replays
    /// the writes logged after it, and catches the clock up.
    pub async fn take_over(shared: Arc<Shared>, broke: Arc<Notify>) -> anyhow::Result<Arc<Leader>> {
        let started = Instant::now();
        let fenced_at = loop {
            let last = shared.log.last(PART).await?;
            let (headers, payload) = record::fence(&shared.node, system_now_ms());
            match shared.log.append_with(PART, last, headers, payload).await {
                Ok(seq) => break seq,
                Err(AppendError::Fenced(_)) => continue,
                Err(AppendError::Unavailable(why)) => {
                    anyhow::bail!("cannot append to the input log: {why}")
                }
            }
        };
        let dir = shared.dir.clone();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot empty {}", dir.display())),
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let covered = shared
            .checkpoints
            .get_dir(CHECKPOINT, &dir)
            .await?
            .unwrap_or(0);
        let loaded_at = started.elapsed();
        let mut inputs = Vec::new();
        shared
            .log
            .replay_with(PART, covered, &mut |seq, headers, payload| {
                inputs.push((
                    seq,
                    record::now_of(headers),
                    record::decode(headers, payload),
                ));
            })
            .await?;
        let first_now = inputs.iter().find_map(|input| input.1);
        let clock = ManualClock::at(first_now.unwrap_or_else(system_now_ms));
        let config = (shared.config)(dir.clone(), Clock::Manual(clock.clone()));
        let state = tokio::task::spawn_blocking(move || AppState::open(config))
            .await?
            .map_err(|e| anyhow::anyhow!("cannot open the checkpoint's data: {}", e))?;
        if let Ok(sessions) = std::fs::read(dir.join(SESSIONS)) {
            match serde_json::from_slice(&sessions) {
                Ok(sessions) => state.sessions.import(sessions),
                Err(e) => {
                    tracing::warn!(error = %e, "the checkpoint's sessions cannot be read; their users sign in again")
                }
            }
        }
        let app = sift_server::app(state.clone());
        let replayed = inputs.len();
        for (seq, _, input) in inputs {
            match input {
                Ok(input) => apply(&state, &app, &clock, input).await,
                Err(why) => tracing::warn!(seq, %why, "an input cannot be read; skipped"),
            }
        }
        clock.set(clock.now_ms().max(system_now_ms()));
        tracing::info!(
            node = %shared.node,
            covered,
            replayed,
            fenced_at,
            load_ms = loaded_at.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "took the lead"
        );
        let leader = Arc::new(Leader {
            state,
            app,
            clock,
            shared,
            writes: tokio::sync::Mutex::new(Writes {
                last: fenced_at,
                since_checkpoint: replayed as u64,
            }),
            broken: AtomicBool::new(false),
            broke,
            checkpoint_due: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let ticking = tokio::spawn(tick(Arc::downgrade(&leader)));
        let checkpointing = tokio::spawn(checkpoints(Arc::downgrade(&leader)));
        if let Ok(mut tasks) = leader.tasks.lock() {
            tasks.extend([ticking, checkpointing]);
        }
        Ok(leader)
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    fn break_off(&self, why: &str) {
        tracing::warn!(node = %self.shared.node, %why, "stops leading until it has replayed the log");
        self.broken.store(true, Ordering::SeqCst);
        self.broke.notify_one();
    }

    /// Serves one request: reads at once, writes logged then applied, one
    /// at a time, in the log's order.
    pub async fn handle(&self, parts: Parts, body: Bytes) -> Response {
        if self.is_broken() {
            return moving();
        }
        if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let request = Request::from_parts(parts, Body::from(body));
            let response = self.app.clone().oneshot(request).await.into_response();
            self.log_session(started_session(&response)).await;
            return response;
        }
        let session = sift_server::session::cookie(&parts.headers)
            .and_then(|cookie| self.state.sessions.describe(cookie));
        let mut writes = self.writes.lock().await;
        if self.is_broken() {
            return moving();
        }
        let now_ms = self.clock.now_ms().max(system_now_ms());
        self.clock.set(now_ms);
        let recorded = Recorded {
            now_ms,
            seed: rand::random(),
            method: parts.method.clone(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
            headers: record::kept_headers(&parts.headers),
            body: body.clone(),
            session,
        };
        let (headers, payload) = recorded.encode();
        match self
            .shared
            .log
            .append_with(PART, writes.last, headers, payload)
            .await
        {
            Ok(seq) => writes.last = seq,
            Err(AppendError::Fenced(_)) => {
                self.break_off("another node appended to the input log");
                return moving();
            }
            Err(AppendError::Unavailable(why)) => {
                // Stored or not, nobody knows: only a replay of the log
                // makes this node's state the log's again.
                self.break_off(&format!("an append's outcome is unknown: {why}"));
                let mut response = ApiError::new(
                    Code::Unavailable,
                    format!("JetStream did not confirm storing the write ({why}); it may or may not be applied: retry it (events with an id are applied once)"),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
                return response;
            }
        }
        writes.since_checkpoint += 1;
        if writes.since_checkpoint >= self.shared.checkpoint_writes {
            self.checkpoint_due.notify_one();
        }
        let request = Request::from_parts(parts, Body::from(body));
        let (seed, at) = (recorded.seed, recorded.now_ms);
        let response = sift_server::ids::drawn_from(seed, at, self.app.clone().oneshot(request))
            .await
            .into_response();
        drop(writes);
        self.log_session(started_session(&response)).await;
        response
    }

    /// Logs the session a response starts, if it starts one, so that its
    /// cookie keeps working when another node takes the lead.
    async fn log_session(&self, started: Option<String>) {
        let Some(cookie) = started else {
            return;
        };
        let Some((workspace, key_hash)) = self.state.sessions.describe(&cookie) else {
            return;
        };
        let mut writes = self.writes.lock().await;
        let now_ms = self.clock.now_ms();
        let (headers, payload) = record::session(&cookie, &workspace, key_hash.as_deref(), now_ms);
        match self
            .shared
            .log
            .append_with(PART, writes.last, headers, payload)
            .await
        {
            Ok(seq) => {
                writes.last = seq;
                writes.since_checkpoint += 1;
            }
            Err(e) => self.break_off(&e.to_string()),
        }
    }

    /// Makes the cluster's first workspace (a fresh cluster), as a logged
    /// write; answers its id and key.
    pub async fn first_workspace(&self) -> anyhow::Result<Option<(String, String)>> {
        let mut writes = self.writes.lock().await;
        if !self.state.workspace_rows().is_empty() {
            return Ok(None);
        }
        let now_ms = self.clock.now_ms().max(system_now_ms());
        self.clock.set(now_ms);
        let seed: u64 = rand::random();
        let (headers, payload) = record::first_workspace(now_ms, seed);
        match self
            .shared
            .log
            .append_with(PART, writes.last, headers, payload)
            .await
        {
            Ok(seq) => writes.last = seq,
            Err(e) => {
                self.break_off(&e.to_string());
                anyhow::bail!("cannot log the first workspace: {e}");
            }
        }
        writes.since_checkpoint += 1;
        let state = self.state.clone();
        let made =
            sift_server::ids::drawn_from(
                seed,
                now_ms,
                async move { state.create_workspace("Default") },
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the first workspace: {}", e))?;
        Ok(Some(made))
    }

    /// Stores a checkpoint of everything logged so far (when anything was
    /// logged since the last), then forgets the log before it.
    pub async fn checkpoint(&self) -> anyhow::Result<Option<u64>> {
        let partial = self.shared.dir.with_extension("checkpoint");
        let covered = {
            let mut writes = self.writes.lock().await;
            if writes.since_checkpoint == 0 {
                return Ok(None);
            }
            let covered = writes.last;
            let (from, to) = (self.shared.dir.clone(), partial.clone());
            let exported = self.state.sessions.export();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                match std::fs::remove_dir_all(&to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
                std::fs::create_dir_all(&to)?;
                let mut totals = (0, 0);
                crate::backup::copy_data_dir(&from, &to, &mut totals)?;
                let sessions = serde_json::to_vec(&exported)?;
                std::fs::write(to.join(SESSIONS), sessions)?;
                Ok(())
            })
            .await??;
            writes.since_checkpoint = 0;
            covered
        };
        let started = Instant::now();
        self.shared
            .checkpoints
            .put_dir(CHECKPOINT, covered, &partial)
            .await?;
        self.shared.log.forget_before(covered).await?;
        let _ = std::fs::remove_dir_all(&partial);
        tracing::info!(
            covered,
            upload_ms = started.elapsed().as_millis() as u64,
            "checkpoint stored"
        );
        Ok(Some(covered))
    }

    /// Stops leading: every task of this lead ends, change streams close,
    /// and the state is closed.
    pub async fn stop(&self) {
        self.broken.store(true, Ordering::SeqCst);
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        self.state.stopping.send_replace(true);
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.close()).await;
    }
}

/// The value of the session cookie a response sets, if it sets one.
fn started_session(response: &Response) -> Option<String> {
    let prefix = format!("{}=", sift_server::session::COOKIE);
    response
        .headers()
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.strip_prefix(&prefix))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
        .find(|value| !value.is_empty())
}

/// Applies one logged input as it was first applied.
async fn apply(state: &AppState, app: &Router, clock: &ManualClock, input: Input) {
    match input {
        Input::Fence => {}
        Input::Session {
            cookie,
            workspace,
            key_hash,
        } => state.sessions.adopt(&cookie, &workspace, key_hash),
        Input::FirstWorkspace { now_ms, seed } => {
            clock.set(clock.now_ms().max(now_ms));
            let state = state.clone();
            if let Err(e) = sift_server::ids::drawn_from(seed, now_ms, async move {
                state.create_workspace("Default")
            })
            .await
            {
                tracing::warn!(error = %e, "replaying the first workspace failed");
            }
        }
        Input::Request(recorded) => {
            clock.set(clock.now_ms().max(recorded.now_ms));
            let request = recorded.request();
            if let (Some((workspace, key)), Some(cookie)) = (
                &recorded.session,
                sift_server::session::cookie(request.headers()),
            ) {
                state.sessions.adopt(cookie, workspace, key.clone());
            }
            let response = sift_server::ids::drawn_from(
                recorded.seed,
                recorded.now_ms,
                app.clone().oneshot(request),
            )
            .await;
            if let Ok(response) = response
                && response.status().is_server_error()
            {
                tracing::warn!(target = %recorded.target, status = %response.status(), "a replayed write failed");
            }
        }
    }
}

/// Moves the business clock to the wall clock between writes, so that
/// timers fire and windows close on time.
async fn tick(leader: std::sync::Weak<Leader>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(leader) = leader.upgrade() else {
            return;
        };
        if leader.is_broken() {
            return;
        }
        if let Ok(_writes) = leader.writes.try_lock() {
            leader.clock.set(leader.clock.now_ms().max(system_now_ms()));
        }
    }
}

async fn checkpoints(leader: std::sync::Weak<Leader>) {
    loop {
        let Some(strong) = leader.upgrade() else {
            return;
        };
        let every = strong.shared.checkpoint_every;
        {
            let due = strong.checkpoint_due.notified();
            tokio::pin!(due);
            let _ = tokio::time::timeout(every, due).await;
        }
        if strong.is_broken() {
            return;
        }
        if let Err(e) = strong.checkpoint().await {
            tracing::warn!(error = %e, "a checkpoint failed; the next one retries");
        }
    }
}

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
use sift_cluster::{AppendError, CheckpointStore, HeaderMap, PartitionLog};
use sift_server::clock::{Clock, ManualClock, system_now_ms};
use sift_server::{ApiError, AppState, Code, Config};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use super::record::{self, Recorded};
use super::replay;

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

/// The sending side of the write path: what the next append expects.
struct Sending {
    /// The input sequence the next append expects to follow: this
    /// leader's last append, sent if not yet confirmed (the log holds only
    /// this leader's inputs after its fence, so each takes the next
    /// sequence).
    expected: u64,
    /// The business instant of the last write sent (never goes back).
    now_ms: i64,
    /// The ticket of the next write sent: writes apply in ticket order.
    next_ticket: u64,
}

/// The applying side: writes apply one at a time, in the order sent.
struct Applied {
    /// The input sequence of the last write applied.
    seq: u64,
    since_checkpoint: u64,
}

pub struct Leader {
    pub state: AppState,
    app: Router,
    clock: ManualClock,
    shared: Arc<Shared>,
    sending: tokio::sync::Mutex<Sending>,
    applying: Arc<tokio::sync::Mutex<Applied>>,
    /// The ticket of the last write applied (or given up).
    turn: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set when this node must stop leading (another node wrote to the log,
    /// or an append's outcome is unknown): the node takes the lead over
    /// again from the log if it still holds the lease.
    broken: AtomicBool,
    pub broke: Arc<Notify>,
    checkpoint_due: Arc<Notify>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// An input's turn to apply: held while it applies; dropping it lets the
/// next one apply.
struct Turn {
    applying: tokio::sync::OwnedMutexGuard<Applied>,
    turn: Arc<tokio::sync::watch::Sender<u64>>,
    checkpoint_due: Arc<Notify>,
    checkpoint_writes: u64,
    ticket: u64,
    seq: u64,
    now_ms: i64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.applying.seq = self.seq;
        self.applying.since_checkpoint += 1;
        if self.applying.since_checkpoint >= self.checkpoint_writes {
            self.checkpoint_due.notify_one();
        }
        self.turn.send_replace(self.ticket);
    }
}

fn unconfirmed(why: &str) -> Response {
    let mut response = ApiError::new(
        Code::Unavailable,
        format!("JetStream did not confirm storing the write ({why}); it may or may not be applied: retry it (events with an id are applied once)"),
    )
    .into_response();
    response
        .headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    response
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
        let mut committing = Vec::new();
        for (seq, _, input) in inputs {
            match input {
                Ok(input) => {
                    if let Some(task) = replay::apply(&state, &app, &clock, input).await {
                        committing.push(task);
                    }
                }
                Err(why) => tracing::warn!(seq, %why, "an input cannot be read; skipped"),
            }
        }
        for task in committing {
            let _ = task.await;
        }
        clock.set(clock.now_ms().max(system_now_ms()));
        let start_ms = clock.now_ms();
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
            sending: tokio::sync::Mutex::new(Sending {
                expected: fenced_at,
                now_ms: start_ms,
                next_ticket: 1,
            }),
            applying: Arc::new(tokio::sync::Mutex::new(Applied {
                seq: fenced_at,
                since_checkpoint: replayed as u64,
            })),
            turn: Arc::new(tokio::sync::watch::channel(0).0),
            broken: AtomicBool::new(false),
            broke,
            checkpoint_due: Arc::new(Notify::new()),
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
        // Writes waiting for their turn give up.
        self.turn.send_modify(|_| {});
    }

    /// Serves one request: reads at once; writes logged, then applied in
    /// the order logged.
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
        let seed: u64 = rand::random();
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
        let method = parts.method.clone();
        let headers = record::kept_headers(&parts.headers);
        let logged = body.clone();
        let turn = self
            .log(move |now_ms| {
                Recorded {
                    now_ms,
                    seed,
                    method,
                    target,
                    headers,
                    body: logged,
                    session,
                }
                .encode()
            })
            .await;
        let turn = match turn {
            Ok(turn) => turn,
            Err(refused) => return refused,
        };
        let request = Request::from_parts(parts, Body::from(body));
        let now_ms = turn.now_ms;
        // The next write may apply once this one is in the engine, while
        // its commit is under way (or once it answers, if it writes nothing
        // to the engine).
        let turn = Arc::new(Mutex::new(Some(turn)));
        let held = turn.clone();
        let release = Box::new(move || {
            if let Ok(mut turn) = held.lock() {
                turn.take();
            }
        });
        let response = sift_server::ids::drawn_from(
            seed,
            now_ms,
            sift_server::sequenced::on_applied(release, self.app.clone().oneshot(request)),
        )
        .await
        .into_response();
        if let Ok(mut turn) = turn.lock() {
            turn.take();
        }
        self.log_session(started_session(&response)).await;
        response
    }

    /// Logs an input (made by `make` given its business instant), then
    /// waits for its turn to apply: every input logged before it applied,
    /// the clock at its instant. The input counts as applied when the turn
    /// is dropped.
    async fn log(&self, make: impl FnOnce(i64) -> (HeaderMap, Bytes)) -> Result<Turn, Response> {
        let (pending, ticket, now_ms) = {
            let mut sending = self.sending.lock().await;
            if self.is_broken() {
                return Err(moving());
            }
            let now_ms = sending.now_ms.max(system_now_ms());
            let (headers, payload) = make(now_ms);
            // Fenced by JetStream when nothing is in flight; otherwise
            // checked below for a gap.
            let idle = sending.next_ticket == *self.turn.borrow() + 1;
            let pending = self
                .shared
                .log
                .send(PART, sending.expected, idle, headers, payload)
                .await;
            let pending = match pending {
                Ok(pending) => pending,
                Err(e) => {
                    self.break_off(&e.to_string());
                    return Err(unconfirmed(&e.to_string()));
                }
            };
            sending.expected += 1;
            sending.now_ms = now_ms;
            let ticket = sending.next_ticket;
            sending.next_ticket += 1;
            (pending, ticket, now_ms)
        };
        let confirmed = pending.confirmed().await;
        let mut turn = self.turn.subscribe();
        let _ = turn
            .wait_for(|applied| *applied + 1 >= ticket || self.is_broken())
            .await;
        let applying = self.applying.clone().lock_owned().await;
        let seq = match confirmed {
            Ok(seq) if !self.is_broken() && seq == applying.seq + 1 => seq,
            Ok(_) if self.is_broken() => {
                self.turn.send_replace(ticket);
                return Err(moving());
            }
            Ok(seq) => {
                // Another writer's append landed between this leader's
                // previous one and this one.
                self.break_off(&format!(
                    "input {seq} does not follow {} (another node appended)",
                    applying.seq
                ));
                self.turn.send_replace(ticket);
                return Err(moving());
            }
            Err(AppendError::Fenced(_)) => {
                self.break_off("another node appended to the input log");
                self.turn.send_replace(ticket);
                return Err(moving());
            }
            Err(AppendError::Unavailable(why)) => {
                // Stored or not, nobody knows: only a replay of the log
                // makes this node's state the log's again.
                self.break_off(&format!("an append's outcome is unknown: {why}"));
                self.turn.send_replace(ticket);
                return Err(unconfirmed(&why));
            }
        };
        // The clock has not passed it: the ticker moves the clock only
        // while no write is in flight, and writes are sent in instant order.
        self.clock.set(now_ms);
        // Workflow runs waiting (queued by earlier writes) run here, before
        // this input, as a replay runs them.
        replay::run_queued_workflows(&self.state).await;
        Ok(Turn {
            applying,
            turn: self.turn.clone(),
            checkpoint_due: self.checkpoint_due.clone(),
            checkpoint_writes: self.shared.checkpoint_writes,
            ticket,
            seq,
            now_ms,
        })
    }

    /// Makes the cluster's first workspace (a fresh cluster), as a logged
    /// write; answers its id and key.
    pub async fn first_workspace(&self) -> anyhow::Result<Option<(String, String)>> {
        if !self.state.workspace_rows().is_empty() {
            return Ok(None);
        }
        let seed: u64 = rand::random();
        let turn = self
            .log(|now_ms| record::first_workspace(now_ms, seed))
            .await
            .map_err(|_| anyhow::anyhow!("cannot log the first workspace"))?;
        let state = self.state.clone();
        let made = sift_server::ids::drawn_from(seed, turn.now_ms, async move {
            state.create_workspace("Default")
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the first workspace: {e}"))?;
        Ok(Some(made))
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
        let _turn = self
            .log(|now_ms| record::session(&cookie, &workspace, key_hash.as_deref(), now_ms))
            .await;
    }

    /// Stores a checkpoint of everything applied so far (when anything was
    /// applied since the last), then forgets the log before it.
    pub async fn checkpoint(&self) -> anyhow::Result<Option<u64>> {
        let partial = self.shared.dir.with_extension("checkpoint");
        let copying = Instant::now();
        let (covered, frozen) = {
            let mut applied = self.applying.lock().await;
            if applied.since_checkpoint == 0 {
                return Ok(None);
            }
            let covered = applied.seq;
            // Applied writes may still be committing (the next one may
            // apply during a commit); the copy must hold them.
            self.state.committed().await.map_err(|e| {
                anyhow::anyhow!("the writes before the checkpoint did not commit: {e}")
            })?;
            let (from, to) = (self.shared.dir.clone(), partial.clone());
            let exported = self.state.sessions.export();
            // Writes wait only while every database is held at this
            // instant (milliseconds); the copy itself runs after.
            let frozen = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                match std::fs::remove_dir_all(&to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
                std::fs::create_dir_all(&to)?;
                let frozen = crate::backup::freeze_data_dir(&from, &to)?;
                std::fs::write(to.join(SESSIONS), serde_json::to_vec(&exported)?)?;
                Ok(frozen)
            })
            .await??;
            applied.since_checkpoint = 0;
            (covered, frozen)
        };
        let held = copying.elapsed();
        let to = partial.clone();
        tokio::task::spawn_blocking(move || frozen.write_to(&to)).await??;
        let started = Instant::now();
        self.shared
            .checkpoints
            .put_dir(CHECKPOINT, covered, &partial)
            .await?;
        self.shared.log.forget_before(covered).await?;
        let _ = std::fs::remove_dir_all(&partial);
        tracing::info!(
            covered,
            held_writes_ms = held.as_millis() as u64,
            copy_ms = (started - copying - held).as_millis() as u64,
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
        // Only while no write is in flight: one sent but not applied yet
        // must apply with the clock at its own recorded instant, which the
        // clock must not have passed.
        let Ok(mut sending) = leader.sending.try_lock() else {
            continue;
        };
        if sending.next_ticket != *leader.turn.borrow() + 1 {
            continue;
        }
        let now_ms = leader.clock.now_ms().max(system_now_ms());
        leader.clock.set(now_ms);
        sending.now_ms = now_ms;
        drop(sending);
        // Triggers a timer flip queued while no write came: run them as a
        // logged input, so that a replay runs them at the same point.
        if leader.state.has_queued_runs() {
            let _turn = leader.log(record::drain).await;
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

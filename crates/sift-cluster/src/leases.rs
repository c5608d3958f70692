//! Leases (docs/cluster.md "Ownership: leases"): which node owns each
//! partition and each background job, kept in a JetStream key-value bucket.
//!
//! A lease is the key of what it covers, holding the owner's node name. A
//! node takes a free one by creating the key (JetStream refuses when it
//! exists) and keeps it by updating it at the revision it last wrote, every
//! `renew_every`. Every live node announces itself in the same bucket
//! (key `_node.<name>`) the same way, and aims at a fair share of the leases: it takes free ones
//! while below it and hands one back at a time while above it.
//!
//! A lease is taken over when its revision has not moved for `ttl` as its
//! observers see it, through a watch of the bucket, and then only by
//! compare-and-set at that revision. The entries never expire on the
//! server: when JetStream itself stalls (a NATS node lost and its RAFT
//! groups electing a new leader, several seconds) nobody can renew, and
//! server-side expiry would then drop every lease at once. So an observer
//! counts `ttl` only over time it could write its own announcement and see
//! it come back through its watch ("clear" time): after a stall, holders
//! renew before anyone may take over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::ClusterError;

/// The prefix of the nodes' announcement keys.
const NODE_PREFIX: &str = "_node.";

/// Timings and bucket of the leases.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// How long a lease (and a node's announcement) stays unrenewed, in
    /// clear time, before another node may take it.
    pub ttl: Duration,
    /// How often a node renews its leases and its announcement.
    pub renew_every: Duration,
    /// How long a node keeps a lease it cannot renew (JetStream not
    /// answering) before it gives it up. Others may take it `ttl` after
    /// they last saw it renewed; until then this node's writes for it are
    /// fenced off by JetStream, but it may still answer reads. It must
    /// outlast a JetStream leader election (seconds).
    pub give_up_after: Duration,
    /// How often a node looks for leases to take or hand back.
    pub tick: Duration,
    /// Copies JetStream keeps of each bucket (3 in a 3-node cluster: any
    /// one node may be lost).
    pub replicas: usize,
    /// The bucket of the leases and of the nodes' announcements (one
    /// bucket, one stream: a node that can announce itself can renew).
    pub bucket: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(2),
            renew_every: Duration::from_millis(400),
            give_up_after: Duration::from_secs(15),
            tick: Duration::from_millis(250),
            replicas: 3,
            bucket: "sift_leases".into(),
        }
    }
}

/// A change in what this node owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The lease was taken: start serving what it covers.
    Acquired(String),
    /// Another node took the lease (or it could not be renewed for
    /// `give_up_after`): stop serving at once.
    Lost(String),
    /// The lease is being handed back for a fair share, or because what it
    /// covers is gone.
    Released(String),
}

/// Connects to the NATS servers in `servers` (`nats://host:port`, several
/// separated by commas: the client moves to another when one fails).
pub async fn connect(servers: &str) -> Result<jetstream::Context, ClusterError> {
    let list: Vec<&str> = servers.split(',').map(str::trim).collect();
    let client = async_nats::ConnectOptions::new()
        .name("sift")
        .retry_on_initial_connect()
        .connect(list)
        .await
        .map_err(|e| ClusterError::Connect {
            servers: servers.to_string(),
            message: e.to_string(),
        })?;
    Ok(jetstream::new(client))
}

/// What this node has seen of a bucket through its watch: each key's last
/// value, revision, and when that revision was seen.
#[derive(Default)]
struct View {
    entries: HashMap<String, Seen>,
}

#[derive(Clone)]
struct Seen {
    value: String,
    revision: u64,
    at: Instant,
}

type SharedView = Arc<Mutex<View>>;

/// Keeps `view` equal to the bucket: its last values first, then every
/// change; a broken watch is opened again. A key's `at` moves only when
/// its revision does, so that a watch opened again does not make a dead
/// node's last announcement look new.
fn watch(store: kv::Store, view: SharedView, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !*stopped.borrow() {
            let mut changes = match store.watch_with_history(">").await {
                Ok(changes) => changes,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch a lease bucket; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while let Some(change) = changes.next().await {
                let Ok(entry) = change else { break };
                let mut view = lock(&view);
                match entry.operation {
                    kv::Operation::Put => {
                        let known = view.entries.get(&entry.key);
                        if known.is_none_or(|k| k.revision != entry.revision) {
                            view.entries.insert(
                                entry.key,
                                Seen {
                                    value: String::from_utf8_lossy(&entry.value).into_owned(),
                                    revision: entry.revision,
                                    at: Instant::now(),
                                },
                            );
                        }
                    }
                    kv::Operation::Delete | kv::Operation::Purge => {
                        view.entries.remove(&entry.key);
                    }
                }
            }
        }
    })
}

/// This node's side of the leases: a task that takes, renews and hands
/// back leases over `resources`, reporting each change as a [`LeaseEvent`].
pub struct Leases {
    resources: watch::Sender<Vec<String>>,
    owned: Arc<Mutex<BTreeMap<String, u64>>>,
    written: Arc<Mutex<BTreeMap<String, Instant>>>,
    lease_view: SharedView,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Leases {
    /// Creates the bucket when missing and starts sharing `resources` (the
    /// lease keys: letters, digits, `-`, `_`, `.`; not starting with
    /// `_node.`, the nodes' announcements) with the other nodes.
    pub async fn start(
        js: jetstream::Context,
        node: &str,
        config: LeaseConfig,
        resources: Vec<String>,
    ) -> Result<(Leases, mpsc::UnboundedReceiver<LeaseEvent>), ClusterError> {
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ClusterError::NodeName(node.to_string()));
        }
        let leases = bucket(&js, &config.bucket, &config).await?;
        let (resources_tx, resources_rx) = watch::channel(resources);
        let (stop, stopped) = watch::channel(false);
        let (events_tx, events) = mpsc::unbounded_channel();
        let owned = Arc::new(Mutex::new(BTreeMap::new()));
        let written = Arc::new(Mutex::new(BTreeMap::new()));
        let lease_view = SharedView::default();
        let watcher = watch(leases.clone(), lease_view.clone(), stopped.clone());
        let mut keeper = Keeper {
            node: node.to_string(),
            config,
            announcement: format!("{NODE_PREFIX}{node}"),
            leases,
            lease_view: lease_view.clone(),
            resources: resources_rx,
            owned: owned.clone(),
            confirmed: BTreeMap::new(),
            written: written.clone(),
            events: events_tx,
            live: 1,
            counted: false,
            announced: 0,
            clear_since: None,
        };
        let task = tokio::spawn(async move { keeper.run(stopped).await });
        let tasks = vec![task, watcher];
        Ok((
            Leases {
                resources: resources_tx,
                owned,
                written,
                lease_view,
                stop,
                tasks,
            },
            events,
        ))
    }

    /// Shares `resources` from now on (a workspace created or deleted).
    pub fn set_resources(&self, resources: Vec<String>) {
        self.resources.send_replace(resources);
    }

    /// The leases this node holds now, in key order.
    pub fn owned(&self) -> Vec<String> {
        lock(&self.owned).keys().cloned().collect()
    }

    /// Whether this node holds lease `key` and sent a write of it that
    /// JetStream stored less than `within` ago. Another node may take a
    /// lease only `ttl` after it last saw it written, and that write was
    /// sent after this instant: while `within` < `ttl`, nobody else holds
    /// it (what a holder checks before answering as the holder).
    pub fn written_within(&self, key: &str, within: Duration) -> bool {
        lock(&self.written)
            .get(key)
            .is_some_and(|sent| sent.elapsed() < within)
    }

    /// The node holding lease `key`, as this node last saw it (where a
    /// request for what it covers is sent).
    pub fn owner_of(&self, key: &str) -> Option<String> {
        lock(&self.lease_view)
            .entries
            .get(key)
            .map(|seen| seen.value.clone())
    }

    /// Hands every lease back and leaves: the other nodes take them at
    /// their next look instead of after `ttl`.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if !self.tasks.is_empty() {
            let keeper = self.tasks.remove(0);
            let _ = keeper.await;
        }
        for task in self.tasks {
            task.abort();
        }
    }

    /// Stops at once without handing anything back, as a node that dies:
    /// its leases are taken over `ttl` after its last renewal.
    pub fn abort(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    config: &LeaseConfig,
) -> Result<kv::Store, ClusterError> {
    let wanted = kv::Config {
        bucket: name.to_string(),
        history: 1,
        num_replicas: config.replicas,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    // Created by the first node; the others find it.
    match js.create_key_value(wanted).await {
        Ok(store) => Ok(store),
        Err(create) => js
            .get_key_value(name)
            .await
            .map_err(|e| ClusterError::JetStream {
                what: format!("the bucket {name}"),
                message: format!("{create}; {e}"),
            }),
    }
}

/// The task behind [`Leases`].
struct Keeper {
    node: String,
    config: LeaseConfig,
    /// This node's announcement key.
    announcement: String,
    leases: kv::Store,
    lease_view: SharedView,
    resources: watch::Receiver<Vec<String>>,
    /// Each lease held, with the revision last written.
    owned: Arc<Mutex<BTreeMap<String, u64>>>,
    /// When each lease was last confirmed (written by this node).
    confirmed: BTreeMap<String, Instant>,
    /// When the last write of each lease that JetStream stored was sent.
    written: Arc<Mutex<BTreeMap<String, Instant>>>,
    events: mpsc::UnboundedSender<LeaseEvent>,
    /// Live nodes at the last count (this one included).
    live: usize,
    /// Whether `live` was counted yet.
    counted: bool,
    /// The revision of this node's last announcement written.
    announced: u64,
    /// Since when this node has written its announcements and seen them
    /// come back through its watch without a miss (`None`: not now).
    clear_since: Option<Instant>,
}

impl Keeper {
    async fn run(&mut self, mut stopped: watch::Receiver<bool>) {
        let mut renew_at = Instant::now();
        loop {
            if Instant::now() >= renew_at {
                renew_at = Instant::now() + self.config.renew_every;
                self.announce().await;
                self.renew().await;
            }
            self.balance().await;
            tokio::select! {
                _ = tokio::time::sleep(self.config.tick) => {}
                _ = stopped.changed() => {
                    self.leave().await;
                    return;
                }
            }
        }
    }

    /// Writes this node's announcement, checks that the previous one came
    /// back through the watch (else this node is not clear), and counts
    /// the live nodes.
    async fn announce(&mut self) {
        let seen_back = lock(&self.lease_view)
            .entries
            .get(&self.announcement)
            .is_some_and(|s| s.revision >= self.announced);
        let value = bytes::Bytes::from(self.node.clone());
        match self.leases.put(&self.announcement, value).await {
            Ok(revision) => {
                let was = self.announced;
                self.announced = revision;
                if was == 0 || seen_back {
                    self.clear_since.get_or_insert_with(Instant::now);
                } else {
                    self.clear_since = None;
                }
            }
            Err(e) => {
                tracing::debug!(node = %self.node, error = %e, "cannot announce this node");
                self.clear_since = None;
            }
        }
        self.count_live();
    }

    /// Counts the live nodes: those whose announcement moved within `ttl`.
    /// Until this node has been clear for `ttl`, a node it saw last before
    /// it became clear may be alive: its first count takes it as alive
    /// (a smaller share, taken from below), and a later one keeps the last
    /// count, so that a stall of JetStream moves nothing.
    fn count_live(&mut self) {
        let Some(clear) = self.clear_since else {
            return;
        };
        let ttl = self.config.ttl;
        let now = Instant::now();
        let settled = clear + ttl <= now;
        if !settled && self.counted {
            return;
        }
        let live = lock(&self.lease_view)
            .entries
            .iter()
            .filter(|(key, seen)| {
                let at = if settled { seen.at } else { seen.at.max(clear) };
                key.starts_with(NODE_PREFIX) && (**key == self.announcement || at + ttl > now)
            })
            .count();
        self.live = live.max(1);
        self.counted = true;
    }

    async fn renew(&mut self) {
        let held: Vec<(String, u64)> = lock(&self.owned)
            .iter()
            .map(|(k, r)| (k.clone(), *r))
            .collect();
        for (key, revision) in held {
            let value = bytes::Bytes::from(self.node.clone());
            let sent = Instant::now();
            match self.leases.update(&key, value, revision).await {
                Ok(revision) => {
                    lock(&self.owned).insert(key.clone(), revision);
                    lock(&self.written).insert(key.clone(), sent);
                    self.confirmed.insert(key, Instant::now());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // A renewal stored but not acknowledged moved the
                    // revision too: only another node's name means lost.
                    match self.leases.entry(&key).await {
                        Ok(Some(entry))
                            if entry.operation == kv::Operation::Put
                                && entry.value.as_ref() == self.node.as_bytes() =>
                        {
                            lock(&self.owned).insert(key.clone(), entry.revision);
                        }
                        _ => self.lose(&key, "another node took it"),
                    }
                }
                Err(e) => {
                    // Nobody can take it while JetStream stalls, and a
                    // stale owner's writes are fenced off anyway; but
                    // unconfirmed for long, it is given up.
                    let since = self.confirmed.get(&key).copied();
                    if since.is_none_or(|t| t.elapsed() >= self.config.give_up_after) {
                        self.lose(&key, &e.to_string());
                    }
                }
            }
        }
    }

    fn lose(&mut self, key: &str, why: &str) {
        tracing::warn!(node = %self.node, lease = key, why, "lease lost");
        lock(&self.owned).remove(key);
        lock(&self.written).remove(key);
        self.confirmed.remove(key);
        let _ = self.events.send(LeaseEvent::Lost(key.to_string()));
    }

    /// Takes free or abandoned leases up to a fair share, or hands one
    /// back above it.
    async fn balance(&mut self) {
        let resources: Vec<String> = self
            .resources
            .borrow()
            .iter()
            .filter(|r| !r.starts_with(NODE_PREFIX))
            .cloned()
            .collect();
        let stale: Vec<String> = lock(&self.owned)
            .keys()
            .filter(|k| !resources.contains(k))
            .cloned()
            .collect();
        for key in stale {
            self.release(&key).await;
        }
        let share = resources.len().div_ceil(self.live.max(1));
        let held = lock(&self.owned).len();
        if held > share {
            let last = lock(&self.owned).keys().next_back().cloned();
            if let Some(key) = last {
                self.release(&key).await;
            }
            return;
        }
        // Taking needs a clear view: after a stall, holders renew first.
        let Some(clear) = self.clear_since else {
            return;
        };
        if held == share || resources.is_empty() {
            return;
        }
        // From an offset of this node's own, so that nodes starting
        // together try different keys first.
        let offset = self
            .node
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            % resources.len();
        let mut missing = share - held;
        for i in 0..resources.len() {
            if missing == 0 {
                break;
            }
            let key = &resources[(offset + i) % resources.len()];
            if lock(&self.owned).contains_key(key) {
                continue;
            }
            let seen = lock(&self.lease_view).entries.get(key).cloned();
            let value = bytes::Bytes::from(self.node.clone());
            let sent = Instant::now();
            let taken = match seen {
                None => self.leases.create(key, value).await.ok(),
                Some(seen) if seen.at.max(clear) + self.config.ttl <= Instant::now() => {
                    // Abandoned: taken only at the revision seen.
                    self.leases.update(key, value, seen.revision).await.ok()
                }
                Some(_) => None,
            };
            if let Some(revision) = taken {
                lock(&self.owned).insert(key.clone(), revision);
                lock(&self.written).insert(key.clone(), sent);
                self.confirmed.insert(key.clone(), Instant::now());
                let _ = self.events.send(LeaseEvent::Acquired(key.clone()));
                missing -= 1;
            }
        }
    }

    async fn release(&mut self, key: &str) {
        let Some(revision) = lock(&self.owned).remove(key) else {
            return;
        };
        lock(&self.written).remove(key);
        self.confirmed.remove(key);
        let _ = self.events.send(LeaseEvent::Released(key.to_string()));
        // Only if still ours: a lease taken meanwhile is another node's.
        if let Err(e) = self
            .leases
            .delete_expect_revision(key, Some(revision))
            .await
        {
            tracing::debug!(lease = key, error = %e, "lease not handed back; it is taken over after ttl");
        }
    }

    async fn leave(&mut self) {
        let held: Vec<String> = lock(&self.owned).keys().cloned().collect();
        for key in held {
            self.release(&key).await;
        }
        let _ = self.leases.delete(&self.announcement).await;
    }
}

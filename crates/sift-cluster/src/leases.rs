//! Leases (docs/cluster.md "Ownership: leases"): which node owns each
//! partition and each background job, kept in a JetStream key-value bucket.
//!
//! A lease is the key of what it covers, holding the owner's node name. A
//! node takes a free one by creating the key (JetStream refuses when it
//! exists) and keeps it by updating it at the revision it last wrote; the
//! bucket's entries expire, so the leases of a node that stops renewing
//! fall free. Every live node announces itself in a second bucket, and
//! aims at a fair share of the leases: it takes free ones while below it
//! and hands one back at a time while above it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::TryStreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::ClusterError;

/// Timings and buckets of the leases.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// How long a lease (and a node's announcement) lives unrenewed.
    pub ttl: Duration,
    /// How often a node renews its leases and its announcement.
    pub renew_every: Duration,
    /// How often a node looks for leases to take or hand back.
    pub tick: Duration,
    /// Copies JetStream keeps of each bucket (3 in a 3-node cluster: any
    /// one node may be lost).
    pub replicas: usize,
    pub leases_bucket: String,
    pub nodes_bucket: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(2),
            renew_every: Duration::from_millis(400),
            tick: Duration::from_millis(250),
            replicas: 3,
            leases_bucket: "sift_leases".into(),
            nodes_bucket: "sift_nodes".into(),
        }
    }
}

/// A change in what this node owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The lease was taken: start serving what it covers.
    Acquired(String),
    /// The lease could not be renewed (another node holds it, or it could
    /// not be confirmed within its life): stop serving at once.
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

/// This node's side of the leases: a task that takes, renews and hands
/// back leases over `resources`, reporting each change as a [`LeaseEvent`].
pub struct Leases {
    resources: watch::Sender<Vec<String>>,
    owned: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Leases {
    /// Creates the buckets when missing and starts sharing `resources` (the
    /// lease keys: letters, digits, `-`, `_`, `.`) with the other nodes.
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
        let leases = bucket(&js, &config.leases_bucket, &config).await?;
        let nodes = bucket(&js, &config.nodes_bucket, &config).await?;
        let (resources_tx, resources_rx) = watch::channel(resources);
        let (stop, stopped) = watch::channel(false);
        let (events_tx, events) = mpsc::unbounded_channel();
        let owned = Arc::new(Mutex::new(BTreeMap::new()));
        let mut keeper = Keeper {
            node: node.to_string(),
            config,
            leases,
            nodes,
            resources: resources_rx,
            owned: owned.clone(),
            confirmed: BTreeMap::new(),
            events: events_tx,
            live: 1,
        };
        let task = tokio::spawn(async move { keeper.run(stopped).await });
        Ok((
            Leases {
                resources: resources_tx,
                owned,
                stop,
                task,
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

    /// Hands every lease back and leaves: the other nodes take them at
    /// their next look instead of after the leases' life.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }

    /// Stops at once without handing anything back, as a node that dies:
    /// its leases fall free when their life ends.
    pub fn abort(self) {
        self.task.abort();
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
        max_age: config.ttl,
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
    leases: kv::Store,
    nodes: kv::Store,
    resources: watch::Receiver<Vec<String>>,
    /// Each lease held, with the revision last written.
    owned: Arc<Mutex<BTreeMap<String, u64>>>,
    /// When each lease was last confirmed (written by this node).
    confirmed: BTreeMap<String, Instant>,
    events: mpsc::UnboundedSender<LeaseEvent>,
    /// Live nodes at the last count (this one included).
    live: usize,
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

    /// Renews this node's announcement and counts the live nodes.
    async fn announce(&mut self) {
        if let Err(e) = self.nodes.put(&self.node, bytes::Bytes::new()).await {
            tracing::warn!(node = %self.node, error = %e, "cannot announce this node");
            return;
        }
        match self.nodes.keys().await {
            Ok(keys) => match keys.try_collect::<Vec<String>>().await {
                Ok(keys) => self.live = keys.len().max(1),
                Err(e) => tracing::warn!(error = %e, "cannot count the live nodes"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot count the live nodes"),
        }
    }

    async fn renew(&mut self) {
        let held: Vec<(String, u64)> = lock(&self.owned)
            .iter()
            .map(|(k, r)| (k.clone(), *r))
            .collect();
        for (key, revision) in held {
            let value = bytes::Bytes::from(self.node.clone());
            match self.leases.update(&key, value, revision).await {
                Ok(revision) => {
                    lock(&self.owned).insert(key.clone(), revision);
                    self.confirmed.insert(key, Instant::now());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    self.lose(&key, "another node holds it");
                }
                Err(e) => {
                    // Unconfirmed for its whole life: another node may
                    // hold it by now.
                    let since = self.confirmed.get(&key).copied();
                    if since.is_none_or(|t| t.elapsed() >= self.config.ttl) {
                        self.lose(&key, &e.to_string());
                    }
                }
            }
        }
    }

    fn lose(&mut self, key: &str, why: &str) {
        tracing::warn!(node = %self.node, lease = key, why, "lease lost");
        lock(&self.owned).remove(key);
        self.confirmed.remove(key);
        let _ = self.events.send(LeaseEvent::Lost(key.to_string()));
    }

    /// Takes free leases up to a fair share, or hands one back above it.
    async fn balance(&mut self) {
        let resources = self.resources.borrow().clone();
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
            let value = bytes::Bytes::from(self.node.clone());
            if let Ok(revision) = self.leases.create(key, value).await {
                lock(&self.owned).insert(key.clone(), revision);
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
        self.confirmed.remove(key);
        let _ = self.events.send(LeaseEvent::Released(key.to_string()));
        // Only if still ours: a lease lost meanwhile is another node's.
        if let Err(e) = self
            .leases
            .delete_expect_revision(key, Some(revision))
            .await
        {
            tracing::debug!(lease = key, error = %e, "lease not handed back; it expires");
        }
    }

    async fn leave(&mut self) {
        let held: Vec<String> = lock(&self.owned).keys().cloned().collect();
        for key in held {
            self.release(&key).await;
        }
        let _ = self.nodes.delete(&self.node).await;
    }
}

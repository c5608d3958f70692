//! `sift serve --cluster`: this process as one node of a cluster on NATS
//! JetStream (docs/cluster.md).
//!
//! Every node answers the whole API and web UI. One node at a time leads:
//! it holds the lease `leader` and applies every write ([`leader`]); the
//! others pass each request to it and its answer back ([`forward`]). When
//! the leader dies, another takes the lease over and rebuilds the state
//! from the newest checkpoint and the input log.

mod forward;
mod leader;
mod record;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sift_cluster::{CheckpointStore, Directory, LeaseConfig, LeaseEvent, Leases, PartitionLog};
use sift_server::{ApiError, Code};
use tokio::sync::{Notify, watch};

use crate::cli::ServeFlags;
use leader::{Leader, Shared};

/// The header a node adds to a request it passes on, naming itself: the
/// receiver, if it does not lead, answers 421 rather than passing it again.
pub const FORWARDED: &str = "x-sift-forwarded";
/// The one lease of this mode: who leads.
const LEAD: &str = "leader";
/// How long a request waits for a leader (a takeover under way) before
/// it is answered 503.
const WAIT_FOR_LEADER: Duration = Duration::from_secs(10);
/// How recently the leader must have renewed its lease to answer (below
/// the lease's 2 s time to live, with a margin).
const LEAD_FRESH: Duration = Duration::from_millis(1500);

struct Node {
    name: String,
    url: String,
    /// Taken out at shutdown, to hand the lease back.
    leases: Mutex<Option<Leases>>,
    directory: Directory,
    client: forward::HttpClient,
    leading: watch::Sender<Option<Arc<Leader>>>,
    /// Node name → URL, as last read from the directory.
    urls: Mutex<Option<(String, String)>>,
    max_body: usize,
}

pub fn serve(flags: ServeFlags, servers: String) -> anyhow::Result<ExitCode> {
    let node_name = flags.node.clone().context(
        "cluster mode needs --node NAME (or SIFT_NODE): this node's name, unique in the cluster",
    )?;
    let data = flags
        .data
        .clone()
        .or_else(|| std::env::var_os("SIFT_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(format!("./sift-node-{node_name}")));
    if data.join("catalog.db").exists() {
        anyhow::bail!(
            "{} holds an embedded data directory (catalog.db); a cluster node keeps only a cache and would empty it: give the node another --data",
            data.display()
        );
    }
    let _lock = crate::run::lock_data_dir(&data)?;
    // A write is durable once JetStream stored it; the local databases are
    // a cache that a takeover rebuilds from JetStream.
    sift_store::set_sync_commits(false);
    let rt = crate::run::runtime()?;
    rt.block_on(run(flags, servers, node_name, data))
}

async fn run(
    flags: ServeFlags,
    servers: String,
    name: String,
    data: PathBuf,
) -> anyhow::Result<ExitCode> {
    let replicas = usize::try_from(flags.cluster_replicas).unwrap_or(3);
    // The client retries until a NATS server answers: nodes may start
    // before NATS does. Say so, or a wrong address looks like a hang.
    let connecting = tokio::spawn({
        let (servers, name) = (servers.clone(), name.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            say(&format!(
                "Sift node {name} is waiting for NATS at {servers} (retrying; check the addresses and that nats-server runs)"
            ));
        }
    });
    let js = sift_cluster::connect(&servers).await?;
    // The server's INFO (its max_payload) has arrived once a round trip has.
    let nats = js.client();
    let _ = nats.flush().await;
    connecting.abort();
    let max_payload = match nats.server_info().max_payload {
        0 => 1024 * 1024,
        announced => announced,
    };
    let front_config = crate::run::serve_config(&flags, &data)?;
    // Headers and the log's own fields travel beside the body.
    let max_body = front_config
        .max_body_bytes
        .min(max_payload.saturating_sub(64 * 1024).max(1024));
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .with_context(|| format!("cannot listen on {}", flags.listen))?;
    let addr = listener.local_addr()?;
    let url = flags
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let directory = Directory::open(&js, replicas).await?;
    directory.publish(&name, &url).await?;
    let flags_for_leader = flags.clone();
    let shared = Arc::new(Shared {
        node: name.clone(),
        log: PartitionLog::open(js.clone(), leader::LOG, replicas).await?,
        checkpoints: CheckpointStore::open(&js, replicas).await?,
        dir: data.join("leader"),
        config: Box::new(move |dir: PathBuf, clock| {
            let mut config =
                crate::run::serve_config(&flags_for_leader, &dir).unwrap_or_else(|_| {
                    sift_server::Config::new(&dir, flags_for_leader.admin_key.clone())
                });
            config.clock = clock;
            config.max_body_bytes = max_body;
            // Workflows run at points of the log (leader.rs), not whenever
            // a task wakes, so that a replay runs them identically.
            config.run_workflows = false;
            config
        }),
        checkpoint_every: Duration::from_secs(flags.cluster_checkpoint_secs.max(1)),
        checkpoint_writes: flags.cluster_checkpoint_writes.max(1),
    });
    let lease_config = LeaseConfig {
        replicas,
        ..LeaseConfig::default()
    };
    let (leases, events) =
        Leases::start(js.clone(), &name, lease_config, vec![LEAD.into()]).await?;
    let node = Arc::new(Node {
        name: name.clone(),
        url: url.clone(),
        leases: Mutex::new(Some(leases)),
        directory,
        client: forward::client(),
        leading: watch::channel(None).0,
        urls: Mutex::new(None),
        max_body,
    });
    say(&format!(
        "Sift node {name} is listening on {url} (cluster {servers})"
    ));
    let leading = tokio::spawn(lead(node.clone(), shared.clone(), events));
    let app = Router::new().fallback(front).with_state(node.clone());
    let stopping = watch::channel(false).0;
    sift_server::listen::run(
        app,
        &front_config,
        listener,
        stopping,
        crate::run::shutdown_signal(),
    )
    .await?;
    leading.abort();
    let current = node.leading.borrow().clone();
    if let Some(leader) = current {
        if let Err(e) = leader.checkpoint().await {
            tracing::warn!(error = %e, "the last checkpoint failed; the next leader replays more");
        }
        leader.stop().await;
    }
    let leases = node.leases.lock().ok().and_then(|mut l| l.take());
    if let Some(leases) = leases {
        leases.stop().await;
    }
    say(&format!(
        "Sift node {name} stopped; every acknowledged write is in JetStream."
    ));
    Ok(ExitCode::SUCCESS)
}

fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Follows the lease: leads while this node holds it, and takes the lead
/// over again from the log when a lead breaks.
async fn lead(
    node: Arc<Node>,
    shared: Arc<Shared>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<LeaseEvent>,
) {
    let broke = Arc::new(Notify::new());
    let mut held = false;
    loop {
        let current = node.leading.borrow().clone();
        let needs_lead = held && current.as_ref().is_none_or(|l| l.is_broken());
        if !held && let Some(leader) = current {
            node.leading.send_replace(None);
            leader.stop().await;
            say(&format!("Sift node {} no longer leads", node.name));
            continue;
        }
        if needs_lead {
            if let Some(old) = current {
                node.leading.send_replace(None);
                old.stop().await;
            }
            match Leader::take_over(shared.clone(), broke.clone()).await {
                Ok(leader) => {
                    node.leading.send_replace(Some(leader.clone()));
                    say(&format!("Sift node {} leads the cluster", node.name));
                    announce(&node, &leader).await;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot take the lead yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            // Lease events that came meanwhile are read before leading on.
            while let Ok(event) = events.try_recv() {
                held = held_after(held, &event);
            }
            continue;
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => held = held_after(held, &event),
                None => return,
            },
            () = broke.notified() => {}
        }
    }
}

fn held_after(held: bool, event: &LeaseEvent) -> bool {
    match event {
        LeaseEvent::Acquired(key) if key == LEAD => true,
        LeaseEvent::Lost(key) | LeaseEvent::Released(key) if key == LEAD => false,
        _ => held,
    }
}

/// What a new leader prints: the first workspace's key on a fresh
/// cluster, and a sign-in link per workspace (its tokens live in this
/// leader's memory).
async fn announce(node: &Node, leader: &Leader) {
    match leader.first_workspace().await {
        Ok(Some((id, key))) => {
            tracing::info!(workspace = %id, "created the cluster's first workspace");
            say(&format!("Workspace key (shown once, keep it): {key}"));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "no first workspace"),
    }
    for (id, name) in leader.state.workspace_rows().iter().take(10) {
        let token = leader.state.sessions.mint_login_token(id);
        say(&format!(
            "Web UI ({name}): {}/ui/login?token={token}",
            node.url
        ));
    }
}

/// Every request: served here when this node leads, else passed to the
/// leader.
async fn front(State(node): State<Arc<Node>>, request: Request) -> Response {
    if request.uri().path() == "/healthz" && matches!(*request.method(), Method::GET | Method::HEAD)
    {
        // This node's own health, for a load balancer: it can serve when
        // it knows who leads.
        let leads = node
            .leading
            .borrow()
            .as_ref()
            .is_some_and(|l| !l.is_broken());
        if leads || owner(&node).is_some() {
            return "ok".into_response();
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no node leads the cluster yet",
        )
            .into_response();
    }
    let passed_on = request.headers().contains_key(FORWARDED);
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, node.max_body).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                Code::PayloadTooLarge,
                format!(
                    "the request body is over {} bytes, the most a cluster node takes; send it in smaller batches",
                    node.max_body
                ),
            )
            .into_response();
        }
    };
    let deadline = Instant::now() + WAIT_FOR_LEADER;
    let mut leading = node.leading.subscribe();
    loop {
        let current = leading.borrow_and_update().clone();
        if let Some(leader) = current
            && !leader.is_broken()
        {
            // A leader that has not renewed its lease lately (stalled,
            // paused) may have been replaced without knowing yet: it
            // answers nothing, not even a read, until it knows.
            if holds_lead(&node) {
                return leader.handle(parts, body).await;
            }
            if Instant::now() >= deadline {
                return unavailable();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if passed_on {
            // The sender thought this node leads; it asks again.
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this node does not lead the cluster",
            )
                .into_response();
        }
        if let Some((leader_name, url)) = leader_url(&node).await
            && leader_name != node.name
        {
            match forward::forward(&node.client, &url, &node.name, &parts, body.clone()).await {
                Ok(response) if response.status() != StatusCode::MISDIRECTED_REQUEST => {
                    return response;
                }
                Ok(_) => {}
                Err(forward::Failed::NotSent(why)) => {
                    tracing::debug!(%why, "the leader did not take the request; asking again");
                    forget_url(&node);
                }
                Err(forward::Failed::Unknown(why)) => {
                    return ApiError::new(
                        Code::Unavailable,
                        format!("the leading node stopped answering while handling the request ({why}); it may or may not be applied: retry it (events with an id are applied once)"),
                    )
                    .into_response();
                }
            }
        }
        if Instant::now() >= deadline {
            return unavailable();
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), leading.changed()).await;
    }
}

fn unavailable() -> Response {
    let mut response = ApiError::new(
        Code::Unavailable,
        "no node leads the cluster right now (a takeover is under way, or NATS cannot be reached); retry shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    response
}

/// Whether this node's hold on the lead is recent enough that no other
/// node can have taken it: written less than `LEAD_FRESH` ago (the lease's
/// time to live is 2 s; renewals come every 400 ms).
fn holds_lead(node: &Node) -> bool {
    node.leases
        .lock()
        .ok()
        .and_then(|leases| leases.as_ref().map(|l| l.written_within(LEAD, LEAD_FRESH)))
        .unwrap_or(false)
}

/// The node holding the lead, as this node last saw the leases.
fn owner(node: &Node) -> Option<String> {
    node.leases.lock().ok()?.as_ref()?.owner_of(LEAD)
}

/// The leading node's name and URL, as the leases and the directory say.
async fn leader_url(node: &Node) -> Option<(String, String)> {
    let owner = owner(node)?;
    if let Ok(cached) = node.urls.lock()
        && let Some((name, url)) = cached.as_ref()
        && *name == owner
    {
        return Some((name.clone(), url.clone()));
    }
    let url = node.directory.url_of(&owner).await.ok()??;
    if let Ok(mut cached) = node.urls.lock() {
        *cached = Some((owner.clone(), url.clone()));
    }
    Some((owner, url))
}

fn forget_url(node: &Node) {
    if let Ok(mut cached) = node.urls.lock() {
        *cached = None;
    }
}

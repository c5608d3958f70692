//! Cluster mode (docs/cluster.md) against real processes: three
//! `nats-server`s forming one JetStream cluster and three `sift serve
//! --cluster` nodes. Writers send contacts, events and identifies through
//! random nodes while the test kills the leading node (SIGKILL, five
//! times), then a NATS server, then everything. After each phase every
//! acknowledged write must be there, none applied twice, and every
//! segment must hold exactly what the test's own evaluation of those
//! writes says, and what a replay of its change log says.

mod cluster_web;
#[path = "../../sift-cluster/tests/support/mod.rs"]
mod nats;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_web::{sign_in, ui_status};
use serde_json::{Value as Json, json};
use support::{HttpClient, call, client};

const ADMIN_KEY: &str = "cluster-admin-key";
const WRITERS: usize = 4;
const KNOWN_PER_WRITER: usize = 8;
const ANON_PER_WRITER: usize = 4;

/// What the nodes printed, as far as the test needs it.
#[derive(Default)]
struct Seen {
    addr: HashMap<String, String>,
    key: Option<String>,
    leader: Option<String>,
    /// The path and query of the first sign-in link printed.
    sign_in: Option<String>,
    /// Nodes that said they no longer lead, in order.
    stepped_down: Vec<String>,
}

struct SiftNode {
    name: String,
    data: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    nats: nats::NatsCluster,
    nodes: Vec<SiftNode>,
    seen: Arc<Mutex<Seen>>,
    logs: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let nats = nats::NatsCluster::start(3);
        let mut cluster = Cluster {
            nats,
            nodes: Vec::new(),
            seen: Arc::default(),
            logs: dir.to_path_buf(),
        };
        for i in 1..=3 {
            cluster.nodes.push(SiftNode {
                name: format!("s{i}"),
                data: dir.join(format!("s{i}")),
                child: None,
            });
            cluster.spawn(i - 1);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        self.seen.lock().unwrap().addr.remove(&node.name);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}.log", node.name)))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sift"))
            .args(["serve", "--listen", "127.0.0.1:0", "--node", &node.name])
            .arg("--cluster")
            .arg(self.nats.urls())
            .arg("--data")
            .arg(&node.data)
            .args(["--cluster-checkpoint-secs", "2"])
            .env("SIFT_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = self.seen.clone();
        let name = node.name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let mut seen = seen.lock().unwrap();
                let listening = format!("Sift node {name} is listening on http://");
                if let Some(rest) = line.strip_prefix(&listening) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    seen.addr.insert(name.clone(), addr.to_string());
                } else if let Some(key) = line.strip_prefix("Workspace key (shown once, keep it): ")
                {
                    seen.key = Some(key.trim().to_string());
                } else if let Some(link) = line.strip_prefix("Web UI (Default): http://") {
                    if seen.sign_in.is_none() {
                        seen.sign_in = link.find('/').map(|at| link[at..].to_string());
                    }
                } else if line == format!("Sift node {name} leads the cluster") {
                    seen.leader = Some(name.clone());
                } else if line == format!("Sift node {name} no longer leads") {
                    seen.stepped_down.push(name.clone());
                    if seen.leader.as_deref() == Some(&name) {
                        seen.leader = None;
                    }
                }
            }
        });
        self.nodes[i].child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self
            .seen
            .lock()
            .unwrap()
            .addr
            .contains_key(&self.nodes[i].name)
        {
            assert!(
                Instant::now() < deadline,
                "node {} did not start",
                self.nodes[i].name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut seen = self.seen.lock().unwrap();
        seen.addr.remove(&self.nodes[i].name);
        if seen.leader.as_deref() == Some(&self.nodes[i].name) {
            seen.leader = None;
        }
    }

    /// The addresses of the live nodes.
    fn addrs(&self) -> Vec<String> {
        self.seen.lock().unwrap().addr.values().cloned().collect()
    }

    fn leader(&self) -> Option<usize> {
        let seen = self.seen.lock().unwrap();
        let name = seen.leader.as_ref()?;
        self.nodes.iter().position(|n| &n.name == name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Sends to random live nodes until a 2xx; retries what got no answer or a
/// 503 (a takeover under way): every write here gives the same result when
/// applied twice (absolute properties, events with ids, identify).
async fn send(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> Json {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let addr = {
            let addrs = addrs.lock().unwrap();
            addrs[rand::random_range(0..addrs.len())].clone()
        };
        match call(http, &addr, key, method, path, body).await {
            Ok((status, json)) if (200..300).contains(&status) => return json,
            Ok((status, json)) if status == 503 || status == 502 => {
                let _ = json;
            }
            Ok((status, json)) => panic!("{method} {path} answered {status}: {json:#}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "{method} {path} never succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A writer's view of its own contacts, from acknowledged writes only.
#[derive(Default, Clone)]
struct Model {
    /// Known contacts: properties and purchase amounts.
    known: BTreeMap<String, (BTreeMap<String, Json>, Vec<i64>)>,
    /// Anonymous contacts not merged: purchase amounts.
    anonymous: BTreeMap<String, Vec<i64>>,
    /// Anonymous id → the known id it merged into.
    merged: BTreeMap<String, String>,
    /// Contacts that were "older" at some point: a workflow adds each to
    /// the static segment "picked" when it enters "older".
    ever_older: BTreeSet<String>,
}

impl Model {
    fn purchases(&self) -> BTreeMap<String, Vec<i64>> {
        let mut all: BTreeMap<String, Vec<i64>> = self
            .known
            .iter()
            .map(|(id, (_, amounts))| (id.clone(), amounts.clone()))
            .collect();
        all.extend(self.anonymous.clone());
        all
    }
}

/// What every writer of a load shares.
#[derive(Clone)]
struct Writing {
    http: HttpClient,
    addrs: Arc<Mutex<Vec<String>>>,
    key: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
}

async fn writer(w: usize, writing: Writing, model: Arc<Mutex<Model>>) {
    let Writing {
        http,
        addrs,
        key,
        stop,
        acked,
        events,
    } = writing;
    while !stop.load(Ordering::SeqCst) {
        let choice = rand::random_range(0..10);
        if choice < 4 {
            let id = format!("w{w}k{}", rand::random_range(0..KNOWN_PER_WRITER));
            let mut properties = BTreeMap::new();
            properties.insert("age".to_string(), json!(rand::random_range(18..70)));
            let tier = ["gold", "silver", "bronze"][rand::random_range(0..3)];
            properties.insert("tier".to_string(), json!(tier));
            let body = json!({"properties": properties});
            send(
                &http,
                &addrs,
                &key,
                "PUT",
                &format!("/v1/contacts/{id}"),
                Some(&body),
            )
            .await;
            let mut model = model.lock().unwrap();
            if properties["age"].as_i64().is_some_and(|age| age >= 30) {
                model.ever_older.insert(id.clone());
            }
            let entry = model.known.entry(id).or_default();
            entry.0 = properties;
        } else if choice < 9 {
            let n = events.fetch_add(1, Ordering::SeqCst);
            let anonymous = rand::random_range(0..3) == 0;
            let id = if anonymous {
                format!("w{w}a{}", rand::random_range(0..ANON_PER_WRITER))
            } else {
                format!("w{w}k{}", rand::random_range(0..KNOWN_PER_WRITER))
            };
            let amount = rand::random_range(1..100i64);
            let body = json!({"id": format!("e{n}"), "contact_id": id, "type": "purchase",
                "anonymous": anonymous, "properties": {"amount": amount}});
            send(&http, &addrs, &key, "POST", "/v1/events", Some(&body)).await;
            let mut model = model.lock().unwrap();
            let target = model.merged.get(&id).cloned();
            match target {
                Some(known) => model.known.entry(known).or_default().1.push(amount),
                None if anonymous => model.anonymous.entry(id).or_default().push(amount),
                None => model.known.entry(id).or_default().1.push(amount),
            }
        } else {
            let a = format!("w{w}a{}", rand::random_range(0..ANON_PER_WRITER));
            let exists = model.lock().unwrap().anonymous.contains_key(&a);
            if !exists {
                continue;
            }
            let k = format!("w{w}k{}", rand::random_range(0..KNOWN_PER_WRITER));
            let body = json!({"anonymous_id": a, "contact_id": k});
            send(&http, &addrs, &key, "POST", "/v1/identify", Some(&body)).await;
            let mut model = model.lock().unwrap();
            let amounts = model.anonymous.remove(&a).unwrap_or_default();
            model.known.entry(k.clone()).or_default().1.extend(amounts);
            model.merged.insert(a, k);
        }
        acked.fetch_add(1, Ordering::SeqCst);
    }
}

const SEGMENTS: [(&str, &str); 4] = [
    ("older", "age >= 30"),
    ("gold under 50", "tier = \"gold\" and age < 50"),
    ("bought twice", "performed purchase at least 2 times"),
    ("big spender", "performed purchase where amount > 50"),
];

fn expected(models: &[Model], segment: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if segment == "picked" {
        for model in models {
            out.extend(model.ever_older.iter().cloned());
        }
        return out;
    }
    for model in models {
        for (id, (properties, _)) in &model.known {
            let age = properties.get("age").and_then(Json::as_i64);
            let tier = properties.get("tier").and_then(Json::as_str);
            let member = match segment {
                "older" => age.is_some_and(|a| a >= 30),
                "gold under 50" => tier == Some("gold") && age.is_some_and(|a| a < 50),
                _ => false,
            };
            if member {
                out.insert(id.clone());
            }
        }
        for (id, amounts) in model.purchases() {
            let member = match segment {
                "bought twice" => amounts.len() >= 2,
                "big spender" => amounts.iter().any(|a| *a > 50),
                _ => false,
            };
            if member {
                out.insert(id);
            }
        }
    }
    out
}

/// Every item of a paged list, following `next_cursor` through `param`.
async fn pages(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    base: &str,
    param: &str,
) -> Vec<Json> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}&{param}={c}"),
            None => base.to_string(),
        };
        let page = send(http, addrs, key, "GET", &path, None).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

async fn members(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    id: &str,
) -> BTreeSet<String> {
    let base = format!("/v1/segments/{id}/contacts?limit=100");
    pages(http, addrs, key, &base, "cursor")
        .await
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every segment's change log, as it reads now.
async fn change_logs(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    segments: &[(String, String)],
) -> Vec<(String, Vec<Json>)> {
    let mut logs = Vec::new();
    for (name, id) in segments {
        let base = format!("/v1/segments/{id}/changes?limit=1000");
        logs.push((name.clone(), pages(http, addrs, key, &base, "after").await));
    }
    logs
}

/// Membership as a replay of the segment's change log says.
async fn replayed(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    id: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let base = format!("/v1/segments/{id}/changes?limit=1000");
    for change in pages(http, addrs, key, &base, "after").await {
        let contact = change["contact_id"].as_str().unwrap().to_string();
        match change["change"].as_str() {
            Some("entered") => assert!(out.insert(contact), "entered twice: {change}"),
            Some("exited") => assert!(out.remove(&contact), "exited without entering: {change}"),
            other => panic!("a change of kind {other:?}"),
        }
    }
    out
}

/// Every segment equals the test's evaluation and its change log's replay;
/// every known contact has its last acknowledged properties.
async fn verify(
    phase: &str,
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    segments: &[(String, String)],
    models: &[Model],
) {
    for (name, id) in segments {
        let want = expected(models, name);
        // The workflow filling "picked" runs just after the write that
        // triggers it.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut got = members(http, addrs, key, id).await;
        while got != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            got = members(http, addrs, key, id).await;
        }
        assert_eq!(got, want, "{phase}: members of {name:?}");
        let replay = replayed(http, addrs, key, id).await;
        assert_eq!(replay, want, "{phase}: the change log of {name:?} replayed");
    }
    for model in models {
        for (id, (properties, _)) in &model.known {
            let contact = send(http, addrs, key, "GET", &format!("/v1/contacts/{id}"), None).await;
            for (k, v) in properties {
                assert_eq!(&contact["properties"][k], v, "{phase}: {id}.{k}");
            }
        }
        for a in model.merged.keys() {
            // A merged id answers as the contact it merged into.
            let contact = send(http, addrs, key, "GET", &format!("/v1/contacts/{a}"), None).await;
            assert_eq!(
                contact["id"].as_str(),
                model.merged.get(a).map(String::as_str),
                "{phase}: {a}"
            );
        }
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(
    http: &HttpClient,
    addrs: &Arc<Mutex<Vec<String>>>,
    key: &str,
    models: &[Arc<Mutex<Model>>],
    acked: &Arc<AtomicU64>,
    events: &Arc<AtomicU64>,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let writing = Writing {
        http: http.clone(),
        addrs: addrs.clone(),
        key: key.to_string(),
        stop: stop.clone(),
        acked: acked.clone(),
        events: events.clone(),
    };
    let tasks = models
        .iter()
        .enumerate()
        .map(|(w, model)| tokio::spawn(writer(w, writing.clone(), model.clone())))
        .collect();
    Load { stop, tasks }
}

impl Load {
    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

async fn wait_for_leader(cluster: &Cluster, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(i) = cluster.leader() {
            return i;
        }
        assert!(Instant::now() < deadline, "no node leads after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_keeps_every_acknowledged_write_through_kills() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path());
    let first = wait_for_leader(&cluster, Duration::from_secs(30)).await;
    let key = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(key) = cluster.seen.lock().unwrap().key.clone() {
                break key;
            }
            assert!(Instant::now() < deadline, "no workspace key printed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let http = client();
    let addrs = Arc::new(Mutex::new(cluster.addrs()));
    let cookie = sign_in(&http, &cluster).await;
    assert_eq!(
        ui_status(&http, &addrs, &cookie).await,
        200,
        "the session works at once"
    );
    for (field, kind) in [("age", "number"), ("tier", "string")] {
        let body = json!({"type": kind});
        send(
            &http,
            &addrs,
            &key,
            "PUT",
            &format!("/v1/fields/{field}"),
            Some(&body),
        )
        .await;
    }
    let mut segments = Vec::new();
    for (name, condition) in SEGMENTS {
        let body = json!({"name": name, "condition": condition});
        let created = send(&http, &addrs, &key, "POST", "/v1/segments", Some(&body)).await;
        segments.push((
            name.to_string(),
            created["id"].as_str().unwrap().to_string(),
        ));
    }
    let body = json!({"name": "picked", "kind": "static"});
    let picked = send(&http, &addrs, &key, "POST", "/v1/segments", Some(&body)).await;
    let picked = picked["id"].as_str().unwrap().to_string();
    let body = json!({"name": "pick the older", "status": "active",
        "trigger": {"type": "segment_entered", "segment": segments[0].1},
        "actions": [{"type": "add_to_segment", "segment": picked}]});
    send(&http, &addrs, &key, "POST", "/v1/workflows", Some(&body)).await;
    segments.push(("picked".to_string(), picked));
    let models: Vec<Arc<Mutex<Model>>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let snapshot = |models: &[Arc<Mutex<Model>>]| -> Vec<Model> {
        models.iter().map(|m| m.lock().unwrap().clone()).collect()
    };
    // Every phase ends with the same checks against what the writers know.
    let check = async |phase: &str| {
        verify(phase, &http, &addrs, &key, &segments, &snapshot(&models)).await;
    };
    let acked = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));

    // Five kills of whichever node leads, mid-load.
    let mut failovers = Vec::new();
    let mut killed = BTreeSet::new();
    let mut leader = first;
    for round in 0..5 {
        let load = start_load(&http, &addrs, &key, &models, &acked, &events);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = acked.load(Ordering::SeqCst);
        let seen_before = change_logs(&http, &addrs, &key, &segments).await;
        cluster.kill(leader);
        killed.insert(cluster.nodes[leader].name.clone());
        let killed_at = Instant::now();
        *addrs.lock().unwrap() = cluster.addrs();
        leader = wait_for_leader(&cluster, Duration::from_secs(20)).await;
        // Exact once a write through a live node is acknowledged again: the
        // new leader answers only after replaying everything logged.
        let probe = json!({"properties": {"round": round}});
        send(
            &http,
            &addrs,
            &key,
            "PUT",
            "/v1/contacts/probe",
            Some(&probe),
        )
        .await;
        let failover = killed_at.elapsed();
        failovers.push(failover);
        let dead = (0..3).find(|i| cluster.nodes[*i].child.is_none()).unwrap();
        cluster.spawn(dead);
        *addrs.lock().unwrap() = cluster.addrs();
        tokio::time::sleep(Duration::from_millis(500)).await;
        load.finish().await;
        assert!(
            acked.load(Ordering::SeqCst) > before,
            "round {round}: no write after the kill"
        );
        check(&format!("after kill {round}")).await;
        // The replay made every change seen before the kill again, with
        // the same seq, instant and cause: none lost, none twice.
        let seen_after = change_logs(&http, &addrs, &key, &segments).await;
        for ((name, before), (_, after)) in seen_before.iter().zip(&seen_after) {
            assert!(
                after.len() >= before.len() && after[..before.len()] == before[..],
                "kill {round}: the change log of {name:?} changed under a takeover"
            );
        }
    }
    eprintln!(
        "failovers: {failovers:?}; nodes killed: {killed:?}; writes acknowledged: {}",
        acked.load(Ordering::SeqCst)
    );
    assert!(killed.len() >= 2, "the kills hit only {killed:?}");
    for (round, failover) in failovers.iter().enumerate() {
        assert!(
            *failover < Duration::from_secs(5),
            "kill {round}: exact again after {failover:?}"
        );
    }

    // A leader paused (SIGSTOP) past its lease, then resumed: another node
    // leads meanwhile, and what the paused one sends when it wakes is
    // fenced off; it steps down.
    let load = start_load(&http, &addrs, &key, &models, &acked, &events);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let paused = cluster.leader().unwrap();
    let pid = cluster.nodes[paused]
        .child
        .as_ref()
        .unwrap()
        .id()
        .to_string();
    let signal = |which: &str| {
        let status = Command::new("kill").args([which, &pid]).status().unwrap();
        assert!(status.success(), "kill {which} {pid}");
    };
    signal("-STOP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster.leader() == Some(paused) || cluster.leader().is_none() {
        assert!(
            Instant::now() < deadline,
            "nobody took the lead from a paused leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = acked.load(Ordering::SeqCst);
    let paused_addr = cluster.seen.lock().unwrap().addr[&cluster.nodes[paused].name].clone();
    // Through live nodes only: the paused one would hold the request until
    // it wakes.
    let live: Vec<String> = cluster
        .addrs()
        .into_iter()
        .filter(|a| *a != paused_addr)
        .collect();
    let live = Arc::new(Mutex::new(live));
    let fresh = json!({"properties": {"round": 101}});
    send(
        &http,
        &live,
        &key,
        "PUT",
        "/v1/contacts/probe",
        Some(&fresh),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    signal("-CONT");
    // Woken, it must not answer from its stale state, even a read.
    match call(&http, &paused_addr, &key, "GET", "/v1/contacts/probe", None).await {
        Ok((200, contact)) => assert_eq!(
            contact["properties"]["round"], 101,
            "a resumed leader answered a stale read"
        ),
        Ok((status, _)) => assert!(status == 503 || status == 421, "answered {status}"),
        Err(_) => {}
    }
    let paused_name = cluster.nodes[paused].name.clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cluster
        .seen
        .lock()
        .unwrap()
        .stepped_down
        .contains(&paused_name)
    {
        assert!(
            Instant::now() < deadline,
            "the resumed leader never stepped down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.finish().await;
    assert!(
        acked.load(Ordering::SeqCst) > before,
        "no write while the leader was paused"
    );
    check("after a paused leader resumed").await;

    // One NATS server lost: writes go on.
    let load = start_load(&http, &addrs, &key, &models, &acked, &events);
    cluster.nats.kill(0);
    let before = acked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.finish().await;
    let during = acked.load(Ordering::SeqCst) - before;
    assert!(during > 0, "no write acknowledged with a NATS server down");
    check("with a NATS server down").await;
    cluster.nats.restart(0);

    // Everything stops (SIGKILL) and starts again.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.nats.restart(i);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    *addrs.lock().unwrap() = cluster.addrs();
    wait_for_leader(&cluster, Duration::from_secs(30)).await;
    check("after a full restart").await;
    assert_eq!(
        ui_status(&http, &addrs, &cookie).await,
        200,
        "a web UI session started before the kills still works"
    );
}

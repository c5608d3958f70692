//! Durability of `sift serve` (docs/concepts.md "Guarantees" "Durability"): a stream of writes is
//! cut by SIGKILL, the server restarts on the same data directory, and every
//! acknowledged write must be there, with membership equal to a fresh
//! evaluation of those writes and to a replay of the change log. A SIGTERM
//! must stop the server cleanly (exit 0) even with a change stream open.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use support::{HttpClient, Server, call, client, ok};

const ADMIN_KEY: &str = "durability-admin-key";

/// What a client knows of one contact: its properties (None: absent) and
/// whether it was added to the static segment.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    properties: Option<BTreeMap<String, Json>>,
    picked: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Put(BTreeMap<String, Json>),
    Delete,
    Pick,
}

impl Model {
    fn apply(&self, op: &Op) -> Model {
        match op {
            Op::Put(properties) => {
                let mut merged = self.properties.clone().unwrap_or_default();
                for (k, v) in properties {
                    if v.is_null() {
                        merged.remove(k);
                    } else {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                Model {
                    properties: Some(merged),
                    picked: self.picked,
                }
            }
            Op::Delete => Model::default(),
            Op::Pick => Model {
                picked: self.properties.is_some(),
                ..self.clone()
            },
        }
    }

    fn gold(&self) -> bool {
        self.properties
            .as_ref()
            .is_some_and(|p| p.get("tier") == Some(&json!("gold")))
    }

    fn gold_high(&self) -> bool {
        self.gold()
            && self
                .properties
                .as_ref()
                .and_then(|p| p.get("score"))
                .and_then(Json::as_f64)
                .is_some_and(|s| s >= 50.0)
    }
}

/// Per contact: the state after its acknowledged operations, and the one
/// operation that was sent but not answered when the server died.
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, Model>,
    in_flight: BTreeMap<String, Op>,
    acked_ops: u64,
}

/// xorshift: a tiny deterministic generator per task.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

const TASKS: u64 = 8;
const CONTACTS_PER_TASK: u64 = 25;

/// One writer: operates only on its own contacts, one request at a time, so
/// at most one of its operations is unanswered when the server dies.
async fn writer(
    client: HttpClient,
    addr: String,
    key: String,
    picked: String,
    task: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut random = 0x9e37_79b9_7f4a_7c15 ^ (task + 1);
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let id = format!("t{task}-c{}", next_random(&mut random) % CONTACTS_PER_TASK);
        let exists = ledger
            .lock()
            .unwrap()
            .acked
            .get(&id)
            .is_some_and(|m| m.properties.is_some());
        let dice = next_random(&mut random) % 100;
        let op = if exists && dice < 8 {
            Op::Delete
        } else if exists && dice < 18 {
            Op::Pick
        } else {
            let version = versions.entry(id.clone()).or_default();
            *version += 1;
            let tier = match next_random(&mut random) % 3 {
                0 => json!("gold"),
                1 => json!("silver"),
                _ => Json::Null,
            };
            let score = json!(next_random(&mut random) % 100);
            Op::Put(BTreeMap::from([
                ("tier".to_string(), tier),
                ("score".to_string(), score),
                ("version".to_string(), json!(*version)),
            ]))
        };
        ledger
            .lock()
            .unwrap()
            .in_flight
            .insert(id.clone(), op.clone());
        let result = match &op {
            Op::Put(properties) => {
                let body = json!({"properties": properties});
                call(
                    &client,
                    &addr,
                    &key,
                    "PUT",
                    &format!("/v1/contacts/{id}"),
                    Some(&body),
                )
                .await
            }
            Op::Delete => {
                call(
                    &client,
                    &addr,
                    &key,
                    "DELETE",
                    &format!("/v1/contacts/{id}"),
                    None,
                )
                .await
            }
            Op::Pick => {
                let body = json!({"contact_ids": [id]});
                call(
                    &client,
                    &addr,
                    &key,
                    "POST",
                    &format!("/v1/segments/{picked}/contacts"),
                    Some(&body),
                )
                .await
            }
        };
        match result {
            Ok((status, _)) if (200..300).contains(&status) => {
                let mut ledger = ledger.lock().unwrap();
                ledger.in_flight.remove(&id);
                let after = ledger
                    .acked
                    .get(&id)
                    .cloned()
                    .unwrap_or_default()
                    .apply(&op);
                ledger.acked.insert(id, after);
                ledger.acked_ops += 1;
            }
            Ok((status, body)) => panic!("{op:?} on {id} answered {status} {body}"),
            // The server is gone: this operation stays in flight.
            Err(_) => return,
        }
    }
}

/// Every contact id of a paged list, following `next_cursor`.
async fn walk(client: &HttpClient, addr: &str, key: &str, base: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.to_string(),
        };
        let page = ok(client, addr, key, "GET", &path, None).await;
        for item in page["items"].as_array().unwrap() {
            assert!(
                ids.insert(item["id"].as_str().unwrap().to_string()),
                "{item} twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// A segment's whole change log.
async fn changes(client: &HttpClient, addr: &str, key: &str, segment: &str) -> Vec<Json> {
    let mut all = Vec::new();
    let mut path = format!("/v1/segments/{segment}/changes?limit=1000");
    loop {
        let page = ok(client, addr, key, "GET", &path, None).await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/v1/segments/{segment}/changes?limit=1000&after={next}"),
            None => return all,
        }
    }
}

/// Membership by replaying a change log.
fn replay(log: &[Json]) -> BTreeSet<String> {
    let mut members = BTreeSet::new();
    for change in log {
        let id = change["contact_id"].as_str().unwrap().to_string();
        match change["change"].as_str().unwrap() {
            "entered" => assert!(members.insert(id), "entered twice: {change}"),
            _ => assert!(members.remove(&id), "exited without entering: {change}"),
        }
    }
    members
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_and_membership_is_rebuilt_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let mut server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    let key = server
        .key
        .clone()
        .expect("the first start prints a workspace key");
    let addr = server.addr.clone();
    let client = client();

    ok(
        &client,
        &addr,
        &key,
        "PUT",
        "/v1/fields/tier",
        Some(json!({"type": "string"})),
    )
    .await;
    ok(
        &client,
        &addr,
        &key,
        "PUT",
        "/v1/fields/score",
        Some(json!({"type": "number"})),
    )
    .await;
    let create = |name: &str, condition: Option<&str>| match condition {
        Some(c) => json!({"name": name, "kind": "dynamic", "condition": c}),
        None => json!({"name": name, "kind": "static"}),
    };
    let gold = ok(
        &client,
        &addr,
        &key,
        "POST",
        "/v1/segments",
        Some(create("Gold", Some("tier = \"gold\""))),
    )
    .await;
    let gold_high = ok(
        &client,
        &addr,
        &key,
        "POST",
        "/v1/segments",
        Some(create(
            "Gold high",
            Some("in segment \"Gold\" and score >= 50"),
        )),
    )
    .await;
    let picked = ok(
        &client,
        &addr,
        &key,
        "POST",
        "/v1/segments",
        Some(create("Picked", None)),
    )
    .await;
    let [gold, gold_high, picked] =
        [gold, gold_high, picked].map(|s| s["id"].as_str().unwrap().to_string());

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(writer(
                client.clone(),
                addr.clone(),
                key.clone(),
                picked.clone(),
                task,
                ledger.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    while ledger.lock().unwrap().acked_ops < 3000 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(
        ledger.acked_ops >= 100,
        "only {} writes were acknowledged",
        ledger.acked_ops
    );
    assert!(
        !ledger.in_flight.is_empty(),
        "the kill should cut writes in flight"
    );

    let mut server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    assert!(server.key.is_none(), "a restart creates no new workspace");
    let addr = server.addr.clone();
    let client = self::client();

    // Each contact holds its acknowledged state, or that plus the one
    // operation that was in flight (which the server may have made durable).
    let mut ids: BTreeSet<String> = ledger.acked.keys().cloned().collect();
    ids.extend(ledger.in_flight.keys().cloned());
    let mut observed: BTreeMap<String, Model> = BTreeMap::new();
    let mut in_flight_applied = 0;
    for id in &ids {
        let acked = ledger.acked.get(id).cloned().unwrap_or_default();
        let (status, contact) = call(
            &client,
            &addr,
            &key,
            "GET",
            &format!("/v1/contacts/{id}"),
            None,
        )
        .await
        .unwrap();
        let properties = match status {
            200 => Some(
                contact["properties"]
                    .as_object()
                    .unwrap()
                    .clone()
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
            ),
            404 => None,
            _ => panic!("GET {id}: {status} {contact}"),
        };
        let segments: BTreeSet<String> = contact["segments"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|s| s["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let candidates: Vec<Model> = std::iter::once(acked.clone())
            .chain(ledger.in_flight.get(id).map(|op| acked.apply(op)))
            .collect();
        let model = candidates
            .iter()
            .find(|m| {
                m.properties == properties
                    && (m.properties.is_none() || m.picked == segments.contains(&picked))
            })
            .unwrap_or_else(|| {
                panic!("{id} is {status} {contact:#}, expected one of {candidates:#?}")
            })
            .clone();
        if model != acked {
            in_flight_applied += 1;
        }
        if model.properties.is_some() {
            assert_eq!(segments.contains(&gold), model.gold(), "{id}: {contact:#}");
            assert_eq!(
                segments.contains(&gold_high),
                model.gold_high(),
                "{id}: {contact:#}"
            );
        }
        observed.insert(id.clone(), model);
    }
    eprintln!(
        "{} acknowledged operations on {} contacts; {} in flight at the kill, {} of them made durable",
        ledger.acked_ops,
        ids.len(),
        ledger.in_flight.len(),
        in_flight_applied
    );

    // Segments: size, members (paged) and change log agree with a fresh evaluation.
    let alive: BTreeSet<String> = observed
        .iter()
        .filter(|(_, m)| m.properties.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        walk(&client, &addr, &key, "/v1/contacts?limit=37").await,
        alive
    );
    let mut seqs = BTreeSet::new();
    for (segment, holds) in [
        (&gold, Model::gold as fn(&Model) -> bool),
        (&gold_high, Model::gold_high),
        (&picked, |m: &Model| m.picked),
    ] {
        let expected: BTreeSet<String> = observed
            .iter()
            .filter(|(_, m)| holds(m))
            .map(|(id, _)| id.clone())
            .collect();
        let read = ok(
            &client,
            &addr,
            &key,
            "GET",
            &format!("/v1/segments/{segment}"),
            None,
        )
        .await;
        assert_eq!(read["size"], expected.len(), "size of {}", read["name"]);
        let members = walk(
            &client,
            &addr,
            &key,
            &format!("/v1/segments/{segment}/contacts?limit=23"),
        )
        .await;
        assert_eq!(members, expected, "members of {}", read["name"]);
        let log = changes(&client, &addr, &key, segment).await;
        assert_eq!(
            replay(&log),
            expected,
            "the change log of {} replays to its members",
            read["name"]
        );
        for change in &log {
            assert!(
                seqs.insert(change["seq"].as_u64().unwrap()),
                "seq used twice: {change}"
            );
        }
    }
    let last = *seqs.last().unwrap();
    assert_eq!(
        seqs.len() as u64,
        last - seqs.first().unwrap() + 1,
        "the change log has gaps"
    );

    // The restarted server takes writes, and its seqs continue the log.
    let body = json!({"properties": {"tier": "gold", "score": 99}});
    ok(
        &client,
        &addr,
        &key,
        "PUT",
        "/v1/contacts/after-restart",
        Some(body),
    )
    .await;
    let log = changes(&client, &addr, &key, &gold).await;
    let change = log.last().unwrap();
    assert_eq!(change["contact_id"], "after-restart");
    assert_eq!(change["seq"].as_u64(), Some(last + 1));
    server.kill();
}

/// Sends SIGTERM and waits for the exit status.
fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sift serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly_with_a_change_stream_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let mut server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    let key = server.key.clone().unwrap();
    let addr = server.addr.clone();
    let client = client();
    let spain = ok(
        &client,
        &addr,
        &key,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Spain", "condition": "country = \"ES\""})),
    )
    .await;
    let spain = spain["id"].as_str().unwrap().to_string();
    for i in 0..20 {
        let body = json!({"properties": {"country": if i % 2 == 0 { "ES" } else { "FR" }}});
        ok(
            &client,
            &addr,
            &key,
            "PUT",
            &format!("/v1/contacts/c{i}"),
            Some(body),
        )
        .await;
    }

    // A client following the change stream must not keep the server up.
    let request = hyper::Request::get(format!("http://{addr}/v1/changes/stream"))
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut stream = client.request(request).await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.body_mut().frame()).await;
    assert!(first.is_ok_and(|f| f.is_some()), "the stream sent nothing");

    let status = tokio::task::spawn_blocking(move || {
        let status = terminate(&mut server);
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    assert!(
        status.success(),
        "SIGTERM exit status: {status}; stderr:\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let printed: Vec<String> = server.lines.try_iter().collect();
    assert!(
        printed.iter().any(|l| l.contains("Sift stopped")),
        "{printed:?}"
    );
    drop(stream);
    drop(server);

    let mut server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    let addr = server.addr.clone();
    let client = self::client();
    let read = ok(
        &client,
        &addr,
        &key,
        "GET",
        &format!("/v1/segments/{spain}"),
        None,
    )
    .await;
    assert_eq!(read["size"], 10);
    for i in 0..20 {
        let contact = ok(
            &client,
            &addr,
            &key,
            "GET",
            &format!("/v1/contacts/c{i}"),
            None,
        )
        .await;
        assert_eq!(
            contact["properties"]["country"],
            if i % 2 == 0 { "ES" } else { "FR" }
        );
    }
    let status = tokio::task::spawn_blocking(move || terminate(&mut server))
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

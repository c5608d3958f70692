//! Workflows across SIGKILL: "when a contact enters VIP, add it to Gifted
//! and add 10 points" while writers move contacts in and out of VIP; the
//! server is killed mid-burst (triggers queued, runs in flight), twice, and
//! after the last restart every entry into VIP in the change log has run
//! exactly once: Gifted holds exactly the contacts that ever entered, each
//! score is ten points per entry, and no trigger seq has two runs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use support::{HttpClient, Server, call, client};

const CONTACTS: u64 = 60;

async fn ok(
    client: &HttpClient,
    server: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> Json {
    let (status, json) = call(client, &server.addr, key, method, path, body.as_ref())
        .await
        .unwrap();
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {json:#}"
    );
    json
}

/// Writes until the server stops answering: batches of contacts with
/// orders moving across VIP's threshold, and purchases.
async fn writer(client: HttpClient, addr: String, key: String, task: u64) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (task + 1);
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let body = if state.is_multiple_of(3) {
            let n = state % CONTACTS;
            json!({"contact_id": format!("c{n}"), "type": "purchase"})
        } else {
            let contacts: Vec<Json> = (0..8)
                .map(|k| {
                    let n = (state >> (k * 6)) % CONTACTS;
                    json!({"id": format!("c{n}"), "properties": {"orders": (state >> (k * 3)) % 9}})
                })
                .collect();
            json!({"contacts": contacts})
        };
        let path = if body.get("contacts").is_some() {
            "/v1/contacts:batch"
        } else {
            "/v1/events"
        };
        if call(&client, &addr, &key, "POST", path, Some(&body))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn burst_then_kill(server: Server, key: &str, millis: u64) {
    let mut tasks = Vec::new();
    for task in 0..4 {
        tasks.push(tokio::spawn(writer(
            client(),
            server.addr.clone(),
            key.to_string(),
            task,
        )));
    }
    tokio::time::sleep(Duration::from_millis(millis)).await;
    drop(server);
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workflow_runs_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let client = client();
    let server = Server::start(&data, &stderr, &[]);
    let key = server.key.clone().expect("the first start prints the key");
    ok(
        &client,
        &server,
        &key,
        "PUT",
        "/v1/fields/orders",
        Some(json!({"type": "number"})),
    )
    .await;
    let vip = ok(&client, &server, &key, "POST", "/v1/segments",
        Some(json!({"name": "VIP", "kind": "dynamic", "condition": "orders >= 5 or performed purchase at least 4 times"}))).await;
    let vip = vip["id"].as_str().unwrap().to_string();
    let gifted = ok(
        &client,
        &server,
        &key,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Gifted", "kind": "static"})),
    )
    .await;
    let gifted = gifted["id"].as_str().unwrap().to_string();
    let wf = ok(&client, &server, &key, "POST", "/v1/workflows", Some(json!({
        "name": "Gift new VIPs", "status": "active",
        "trigger": {"type": "segment_entered", "segment": vip},
        "actions": [{"type": "add_to_segment", "segment": gifted}, {"type": "add_score", "points": 10}]
    }))).await;
    let wf = wf["id"].as_str().unwrap().to_string();

    burst_then_kill(server, &key, 1_500).await;
    let server = Server::start(&data, &stderr, &[]);
    burst_then_kill(server, &key, 1_000).await;
    let server = Server::start(&data, &stderr, &[]);

    // The restarted runner catches up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let workflow = ok(
            &client,
            &server,
            &key,
            "GET",
            &format!("/v1/workflows/{wf}"),
            None,
        )
        .await;
        if workflow["queued"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the runner never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // VIP's entries, from the change log.
    let mut entries: Vec<(u64, String)> = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(seq) => format!("/v1/segments/{vip}/changes?after={seq}&limit=1000"),
            None => format!("/v1/segments/{vip}/changes?limit=1000"),
        };
        let page = ok(&client, &server, &key, "GET", &path, None).await;
        for change in page["items"].as_array().unwrap() {
            if change["change"] == "entered" {
                entries.push((
                    change["seq"].as_u64().unwrap(),
                    change["contact_id"].as_str().unwrap().to_string(),
                ));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => after = Some(next.parse().unwrap()),
            None => break,
        }
    }
    assert!(entries.len() > 50, "only {} entries", entries.len());
    // The runs, one per entry.
    let mut runs: Vec<u64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/workflows/{wf}/runs?limit=1000");
        if let Some(c) = &cursor {
            path += &format!("&cursor={c}");
        }
        let page = ok(&client, &server, &key, "GET", &path, None).await;
        for run in page["items"].as_array().unwrap() {
            assert_eq!(run["status"], "done", "{run:#}");
            runs.push(run["trigger"]["seq"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let distinct: BTreeSet<u64> = runs.iter().copied().collect();
    assert_eq!(distinct.len(), runs.len(), "a trigger ran twice");
    let expected: BTreeSet<u64> = entries.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(distinct, expected, "runs differ from VIP's entries");
    let mut per_contact: BTreeMap<String, u64> = BTreeMap::new();
    for (_, id) in &entries {
        *per_contact.entry(id.clone()).or_default() += 1;
    }
    let page = ok(
        &client,
        &server,
        &key,
        "GET",
        &format!("/v1/segments/{gifted}/contacts?limit=1000"),
        None,
    )
    .await;
    let members: BTreeSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        members,
        per_contact.keys().cloned().collect::<BTreeSet<_>>()
    );
    for (id, n) in &per_contact {
        let contact = ok(
            &client,
            &server,
            &key,
            "GET",
            &format!("/v1/contacts/{id}"),
            None,
        )
        .await;
        assert_eq!(contact["lead_score"], json!(10 * n), "{id}");
    }
}

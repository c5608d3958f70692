//! Checkpoints of a real `sift serve` (docs/storage.md "Checkpoints"): a
//! server killed with SIGKILL while it writes one leaves only a draft, which
//! the next start ignores (it rebuilds, with exact membership); a server
//! stopped with SIGTERM writes one, and the next start loads it and
//! catches up, again with exact membership.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{HttpClient, Server, client, ok};

/// The segments the test keeps, by name: a field condition, a windowed
/// event condition and one referring to another segment.
const SEGMENTS: [(&str, &str); 3] = [
    ("Gold", "tier = \"gold\""),
    (
        "Buyers",
        "performed purchase at least 2 times in last 30 days",
    ),
    (
        "Gold buyers",
        "in segment \"Buyers\" and in segment \"Gold\"",
    ),
];

/// Writes `n` rounds of one contact upsert and one event each.
async fn writes(client: &HttpClient, addr: &str, key: &str, from: u64, n: u64) {
    for i in from..from + n {
        let id = format!("c{}", i % 40);
        let tier = if i % 3 == 0 { "gold" } else { "silver" };
        ok(
            client,
            addr,
            key,
            "PUT",
            &format!("/v1/contacts/{id}"),
            Some(json!({"properties": {"tier": tier}})),
        )
        .await;
        ok(
            client,
            addr,
            key,
            "POST",
            "/v1/events",
            Some(json!({"contact_id": id, "type": "purchase", "properties": {"amount": i}})),
        )
        .await;
    }
}

/// Every kept segment's size, after checking that its members equal a
/// fresh evaluation of its condition (a preview against it enters and
/// leaves no one).
async fn exact_sizes(client: &HttpClient, addr: &str, key: &str) -> BTreeMap<String, u64> {
    let page = ok(client, addr, key, "GET", "/v1/segments?limit=100", None).await;
    let mut sizes = BTreeMap::new();
    for segment in page["items"].as_array().unwrap() {
        let name = segment["name"].as_str().unwrap().to_string();
        let Some((_, condition)) = SEGMENTS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let preview = ok(
            client,
            addr,
            key,
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": condition, "segment_id": segment["id"], "sample": 0})),
        )
        .await;
        assert_eq!(preview["entering"], json!(0), "{name}: {preview}");
        assert_eq!(preview["leaving"], json!(0), "{name}: {preview}");
        sizes.insert(name, segment["size"].as_u64().unwrap());
    }
    assert_eq!(sizes.len(), SEGMENTS.len());
    sizes
}

/// Files of the data directory whose names contain `part`.
fn files(data: &Path, part: &str) -> Vec<String> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(part))
        .collect()
}

fn sigterm(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_cut_by_sigkill_is_ignored_and_one_written_at_sigterm_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("first.log");
    // A checkpoint every 20 writes, each pausing a minute with its draft
    // written: the kill below lands inside the first one.
    let mut server = Server::start_with_env(
        &data,
        &stderr,
        &["--checkpoint-every", "20"],
        &[("SIFT_TEST_CHECKPOINT_PAUSE_MS", "60000")],
    );
    let key = server.key.clone().unwrap();
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
    for (name, condition) in SEGMENTS {
        ok(
            &client,
            &addr,
            &key,
            "POST",
            "/v1/segments",
            Some(json!({"name": name, "condition": condition})),
        )
        .await;
    }
    writes(&client, &addr, &key, 0, 30).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while files(&data, ".draft").is_empty() {
        assert!(Instant::now() < deadline, "no checkpoint draft appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = exact_sizes(&client, &addr, &key).await;
    server.kill();
    assert!(
        files(&data, ".checkpoint.")
            .iter()
            .all(|f| f.starts_with('.'))
    );

    // The draft is no checkpoint: a full rebuild, exact.
    let stderr = dir.path().join("second.log");
    let mut server = Server::start(&data, &stderr, &["--checkpoint-every", "0"]);
    let addr = server.addr.clone();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("checkpoint=none (full rebuild)"), "{log}");
    assert_eq!(exact_sizes(&client, &addr, &key).await, before);
    writes(&client, &addr, &key, 30, 10).await;
    let after_writes = exact_sizes(&client, &addr, &key).await;
    sigterm(&mut server);
    let written: Vec<String> = files(&data, ".checkpoint.")
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");

    // The next start loads it (the log and /metrics say so).
    let stderr = dir.path().join("third.log");
    let server = Server::start(&data, &stderr, &["--checkpoint-every", "5"]);
    let addr = server.addr.clone();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        log.contains(&format!("checkpoint={}", data.join(&written[0]).display())),
        "{log}"
    );
    assert_eq!(exact_sizes(&client, &addr, &key).await, after_writes);
    assert!(log.contains("reloaded_contacts=0"), "{log}");
    assert!(
        metrics(&client, &addr)
            .await
            .contains("sift_start_from_checkpoint 1")
    );
    // It takes writes, checkpoints them every 5 and stays exact.
    writes(&client, &addr, &key, 40, 5).await;
    exact_sizes(&client, &addr, &key).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(&client, &addr).await;
        if text.contains("sift_checkpoints_total") {
            for name in [
                "sift_checkpoint_seconds",
                "sift_checkpoint_stall_seconds",
                "sift_checkpoint_bytes",
                "sift_checkpoint_write_number",
            ] {
                assert!(text.contains(name), "{name} missing from\n{text}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no periodic checkpoint:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's `/metrics` text.
async fn metrics(client: &HttpClient, addr: &str) -> String {
    let request = hyper::Request::builder()
        .uri(format!("http://{addr}/metrics"))
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `sift` with `args`; it must succeed.
fn sift(args: &[&std::ffi::OsStr]) {
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(args)
        .env_remove("SIFT_DATA")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_carries_the_checkpoint_and_a_start_on_its_restore_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &dir.path().join("first.log"), &[]);
    let key = server.key.clone().unwrap();
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
    for (name, condition) in SEGMENTS {
        ok(
            &client,
            &addr,
            &key,
            "POST",
            "/v1/segments",
            Some(json!({"name": name, "condition": condition})),
        )
        .await;
    }
    writes(&client, &addr, &key, 0, 20).await;
    sigterm(&mut server);

    // Served again, with writes after the checkpoint, while it is copied.
    let mut server = Server::start(&data, &dir.path().join("second.log"), &[]);
    let addr = server.addr.clone();
    writes(&client, &addr, &key, 20, 7).await;
    let sizes = exact_sizes(&client, &addr, &key).await;
    let backup = dir.path().join("backup");
    let restored = dir.path().join("restored");
    sift(&[
        "backup".as_ref(),
        backup.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    server.kill();
    let copied: Vec<String> = files(&backup, ".checkpoint.");
    assert_eq!(copied.len(), 1, "{copied:?}");
    sift(&[
        "restore".as_ref(),
        backup.as_os_str(),
        "--data".as_ref(),
        restored.as_os_str(),
    ]);

    let stderr = dir.path().join("restored.log");
    let server = Server::start(&restored, &stderr, &[]);
    let addr = server.addr.clone();
    let log = std::fs::read_to_string(&stderr).unwrap();
    let used = format!("checkpoint={}", restored.join(&copied[0]).display());
    assert!(log.contains(&used), "{log}");
    assert!(!log.contains("reloaded_contacts=0 "), "{log}");
    assert_eq!(exact_sizes(&client, &addr, &key).await, sizes);
}

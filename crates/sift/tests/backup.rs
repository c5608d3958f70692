//! `sift backup` and `sift restore` run as an operator would, against a
//! `sift serve` that keeps serving in another process: a restored directory
//! serves the same workspaces, keys, contacts, segments, members, change
//! logs, scoring rules, webhooks and workflows; a backup taken under a
//! steady stream of writes holds a prefix of what was acknowledged; and
//! bad targets and damaged backups are refused before anything is written.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value as Json, json};
use support::{HttpClient, Server, call, client, ok};

const ADMIN_KEY: &str = "backup-admin-key";

fn sift(args: &[&str], data: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sift"));
    command
        .args(args)
        .env_remove("SIFT_ADMIN_KEY")
        .env_remove("SIFT_DATA")
        .env("SIFT_LOG", "warn");
    if let Some(data) = data {
        command.arg("--data").arg(data);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts a command exited with `code` and said `needle`.
fn said(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(text(out).contains(needle), "{}", text(out));
}

fn backup(dest: &Path, data: &Path) -> Output {
    sift(&["backup", dest.to_str().unwrap()], Some(data))
}

fn restore(src: &Path, data: &Path) -> Output {
    sift(&["restore", src.to_str().unwrap()], Some(data))
}

/// Every item of a paged list, following `next_cursor`.
async fn all(client: &HttpClient, addr: &str, key: &str, base: &str) -> Vec<Json> {
    let mut items = Vec::new();
    let mut path = base.to_string();
    let sep = if base.contains('?') { '&' } else { '?' };
    loop {
        let page = ok(client, addr, key, "GET", &path, None).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match &page["next_cursor"] {
            Json::Null => return items,
            next => {
                let next = next
                    .as_str()
                    .map_or_else(|| next.to_string(), str::to_string);
                let param = if base.contains("/changes") {
                    "after"
                } else {
                    "cursor"
                };
                path = format!("{base}{sep}{param}={next}");
            }
        }
    }
}

/// A segment's whole change log.
async fn changes(client: &HttpClient, addr: &str, key: &str, segment: &str) -> Vec<Json> {
    all(
        client,
        addr,
        key,
        &format!("/v1/segments/{segment}/changes?limit=1000"),
    )
    .await
}

/// What a client can read of one workspace.
async fn workspace_state(client: &HttpClient, addr: &str, key: &str) -> Json {
    let segments = all(client, addr, key, "/v1/segments").await;
    let mut members = BTreeMap::new();
    let mut logs = BTreeMap::new();
    for segment in &segments {
        let id = segment["id"].as_str().unwrap();
        let path = format!("/v1/segments/{id}/contacts?limit=1000");
        let ids: Vec<Json> = all(client, addr, key, &path)
            .await
            .into_iter()
            .map(|c| c["id"].clone())
            .collect();
        members.insert(id.to_string(), ids);
        logs.insert(id.to_string(), changes(client, addr, key, id).await);
    }
    json!({
        "fields": all(client, addr, key, "/v1/fields").await,
        "contacts": all(client, addr, key, "/v1/contacts?limit=1000").await,
        "segments": segments,
        "members": members,
        "changes": logs,
        "scoring_rules": all(client, addr, key, "/v1/scoring-rules").await,
        "webhooks": all(client, addr, key, "/v1/webhooks").await,
        "workflows": all(client, addr, key, "/v1/workflows").await,
    })
}

/// Re-saving every dynamic segment's condition re-evaluates it over every
/// contact: nobody enters or leaves when the restored membership is what a
/// from-scratch evaluation gives.
async fn assert_membership_exact(client: &HttpClient, addr: &str, key: &str) {
    for segment in all(client, addr, key, "/v1/segments").await {
        let Some(condition) = segment["condition"].as_str() else {
            continue;
        };
        let id = segment["id"].as_str().unwrap();
        let answer = ok(
            client,
            addr,
            key,
            "PATCH",
            &format!("/v1/segments/{id}"),
            Some(json!({"condition": condition})),
        )
        .await;
        assert_eq!(
            (
                &answer["evaluation"]["entered"],
                &answer["evaluation"]["exited"]
            ),
            (&json!(0), &json!(0)),
            "{id}: {answer}"
        );
    }
}

async fn new_workspace(client: &HttpClient, addr: &str, name: &str) -> (String, String) {
    let made = ok(
        client,
        addr,
        ADMIN_KEY,
        "POST",
        "/v1/workspaces",
        Some(json!({"name": name})),
    )
    .await;
    (
        made["id"].as_str().unwrap().to_string(),
        made["key"].as_str().unwrap().to_string(),
    )
}

async fn segment(client: &HttpClient, addr: &str, key: &str, body: Json) -> String {
    let made = ok(client, addr, key, "POST", "/v1/segments", Some(body)).await;
    made["id"].as_str().unwrap().to_string()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_served_directory_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &dir.path().join("a.log"),
        &["--admin-key", ADMIN_KEY],
    );
    let (addr, key) = (server.addr.clone(), server.key.clone().unwrap());
    let http = client();
    let (second_id, second_key) = new_workspace(&http, &addr, "Second shop").await;
    let extra_key = ok(
        &http,
        &addr,
        ADMIN_KEY,
        "POST",
        &format!("/v1/workspaces/{second_id}/keys"),
        None,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();

    for key in [&key, &second_key] {
        let contacts: Vec<Json> = (0..300)
            .map(|n| {
                json!({"id": format!("c{n}"), "properties": {
                    "tier": if n % 3 == 0 { "gold" } else { "silver" }, "score": n % 97,
                }})
            })
            .collect();
        ok(
            &http,
            &addr,
            key,
            "POST",
            "/v1/contacts:batch",
            Some(json!({"contacts": contacts})),
        )
        .await;
        let gold = segment(
            &http,
            &addr,
            key,
            json!({"name": "Gold", "kind": "dynamic", "condition": "tier = \"gold\""}),
        )
        .await;
        segment(
            &http,
            &addr,
            key,
            json!({"name": "Buyers", "kind": "dynamic",
                   "condition": "performed purchase at least 2 times in last 30 days"}),
        )
        .await;
        let picked = segment(
            &http,
            &addr,
            key,
            json!({"name": "Picked", "kind": "static"}),
        )
        .await;
        ok(
            &http,
            &addr,
            key,
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "points": 10, "expires_after": "30d"})),
        )
        .await;
        let events: Vec<Json> = (0..200)
            .map(|n| json!({"contact_id": format!("c{}", n % 70), "type": "purchase"}))
            .collect();
        ok(
            &http,
            &addr,
            key,
            "POST",
            "/v1/events",
            Some(json!({"events": events})),
        )
        .await;
        ok(
            &http,
            &addr,
            key,
            "POST",
            &format!("/v1/segments/{picked}/contacts"),
            Some(json!({"contact_ids": ["c1", "c2", "c5"]})),
        )
        .await;
        // Changes after the segments exist, so the change logs hold exits too.
        for n in (0..60).step_by(3) {
            ok(
                &http,
                &addr,
                key,
                "PUT",
                &format!("/v1/contacts/c{n}"),
                Some(json!({"properties": {"tier": "silver"}})),
            )
            .await;
        }
        ok(&http, &addr, key, "DELETE", "/v1/contacts/c4", None).await;
        ok(
            &http,
            &addr,
            key,
            "POST",
            "/v1/webhooks",
            Some(
                json!({"url": "https://example.com/hooks/sift", "secret": "whsec_backup",
                        "segments": [gold], "enabled": false}),
            ),
        )
        .await;
        ok(
            &http,
            &addr,
            key,
            "POST",
            "/v1/workflows",
            Some(
                json!({"name": "Gift gold", "trigger": {"type": "segment_entered", "segment": gold},
                        "actions": [{"type": "add_to_segment", "segment": picked}]}),
            ),
        )
        .await;
    }
    // As the server writes it when a Facebook sync first needs it.
    let key_file = data.join("secret.key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let before = [
        workspace_state(&http, &addr, &key).await,
        workspace_state(&http, &addr, &second_key).await,
    ];
    let workspaces = ok(&http, &addr, ADMIN_KEY, "GET", "/v1/workspaces", None).await;

    let copy = dir.path().join("backup");
    let out = backup(&copy, &data);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Backed up 4 files"), "{}", text(&out));
    assert!(!dir.path().join("backup.partial").exists());
    // The server went on serving while it was copied.
    ok(&http, &addr, &key, "GET", "/v1/segments", None).await;

    let restored = dir.path().join("restored");
    let out = restore(&copy, &restored);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Restored 2 workspaces"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(&second_id), "{}", text(&out));
    #[cfg(unix)]
    {
        assert_eq!(mode(&copy.join("secret.key")), 0o600);
        assert_eq!(mode(&restored.join("secret.key")), 0o600);
    }
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        std::fs::read(restored.join("secret.key")).unwrap()
    );
    drop(server);

    let server = Server::start(
        &restored,
        &dir.path().join("b.log"),
        &["--admin-key", ADMIN_KEY],
    );
    assert!(
        server.key.is_none(),
        "a restored directory is not a fresh one"
    );
    let addr = server.addr.clone();
    assert_eq!(
        ok(&http, &addr, ADMIN_KEY, "GET", "/v1/workspaces", None).await,
        workspaces
    );
    let after = [
        workspace_state(&http, &addr, &key).await,
        workspace_state(&http, &addr, &extra_key).await,
    ];
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    assert_eq!(
        call(&http, &addr, "sk_not_a_key", "GET", "/v1/segments", None)
            .await
            .unwrap()
            .0,
        401
    );
    assert_membership_exact(&http, &addr, &key).await;
    assert_membership_exact(&http, &addr, &second_key).await;
}

/// One writer per workspace: upserts w0, w1, ... one at a time, counting
/// what was acknowledged, until told to stop.
async fn writer(
    http: HttpClient,
    addr: String,
    key: String,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let tier = if n.is_multiple_of(2) {
            "gold"
        } else {
            "silver"
        };
        ok(
            &http,
            &addr,
            &key,
            "PUT",
            &format!("/v1/contacts/w{n}"),
            Some(json!({"properties": {"tier": tier, "n": n}})),
        )
        .await;
        n += 1;
        acked.store(n, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_holds_a_prefix_of_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &dir.path().join("a.log"),
        &["--admin-key", ADMIN_KEY],
    );
    let addr = server.addr.clone();
    let http = client();
    let (_, second_key) = new_workspace(&http, &addr, "Second shop").await;
    let keys = [server.key.clone().unwrap(), second_key];
    let mut golds = Vec::new();
    for key in &keys {
        // Some bulk, so the copy takes a while as writes go on.
        for batch in 0..2 {
            let contacts: Vec<Json> = (0..10_000)
                .map(
                    |n| json!({"id": format!("bulk{batch}-{n}"), "properties": {"tier": "silver"}}),
                )
                .collect();
            ok(
                &http,
                &addr,
                key,
                "POST",
                "/v1/contacts:batch",
                Some(json!({"contacts": contacts})),
            )
            .await;
        }
        golds.push(
            segment(
                &http,
                &addr,
                key,
                json!({"name": "Gold", "kind": "dynamic", "condition": "tier = \"gold\""}),
            )
            .await,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Vec<Arc<AtomicU64>> = keys.iter().map(|_| Arc::default()).collect();
    let tasks: Vec<_> = keys
        .iter()
        .zip(&acked)
        .map(|(key, acked)| {
            tokio::spawn(writer(
                http.clone(),
                addr.clone(),
                key.clone(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect();
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 20) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let at_start: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let copy = dir.path().join("backup");
    let (copy_arg, data_arg) = (copy.clone(), data.clone());
    let out = tokio::task::spawn_blocking(move || backup(&copy_arg, &data_arg))
        .await
        .unwrap();
    let at_end: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        at_start.iter().zip(&at_end).all(|(s, e)| e > s),
        "no write was acknowledged while the backup ran: {at_start:?} {at_end:?}"
    );
    let finals: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let mut source_logs = Vec::new();
    for (key, gold) in keys.iter().zip(&golds) {
        source_logs.push(changes(&http, &addr, key, gold).await);
    }
    drop(server);

    let restored = dir.path().join("restored");
    let out = restore(&copy, &restored);
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(&restored, &dir.path().join("b.log"), &[]);
    let addr = server.addr.clone();
    for (i, key) in keys.iter().enumerate() {
        let contacts = all(&http, &addr, key, "/v1/contacts?limit=1000").await;
        let written: Vec<&Json> = contacts
            .iter()
            .filter(|c| c["id"].as_str().unwrap().starts_with('w'))
            .collect();
        let kept = written.len() as u64;
        // Every write acknowledged before the backup started is there; a
        // write is never there without the ones before it, nor one that
        // was never acknowledged.
        assert!(
            at_start[i] <= kept && kept <= finals[i],
            "workspace {i}: {kept} restored, {} acknowledged before, {} in all",
            at_start[i],
            finals[i]
        );
        for (n, contact) in written.iter().enumerate() {
            assert_eq!(contact["id"], json!(format!("w{n}")));
            assert_eq!(contact["properties"]["n"], json!(n));
        }
        assert_eq!(contacts.len() as u64, 20_000 + kept);
        let log = changes(&http, &addr, key, &golds[i]).await;
        assert_eq!(log.len() as u64, kept.div_ceil(2), "workspace {i}");
        assert_eq!(log[..], source_logs[i][..log.len()], "workspace {i}");
        assert_membership_exact(&http, &addr, key).await;
        // And it takes writes.
        ok(
            &http,
            &addr,
            key,
            "PUT",
            "/v1/contacts/after-restore",
            Some(json!({"properties": {"tier": "gold"}})),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_and_damaged_backups_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &dir.path().join("a.log"), &[]);
    let (addr, key) = (server.addr.clone(), server.key.clone().unwrap());
    let http = client();
    ok(
        &http,
        &addr,
        &key,
        "PUT",
        "/v1/contacts/c1",
        Some(json!({"properties": {"tier": "gold"}})),
    )
    .await;

    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("notes.txt"), "mine").unwrap();
    let out = backup(&occupied, &data);
    said(
        &out,
        1,
        &format!("{} exists and is not empty", occupied.display()),
    );
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1);
    assert!(!dir.path().join("occupied.partial").exists());

    let out = backup(&data.join("copy"), &data);
    said(&out, 1, "is inside the data directory");
    assert!(!data.join("copy").exists());

    let out = backup(&dir.path().join("b"), &dir.path().join("nowhere"));
    said(&out, 1, "not a Sift data directory");

    // An empty directory is a fine target for both.
    let copy = dir.path().join("backup");
    std::fs::create_dir(&copy).unwrap();
    let out = backup(&copy, &data);
    assert!(out.status.success(), "{}", text(&out));
    drop(server);

    let out = restore(&copy, &occupied);
    said(&out, 1, "is not empty");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1);

    let workspace_db = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db") && !p.ends_with("catalog.db"))
        .unwrap();
    let mut bytes = std::fs::read(&workspace_db).unwrap();
    bytes[..100].fill(0x5a);
    std::fs::write(&workspace_db, bytes).unwrap();
    let target = dir.path().join("target");
    let out = restore(&copy, &target);
    said(
        &out,
        1,
        &format!("{} failed its integrity check", workspace_db.display()),
    );
    assert!(!target.exists());
    assert!(!dir.path().join("target.partial").exists());
}

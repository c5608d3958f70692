//! A Facebook sync across restarts: membership changed while the server was
//! down is applied exactly (the rows of contacts that left removed, those
//! of contacts that entered added) against the fake Graph API; the token is
//! sealed under a key file with mode 0600; a missing or wrong key fails the
//! job with a message and sends nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::Server;
use crate::facebook::rows_by_extern_id;
use crate::facebook_fake::{Call, FakeGraph, sha256, start_sync, wait_calls, wait_job};

/// A server whose sync waits a long time after a change before sending, so
/// that changes made just before a restart are only seen after it.
fn slow_sync_server() -> Server {
    Server::with(|config| {
        config.facebook.retry_base_ms = 5;
        config.facebook.retry_max_ms = 50;
        config.facebook.debounce_ms = 60_000;
    })
}

fn fast_sync(config: &mut sift_server::Config) {
    config.facebook.debounce_ms = 50;
}

/// (method, extern id, email hash) of every row in these calls.
fn rows(calls: &[Call]) -> BTreeSet<(String, String, String)> {
    calls
        .iter()
        .flat_map(|call| {
            rows_by_extern_id(call)
                .into_iter()
                .map(|(id, row)| (call.method.clone(), id, row[0].clone()))
        })
        .collect()
}

fn row(method: &str, id: &str, email: &str) -> (String, String, String) {
    (method.to_string(), id.to_string(), sha256(email))
}

async fn vip_members(server: &Server) -> String {
    for (id, email, vip) in [
        ("ana", "ana@example.com", true),
        ("bob", "bob@example.com", true),
        ("cy", "cy@example.com", true),
        ("dan", "dan@example.com", false),
        ("eve", "eve@example.com", false),
    ] {
        server
            .put_contact(id, json!({"email": email, "vip": vip}))
            .await;
    }
    server.segment("VIP", "vip = true").await
}

#[tokio::test]
async fn a_sync_resumes_after_a_restart_and_applies_exactly_what_changed_meanwhile() {
    let server = slow_sync_server();
    let segment = vip_members(&server).await;
    let fake = FakeGraph::start(Vec::new()).await;
    let (id, _) = start_sync(&server, &segment, &fake).await;
    let initial = wait_calls(&fake, 1).await;
    assert_eq!(
        rows(&initial),
        BTreeSet::from([
            row("POST", "ana", "ana@example.com"),
            row("POST", "bob", "bob@example.com"),
            row("POST", "cy", "cy@example.com"),
        ])
    );
    // The key for secrets at rest was created for the sync, readable only
    // by the server's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = server.dir.path().join("secret.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Changes the sync has not sent when the server stops: ana leaves, dan
    // enters, bob's email changes, eve changes without entering.
    server.put_contact("ana", json!({"vip": false})).await;
    server.put_contact("dan", json!({"vip": true})).await;
    server
        .put_contact("bob", json!({"email": "robert@example.com"}))
        .await;
    server
        .put_contact("eve", json!({"email": "eve2@example.com"}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.calls().len(), 1, "nothing is sent before the restart");

    let server = server.restart_with(fast_sync);
    let calls = wait_calls(&fake, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls_after = fake.calls();
    assert_eq!(
        calls_after.len(),
        3,
        "exactly one DELETE and one POST: {calls_after:#?}"
    );
    assert_eq!(calls[1].method, "DELETE", "removals first");
    assert_eq!(
        rows(&calls[1..]),
        BTreeSet::from([
            row("DELETE", "ana", "ana@example.com"),
            row("DELETE", "bob", "bob@example.com"),
            row("POST", "bob", "robert@example.com"),
            row("POST", "dan", "dan@example.com"),
        ])
    );
    // A call is recorded before the job counts it: read the counters once
    // the last call is counted.
    let job = wait_job(&server, &id, |j| {
        j["sent"].as_u64() >= Some(5) && j["removed"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(
        (
            job["state"].as_str(),
            job["phase"].as_str(),
            job["sent"].as_u64(),
            job["removed"].as_u64()
        ),
        (Some("running"), Some("syncing"), Some(5), Some(2)),
        "{job:#}"
    );

    // It follows writes again, and a second restart with nothing changed
    // sends nothing.
    server.put_contact("cy", json!({"vip": false})).await;
    let calls = wait_calls(&fake, 4).await;
    assert_eq!(
        rows(&calls[3..]),
        BTreeSet::from([row("DELETE", "cy", "cy@example.com")])
    );
    // The fake has the DELETE once the request arrives; the sync stores the
    // removal only after the answer, and a restart before that sends it
    // again (by design). Its count of removals moves with that store.
    wait_job(&server, &id, |j| j["removed"] == 3).await;
    let server = server.restart_with(fast_sync);
    // A resumed sync compares the audience with the segment before it
    // follows writes, so whatever the restart would send arrives before
    // Eve's entry.
    server.put_contact("eve", json!({"vip": true})).await;
    let calls = wait_calls(&fake, 5).await;
    assert_eq!(
        rows(&calls[4..]),
        BTreeSet::from([row("POST", "eve", "eve2@example.com")]),
        "{calls:#?}"
    );

    // Stopped by a client, it does not come back after a restart.
    server
        .expect(StatusCode::OK, "DELETE", &format!("/v1/exports/{id}"), None)
        .await;
    wait_job(&server, &id, |j| j["state"] == "done").await;
    let server = server.restart_with(fast_sync);
    let job = server.get(&format!("/v1/exports/{id}")).await;
    assert_eq!(job["state"], "done", "{job:#}");
    // A second sync, to another fake, follows the same writes: once it has
    // sent Cy's entry, the stopped one had every chance to send it too.
    let other = FakeGraph::start(Vec::new()).await;
    start_sync(&server, &segment, &other).await;
    let initial = other.calls().len();
    server.put_contact("cy", json!({"vip": true})).await;
    let calls = wait_calls(&other, initial + 1).await;
    assert_eq!(
        rows(&calls[initial..]),
        BTreeSet::from([row("POST", "cy", "cy@example.com")])
    );
    assert_eq!(fake.calls().len(), 5, "{:#?}", fake.calls());
}

async fn failed_resume(server: Server, fake: &FakeGraph, id: &str) -> (Server, Json) {
    server.put_contact("ana", json!({"vip": false})).await;
    let server = server.restart_with(|config| {
        fast_sync(config);
        config.secret_key = Some(sift_server::secrets::SecretKey::parse(&"7e".repeat(32)).unwrap());
    });
    let job = wait_job(&server, id, |j| j["state"] == "failed").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fake.calls().len(),
        1,
        "nothing is sent with an unreadable token"
    );
    (server, job)
}

#[tokio::test]
async fn a_sync_whose_key_is_wrong_after_a_restart_fails_saying_so() {
    let server = slow_sync_server();
    let segment = vip_members(&server).await;
    let fake = FakeGraph::start(Vec::new()).await;
    let (id, _) = start_sync(&server, &segment, &fake).await;
    wait_calls(&fake, 1).await;
    let (server, job) = failed_resume(server, &fake, &id).await;
    let message = job["errors"].as_array().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("cannot be decrypted"), "{message}");
    assert_eq!(job["phase"], "stopped");
    // Failed for good: the next start does not try again.
    let server = server.restart();
    let job = server.get(&format!("/v1/exports/{id}")).await;
    assert_eq!(job["state"], "failed");
}

#[tokio::test]
async fn a_sync_whose_key_file_is_gone_after_a_restart_fails_saying_so() {
    let server = Server::with(|config| {
        config.facebook.debounce_ms = 60_000;
        config.secret_key = None;
    });
    let segment = vip_members(&server).await;
    let fake = FakeGraph::start(Vec::new()).await;
    let (id, _) = start_sync(&server, &segment, &fake).await;
    wait_calls(&fake, 1).await;
    std::fs::remove_file(server.dir.path().join("secret.key")).unwrap();
    server.put_contact("ana", json!({"vip": false})).await;
    let server = server.restart_with(fast_sync);
    let job = wait_job(&server, &id, |j| j["state"] == "failed").await;
    let message = job["errors"].to_string();
    assert!(message.contains("no secret key"), "{message}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.calls().len(), 1);
}

/// Rows stored for a batch that Facebook never accepted (the server
/// stopped while the batch was being sent) are sent after the restart: the
/// store must not count them as held, or those members would be missing
/// from the audience for good.
#[tokio::test]
async fn rows_stored_for_a_batch_never_accepted_are_sent_after_a_restart() {
    // Nothing listens at the job's address at first: its first batch
    // cannot connect and waits long before its next attempt.
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = spare.local_addr().unwrap();
    drop(spare);
    let server = Server::with(|config| {
        config.facebook.retry_base_ms = 600_000;
        config.facebook.retry_max_ms = 600_000;
        config.facebook.debounce_ms = 60_000;
    });
    let segment = vip_members(&server).await;
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(json!({"audience_id": "123", "access_token": "EAAB-test",
                        "identifiers": ["EMAIL", "EXTERN_ID"], "sync": true,
                        "graph_url": format!("http://{address}")})),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    wait_job(&server, &id, |j| j["retries"].as_u64() >= Some(1)).await;

    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let fake = FakeGraph::start_on(listener, Vec::new());
    let server = server.restart_with(fast_sync);
    let calls = wait_calls(&fake, 1).await;
    assert_eq!(
        rows(&calls),
        BTreeSet::from([
            row("POST", "ana", "ana@example.com"),
            row("POST", "bob", "bob@example.com"),
            row("POST", "cy", "cy@example.com"),
        ])
    );
    wait_job(&server, &id, |j| j["phase"] == "syncing" && j["sent"] == 3).await;

    // Accepted now, they are held: the next restart sends nothing.
    let server = server.restart_with(fast_sync);
    wait_job(&server, &id, |j| j["state"] == "running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.calls().len(), 1, "{:#?}", fake.calls());
}

//! Events on disk: memory keeps only the events live windows read, so a
//! count no kept aggregate holds is streamed from the store (the answer
//! says how many events it read), before and after a restart; and the
//! event retention deletes old events while all-time counts keep them.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use sift_server::AppState;

use crate::common::{Server, iso, now_ms};

const DAY: i64 = 86_400_000;

/// Ana bought 400 and 100 days ago and today, Bob 300 days ago; a
/// segment reading 7 days keeps only this week's events in memory.
async fn shop(server: &Server) {
    server
        .segment("Pinged", "performed ping in last 7 days")
        .await;
    let now = now_ms();
    server
        .events(json!({"events": [
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 400 * DAY), "properties": {"amount": 10}},
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 100 * DAY), "properties": {"amount": 20}},
            {"contact_id": "ana", "type": "purchase", "at": iso(now), "properties": {"amount": 30}},
            {"contact_id": "bob", "type": "purchase", "at": iso(now - 300 * DAY), "properties": {"amount": 5}},
        ]}))
        .await;
}

#[tokio::test]
async fn an_all_time_segment_counts_the_events_memory_no_longer_holds() {
    let server = Server::new();
    shop(&server).await;
    let body = json!({"name": "Repeat", "kind": "dynamic",
                      "condition": "performed purchase at least 2 times"});
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
        .await;
    let evaluation = &created["evaluation"];
    assert_eq!(evaluation["history_events_read"], 4, "{created:#}");
    assert!(evaluation["history_ms"].as_f64().unwrap() >= 0.0);
    let repeat = created["id"].as_str().unwrap().to_string();
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);

    // A preview of a count no segment keeps streams too.
    let preview = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "total purchase.amount >= 25"})),
        )
        .await;
    assert_eq!(preview["size"], 1, "{preview:#}");

    // After a restart the count comes from the stored history again, and
    // a new event adds to it without the old ones in memory.
    let server = server.restart();
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);
    server
        .events(json!({"contact_id": "bob", "type": "purchase"}))
        .await;
    assert_eq!(server.members(&repeat, 10).await, ["ana", "bob"]);
}

/// Waits until the store holds `want` events with a type (the retention
/// task deletes the others) among the first `contacts` contact numbers.
async fn stored_events_become(server: &Server, contacts: u32, want: usize) {
    let path = server
        .dir
        .path()
        .join(format!("{}.db", server.workspace_id));
    let reader = sift_store::WorkspaceReader::open(&path).unwrap();
    let mut left = usize::MAX;
    for _ in 0..500 {
        left = (0..contacts)
            .map(|no| reader.contact_events(no, 10).unwrap().len())
            .sum();
        if left == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, want, "events left in the store");
}

/// What the retention rolled up for an anonymous contact follows it into
/// the contact it is identified as, across a restart.
#[tokio::test]
async fn an_identify_carries_the_rolled_up_counts() {
    let server = Server::new();
    server
        .segment("Pinged", "performed ping in last 7 days")
        .await;
    let repeat = server
        .segment("Repeat", "performed purchase at least 2 times")
        .await;
    server
        .events(json!({"events": [
            {"contact_id": "visitor", "type": "purchase", "anonymous": true,
             "at": iso(now_ms() - 100 * DAY)},
            {"contact_id": "ana", "type": "purchase"},
        ]}))
        .await;
    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    stored_events_become(&server, 3, 1).await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": "visitor", "contact_id": "ana"})),
        )
        .await;
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);
    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);
}

#[tokio::test]
async fn retention_deletes_old_events_and_all_time_counts_keep_them() {
    let server = Server::new();
    shop(&server).await;
    let repeat = server
        .segment("Repeat", "performed purchase at least 2 times")
        .await;
    let big = server
        .segment("Big spenders", "total purchase.amount >= 60")
        .await;
    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    // The retention task deletes ana's two old purchases and bob's.
    stored_events_become(&server, 4, 1).await;
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);
    // A start after the deletion still counts what the deleted events gave.
    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    assert_eq!(server.members(&repeat, 10).await, ["ana"]);
    assert_eq!(server.members(&big, 10).await, ["ana"]);

    // A window longer than the retention is refused.
    let (status, body) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "Quarter", "kind": "dynamic",
                        "condition": "performed purchase in last 90 days"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--event-retention"),
        "{body:#}"
    );

    // A start with a retention shorter than a live window is refused.
    server.state.close();
    let mut config = server.state.config.clone();
    config.event_retention_days = Some(3);
    let refused = AppState::open(config).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("shorter than windows it reads")),
        "{refused:?}"
    );
}

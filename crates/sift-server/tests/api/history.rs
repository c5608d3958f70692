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
pub async fn stored_events_become(server: &Server, contacts: u32, want: usize) {
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

/// The value of gauge `name` for this server's workspace in `/metrics`.
async fn gauge(server: &Server, name: &str) -> Option<f64> {
    let response = tower::ServiceExt::oneshot(
        server.app.clone(),
        crate::common::request("GET", "/metrics", None, Vec::new()),
    )
    .await
    .unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let prefix = format!("{name}{{workspace=\"{}\"}} ", server.workspace_id);
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

/// Waits until the background task has built the one sealed range's block.
async fn block_built(server: &Server) {
    for _ in 0..200 {
        if gauge(server, "sift_event_blocks").await == Some(1.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the block was not built in 20 s");
}

/// A count over the columnar copy of events (docs/storage.md "Event
/// blocks") is exact: once the first 16,384 events have a block built in
/// the background, an identify moves some of them to another contact and
/// a deletion blanks others, and new counts read the rows for that range
/// until it is built again.
#[tokio::test]
async fn counts_over_the_columnar_copy_follow_merges_and_deletions() {
    let server = Server::new();
    let now = now_ms();
    // 20,000 purchases of 200 contacts (`c<i>`, the even ones anonymous
    // visitors `a<i>` instead), amounts 0 to 9 drawn by a fixed hash.
    let mut counts: std::collections::BTreeMap<String, u32> = Default::default();
    let name = |c: usize| {
        if c.is_multiple_of(2) {
            format!("a{c}")
        } else {
            format!("c{c}")
        }
    };
    for batch in 0..2 {
        let events: Vec<_> = (0..10_000)
            .map(|k| {
                let i = batch * 10_000 + k;
                let contact = name(i % 200);
                let amount = ((i as u64).wrapping_mul(2_654_435_761) >> 16) % 10;
                if amount > 4 {
                    *counts.entry(contact.clone()).or_default() += 1;
                }
                json!({"contact_id": contact, "anonymous": contact.starts_with('a'),
                       "type": "purchase", "at": iso(now - (i as i64 % 300) * DAY),
                       "properties": {"amount": amount, "note": "x"}})
            })
            .collect();
        server.events(json!({"events": events})).await;
    }
    // A start builds the sealed range's block in the background.
    let server = server.restart();
    block_built(&server).await;
    assert_eq!(gauge(&server, "sift_event_blocks_sealed").await, Some(1.0));

    // Counted from the block and the rows after it.
    expect_counts(&server, &counts, "Before", "amount > 4").await;

    // a0 becomes c1 (its events move), c3 is deleted (its are blanked):
    // both edit the block's range, whose rows are read from now on.
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": "a0", "contact_id": "c1"})),
        )
        .await;
    let moved = counts.remove("a0").unwrap_or(0);
    *counts.entry("c1".into()).or_default() += moved;
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/c3", None)
        .await;
    counts.remove("c3");
    expect_counts(&server, &counts, "After", "amount >= 5").await;

    // A start builds the block again from the edited rows.
    let server = server.restart();
    block_built(&server).await;
    expect_counts(&server, &counts, "Rebuilt", "amount > 4.5").await;
}

/// Previews and creates `performed purchase where <filter> at least N
/// times` for thresholds some contacts reach and others do not, each
/// exactly the contacts `counts` says. Each phase words the filter its own
/// way (amounts are whole), so that its count is not one a segment keeps
/// and is read from the store.
async fn expect_counts(
    server: &Server,
    counts: &std::collections::BTreeMap<String, u32>,
    name: &str,
    filter: &str,
) {
    let mut spread: Vec<u32> = counts.values().copied().collect();
    spread.sort_unstable();
    // The highest: after the identify, c1's (it holds a0's events too).
    let thresholds = [
        spread[spread.len() / 2],
        spread[spread.len() * 9 / 10],
        spread[spread.len() - 1],
    ];
    for (i, min) in thresholds.into_iter().enumerate() {
        let condition = format!("performed purchase where {filter} at least {min} times");
        let expected: Vec<String> = counts
            .iter()
            .filter(|(_, n)| **n >= min)
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!expected.is_empty() && expected.len() < counts.len());
        let preview = server
            .expect(
                StatusCode::OK,
                "POST",
                "/v1/segments:preview",
                Some(json!({"condition": condition})),
            )
            .await;
        assert_eq!(preview["size"], expected.len(), "{condition}: {preview:#}");
        let created = server
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/segments",
                Some(json!({"name": format!("{name} {i}"), "condition": condition})),
            )
            .await;
        // The second shares the first's count (same type and filter).
        let read = created["evaluation"]["history_events_read"].as_u64();
        assert_eq!(read > Some(0), i == 0, "{name}: {created:#}");
        let id = created["id"].as_str().unwrap().to_string();
        let mut members = server.members(&id, 1_000).await;
        members.sort();
        assert_eq!(members, expected, "{name}: {condition}");
    }
}

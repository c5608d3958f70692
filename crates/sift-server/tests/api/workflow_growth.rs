//! Bounded workflow growth through the API: a workflow whose queue is full
//! drops further triggers, counts them durably and says so in
//! `GET /v1/workflows/{id}`, then runs normally once its queue drains; and
//! finished run history is pruned after the retention while pending
//! deliveries stay.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, ms_of};

async fn create_contacts(server: &Server, ids: &[String]) {
    let contacts: Vec<Json> = ids
        .iter()
        .map(|id| json!({"id": id, "properties": {"newsletter": true}}))
        .collect();
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(json!({ "contacts": contacts })),
        )
        .await;
}

async fn add_to(server: &Server, segment: &str, ids: &[String]) {
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{segment}/contacts"),
            Some(json!({ "contact_ids": ids })),
        )
        .await;
}

fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("c{i:02}")).collect()
}

/// Waits until the workflow has nothing queued and answers its runs'
/// contacts, oldest first.
async fn drained_runs(server: &Server, wf: &str) -> Vec<String> {
    for _ in 0..500 {
        if server.get(&format!("/v1/workflows/{wf}")).await["queued"] == 0 {
            // The last run write may still be committing.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let page = server
                .get(&format!("/v1/workflows/{wf}/runs?limit=1000"))
                .await;
            let mut contacts: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["contact_id"].as_str().unwrap().to_string())
                .collect();
            contacts.reverse();
            return contacts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the workflow's queue never drained");
}

#[tokio::test]
async fn a_full_workflow_queue_drops_and_reports_triggers_then_runs_normally() {
    // The runner is off at first, so that the queue fills deterministically.
    let server = Server::with(|c| {
        c.workflow_queue_max = 3;
        c.run_workflows = false;
    });
    let picked = server.static_segment("Picked").await;
    let gifted = server.static_segment("Gifted").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Gift the picked", "status": "active",
                "trigger": {"type": "segment_entered", "segment": picked},
                "actions": [{"type": "add_to_segment", "segment": gifted}]
            })),
        )
        .await;
    let wf = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            &created["dropped"],
            &created["dropped_since"],
            &created["last_dropped_at"]
        ),
        (&json!(0), &Json::Null, &Json::Null)
    );
    create_contacts(&server, &names(0..40)).await;

    // Ten enter at once: three fit, seven are dropped, in that write.
    add_to(&server, &picked, &names(0..10)).await;
    let status = server.get(&format!("/v1/workflows/{wf}")).await;
    assert_eq!(status["queued"], 3);
    assert_eq!(status["dropped"], 7);
    let since = ms_of(&status["dropped_since"]);
    assert_eq!(status["last_dropped_at"], status["dropped_since"]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    add_to(&server, &picked, &names(10..12)).await;
    let status = server.get(&format!("/v1/workflows/{wf}")).await;
    assert_eq!(
        (&status["queued"], &status["dropped"]),
        (&json!(3), &json!(9))
    );
    assert_eq!(ms_of(&status["dropped_since"]), since);
    assert!(ms_of(&status["last_dropped_at"]) > since);

    // Durable: a restart keeps the count, and the runner (now on) runs
    // exactly the three queued triggers, the earliest ones.
    let server = server.restart_with(|c| c.run_workflows = true);
    assert_eq!(drained_runs(&server, &wf).await, names(0..3));
    assert_eq!(server.members(&gifted, 100).await, names(0..3));
    let status = server.get(&format!("/v1/workflows/{wf}")).await;
    assert_eq!(
        (&status["queued"], &status["dropped"]),
        (&json!(0), &json!(9))
    );
    assert_eq!(ms_of(&status["dropped_since"]), since);
    // The list shows the same.
    let list = server.get("/v1/workflows").await;
    assert_eq!(list["items"][0]["dropped"], 9);

    // Drained, it runs every new trigger again.
    add_to(&server, &picked, &names(20..22)).await;
    let ran = drained_runs(&server, &wf).await;
    assert_eq!(ran[3..], names(20..22));
    assert_eq!(server.members(&gifted, 100).await.len(), 5);

    // Pausing and resuming starts it afresh: the count is cleared.
    for status in ["paused", "active"] {
        server
            .expect(
                StatusCode::OK,
                "PATCH",
                &format!("/v1/workflows/{wf}"),
                Some(json!({ "status": status })),
            )
            .await;
    }
    let status = server.get(&format!("/v1/workflows/{wf}")).await;
    assert_eq!(
        (&status["dropped"], &status["dropped_since"]),
        (&json!(0), &Json::Null)
    );
}

#[tokio::test]
async fn finished_runs_are_pruned_after_the_retention_and_pending_deliveries_stay() {
    // The default retention, 30 days, passes on a manual clock.
    let server = Server::on_manual_clock(|c| {
        // A delivery that fails once then waits an hour stays pending.
        c.action_retry_base = Duration::from_secs(3600);
        c.action_timeout = Duration::from_millis(500);
    });
    let picked = server.static_segment("Picked").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Score and call", "status": "active",
                "trigger": {"type": "segment_entered", "segment": picked},
                "actions": [{"type": "add_score", "points": 1},
                            {"type": "webhook", "url": "http://127.0.0.1:9/refused"}]
            })),
        )
        .await;
    let wf = created["id"].as_str().unwrap().to_string();
    create_contacts(&server, &names(0..5)).await;
    add_to(&server, &picked, &names(0..5)).await;
    assert_eq!(drained_runs(&server, &wf).await, names(0..5));
    let handle = server.state.workspace(&server.workspace_id).unwrap();
    let pending = || {
        handle
            .reader()
            .unwrap()
            .due_deliveries(i64::MAX, 100)
            .unwrap()
            .len()
    };
    assert_eq!(pending(), 5);
    let runs = server.get(&format!("/v1/workflows/{wf}/runs")).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 5);

    // A day short of the retention, nothing is history yet.
    server.advance(Duration::from_secs(29 * 86_400));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let runs = server.get(&format!("/v1/workflows/{wf}/runs")).await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        5,
        "pruned too early"
    );

    server.advance(Duration::from_secs(2 * 86_400));
    let mut left = 5;
    for _ in 0..150 {
        let page = server.get(&format!("/v1/workflows/{wf}/runs")).await;
        left = page["items"].as_array().unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the runs were never pruned");
    // Pending deliveries are work, not history: all still there.
    assert_eq!(pending(), 5);
    // What the runs did stays.
    assert_eq!(server.get("/v1/contacts/c00").await["lead_score"], 1);
}

//! `GET /v1/contacts/{id}/score`: where a contact's `lead_score` comes from,
//! per rule and per workflow, against points summed here by hand from the
//! events and grants the test sent.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, iso, ms_of};

const DAY: i64 = 86_400_000;

async fn create(server: &Server, path: &str, body: Json) -> String {
    let created = server
        .expect(StatusCode::CREATED, "POST", path, Some(body))
        .await;
    created["id"].as_str().unwrap().to_string()
}

fn points_of(items: &Json) -> f64 {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["points"].as_f64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_score_is_split_by_rule_and_workflow_and_adds_up() {
    let server = Server::on_manual_clock(|_| {});
    let now = server.now_ms();
    let big = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "purchase", "where": "amount > 50", "points": 10}),
    )
    .await;
    let recent = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "purchase", "points": 1, "expires_after": "7d"}),
    )
    .await;
    let login = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "login", "points": 2.5}),
    )
    .await;
    // A rule that matches nothing of ana's is not listed.
    create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "refund", "points": -3}),
    )
    .await;
    let welcome = create(
        &server,
        "/v1/workflows",
        json!({"name": "Welcome", "status": "active",
               "trigger": {"type": "event", "event_type": "signup"},
               "actions": [{"type": "add_score", "points": 5, "expires_after": "7d"}]}),
    )
    .await;
    server
        .events(json!({"events": [
            // big only: `recent`'s points for it expired 3 days ago.
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 10 * DAY), "properties": {"amount": 80}},
            // big and recent, which expires 5 days from now.
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 2 * DAY), "properties": {"amount": 60}},
            // recent only, expiring 6 days from now.
            {"contact_id": "ana", "type": "purchase", "at": iso(now - DAY), "properties": {"amount": 20}},
            {"contact_id": "ana", "type": "login", "at": iso(now - DAY)},
            {"contact_id": "ana", "type": "login", "at": iso(now - DAY + 1)},
            {"contact_id": "ana", "type": "signup", "at": iso(now)},
            {"contact_id": "bob", "type": "login", "at": iso(now)},
        ]}))
        .await;

    // The workflow runs in the background.
    let mut score = Json::Null;
    for _ in 0..250 {
        score = server.get("/v1/contacts/ana/score").await;
        if score["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["source"] == "workflow")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let items = score["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{score:#}");
    assert_eq!(
        items[0],
        json!({"source": "rule", "rule_id": big, "event_type": "purchase", "where_text": "amount > 50",
               "points": 20, "events": 2, "expires_at": null})
    );
    assert_eq!(
        items[1],
        json!({"source": "rule", "rule_id": recent, "event_type": "purchase",
               "points": 2, "events": 2, "expires_at": iso(now - 2 * DAY + 7 * DAY)})
    );
    assert_eq!(
        items[2],
        json!({"source": "rule", "rule_id": login, "event_type": "login",
               "points": 5, "events": 2, "expires_at": null})
    );
    let granted = &items[3];
    assert_eq!(granted["source"], "workflow");
    assert_eq!(granted["workflow_id"], welcome.as_str());
    assert_eq!(granted["workflow_name"], "Welcome");
    assert_eq!(granted["points"], 5);
    assert_eq!(granted["grants"], 1);
    // The grant expires 7 days after the run, which ran at the (manual) now.
    let expiry = ms_of(&granted["expires_at"]) - now;
    assert!((7 * DAY..7 * DAY + 1_000).contains(&expiry), "{granted:#}");

    // 20 + 2 + 5 + 5, and the contact's own lead_score says the same.
    assert_eq!(score["lead_score"], 32, "{score:#}");
    assert_eq!(points_of(&score["items"]), 32.0);
    assert_eq!(server.get("/v1/contacts/ana").await["lead_score"], 32);
    assert_eq!(score["contact_id"], "ana");

    let bob = server.get("/v1/contacts/bob/score").await;
    assert_eq!(bob["lead_score"], 2.5);
    assert_eq!(
        bob["items"],
        json!([{"source": "rule", "rule_id": login, "event_type": "login",
                "points": 2.5, "events": 1, "expires_at": null}])
    );

    // Five and a half days on, the purchase two days old when scored no
    // longer counts for `recent` (its points expired half a day ago); the
    // grant, given for 7 days, still does.
    server.advance(Duration::from_millis((5 * DAY + DAY / 2) as u64));
    let mut later = Json::Null;
    for _ in 0..250 {
        later = server.get("/v1/contacts/ana/score").await;
        if later["lead_score"] == 31 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(later["lead_score"], 31, "{later:#}");
    assert_eq!(later["items"][1]["points"], 1, "{later:#}");
    assert_eq!(later["items"][1]["events"], 1);
    assert_eq!(later["items"][1]["expires_at"], iso(now - DAY + 7 * DAY));
    assert_eq!(later["items"][3]["points"], 5, "{later:#}");
    assert_eq!(points_of(&later["items"]), 31.0);

    // A deleted rule's points leave with it.
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/scoring-rules/{big}"),
            None,
        )
        .await;
    let after = server.get("/v1/contacts/ana/score").await;
    assert_eq!(after["lead_score"], 11, "{after:#}");
    assert_eq!(after["items"][0]["rule_id"], recent.as_str());
    assert_eq!(points_of(&after["items"]), 11.0);
}

#[tokio::test]
async fn a_contact_without_points_has_no_items_and_an_unknown_one_is_404() {
    let server = Server::new();
    server.put_contact("cleo", json!({"country": "ES"})).await;
    let score = server.get("/v1/contacts/cleo/score").await;
    assert_eq!(score["lead_score"], 0);
    assert_eq!(score["items"], json!([]));
    let (status, answer) = server.send("GET", "/v1/contacts/nobody/score", None).await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_score_survives_a_restart_with_its_sources() {
    let server = Server::new();
    let rule = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "purchase", "points": 3}),
    )
    .await;
    server
        .events(json!({"events": [
            {"contact_id": "ana", "type": "purchase"},
            {"contact_id": "ana", "type": "purchase"},
        ]}))
        .await;
    let server = server.restart();
    let score = server.get("/v1/contacts/ana/score").await;
    assert_eq!(score["lead_score"], 6);
    assert_eq!(
        score["items"],
        json!([{"source": "rule", "rule_id": rule, "event_type": "purchase",
                "points": 6, "events": 2, "expires_at": null}])
    );
}

/// Events deleted past the retention keep the points rules without expiry
/// gave them, as one `deleted_events` item; the rules keep the rest.
#[tokio::test]
async fn points_of_deleted_events_stay_as_one_item() {
    let server = Server::new();
    let every = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "purchase", "points": 3}),
    )
    .await;
    let big = create(
        &server,
        "/v1/scoring-rules",
        json!({"event_type": "purchase", "where": "amount > 15", "points": 10}),
    )
    .await;
    let now = crate::common::now_ms();
    server
        .events(json!({"events": [
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 400 * DAY), "properties": {"amount": 10}},
            {"contact_id": "ana", "type": "purchase", "at": iso(now - 100 * DAY), "properties": {"amount": 20}},
            {"contact_id": "ana", "type": "purchase", "at": iso(now), "properties": {"amount": 30}},
        ]}))
        .await;
    let before = server.get("/v1/contacts/ana/score").await;
    assert_eq!(before["lead_score"], 3 * 3 + 2 * 10, "{before:#}");
    assert_eq!(before["items"][0]["points"], 9);
    assert_eq!(before["items"][1]["points"], 20);

    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    crate::history::stored_events_become(&server, 1, 1).await;
    // Deleted: 400 days ago (3) and 100 days ago (3 + 10).
    let after = server.get("/v1/contacts/ana/score").await;
    let expected = json!([
        {"source": "rule", "rule_id": every, "event_type": "purchase",
         "points": 3, "events": 1, "expires_at": null},
        {"source": "rule", "rule_id": big, "event_type": "purchase", "where_text": "amount > 15",
         "points": 10, "events": 1, "expires_at": null},
        {"source": "deleted_events", "points": 16, "expires_at": null},
    ]);
    assert_eq!(after["items"], expected, "{after:#}");
    assert_eq!(after["lead_score"], 29);
    let server = server.restart_with(|config| config.event_retention_days = Some(30));
    assert_eq!(
        server.get("/v1/contacts/ana/score").await["items"],
        expected
    );
}

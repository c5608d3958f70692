//! Lead scoring rules (docs/concepts.md "Scoring rule", §4 `/v1/scoring-rules`): the
//! CRUD cycle and shapes, `where` as text or JSON, `lead_score` from rules,
//! edits that rescore, points taken away by `expires_after` on time, and
//! bad input.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, iso, ms_of, now_ms, redact, wait_for_exit};

async fn create_rule(server: &Server, body: Json) -> Json {
    server
        .expect(StatusCode::CREATED, "POST", "/v1/scoring-rules", Some(body))
        .await
}

async fn lead_score(server: &Server, contact: &str) -> Json {
    server.get(&format!("/v1/contacts/{contact}")).await["lead_score"].clone()
}

#[tokio::test]
async fn a_rule_is_created_listed_read_edited_and_deleted() {
    let server = Server::new();
    let created = create_rule(
        &server,
        json!({"event_type": "purchase", "where": "amount > 50 and category = \"shoes\"", "points": 10, "expires_after": "30 days"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("rule_"), "{id}");
    let expected = json!({
        "id": "[rule]",
        "event_type": "purchase",
        "where": {"all": [
            {"field": "amount", "op": "gt", "value": 50},
            {"field": "category", "op": "eq", "value": "shoes"},
        ]},
        "where_text": "amount > 50 and category = \"shoes\"",
        "points": 10,
        "expires_after": "30d",
        "created_at": "[datetime]",
        "updated_at": "[datetime]",
        "rescored": 0,
        "history_events_read": 0,
        "changes": 0,
    });
    assert_eq!(redact(&created, &[(&id, "[rule]")]), expected);

    let path = format!("/v1/scoring-rules/{id}");
    let read = server.get(&path).await;
    let mut without_counts = created.clone();
    without_counts.as_object_mut().unwrap().remove("rescored");
    without_counts
        .as_object_mut()
        .unwrap()
        .remove("history_events_read");
    without_counts.as_object_mut().unwrap().remove("changes");
    assert_eq!(read, without_counts);
    let list = server.get("/v1/scoring-rules").await;
    assert_eq!(
        list,
        json!({"items": [without_counts], "next_cursor": null})
    );

    // The same filter as a JSON tree, a JSON duration; no where, no expiry.
    let tree = create_rule(
        &server,
        json!({"event_type": "purchase", "where": expected["where"], "points": 2.5, "expires_after": "2w"}),
    )
    .await;
    assert_eq!(tree["where_text"], expected["where_text"]);
    assert_eq!(tree["points"], 2.5);
    assert_eq!(tree["expires_after"], "2w");
    let bare = create_rule(&server, json!({"event_type": "login", "points": -1})).await;
    assert_eq!(bare["where"], Json::Null);
    assert_eq!(bare["where_text"], Json::Null);
    assert_eq!(bare["expires_after"], Json::Null);

    let edited = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"points": 5, "where": null, "expires_after": "1 week"})),
        )
        .await;
    assert_eq!(edited["points"], 5, "{edited:#}");
    assert_eq!(edited["where"], Json::Null, "{edited:#}");
    assert_eq!(edited["expires_after"], "1w", "{edited:#}");
    assert_eq!(edited["event_type"], "purchase", "{edited:#}");
    assert_eq!(edited["created_at"], created["created_at"]);

    let deleted = server.expect(StatusCode::OK, "DELETE", &path, None).await;
    assert_eq!(deleted["deleted"], true, "{deleted:#}");
    let (status, body) = server.send("GET", &path, None).await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        server.get("/v1/scoring-rules").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Rules survive a restart.
    let server = server.restart();
    assert_eq!(
        server.get("/v1/scoring-rules").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn lead_score_follows_rules_and_edits_rescore() {
    let server = Server::new();
    let hot = server.segment("Hot leads", "lead_score >= 15").await;
    let shoes = create_rule(
        &server,
        json!({"event_type": "purchase", "where": "amount > 50 and category = \"shoes\"", "points": 10}),
    )
    .await;
    server
        .events(json!({"events": [
            {"contact_id": "ana", "type": "purchase", "properties": {"amount": 60, "category": "shoes"}},
            {"contact_id": "ana", "type": "purchase", "properties": {"amount": 20, "category": "shoes"}},
            {"contact_id": "ana", "type": "page_visit"},
            {"contact_id": "bob", "type": "purchase", "properties": {"amount": 90, "category": "bags"}},
        ]}))
        .await;
    assert_eq!(lead_score(&server, "ana").await, 10);
    assert_eq!(lead_score(&server, "bob").await, 0);

    // A new rule scores past events too.
    let visits = create_rule(&server, json!({"event_type": "page_visit", "points": 1})).await;
    assert_eq!(visits["rescored"], 1, "{visits:#}");
    // Its points come from the whole stored history, read from disk.
    assert_eq!(visits["history_events_read"], 4, "{visits:#}");
    assert_eq!(lead_score(&server, "ana").await, 11);

    // Dropping the filter makes every purchase count; ana reaches 21.
    let path = format!("/v1/scoring-rules/{}", shoes["id"].as_str().unwrap());
    let edited = server
        .expect(StatusCode::OK, "PATCH", &path, Some(json!({"where": null})))
        .await;
    assert_eq!(edited["rescored"], 2, "ana and bob: {edited:#}");
    assert_eq!(edited["changes"], 1, "ana enters Hot leads: {edited:#}");
    assert_eq!(lead_score(&server, "ana").await, 21);
    assert_eq!(lead_score(&server, "bob").await, 10);
    assert_eq!(server.members(&hot, 10).await, ["ana"]);

    let deleted = server.expect(StatusCode::OK, "DELETE", &path, None).await;
    assert_eq!(deleted["rescored"], 2, "{deleted:#}");
    assert_eq!(deleted["history_events_read"], 4, "{deleted:#}");
    assert_eq!(deleted["changes"], 1, "ana leaves Hot leads: {deleted:#}");
    assert_eq!(lead_score(&server, "ana").await, 1);
    assert!(server.members(&hot, 10).await.is_empty());
}

#[tokio::test]
async fn points_expire_on_time() {
    let server = Server::on_manual_clock(|_| {});
    create_rule(
        &server,
        json!({"event_type": "signup", "points": 5, "expires_after": "1m"}),
    )
    .await;
    let scored = server.segment("Scored", "lead_score >= 5").await;
    // A late event: its points expire a few seconds from now.
    let at = server.now_ms() - 60_000 + 3_000;
    let expires = at + 60_000;
    server
        .events(json!({"contact_id": "ana", "type": "signup", "at": iso(at)}))
        .await;
    assert_eq!(lead_score(&server, "ana").await, 5);
    assert_eq!(server.members(&scored, 10).await, ["ana"]);

    // Still worth the points a millisecond before they expire.
    server.manual_clock().set(expires - 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(lead_score(&server, "ana").await, 5);

    server.manual_clock().set(expires);
    let (exit, _) = wait_for_exit(&server, &scored, "ana", now_ms() + 10_000)
        .await
        .expect("the points never expired");
    assert_eq!(exit["cause"], "time", "{exit:#}");
    let exit_at = ms_of(&exit["at"]);
    assert!(
        (expires..=expires + 1).contains(&exit_at),
        "expired at {exit_at}, due {expires}"
    );
    assert_eq!(lead_score(&server, "ana").await, 0);
}

#[tokio::test]
async fn bad_rules_are_refused_and_change_nothing() {
    let server = Server::new();
    // A text filter's fault is located in the client's text.
    let (status, body) = server
        .send(
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "where": "amount >", "points": 1})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert_eq!(error["details"]["line"], 1, "{body:#}");
    assert_eq!(error["details"]["column"], 9, "{body:#}");
    assert!(
        error["message"].as_str().unwrap().ends_with("at 1:9"),
        "{body:#}"
    );
    let (status, body) = server
        .send(
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "where": "amount > 1 and\n  category = ", "points": 1})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert_eq!(error["details"]["line"], 2, "{body:#}");
    // A JSON tree's fault is located by a pointer into the body.
    let (status, body) = server
        .send(
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "where": {"all": [{"field": "amount", "op": "gt"}]}, "points": 1})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert!(
        error["details"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/where/all/0"),
        "{body:#}"
    );

    let invalid_condition = [
        // Text that closes the filter's parenthesis cannot smuggle in more.
        json!({"event_type": "purchase", "where": "amount > 1) at least 2 times or (email is set", "points": 1}),
        json!({"event_type": "purchase", "where": "performed login", "points": 1}),
    ];
    for body in invalid_condition {
        let (status, answer) = server
            .send("POST", "/v1/scoring-rules", Some(body.clone()))
            .await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
    }
    let validation = [
        (json!({"points": 1}), "event_type"),
        (json!({"event_type": "", "points": 1}), "event_type"),
        (json!({"event_type": "purchase"}), "points"),
        (json!({"event_type": "purchase", "points": "ten"}), "points"),
        (
            json!({"event_type": "purchase", "points": 1, "expires_after": "-5d"}),
            "expires_after",
        ),
        (
            json!({"event_type": "purchase", "points": 1, "expires_after": "0d"}),
            "expires_after",
        ),
        (
            json!({"event_type": "purchase", "points": 1, "expires_after": 30}),
            "expires_after",
        ),
        (
            json!({"event_type": "purchase", "points": 1, "expires_after": "soon"}),
            "expires_after",
        ),
        (
            json!({"event_type": "purchase", "points": 1, "where": 5}),
            "where",
        ),
        (
            json!({"event_type": "purchase", "points": 1, "weight": 2}),
            "weight",
        ),
    ];
    for (body, field) in validation {
        let (status, answer) = server
            .send("POST", "/v1/scoring-rules", Some(body.clone()))
            .await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error["details"]["field"], field, "{body}: {answer:#}");
    }
    assert_eq!(
        server.get("/v1/scoring-rules").await,
        json!({"items": [], "next_cursor": null})
    );

    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"points": 1}));
        let (status, answer) = server
            .send(method, "/v1/scoring-rules/rule_nope", body)
            .await;
        error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    }
    let rule = create_rule(&server, json!({"event_type": "purchase", "points": 1})).await;
    let path = format!("/v1/scoring-rules/{}", rule["id"].as_str().unwrap());
    let (status, answer) = server
        .send("PATCH", &path, Some(json!({"expires_after": "-1d"})))
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(server.get(&path).await["expires_after"], Json::Null);
}

//! Numbers Sift adds up stay finite (a total, `lead_score`), and one range of
//! dates and datetimes, 0001-01-01 to 9999-12-31, wherever one is accepted.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Server, error_of};

#[tokio::test]
async fn points_beyond_the_bound_are_refused_and_scores_stay_numbers() {
    let server = Server::new();
    // The reported case: 1e308 points, two events, and lead_score was null.
    let (status, body) = server
        .send(
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "points": 1e308})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        error["message"].as_str().unwrap().contains("1e15"),
        "{error:#}"
    );
    // The same bound for a workflow's add_score.
    let (status, body) = server
        .send(
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Big",
                "trigger": {"type": "event", "event_type": "purchase"},
                "actions": [{"type": "add_score", "points": -1e300}],
            })),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["field"], "actions[0].points", "{error:#}");

    server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "purchase", "points": 1e15})),
        )
        .await;
    for i in 0..2 {
        server
            .events(json!({"id": format!("p{i}"), "contact_id": "ana", "type": "purchase"}))
            .await;
    }
    let ana = server.get("/v1/contacts/ana").await;
    assert_eq!(ana["lead_score"].as_f64(), Some(2e15), "{ana:#}");
}

#[tokio::test]
async fn a_total_of_huge_values_stays_a_number_and_membership_follows_it() {
    let server = Server::new();
    let segment = server
        .segment("Big spenders", "total purchase.amount >= 2e15")
        .await;
    for i in 0..2 {
        server
            .events(json!({
                "id": format!("o{i}"), "contact_id": "ana", "type": "purchase",
                "properties": {"amount": 1e308},
            }))
            .await;
    }
    // Each value counts as at most 1e15, so the total is 2e15, not infinity.
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={segment}"))
        .await;
    assert_eq!(explained["member"], true, "{explained:#}");
    assert_eq!(
        explained["explanation"]["value"].as_f64(),
        Some(2e15),
        "{explained:#}"
    );
    assert_eq!(server.members(&segment, 10).await, vec!["ana".to_string()]);
    // The same after a restart, where totals are computed afresh.
    let server = server.restart();
    assert_eq!(server.members(&segment, 10).await, vec!["ana".to_string()]);
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={segment}"))
        .await;
    assert_eq!(
        explained["explanation"]["value"].as_f64(),
        Some(2e15),
        "{explained:#}"
    );
}

#[tokio::test]
async fn dates_and_datetimes_are_accepted_up_to_9999_12_31_and_refused_past_it_by_name() {
    let server = Server::new();
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/renews_at",
            Some(json!({"type": "datetime"})),
        )
        .await;
    // Up to 9999-12-30T22:00Z these were refused as "not RFC 3339".
    for (given, stored) in [
        ("9999-12-31T12:00:00Z", "9999-12-31T12:00:00Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"),
    ] {
        let ana = server
            .put_contact(
                "ana",
                json!({"renews_at": given, "birth_date": "9999-12-31"}),
            )
            .await;
        assert_eq!(ana["properties"]["renews_at"], stored, "{ana:#}");
        assert_eq!(ana["properties"]["birth_date"], "9999-12-31", "{ana:#}");
    }
    let segment = server
        .segment("Far", "renews_at >= 9999-12-31T00:00:00Z")
        .await;
    server
        .put_contact("ana", json!({"renews_at": "9999-12-31T23:00:00Z"}))
        .await;
    assert_eq!(server.members(&segment, 10).await, vec!["ana".to_string()]);

    // Past the range: a message naming it, and nothing changes.
    for (field, given) in [
        ("renews_at", "9999-12-31T23:00:00-05:00"),
        ("renews_at", "0000-12-31T23:00:00Z"),
        ("birth_date", "0000-12-31"),
    ] {
        let (status, body) = server
            .send(
                "PUT",
                "/v1/contacts/ana",
                Some(json!({"properties": {field: given}})),
            )
            .await;
        let error = error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("0001-01-01 to 9999-12-31"), "{message}");
        assert!(!message.contains("RFC 3339"), "{message}");
        assert_eq!(error["details"]["field"], field, "{error:#}");
    }
    let ana = server.get("/v1/contacts/ana").await;
    assert_eq!(ana["properties"]["renews_at"], "9999-12-31T23:00:00Z");

    // Conditions, in text and as a tree: the same range, the same words.
    for body in [
        json!({"condition": "renews_at < 9999-12-31T23:00:00-05:00"}),
        json!({"condition_tree": {"field": "birth_date", "op": "lt", "value": "0000-01-01"}}),
    ] {
        let (status, body) = server
            .send("POST", "/v1/segments:preview", Some(body))
            .await;
        let error = error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("0001-01-01 to 9999-12-31"),
            "{error:#}"
        );
    }
    let preview = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "renews_at <= 9999-12-31T23:59:59.999Z"})),
        )
        .await;
    assert_eq!(preview["size"], 1, "{preview:#}");

    // An event's `at`.
    let (status, body) = server
        .send(
            "POST",
            "/v1/events",
            Some(json!({"contact_id": "ana", "type": "visit", "at": "0000-06-01T00:00:00Z"})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("0001-01-01 to 9999-12-31")
            || error["details"]
                .to_string()
                .contains("0001-01-01 to 9999-12-31"),
        "{error:#}"
    );
    server
        .events(json!({"contact_id": "ana", "type": "visit", "at": "0001-01-01T00:00:00Z"}))
        .await;
}

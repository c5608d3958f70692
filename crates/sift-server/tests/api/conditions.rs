//! Condition language features seen through the API (docs/conditions.md):
//! matching that ignores case, warnings in the preview, "did you mean" on
//! unknown names and the hint for a property after an unparenthesized
//! `where`.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Server, error_of};

/// Four contacts whose tier differs by case, and one without a tier.
async fn tiers() -> Server {
    let server = Server::new();
    for (id, tier) in [
        ("c1", "Gold"),
        ("c2", "GOLD"),
        ("c3", "gold"),
        ("c4", "silver"),
    ] {
        server.put_contact(id, json!({"tier": tier})).await;
    }
    server.put_contact("c5", json!({"country": "ES"})).await;
    server
}

#[tokio::test]
async fn a_segment_ignoring_case_has_every_spelling_and_only_those() {
    let server = tiers().await;
    let body =
        json!({"name": "Gold", "kind": "dynamic", "condition": "tier = \"gold\" IGNORING CASE"});
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["condition"], "tier = \"gold\" ignoring case");
    assert_eq!(
        created["condition_tree"],
        json!({"field": "tier", "op": "eq", "value": "gold", "ignore_case": true})
    );
    assert_eq!(created["size"], 3);
    assert_eq!(server.members(&id, 10).await, ["c1", "c2", "c3"]);

    // Without the suffix only the exact spelling matches, as before.
    let exact = server.segment("Exact gold", "tier = \"gold\"").await;
    assert_eq!(server.members(&exact, 10).await, ["c3"]);

    // Kept as contacts change: a new spelling enters, another value leaves.
    server.put_contact("c4", json!({"tier": "gOlD"})).await;
    server.put_contact("c1", json!({"tier": "platinum"})).await;
    assert_eq!(server.members(&id, 10).await, ["c2", "c3", "c4"]);
    assert_eq!(server.members(&exact, 10).await, ["c3"]);

    // The tree form gives the same segment; an edit to other operators too.
    let from_tree = json!({"name": "Gold tree", "kind": "dynamic", "condition_tree":
        {"field": "tier", "op": "in", "value": ["GOLD", "Platinum"], "ignore_case": true}});
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(from_tree))
        .await;
    let tree_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["condition"],
        "tier in [\"GOLD\", \"Platinum\"] ignoring case"
    );
    assert_eq!(server.members(&tree_id, 10).await, ["c1", "c2", "c3", "c4"]);
    let edited = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/segments/{tree_id}"),
            Some(json!({"condition": "tier starts with \"PLAT\" ignoring case"})),
        )
        .await;
    assert_eq!(edited["evaluation"]["exited"], 3, "{edited:#}");
    assert_eq!(server.members(&tree_id, 10).await, ["c1"]);

    // Memberships survive a restart.
    let server = server.restart();
    assert_eq!(server.members(&id, 10).await, ["c2", "c3", "c4"]);
    assert_eq!(server.members(&tree_id, 10).await, ["c1"]);
}

#[tokio::test]
async fn an_event_filter_ignoring_case_survives_a_restart() {
    let server = tiers().await;
    let purchase = |who: &str, category: &str| json!({"contact_id": who, "type": "purchase", "properties": {"category": category}});
    server
        .events(json!({"events": [purchase("c1", "Shoes"), purchase("c2", "hats"), purchase("c3", "shoes/red")]}))
        .await;
    let any_case = server
        .segment(
            "Shoes, any case",
            "performed purchase where category = \"SHOES\" ignoring case",
        )
        .await;
    let exact = server
        .segment(
            "Shoes, exact",
            "performed purchase where category = \"shoes\"",
        )
        .await;
    let prefix = server
        .segment(
            "Shoes and more",
            "performed purchase where category starts with \"sHoEs\" ignoring case at least 1 time",
        )
        .await;
    assert_eq!(server.members(&any_case, 10).await, ["c1"]);
    assert_eq!(server.members(&exact, 10).await, Vec::<String>::new());
    assert_eq!(server.members(&prefix, 10).await, ["c1", "c3"]);

    // The counts kept for these filters come back from the checkpoint
    // written at shutdown, and keep counting the right events afterwards.
    let server = server.restart();
    assert_eq!(server.members(&any_case, 10).await, ["c1"]);
    assert_eq!(server.members(&prefix, 10).await, ["c1", "c3"]);
    server
        .events(json!({"events": [purchase("c4", "SHOES"), purchase("c2", "shoes")]}))
        .await;
    assert_eq!(server.members(&any_case, 10).await, ["c1", "c2", "c4"]);
    assert_eq!(server.members(&exact, 10).await, ["c2"]);
    assert_eq!(server.members(&prefix, 10).await, ["c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn ignoring_case_on_anything_but_strings_is_refused() {
    let server = tiers().await;
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "x", "kind": "dynamic", "condition": "lead_score > 5 ignoring case"})),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert_eq!(
        error["message"],
        "\"ignoring case\" goes only with =, !=, contains, not contains, starts with, ends with, in or not in, not with \">\" at 1:16"
    );
    assert_eq!(error["details"], json!({"line": 1, "column": 16}));

    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments:preview",
            Some(
                json!({"condition_tree": {"all": [{"field": "tier", "op": "is_set"},
                {"field": "lead_score", "op": "eq", "value": 5, "ignore_case": true}]}}),
            ),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert_eq!(
        error["message"],
        "\"ignore_case\" compares strings, and 5 is a number at /all/1/ignore_case"
    );
    assert_eq!(error["details"], json!({"path": "/all/1/ignore_case"}));
    // Nothing was created.
    assert_eq!(server.get("/v1/segments").await["items"], json!([]));
}

#[tokio::test]
async fn the_preview_warns_about_parts_that_never_hold() {
    let server = tiers().await;
    let preview = |condition: &'static str| {
        let server = &server;
        async move {
            server
                .expect(
                    StatusCode::OK,
                    "POST",
                    "/v1/segments:preview",
                    Some(json!({"condition": condition})),
                )
                .await
        }
    };
    let answer = preview("tier is set and lead_score between 10 and 5").await;
    assert_eq!(answer["size"], 0);
    assert_eq!(
        answer["warnings"],
        json!([{"message": "lead_score between 10 and 5 is never true: its first bound is above its second (write between 5 and 10)",
                "path": "/all/1"}])
    );
    let answer =
        preview("created_at > 2030-01-01T00:00:00Z and created_at < 2020-01-01T00:00:00Z").await;
    assert_eq!(
        answer["warnings"],
        json!([{"message": "created_at > 2030-01-01T00:00:00Z and created_at < 2020-01-01T00:00:00Z can't both be true, so this part matches nobody",
                "path": ""}])
    );
    let answer = preview("tier in []").await;
    assert_eq!(
        answer["warnings"][0]["message"],
        "tier in [] is never true: the list is empty"
    );
    // A sound condition has none.
    let answer = preview("lead_score between 5 and 10").await;
    assert_eq!(answer["warnings"], json!([]));
    assert_eq!(answer["size"], 0);
    let answer = preview("tier = \"GOLD\" ignoring case").await;
    assert_eq!(answer["warnings"], json!([]));
    assert_eq!(answer["size"], 3);

    // Warnings are advice: saving the same condition works.
    server
        .segment("Reversed", "lead_score between 10 and 5")
        .await;
}

#[tokio::test]
async fn unknown_names_get_did_you_mean() {
    let server = tiers().await;
    server.segment("VIP customers", "tier = \"gold\"").await;
    let refused = |body: serde_json::Value| {
        let server = &server;
        async move {
            let (status, answer) = server
                .send("POST", "/v1/segments:preview", Some(body))
                .await;
            error_of(
                status,
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_condition",
            )
        }
    };
    let error = refused(json!({"condition": "lead_scor >= 50"})).await;
    assert_eq!(
        error["message"],
        "unknown field \"lead_scor\" at 1:1; did you mean \"lead_score\"?"
    );
    assert_eq!(
        error["details"],
        json!({"line": 1, "column": 1, "did_you_mean": "lead_score"})
    );
    let error =
        refused(json!({"condition_tree": {"not": {"field": "TIERS", "op": "is_set"}}})).await;
    assert_eq!(
        error["details"],
        json!({"path": "/not/field", "did_you_mean": "tier"})
    );
    let error = refused(json!({"condition": "in segment \"VIP customer\""})).await;
    assert_eq!(
        error["message"],
        "unknown segment \"VIP customer\" at 1:12; did you mean \"VIP customers\"?"
    );
    assert_eq!(error["details"]["did_you_mean"], "VIP customers");
    // Far from every name: no guess.
    let error = refused(json!({"condition": "favourite_colour = \"red\""})).await;
    assert_eq!(
        error["message"],
        "unknown field \"favourite_colour\" at 1:1"
    );
    assert_eq!(error["details"], json!({"line": 1, "column": 1}));

    // A property after an unparenthesized where: the message says what to write.
    let error = refused(
        json!({"condition": "performed purchase where amount > 50 and category = \"shoes\""}),
    )
    .await;
    assert_eq!(
        error["message"],
        "unknown field \"category\" at 1:42; if it is a property of the purchase event, put the whole where in parentheses: where (amount > 50 and category = \"shoes\")"
    );
    assert_eq!(error["details"], json!({"line": 1, "column": 42}));
}

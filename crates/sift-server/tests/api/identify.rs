//! Identify (docs/concepts.md "Identify"): merging an anonymous contact into a known one —
//! events, properties, scores and static memberships moved, the anonymous
//! id kept as an alias for later writes, memberships of both recomputed
//! with cause `merge` — idempotency, every refusal with its code and
//! nothing changed, segment sizes split into known and anonymous, and a
//! workflow triggered by a merge entry.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, iso, now_ms};

async fn identify(server: &Server, anonymous_id: &str, contact_id: &str) -> Json {
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": anonymous_id, "contact_id": contact_id})),
        )
        .await
}

fn segment_ids(contact: &Json) -> Vec<String> {
    contact["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// (change, contact, cause) of each change of a segment, in seq order.
async fn change_list(server: &Server, segment: &str) -> Vec<(String, String, String)> {
    server
        .changes(segment)
        .await
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["contact_id"].as_str().unwrap().to_string(),
                c["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn triple(change: &str, contact: &str, cause: &str) -> (String, String, String) {
    (change.into(), contact.into(), cause.into())
}

#[tokio::test]
async fn identify_merges_events_properties_scores_and_static_memberships() {
    let server = Server::new();
    server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/scoring-rules",
            Some(json!({"event_type": "product_view", "points": 5})),
        )
        .await;
    let viewers = server
        .segment("Viewers", "performed product_view at least 3 times")
        .await;
    let anonymous = server.segment("Anonymous", "anonymous = true").await;
    let known_es = server
        .segment("Known in Spain", "anonymous = false and country = \"ES\"")
        .await;
    let vip = server.static_segment("VIP").await;
    let early = iso(now_ms() - 3_600_000);
    server
        .events(json!({"events": [
            {"id": "v1", "contact_id": "anon_1", "type": "product_view", "anonymous": true, "at": early},
            {"id": "v2", "contact_id": "anon_1", "type": "product_view", "anonymous": true},
        ]}))
        .await;
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/contacts/anon_1",
            Some(json!({"properties": {"country": "ES", "first_name": "Guest"}})),
        )
        .await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{vip}/contacts"),
            Some(json!({"contact_ids": ["anon_1"]})),
        )
        .await;
    let anon = server.get("/v1/contacts/anon_1").await;
    assert_eq!(anon["anonymous"], true, "{anon:#}");
    assert!(segment_ids(&anon).contains(&anonymous), "{anon:#}");
    server
        .put_contact(
            "ana",
            json!({"first_name": "Ana", "email": "ana@example.com"}),
        )
        .await;
    server
        .events(json!({"id": "v3", "contact_id": "ana", "type": "product_view"}))
        .await;

    let answer = identify(&server, "anon_1", "ana").await;
    assert_eq!(answer["merged"], true, "{answer:#}");
    let contact = &answer["contact"];
    assert_eq!(contact["id"], "ana");
    assert_eq!(contact["anonymous"], false);
    // Ana's own first name wins; the anonymous contact's country fills the gap.
    assert_eq!(contact["properties"]["first_name"], "Ana");
    assert_eq!(contact["properties"]["country"], "ES");
    assert_eq!(contact["properties"]["email"], "ana@example.com");
    assert_eq!(contact["lead_score"], 15, "{contact:#}");
    assert_eq!(contact["created_at"], anon["created_at"], "the earlier");
    let mut segments = segment_ids(contact);
    segments.sort();
    let mut expected = vec![viewers.clone(), known_es.clone(), vip.clone()];
    expected.sort();
    assert_eq!(segments, expected, "{contact:#}");
    assert_eq!(answer["evaluation"]["entered"], 3, "{answer:#}");
    // anon_1 left Anonymous and VIP.
    assert_eq!(answer["evaluation"]["exited"], 2, "{answer:#}");

    assert_eq!(
        change_list(&server, &anonymous).await,
        vec![
            triple("entered", "anon_1", "event"),
            triple("exited", "anon_1", "merge")
        ]
    );
    assert_eq!(
        change_list(&server, &vip).await,
        vec![
            triple("entered", "anon_1", "static_add"),
            triple("exited", "anon_1", "merge"),
            triple("entered", "ana", "merge")
        ]
    );
    assert_eq!(
        change_list(&server, &viewers).await,
        vec![triple("entered", "ana", "merge")]
    );
    // A re-sent event of the anonymous contact is still a duplicate.
    let again = server
        .events(json!({"id": "v1", "contact_id": "anon_1", "type": "product_view"}))
        .await;
    assert_eq!(again["duplicates"], 1, "{again:#}");
    // The merge survives a restart exactly.
    let server = server.restart();
    let read = server.get("/v1/contacts/ana").await;
    assert_eq!(&read, contact);
    let members = server.members(&vip, 10).await;
    assert_eq!(members, vec!["ana".to_string()]);
}

#[tokio::test]
async fn later_writes_and_reads_addressed_to_the_anonymous_id_go_to_the_known_contact() {
    let server = Server::new();
    let buyers = server.segment("Buyers", "performed purchase").await;
    let vip = server.static_segment("VIP").await;
    server
        .events(json!({"contact_id": "anon_2", "type": "page_visit", "anonymous": true}))
        .await;
    identify(&server, "anon_2", "bob").await;
    // Reads of the alias answer the contact it names.
    let read = server.get("/v1/contacts/anon_2").await;
    assert_eq!(read["id"], "bob");
    let put = server.put_contact("anon_2", json!({"country": "PT"})).await;
    assert_eq!(put["id"], "bob");
    assert_eq!(put["properties"]["country"], "PT");
    let answer = server
        .events(json!({"contact_id": "anon_2", "type": "purchase"}))
        .await;
    assert_eq!(answer["changes"], 1, "{answer:#}");
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(json!({"contacts": [{"id": "anon_2", "properties": {"first_name": "Bob"}}]})),
        )
        .await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{vip}/contacts"),
            Some(json!({"contact_ids": ["anon_2"]})),
        )
        .await;
    let bob = server.get("/v1/contacts/bob").await;
    assert_eq!(bob["properties"]["first_name"], "Bob");
    assert_eq!(server.members(&buyers, 10).await, vec!["bob".to_string()]);
    assert_eq!(server.members(&vip, 10).await, vec!["bob".to_string()]);
    let list = server.get("/v1/contacts?q=anon_2").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list:#}");
    // Erasing bob erases the alias: anon_2 is free for a fresh contact.
    let server = server.restart();
    assert_eq!(server.get("/v1/contacts/anon_2").await["id"], "bob");
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/bob", None)
        .await;
    server
        .expect(StatusCode::NOT_FOUND, "GET", "/v1/contacts/anon_2", None)
        .await;
    let fresh = server.put_contact("anon_2", json!({})).await;
    assert_eq!(fresh["id"], "anon_2");
    assert_eq!(fresh["segments"], json!([]));
}

#[tokio::test]
async fn identify_again_changes_nothing_and_unknown_ids_become_aliases() {
    let server = Server::new();
    let known = server.segment("Known", "anonymous = false").await;
    server
        .events(json!({"contact_id": "anon_3", "type": "page_visit", "anonymous": true}))
        .await;
    identify(&server, "anon_3", "cleo").await;
    let before = server.changes(&known).await;
    let again = identify(&server, "anon_3", "cleo").await;
    assert_eq!(again["merged"], false);
    assert_eq!(again["evaluation"], json!({"entered": 0, "exited": 0}));
    assert_eq!(again["contact"]["id"], "cleo");
    assert_eq!(server.changes(&known).await, before);
    // An id never seen becomes an alias, and its first event lands on the contact.
    let alias = identify(&server, "cookie_9", "cleo").await;
    assert_eq!(alias["merged"], false);
    server
        .events(json!({"contact_id": "cookie_9", "type": "purchase", "anonymous": true}))
        .await;
    let cleo = server.get("/v1/contacts/cookie_9").await;
    assert_eq!(cleo["id"], "cleo");
    assert_eq!(cleo["anonymous"], false);
    // Identifying into a missing contact creates it, known.
    let dan = identify(&server, "cookie_10", "dan").await;
    assert_eq!(dan["contact"]["id"], "dan");
    assert_eq!(dan["contact"]["anonymous"], false);
    assert_eq!(dan["evaluation"]["entered"], 1, "{dan:#}");
}

#[tokio::test]
async fn refused_identifies_say_why_and_change_nothing() {
    let server = Server::new();
    let known = server.segment("Known", "anonymous = false").await;
    server.put_contact("eve", json!({"country": "FR"})).await;
    server.put_contact("finn", json!({"country": "ES"})).await;
    server
        .events(json!({"contact_id": "anon_4", "type": "page_visit", "anonymous": true}))
        .await;
    identify(&server, "anon_4", "eve").await;
    let before_changes = server.changes(&known).await;
    let before_eve = server.get("/v1/contacts/eve").await;
    let before_finn = server.get("/v1/contacts/finn").await;
    let cases: Vec<(Json, StatusCode, &str, &str)> = vec![
        (
            json!({"anonymous_id": "finn", "contact_id": "eve"}),
            StatusCode::CONFLICT,
            "known_contact",
            "known contact",
        ),
        (
            json!({"anonymous_id": "anon_4", "contact_id": "finn"}),
            StatusCode::CONFLICT,
            "already_identified",
            "\"eve\"",
        ),
        (
            json!({"anonymous_id": "eve", "contact_id": "eve"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "both",
        ),
        (
            json!({"anonymous_id": "", "contact_id": "eve"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "1 to 128 bytes",
        ),
        (
            json!({"anonymous_id": "anon_5", "contact_id": "bad\nid"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "1 to 128 bytes",
        ),
        (
            json!({"anonymous_id": "anon_5"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "\"contact_id\" is required",
        ),
        (
            json!({"anonymous_id": 5, "contact_id": "eve"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "must be a string",
        ),
        (
            json!({"anonymous_id": "anon_5", "contact_id": "eve", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "unknown key",
        ),
    ];
    for (body, status, code, says) in cases {
        let (got, answer) = server
            .send("POST", "/v1/identify", Some(body.clone()))
            .await;
        let error = error_of(got, &answer, status, code);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{body} answered {message}");
    }
    assert_eq!(server.changes(&known).await, before_changes);
    assert_eq!(server.get("/v1/contacts/eve").await, before_eve);
    assert_eq!(server.get("/v1/contacts/finn").await, before_finn);
    server
        .expect(StatusCode::NOT_FOUND, "GET", "/v1/contacts/anon_5", None)
        .await;
}

#[tokio::test]
async fn segment_sizes_are_split_into_known_and_anonymous() {
    let server = Server::new();
    let visitors = server.segment("Visitors", "performed page_visit").await;
    server
        .events(json!({"events": [
            {"contact_id": "anon_a", "type": "page_visit", "anonymous": true},
            {"contact_id": "anon_b", "type": "page_visit", "anonymous": true},
            {"contact_id": "gina", "type": "page_visit"},
        ]}))
        .await;
    let segment = server.get(&format!("/v1/segments/{visitors}")).await;
    assert_eq!(
        (
            &segment["size"],
            &segment["size_known"],
            &segment["size_anonymous"]
        ),
        (&json!(3), &json!(1), &json!(2))
    );
    identify(&server, "anon_a", "gina").await;
    let list = server.get("/v1/segments").await;
    let item = &list["items"][0];
    assert_eq!(
        (&item["size"], &item["size_known"], &item["size_anonymous"]),
        (&json!(2), &json!(1), &json!(1)),
        "{list:#}"
    );
}

#[tokio::test]
async fn a_merge_entry_triggers_a_workflow() {
    let server = Server::new();
    let known = server
        .segment("Known buyers", "anonymous = false and performed purchase")
        .await;
    let welcomed = server.static_segment("Welcomed").await;
    server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Welcome identified buyers",
                "status": "active",
                "trigger": {"type": "segment_entered", "segment": known},
                "actions": [{"type": "add_to_segment", "segment": welcomed}]
            })),
        )
        .await;
    server
        .events(json!({"contact_id": "anon_w", "type": "purchase", "anonymous": true}))
        .await;
    identify(&server, "anon_w", "hugo").await;
    for _ in 0..250 {
        if server.members(&welcomed, 10).await == vec!["hugo".to_string()] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the workflow never added hugo to Welcomed");
}

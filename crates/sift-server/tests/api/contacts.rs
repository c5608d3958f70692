//! Contacts (docs/api.md): upsert as a merge patch, batches (all or nothing,
//! failures by index, 413 past 10,000), reads, list/search/pagination,
//! delete with recorded exits, explain.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, ids, redact, walk};

#[tokio::test]
async fn an_upsert_answers_the_contact_in_the_shape_of_the_spec() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    server.segment("France", "country = \"FR\"").await;
    // Listed by name: "adults" before "Spain", whatever the creation order.
    let adults = server.segment("adults", "birth_date <= 2000-01-01").await;
    let contact = server
        .put_contact("c-1", json!({"email": "ana@example.com", "country": "ES", "interests": ["shoes", "bags"], "newsletter": true, "birth_date": "1980-02-29"}))
        .await;
    let expected = json!({
        "id": "c-1",
        "anonymous": false,
        "properties": {
            "email": "ana@example.com",
            "country": "ES",
            "interests": ["bags", "shoes"],
            "newsletter": true,
            "birth_date": "1980-02-29",
        },
        "lead_score": 0,
        "created_at": "[datetime]",
        "updated_at": "[datetime]",
        "last_seen_at": null,
        "segments": [{"id": "[adults]", "name": "adults"}, {"id": "[spain]", "name": "Spain"}],
    });
    let names = [(spain.as_str(), "[spain]"), (adults.as_str(), "[adults]")];
    assert_eq!(redact(&contact, &names), expected);
    let read = server.get("/v1/contacts/c-1").await;
    assert_eq!(read, contact, "GET answers what the PUT answered");
}

#[tokio::test]
async fn an_upsert_lists_segments_by_their_names_of_the_moment() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let adults = server.segment("adults", "birth_date <= 2000-01-01").await;
    let body = json!({"country": "ES", "birth_date": "1980-02-29"});
    let refs = |answer: &Json| -> Vec<(String, String)> {
        answer["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let text = |key: &str| s[key].as_str().unwrap().to_string();
                (text("id"), text("name"))
            })
            .collect()
    };
    let pair = |id: &str, name: &str| (id.to_string(), name.to_string());
    let first = server.put_contact("c-1", body.clone()).await;
    assert_eq!(
        refs(&first),
        [pair(&adults, "adults"), pair(&spain, "Spain")]
    );

    // A rename that needs escaping and moves the segment first in order.
    let name = "\"Ab\" \\ España 🇪🇸";
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/segments/{spain}"),
            Some(json!({"name": name})),
        )
        .await;
    let renamed = server.put_contact("c-1", body.clone()).await;
    assert_eq!(
        refs(&renamed),
        [pair(&spain, name), pair(&adults, "adults")]
    );

    // A segment created since is listed; a deleted one is not.
    let zed = server.segment("Zed", "country = \"ES\"").await;
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/segments/{adults}"),
            None,
        )
        .await;
    let later = server.put_contact("c-1", body).await;
    assert_eq!(refs(&later), [pair(&spain, name), pair(&zed, "Zed")]);
    assert_eq!(server.get("/v1/contacts/c-1").await, later);
}

#[tokio::test]
async fn an_upsert_merges_and_null_removes() {
    let server = Server::new();
    let first = server
        .put_contact(
            "c1",
            json!({"email": "a@x.io", "country": "ES", "first_name": "Ana"}),
        )
        .await;
    let second = server
        .put_contact(
            "c1",
            json!({"country": null, "first_name": "Anna", "plan": "pro"}),
        )
        .await;
    assert_eq!(
        second["properties"],
        json!({"email": "a@x.io", "first_name": "Anna", "plan": "pro"})
    );
    assert_eq!(second["created_at"], first["created_at"]);
    assert!(second["updated_at"].as_str() >= first["updated_at"].as_str());

    // An empty upsert changes no property; removing an unset property is fine.
    let third = server.put_contact("c1", json!({"last_name": null})).await;
    assert_eq!(third["properties"], second["properties"]);
    let body = json!({});
    let fourth = server
        .expect(StatusCode::OK, "PUT", "/v1/contacts/c1", Some(body))
        .await;
    assert_eq!(fourth["properties"], second["properties"]);
}

#[tokio::test]
async fn anonymous_is_set_by_the_upsert() {
    let server = Server::new();
    let body = json!({"properties": {}, "anonymous": true});
    let contact = server
        .expect(StatusCode::OK, "PUT", "/v1/contacts/device-1", Some(body))
        .await;
    assert_eq!(contact["anonymous"], true);
    let contact = server
        .put_contact("device-1", json!({"email": "x@y.z"}))
        .await;
    assert_eq!(
        contact["anonymous"], true,
        "an upsert without anonymous keeps it"
    );
    let segment = server.segment("Anonymous", "anonymous = true").await;
    assert_eq!(server.members(&segment, 10).await, ["device-1"]);
    let body = json!({"properties": {}, "anonymous": false});
    server
        .expect(StatusCode::OK, "PUT", "/v1/contacts/device-1", Some(body))
        .await;
    assert!(server.members(&segment, 10).await.is_empty());
}

#[tokio::test]
async fn contact_ids_may_hold_any_text_but_control_characters() {
    let server = Server::new();
    // `user@example.com`, with a space and a slash, percent-encoded in the path.
    let contact = server
        .put_contact("user%40example.com%20%2F1", json!({}))
        .await;
    assert_eq!(contact["id"], "user@example.com /1");
    let read = server.get("/v1/contacts/user%40example.com%20%2F1").await;
    assert_eq!(read["id"], "user@example.com /1");

    let long = "x".repeat(129);
    for id in ["%01abc", "a%0Ab", long.as_str()] {
        let (status, body) = server
            .send(
                "PUT",
                &format!("/v1/contacts/{id}"),
                Some(json!({"properties": {}})),
            )
            .await;
        error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    server.put_contact(&"x".repeat(128), json!({})).await;
}

#[tokio::test]
async fn unknown_contacts_are_404() {
    let server = Server::new();
    let segment = server.segment("All", "").await;
    for (method, path) in [
        ("GET", "/v1/contacts/ghost".to_string()),
        ("DELETE", "/v1/contacts/ghost".to_string()),
        (
            "GET",
            format!("/v1/contacts/ghost/explain?segment={segment}"),
        ),
    ] {
        let (status, body) = server.send(method, &path, None).await;
        error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn a_batch_upserts_every_item() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let body = json!({"contacts": [
        {"id": "b1", "properties": {"country": "ES", "seats": 1}},
        {"id": "b2", "properties": {"country": "FR"}, "anonymous": true},
        {"id": "b3", "properties": {"country": "ES"}},
        {"id": "b1", "properties": {"email": "b1@x.io"}},
    ]});
    let answer = server
        .expect(StatusCode::OK, "POST", "/v1/contacts:batch", Some(body))
        .await;
    assert_eq!(answer["written"], 4, "{answer:#}");
    assert_eq!(answer["changes"], 2, "{answer:#}");
    let b1 = server.get("/v1/contacts/b1").await;
    assert_eq!(
        b1["properties"],
        json!({"country": "ES", "seats": 1, "email": "b1@x.io"})
    );
    assert_eq!(server.get("/v1/contacts/b2").await["anonymous"], true);
    assert_eq!(server.members(&spain, 10).await, ["b1", "b3"]);
    assert_eq!(
        server.get(&format!("/v1/segments/{spain}")).await["size"],
        2
    );
}

#[tokio::test]
async fn a_batch_with_a_bad_item_applies_nothing_and_names_each_bad_item() {
    let server = Server::new();
    server.put_contact("old", json!({"seats": 1})).await;
    let body = json!({"contacts": [
        {"id": "n0", "properties": {"brand_new_field": "x", "country": "ES"}},
        {"id": "n1", "properties": {"seats": "many"}},
        {"properties": {"country": "ES"}},
        {"id": "n3", "properties": {"country": "PT"}},
        {"id": "old", "properties": {"seats": 2}},
        {"id": "n5", "properties": {"newsletter": "yes"}},
        {"id": "", "properties": {}},
    ]});
    let (status, answer) = server.send("POST", "/v1/contacts:batch", Some(body)).await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let items = error["details"]["items"].as_array().unwrap();
    let indexes: Vec<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [1, 2, 5, 6], "{answer:#}");
    for item in items {
        assert!(
            item["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{item}"
        );
    }
    let n5 = items.iter().find(|i| i["index"] == 5).unwrap();
    assert_eq!(n5["details"]["field"], "newsletter");
    assert_eq!(n5["details"]["expected"], "boolean");

    // Nothing was applied: no contact, no field, no change to "old".
    for id in ["n0", "n3"] {
        let (status, _) = server
            .send("GET", &format!("/v1/contacts/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        server.get("/v1/contacts/old").await["properties"]["seats"],
        1
    );
    let fields = server.get("/v1/fields").await;
    let names: Vec<&Json> = fields["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["name"])
        .collect();
    assert!(
        !names.contains(&&json!("brand_new_field")),
        "a refused batch creates no field"
    );
}

#[tokio::test]
async fn a_batch_of_one_bad_item_still_reports_its_index() {
    let server = Server::new();
    let body = json!({"contacts": [{"id": "x", "properties": {"newsletter": 3}}]});
    let (status, answer) = server.send("POST", "/v1/contacts:batch", Some(body)).await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["items"][0]["index"], 0);
    assert_eq!(
        error["details"]["items"][0]["details"]["field"],
        "newsletter"
    );
}

#[tokio::test]
async fn a_batch_takes_10000_items_and_refuses_more_with_413() {
    let server = Server::new();
    let items = |n: usize| -> Json {
        json!({"contacts": (0..n).map(|i| json!({"id": format!("c{i}"), "properties": {"seats": i}})).collect::<Vec<_>>()})
    };
    let (status, answer) = server
        .send("POST", "/v1/contacts:batch", Some(items(10_001)))
        .await;
    error_of(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let list = server.get("/v1/contacts?limit=1").await;
    assert_eq!(list["items"], json!([]), "a refused batch writes nothing");

    let answer = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(items(10_000)),
        )
        .await;
    assert_eq!(answer["written"], 10_000);
    assert_eq!(
        server.get("/v1/contacts/c9999").await["properties"]["seats"],
        9999
    );
}

#[tokio::test]
async fn list_searches_id_and_email_without_case() {
    let server = Server::new();
    server
        .put_contact("alice", json!({"email": "Alice@Shop.example"}))
        .await;
    server
        .put_contact("bob", json!({"email": "bob@other.example"}))
        .await;
    server.put_contact("SHOPKEEPER", json!({})).await;
    let list = server.get("/v1/contacts?q=shop").await;
    assert_eq!(ids(&list), ["alice", "SHOPKEEPER"]);
    assert_eq!(list["next_cursor"], Json::Null);
    let list = server.get("/v1/contacts?q=BOB").await;
    assert_eq!(ids(&list), ["bob"]);
    let list = server.get("/v1/contacts?q=nobody").await;
    assert_eq!(list, json!({"items": [], "next_cursor": null}));
    let list = server.get("/v1/contacts?q=").await;
    assert_eq!(ids(&list).len(), 3);
}

#[tokio::test]
async fn list_walks_every_page_of_all_contacts_and_of_a_segment() {
    let server = Server::new();
    for (field, field_type) in [("seats", "number"), ("parity", "string")] {
        let body = json!({"type": field_type});
        let path = format!("/v1/fields/{field}");
        server
            .expect(StatusCode::OK, "PUT", &path, Some(body))
            .await;
    }
    let even = server
        .segment("Even", "seats between 0 and 1000 and parity = \"even\"")
        .await;
    let mut all = Vec::new();
    let mut evens = Vec::new();
    for i in 0..53 {
        let id = format!("c{i:02}");
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        server
            .put_contact(&id, json!({"seats": i, "parity": parity}))
            .await;
        if i % 2 == 0 {
            evens.push(id.clone());
        }
        all.push(id);
    }
    assert_eq!(walk(&server, "/v1/contacts?limit=7").await, all);
    assert_eq!(walk(&server, "/v1/contacts?limit=1000").await, all);
    assert_eq!(walk(&server, "/v1/contacts?limit=1").await, all);
    assert_eq!(
        walk(&server, &format!("/v1/contacts?segment={even}&limit=5")).await,
        evens
    );
    assert_eq!(
        walk(&server, "/v1/contacts?q=c1&limit=3").await,
        (10..20).map(|i| format!("c{i}")).collect::<Vec<_>>()
    );
    assert_eq!(server.members(&even, 4).await, evens);
    assert_eq!(
        server.get(&format!("/v1/segments/{even}")).await["size"],
        evens.len()
    );

    // Default page size is 100, so one page holds all 53.
    let list = server.get("/v1/contacts").await;
    assert_eq!(ids(&list), all);
    assert_eq!(list["next_cursor"], Json::Null);

    // A contact deleted between pages is skipped, not repeated.
    let first = server.get("/v1/contacts?limit=10").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/c10", None)
        .await;
    let second = server
        .get(&format!("/v1/contacts?limit=10&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second)[0], "c11");
}

#[tokio::test]
async fn bad_list_parameters_are_400_and_unknown_segments_404() {
    let server = Server::new();
    for path in [
        "/v1/contacts?limit=0",
        "/v1/contacts?limit=1001",
        "/v1/contacts?limit=ten",
        "/v1/contacts?cursor=bogus",
    ] {
        let (status, body) = server.send("GET", path, None).await;
        error_of(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (status, body) = server
        .send("GET", "/v1/contacts?segment=seg_nope", None)
        .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn delete_erases_the_contact_and_records_its_exits() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let all = server.segment("Everyone", "").await;
    let picks = server.static_segment("Picks").await;
    server
        .put_contact("gone", json!({"country": "ES", "email": "gone@x.io"}))
        .await;
    server.put_contact("stays", json!({"country": "ES"})).await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{picks}/contacts"),
            Some(json!({"contact_ids": ["gone"]})),
        )
        .await;

    let answer = server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/gone", None)
        .await;
    assert_eq!(answer["exited"], 3, "{answer:#}");
    let (status, _) = server.send("GET", "/v1/contacts/gone", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.send("DELETE", "/v1/contacts/gone", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ids(&server.get("/v1/contacts").await), ["stays"]);
    assert_eq!(
        server.get("/v1/contacts?q=gone@x.io").await["items"],
        json!([])
    );

    for segment in [&spain, &all, &picks] {
        assert_eq!(
            server.members(segment, 10).await,
            if *segment == picks {
                vec![]
            } else {
                vec!["stays".to_string()]
            }
        );
        let changes = server.changes(segment).await;
        let last = changes.last().unwrap();
        assert_eq!(last["contact_id"], "gone", "{changes:#?}");
        assert_eq!(last["change"], "exited");
        assert_eq!(last["cause"], "contact_delete");
    }

    // The id can be used again: a new contact with no old data.
    let again = server.put_contact("gone", json!({})).await;
    assert_eq!(again["properties"], json!({}));
    assert_eq!(again["segments"], json!([{"id": all, "name": "Everyone"}]));
}

#[tokio::test]
async fn explain_answers_each_node_of_the_condition() {
    let server = Server::new();
    let segment = server
        .segment(
            "Spanish subscribers",
            "country = \"ES\" and (newsletter = true or lead_score >= 50)",
        )
        .await;
    server
        .put_contact("c1", json!({"country": "ES", "newsletter": false}))
        .await;
    let explained = server
        .get(&format!("/v1/contacts/c1/explain?segment={segment}"))
        .await;
    let expected = json!({
        "contact_id": "c1",
        "segment_id": "[seg]",
        "member": false,
        "explanation": {
            "condition": "country = \"ES\" and (newsletter = true or lead_score >= 50)",
            "result": false,
            "next_change": null,
            "children": [
                {"condition": "country = \"ES\"", "result": true, "next_change": null, "value": "ES"},
                {
                    "condition": "newsletter = true or lead_score >= 50",
                    "result": false,
                    "next_change": null,
                    "children": [
                        {"condition": "newsletter = true", "result": false, "next_change": null, "value": false},
                        {"condition": "lead_score >= 50", "result": false, "next_change": null, "value": 0},
                    ],
                },
            ],
        },
    });
    assert_eq!(redact(&explained, &[(&segment, "[seg]")]), expected);

    server.put_contact("c1", json!({"newsletter": true})).await;
    let explained = server
        .get(&format!("/v1/contacts/c1/explain?segment={segment}"))
        .await;
    assert_eq!(explained["member"], true);
    assert_eq!(explained["explanation"]["result"], true);
    assert_eq!(
        explained["explanation"]["children"][1]["children"][0]["result"],
        true
    );

    let (status, body) = server
        .send("GET", "/v1/contacts/c1/explain?segment=seg_nope", None)
        .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = server.send("GET", "/v1/contacts/c1/explain", None).await;
    assert!(status.is_client_error(), "{status} {body}");
}

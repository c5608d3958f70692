//! Segments (docs/concepts.md "Segment", §2, §4): create from text or tree, list and
//! search, get, edit with entered/exited, delete refused while in use,
//! preview, members, static add/remove, usages, references by name.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, ids, redact};

/// Five contacts: three Spanish (two subscribed), a French, a Portuguese.
async fn shop() -> Server {
    let server = Server::new();
    for (id, country, newsletter) in [
        ("ana", "ES", true),
        ("bea", "ES", false),
        ("carla", "FR", true),
        ("dani", "ES", true),
        ("eva", "PT", false),
    ] {
        server
            .put_contact(id, json!({"country": country, "newsletter": newsletter}))
            .await;
    }
    server
}

#[tokio::test]
async fn create_from_text_evaluates_and_answers_the_spec_shape() {
    let server = shop().await;
    let body = json!({"name": "Spanish subscribers", "description": "for the ES newsletter", "kind": "dynamic",
                      "condition": "newsletter = TRUE AND country = \"ES\""});
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let expected = json!({
        "id": "[seg]",
        "name": "Spanish subscribers",
        "description": "for the ES newsletter",
        "kind": "dynamic",
        "condition": "newsletter = true and country = \"ES\"",
        "condition_tree": {"all": [
            {"field": "newsletter", "op": "eq", "value": true},
            {"field": "country", "op": "eq", "value": "ES"},
        ]},
        "test": false,
        "size": 2,
        "size_known": 2,
        "size_anonymous": 0,
        "created_at": "[datetime]",
        "updated_at": "[datetime]",
        "evaluation": {"entered": 2, "exited": 0, "took_ms": "[ms]",
                       "history_events_read": 0, "history_ms": 0.0},
    });
    assert_eq!(redact(&created, &[(&id, "[seg]")]), expected);

    // GET answers the same segment, without the evaluation.
    let mut read = server.get(&format!("/v1/segments/{id}")).await;
    let mut without = created.clone();
    without.as_object_mut().unwrap().remove("evaluation");
    assert_eq!(read, without);
    assert!(read.as_object_mut().unwrap().remove("evaluation").is_none());

    assert_eq!(server.members(&id, 10).await, ["ana", "dani"]);
    let ana = server.get("/v1/contacts/ana").await;
    assert_eq!(
        ana["segments"],
        json!([{"id": id, "name": "Spanish subscribers"}])
    );
}

#[tokio::test]
async fn create_from_a_tree_answers_the_canonical_text_and_round_trips() {
    let server = shop().await;
    let tree = json!({"any": [
        {"field": "country", "op": "in", "value": ["FR", "PT"]},
        {"not": {"field": "newsletter", "op": "eq", "value": true}},
    ]});
    let body = json!({"name": "Not Spain or unsubscribed", "condition_tree": tree});
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
        .await;
    assert_eq!(created["kind"], "dynamic", "kind defaults to dynamic");
    assert_eq!(created["condition_tree"], tree);
    let text = created["condition"].as_str().unwrap().to_string();
    assert_eq!(text, "country in [\"FR\", \"PT\"] or not newsletter = true");
    assert_eq!(created["size"], 3);
    assert_eq!(created["evaluation"]["entered"], 3);

    // Its text creates the same tree, and that tree prints the same text.
    let again = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/segments",
            Some(json!({"name": "Copy", "condition": text})),
        )
        .await;
    assert_eq!(again["condition_tree"], tree);
    assert_eq!(again["condition"], created["condition"]);
    assert_eq!(again["size"], 3);
}

#[tokio::test]
async fn static_and_test_segments_have_no_condition() {
    let server = shop().await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/segments",
            Some(json!({"name": "Testers", "kind": "static", "test": true})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let expected = json!({
        "id": "[seg]", "name": "Testers", "description": "", "kind": "static",
        "condition": null, "condition_tree": null, "test": true, "size": 0,
        "size_known": 0, "size_anonymous": 0,
        "created_at": "[datetime]", "updated_at": "[datetime]",
        "evaluation": {"entered": 0, "exited": 0, "took_ms": "[ms]",
                       "history_events_read": 0, "history_ms": 0.0},
    });
    assert_eq!(redact(&created, &[(&id, "[seg]")]), expected);

    for body in [
        json!({"name": "S", "kind": "static", "condition": "country = \"ES\""}),
        json!({"name": "T", "kind": "dynamic", "condition": "", "test": true}),
        json!({"name": "U", "kind": "dynamic"}),
        json!({"name": "V", "kind": "sometimes", "condition": ""}),
        json!({"kind": "static"}),
        json!({"name": "   ", "kind": "static"}),
        json!({"name": "W", "kind": "static", "colour": "red"}),
        json!({"name": 7, "kind": "static"}),
    ] {
        let (status, answer) = server
            .send("POST", "/v1/segments", Some(body.clone()))
            .await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    assert_eq!(ids(&server.get("/v1/segments").await), [id]);
}

#[tokio::test]
async fn names_are_unique_without_case() {
    let server = shop().await;
    server.segment("VIP", "country = \"ES\"").await;
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "vip", "kind": "static"})),
        )
        .await;
    let error = error_of(status, &answer, StatusCode::CONFLICT, "name_taken");
    assert_eq!(error["details"]["name"], "vip");
    assert_eq!(error["details"]["field"], "name");
    let other = server.static_segment("Other").await;
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/segments/{other}"),
            Some(json!({"name": "Vip"})),
        )
        .await;
    error_of(status, &answer, StatusCode::CONFLICT, "name_taken");
    // Renaming a segment to its own name in another case is fine.
    let renamed = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/segments/{other}"),
            Some(json!({"name": "OTHER"})),
        )
        .await;
    assert_eq!(renamed["name"], "OTHER");
}

#[tokio::test]
async fn list_searches_names_and_answers_sizes() {
    let server = shop().await;
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let subs = server
        .segment("Newsletter subscribers", "newsletter = true")
        .await;
    let picks = server.static_segment("spanish picks").await;
    let list = server.get("/v1/segments").await;
    assert_eq!(list["next_cursor"], Json::Null);
    let summary: Vec<(String, u64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Newsletter subscribers".to_string(), 3),
            ("Spain".to_string(), 3),
            ("spanish picks".to_string(), 0)
        ]
    );
    for item in list["items"].as_array().unwrap() {
        let mut keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "condition",
                "condition_tree",
                "created_at",
                "description",
                "id",
                "kind",
                "name",
                "size",
                "size_anonymous",
                "size_known",
                "test",
                "updated_at"
            ]
        );
    }
    assert_eq!(
        ids(&server.get("/v1/segments?q=SPA").await),
        [spain.clone(), picks]
    );
    assert_eq!(ids(&server.get("/v1/segments?q=letter").await), [subs]);
    assert_eq!(
        server.get("/v1/segments?q=zzz").await,
        json!({"items": [], "next_cursor": null})
    );
    let (status, answer) = server.send("GET", "/v1/segments/seg_nope", None).await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn patch_re_evaluates_and_answers_entered_and_exited() {
    let server = shop().await;
    let id = server.segment("Target", "country = \"ES\"").await;
    let before = server.get(&format!("/v1/segments/{id}")).await;
    let path = format!("/v1/segments/{id}");

    // ES {ana, bea, dani} -> subscribed {ana, carla, dani}: carla enters, bea exits.
    let edited = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"condition": "newsletter = true"})),
        )
        .await;
    assert_eq!(edited["evaluation"]["entered"], 1, "{edited:#}");
    assert_eq!(edited["evaluation"]["exited"], 1, "{edited:#}");
    assert_eq!(edited["size"], 3);
    assert_eq!(edited["condition"], "newsletter = true");
    assert_eq!(
        edited["condition_tree"],
        json!({"field": "newsletter", "op": "eq", "value": true})
    );
    assert_eq!(edited["name"], "Target");
    assert_eq!(edited["created_at"], before["created_at"]);
    assert_eq!(server.members(&id, 10).await, ["ana", "carla", "dani"]);
    let changes = server.changes(&id).await;
    let edits: Vec<(&str, &str, &str)> = changes
        .iter()
        .skip(3)
        .map(|c| {
            (
                c["contact_id"].as_str().unwrap(),
                c["change"].as_str().unwrap(),
                c["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(edits.len(), 2, "{changes:#?}");
    assert!(edits.contains(&("carla", "entered", "segment_edit")));
    assert!(edits.contains(&("bea", "exited", "segment_edit")));

    // Name and description only: no re-evaluation, nothing enters or leaves.
    let edited = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"name": "Subscribers", "description": "all of them"})),
        )
        .await;
    assert_eq!(edited["evaluation"]["entered"], 0);
    assert_eq!(edited["evaluation"]["exited"], 0);
    assert_eq!(edited["name"], "Subscribers");
    assert_eq!(edited["description"], "all of them");
    assert_eq!(edited["condition"], "newsletter = true");
    assert_eq!(server.get(&path).await["name"], "Subscribers");

    // A tree edit works the same.
    let edited = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"condition_tree": {"field": "country", "op": "eq", "value": "PT"}})),
        )
        .await;
    assert_eq!(
        edited["evaluation"],
        json!({"entered": 1, "exited": 3, "took_ms": edited["evaluation"]["took_ms"],
               "history_events_read": 0, "history_ms": 0.0})
    );
    assert_eq!(server.members(&id, 10).await, ["eva"]);
}

#[tokio::test]
async fn patch_refuses_what_it_cannot_do() {
    let server = shop().await;
    let dynamic = server.segment("Spain", "country = \"ES\"").await;
    let picks = server.static_segment("Picks").await;
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/segments/{picks}"),
            Some(json!({"condition": "country = \"ES\""})),
        )
        .await;
    error_of(status, &answer, StatusCode::CONFLICT, "wrong_segment_kind");
    let (status, answer) = server
        .send("PATCH", "/v1/segments/seg_nope", Some(json!({"name": "x"})))
        .await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/segments/{dynamic}"),
            Some(json!({"kind": "static"})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/segments/{dynamic}"),
            Some(json!({"condition": "country = "})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    let segment = server.get(&format!("/v1/segments/{dynamic}")).await;
    assert_eq!(segment["condition"], "country = \"ES\"");
    assert_eq!(segment["size"], 3);
}

#[tokio::test]
async fn references_are_by_id_so_renaming_keeps_them() {
    let server = shop().await;
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/segments",
            Some(json!({"name": "Spanish subscribers", "condition": "in segment \"spain\" and newsletter = true"})),
        )
        .await;
    let subs = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["condition"],
        "in segment \"Spain\" and newsletter = true"
    );
    assert_eq!(
        created["condition_tree"]["all"][0],
        json!({"in_segment": spain})
    );
    assert_eq!(created["size"], 2);

    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/segments/{spain}"),
            Some(json!({"name": "España"})),
        )
        .await;
    let read = server.get(&format!("/v1/segments/{subs}")).await;
    assert_eq!(
        read["condition"],
        "in segment \"España\" and newsletter = true"
    );
    assert_eq!(read["size"], 2);

    // A change of the referred segment's membership flows through.
    server.put_contact("bea", json!({"newsletter": true})).await;
    assert_eq!(server.members(&subs, 10).await, ["ana", "bea", "dani"]);
    server.put_contact("ana", json!({"country": "FR"})).await;
    assert_eq!(server.members(&subs, 10).await, ["bea", "dani"]);
    let last = server.changes(&subs).await.pop().unwrap();
    assert_eq!(
        (
            last["contact_id"].as_str(),
            last["change"].as_str(),
            last["cause"].as_str()
        ),
        (Some("ana"), Some("exited"), Some("segment_ref"))
    );
}

#[tokio::test]
async fn delete_is_refused_with_usages_while_referenced() {
    let server = shop().await;
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let subs = server
        .segment(
            "Spanish subscribers",
            "in segment \"Spain\" and newsletter = true",
        )
        .await;
    let usages = server.get(&format!("/v1/segments/{spain}/usages")).await;
    assert_eq!(
        usages,
        json!({"items": [{"type": "segment", "id": subs, "name": "Spanish subscribers", "role": "condition"}], "next_cursor": null})
    );
    assert_eq!(
        server.get(&format!("/v1/segments/{subs}/usages")).await["items"],
        json!([])
    );

    let (status, answer) = server
        .send("DELETE", &format!("/v1/segments/{spain}"), None)
        .await;
    let error = error_of(status, &answer, StatusCode::CONFLICT, "segment_in_use");
    assert_eq!(error["details"]["usages"], usages["items"]);
    assert_eq!(
        server.get(&format!("/v1/segments/{spain}")).await["size"],
        3
    );

    let deleted = server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/segments/{subs}"),
            None,
        )
        .await;
    assert_eq!(deleted, json!({"id": subs, "deleted": true}));
    assert_eq!(
        server.get(&format!("/v1/segments/{spain}/usages")).await["items"],
        json!([])
    );
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/segments/{spain}"),
            None,
        )
        .await;
    for path in [
        format!("/v1/segments/{spain}"),
        format!("/v1/segments/{spain}/usages"),
        format!("/v1/segments/{spain}/contacts"),
    ] {
        let (status, answer) = server.send("GET", &path, None).await;
        error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, _) = server
        .send("DELETE", &format!("/v1/segments/{spain}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/v1/contacts/ana").await["segments"], json!([]));
    assert_eq!(server.get("/v1/segments").await["items"], json!([]));
    // The name is free again.
    server.segment("Spain", "country = \"ES\"").await;
}

#[tokio::test]
async fn preview_answers_size_sample_and_the_difference_to_a_segment() {
    let server = shop().await;
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let preview = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "newsletter = true", "sample": 2})),
        )
        .await;
    assert_eq!(preview["size"], 3, "{preview:#}");
    assert_eq!(ids(&json!({"items": preview["sample"]})), ["ana", "carla"]);
    assert_eq!(
        preview["sample"][0]["properties"],
        json!({"country": "ES", "newsletter": true})
    );
    assert_eq!(preview["condition"], "newsletter = true");
    assert_eq!(
        preview["condition_tree"],
        json!({"field": "newsletter", "op": "eq", "value": true})
    );
    assert!(preview.get("entering").is_none());

    let preview = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition_tree": {"field": "newsletter", "op": "eq", "value": true}, "segment_id": spain})),
        )
        .await;
    assert_eq!(preview["size"], 3);
    assert_eq!(preview["sample"].as_array().unwrap().len(), 3);
    assert_eq!(preview["entering"], 1, "carla would enter: {preview:#}");
    assert_eq!(preview["leaving"], 1, "bea would leave: {preview:#}");

    // A preview saves nothing.
    assert_eq!(ids(&server.get("/v1/segments").await), [spain.as_str()]);
    assert_eq!(server.members(&spain, 10).await, ["ana", "bea", "dani"]);
    assert_eq!(server.changes(&spain).await.len(), 3);

    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "colour = \"red\""})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "", "segment_id": "seg_nope"})),
        )
        .await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": "", "sample": 101})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn members_walk_every_page() {
    let server = Server::new();
    let mut expected = Vec::new();
    for i in 0..40 {
        let id = format!("m{i:02}");
        server.put_contact(&id, json!({"seats": i})).await;
        if i % 3 != 0 {
            expected.push(id);
        }
    }
    let segment = server
        .segment(
            "Not a multiple of three",
            "not seats in [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39]",
        )
        .await;
    assert_eq!(server.members(&segment, 6).await, expected);
    assert_eq!(server.members(&segment, 1000).await, expected);
    let page = server
        .get(&format!("/v1/segments/{segment}/contacts?limit=2"))
        .await;
    assert_eq!(ids(&page), ["m01", "m02"]);
    assert!(page["next_cursor"].is_string());
    assert_eq!(
        page["items"][0]["segments"],
        json!([{"id": segment, "name": "Not a multiple of three"}])
    );
    let (status, answer) = server
        .send(
            "GET",
            &format!("/v1/segments/{segment}/contacts?limit=0"),
            None,
        )
        .await;
    error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn static_members_are_added_and_removed_by_hand_only() {
    let server = shop().await;
    let picks = server.static_segment("Picks").await;
    let path = format!("/v1/segments/{picks}/contacts");
    let answer = server
        .expect(
            StatusCode::OK,
            "POST",
            &path,
            Some(json!({"contact_ids": ["eva", "ana", "carla"]})),
        )
        .await;
    assert_eq!(answer, json!({"added": 3, "removed": 0, "size": 3}));
    let answer = server
        .expect(
            StatusCode::OK,
            "POST",
            &path,
            Some(json!({"contact_ids": ["ana", "bea"]})),
        )
        .await;
    assert_eq!(
        answer,
        json!({"added": 1, "removed": 0, "size": 4}),
        "adding a member again adds nothing"
    );
    let answer = server
        .expect(
            StatusCode::OK,
            "DELETE",
            &path,
            Some(json!({"contact_ids": ["ana", "dani"]})),
        )
        .await;
    assert_eq!(answer, json!({"added": 0, "removed": 1, "size": 3}));
    assert_eq!(server.members(&picks, 10).await, ["bea", "carla", "eva"]);
    assert_eq!(
        server.get(&format!("/v1/segments/{picks}")).await["size"],
        3
    );

    let log: Vec<(String, String, String)> = server
        .changes(&picks)
        .await
        .iter()
        .map(|c| {
            (
                c["contact_id"].as_str().unwrap().into(),
                c["change"].as_str().unwrap().into(),
                c["cause"].as_str().unwrap().into(),
            )
        })
        .collect();
    let entered = |id: &str| {
        (
            id.to_string(),
            "entered".to_string(),
            "static_add".to_string(),
        )
    };
    assert_eq!(log.len(), 5, "{log:?}");
    for id in ["ana", "carla", "eva", "bea"] {
        assert!(log.contains(&entered(id)), "{log:?}");
    }
    assert_eq!(
        log[4],
        ("ana".into(), "exited".into(), "static_remove".into())
    );

    // An unknown contact refuses the whole request.
    let (status, answer) = server
        .send(
            "POST",
            &path,
            Some(json!({"contact_ids": ["dani", "ghost"]})),
        )
        .await;
    let error = error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(error["details"]["contact_ids"], json!(["ghost"]));
    assert_eq!(server.members(&picks, 10).await, ["bea", "carla", "eva"]);

    // Dynamic segments take no members by hand.
    let spain = server.segment("Spain", "country = \"ES\"").await;
    for method in ["POST", "DELETE"] {
        let (status, answer) = server
            .send(
                method,
                &format!("/v1/segments/{spain}/contacts"),
                Some(json!({"contact_ids": ["eva"]})),
            )
            .await;
        error_of(status, &answer, StatusCode::CONFLICT, "wrong_segment_kind");
    }
    assert_eq!(server.members(&spain, 10).await, ["ana", "bea", "dani"]);
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments/seg_nope/contacts",
            Some(json!({"contact_ids": ["eva"]})),
        )
        .await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_static_change_flows_into_segments_that_refer_to_it() {
    let server = shop().await;
    let vip = server.static_segment("VIP").await;
    let vip_es = server
        .segment("Spanish VIP", "in segment \"VIP\" and country = \"ES\"")
        .await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{vip}/contacts"),
            Some(json!({"contact_ids": ["ana", "carla"]})),
        )
        .await;
    assert_eq!(server.members(&vip_es, 10).await, ["ana"]);
    assert_eq!(
        server.get(&format!("/v1/segments/{vip_es}")).await["size"],
        1
    );
    let log = server.changes(&vip_es).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["cause"], "segment_ref");
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/segments/{vip}/contacts"),
            Some(json!({"contact_ids": ["ana"]})),
        )
        .await;
    assert!(server.members(&vip_es, 10).await.is_empty());
    let usages = server.get(&format!("/v1/segments/{vip}/usages")).await;
    assert_eq!(ids(&usages), [vip_es]);
}

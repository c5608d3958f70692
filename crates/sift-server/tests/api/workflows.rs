//! Workflows through the API (docs/concepts.md "Workflow", §4): "when a contact
//! enters VIP, add it to Gifted and add 10 points" driven by contact writes
//! and events across restarts, test mode, usages and the refused delete,
//! the cascade bound, refused bodies, and the webhook action.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of};

/// Declares the number field `orders` the segments here read.
pub async fn orders_field(server: &Server) {
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/orders",
            Some(json!({"type": "number"})),
        )
        .await;
}

/// Creates a workflow and answers its id.
async fn workflow(server: &Server, body: Json) -> String {
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/workflows", Some(body))
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// Every run of a workflow, newest first, following `next_cursor`.
async fn runs(server: &Server, id: &str, query: &str) -> Vec<Json> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/workflows/{id}/runs?limit=7{query}");
        if let Some(c) = &cursor {
            path += &format!("&cursor={c}");
        }
        let page = server.get(&path).await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

/// Waits until no workflow has triggers queued and their runs are durable.
async fn settle(server: &Server) {
    for _ in 0..500 {
        let list = server.get("/v1/workflows").await;
        let queued: u64 = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["queued"].as_u64().unwrap())
            .sum();
        if queued == 0 {
            // The last run write may still be committing.
            tokio::time::sleep(Duration::from_millis(30)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("workflows never finished running");
}

fn gift_body(vip: &str, gifted: &str) -> Json {
    json!({
        "name": "Gift new VIPs",
        "status": "active",
        "trigger": {"type": "segment_entered", "segment": vip},
        "actions": [
            {"type": "add_to_segment", "segment": gifted},
            {"type": "add_score", "points": 10}
        ]
    })
}

/// Contact writes and events that move contacts in and out of VIP.
async fn burst(server: &Server, round: u32) {
    let contacts: Vec<Json> = (0..30)
        .map(|i| {
            let orders = (i + round * 3) % 8;
            json!({"id": format!("c{i}"), "properties": {"orders": orders}})
        })
        .collect();
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(json!({"contacts": contacts})),
        )
        .await;
    for i in (0..30).step_by(4) {
        server
            .events(json!({"id": format!("e{round}-{i}"), "contact_id": format!("c{i}"), "type": "purchase"}))
            .await;
        server
            .put_contact(&format!("c{}", i + 1), json!({"orders": round % 2 * 6}))
            .await;
    }
}

/// Checks the outcome against the change log: every entry into VIP ran
/// once, Gifted holds everyone who ever entered, and each score is ten
/// points per entry.
async fn check_exact(server: &Server, vip: &str, gifted: &str, wf: &str) {
    let entries: Vec<Json> = server
        .changes(vip)
        .await
        .into_iter()
        .filter(|c| c["change"] == "entered")
        .collect();
    assert!(
        entries.len() > 30,
        "the burst made {} entries",
        entries.len()
    );
    let mut per_contact: BTreeMap<String, u64> = BTreeMap::new();
    for change in &entries {
        *per_contact
            .entry(change["contact_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let all = runs(server, wf, "").await;
    let seqs: Vec<u64> = all
        .iter()
        .map(|r| r["trigger"]["seq"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(seqs.len(), distinct.len(), "a trigger seq ran twice");
    let expected: BTreeSet<u64> = entries.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(distinct, expected, "runs differ from VIP's entries");
    assert!(all.iter().all(|r| r["status"] == "done"), "{all:#?}");
    // Newest first.
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));
    let members: BTreeSet<String> = server.members(gifted, 1000).await.into_iter().collect();
    assert_eq!(
        members,
        per_contact.keys().cloned().collect::<BTreeSet<_>>()
    );
    for i in 0..30 {
        let id = format!("c{i}");
        let contact = server.get(&format!("/v1/contacts/{id}")).await;
        let expected = 10 * per_contact.get(&id).copied().unwrap_or(0);
        assert_eq!(contact["lead_score"], json!(expected), "{id}");
    }
}

#[tokio::test]
async fn vip_entries_fill_gifted_and_give_points_once_across_restarts() {
    // The first process queues triggers but runs none of them.
    let server = Server::with(|config| config.run_workflows = false);
    orders_field(&server).await;
    let vip = server
        .segment("VIP", "orders >= 5 or performed purchase at least 3 times")
        .await;
    let gifted = server.static_segment("Gifted").await;
    let wf = workflow(&server, gift_body(&vip, &gifted)).await;
    burst(&server, 0).await;
    let queued = server.get(&format!("/v1/workflows/{wf}")).await["queued"]
        .as_u64()
        .unwrap();
    assert!(queued > 5, "{queued} queued");
    assert!(server.members(&gifted, 100).await.is_empty());
    // Restarted with the runner: the queue survives and runs.
    let server = server.restart_with(|config| config.run_workflows = true);
    // Restarts in the middle of further bursts: no action lost or doubled.
    for round in 1..5 {
        burst(&server, round).await;
    }
    let server = server.restart();
    burst(&server, 5).await;
    let server = server.restart();
    settle(&server).await;
    check_exact(&server, &vip, &gifted, &wf).await;
    // A last restart changes nothing.
    let server = server.restart();
    settle(&server).await;
    check_exact(&server, &vip, &gifted, &wf).await;
}

#[tokio::test]
async fn test_mode_runs_only_for_the_test_segment() {
    let server = Server::new();
    orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/segments",
            Some(json!({"name": "QA team", "kind": "static", "test": true})),
        )
        .await;
    let testers = created["id"].as_str().unwrap().to_string();
    let gifted = server.static_segment("Gifted").await;
    let mut body = gift_body(&vip, &gifted);
    body["status"] = json!("test");
    body["test_segment"] = json!(testers);
    let wf = workflow(&server, body).await;
    server.put_contact("tester", json!({"orders": 0})).await;
    server.put_contact("customer", json!({"orders": 0})).await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{testers}/contacts"),
            Some(json!({"contact_ids": ["tester"]})),
        )
        .await;
    server.put_contact("tester", json!({"orders": 9})).await;
    server.put_contact("customer", json!({"orders": 9})).await;
    settle(&server).await;
    assert_eq!(server.members(&gifted, 10).await, vec!["tester"]);
    assert_eq!(server.get("/v1/contacts/customer").await["lead_score"], 0);
    assert_eq!(server.get("/v1/contacts/tester").await["lead_score"], 10);
    let tested = runs(&server, &wf, "&mode=test").await;
    assert_eq!(tested.len(), 1);
    assert_eq!(tested[0]["contact_id"], "tester");
    assert_eq!(tested[0]["mode"], "test");
    assert!(runs(&server, &wf, "&mode=active").await.is_empty());
    // Activated, it runs for everyone from then on, never for the past.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/workflows/{wf}"),
            Some(json!({"status": "active"})),
        )
        .await;
    server.put_contact("newcomer", json!({"orders": 7})).await;
    settle(&server).await;
    assert_eq!(
        server.members(&gifted, 10).await,
        vec!["tester", "newcomer"]
    );
    let active = runs(&server, &wf, "&mode=active&status=done").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["contact_id"], "newcomer");
    let mine = runs(&server, &wf, "&contact_id=tester").await;
    assert_eq!(mine.len(), 1);
}

#[tokio::test]
async fn usages_list_workflows_and_a_segment_in_use_cannot_be_deleted() {
    let server = Server::new();
    orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let gifted = server.static_segment("Gifted").await;
    let wf = workflow(&server, gift_body(&vip, &gifted)).await;
    let mut filtered = gift_body(&gifted, &vip);
    filtered["name"] = json!("Filtered");
    filtered["trigger"] =
        json!({"type": "event", "event_type": "purchase", "where": "amount > 10"});
    filtered["filter"] = json!("in segment \"VIP\"");
    filtered["actions"] = json!([{"type": "add_score", "points": 1}]);
    let wf2 = workflow(&server, filtered).await;
    let usages = server.get(&format!("/v1/segments/{vip}/usages")).await;
    assert_eq!(
        usages["items"],
        json!([
            {"type": "workflow", "id": wf, "name": "Gift new VIPs", "role": "trigger", "status": "active"},
            {"type": "workflow", "id": wf2, "name": "Filtered", "role": "filter", "status": "active"},
        ])
    );
    let (status, body) = server
        .send("DELETE", &format!("/v1/segments/{gifted}"), None)
        .await;
    let error = error_of(status, &body, StatusCode::CONFLICT, "segment_in_use");
    assert_eq!(
        error["details"]["usages"],
        json!([{"type": "workflow", "id": wf, "name": "Gift new VIPs", "role": "action_target", "status": "active"}])
    );
    // Pausing shows at once; a paused workflow still counts.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/workflows/{wf}"),
            Some(json!({"status": "paused"})),
        )
        .await;
    let usages = server.get(&format!("/v1/segments/{gifted}/usages")).await;
    assert_eq!(usages["items"][0]["status"], "paused");
    let (status, _) = server
        .send("DELETE", &format!("/v1/segments/{gifted}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Deleting the workflow frees the segment at once.
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/workflows/{wf}"),
            None,
        )
        .await;
    let usages = server.get(&format!("/v1/segments/{gifted}/usages")).await;
    assert_eq!(usages["items"], json!([]));
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &format!("/v1/segments/{gifted}"),
            None,
        )
        .await;
    let (status, body) = server
        .send("GET", &format!("/v1/workflows/{wf}"), None)
        .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    // A restart keeps what is left.
    let server = server.restart();
    let usages = server.get(&format!("/v1/segments/{vip}/usages")).await;
    assert_eq!(usages["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn workflows_setting_each_other_off_stop_at_the_depth_limit() {
    let server = Server::new();
    let p = server.static_segment("P").await;
    let q = server.static_segment("Q").await;
    let ping = workflow(
        &server,
        json!({"name": "ping", "status": "active",
               "trigger": {"type": "segment_entered", "segment": p},
               "actions": [{"type": "remove_from_segment", "segment": p},
                           {"type": "add_to_segment", "segment": q}]}),
    )
    .await;
    let pong = workflow(
        &server,
        json!({"name": "pong", "status": "active",
               "trigger": {"type": "segment_entered", "segment": q},
               "actions": [{"type": "remove_from_segment", "segment": q},
                           {"type": "add_to_segment", "segment": p}]}),
    )
    .await;
    server.put_contact("ball", json!({})).await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{p}/contacts"),
            Some(json!({"contact_ids": ["ball"]})),
        )
        .await;
    settle(&server).await;
    let mut all = runs(&server, &ping, "").await;
    all.extend(runs(&server, &pong, "").await);
    all.sort_by_key(|r| r["depth"].as_u64().unwrap());
    assert_eq!(all.len(), 9, "{all:#?}");
    let stopped: Vec<&Json> = all.iter().filter(|r| r["status"] == "stopped").collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["depth"], 8);
    assert_eq!(stopped[0]["actions"], json!([]));
    let reason = stopped[0]["error"].as_str().unwrap();
    assert!(
        reason.starts_with("stopped: cascade depth limit"),
        "{reason}"
    );
    let stopped_only = runs(&server, &ping, "&status=stopped").await;
    assert_eq!(stopped_only.len(), 1);
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field_and_change_nothing() {
    let server = Server::new();
    orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let gifted = server.static_segment("Gifted").await;
    let cases = [
        (json!({"status": "active"}), "validation_failed", "name"),
        (
            json!({"name": "x", "status": "on", "trigger": {"type": "segment_entered", "segment": vip}, "actions": []}),
            "validation_failed",
            "status",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": "seg_nope"}, "actions": [{"type": "add_score", "points": 1}]}),
            "validation_failed",
            "trigger.segment",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "add_to_segment", "segment": vip}]}),
            "validation_failed",
            "actions[0].segment",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "add_score", "points": "ten"}]}),
            "validation_failed",
            "actions[0].points",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "set_property", "field": "orders", "value": "lots"}]}),
            "validation_failed",
            "actions[0].value",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "webhook", "url": "ftp://x"}]}),
            "validation_failed",
            "actions[0].url",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "filter": "orders >", "actions": [{"type": "add_score", "points": 1}]}),
            "invalid_condition",
            "filter",
        ),
        (
            json!({"name": "x", "trigger": {"type": "event", "event_type": "purchase", "where": {"field": "amount", "op": "gt"}}, "actions": [{"type": "add_score", "points": 1}]}),
            "invalid_condition",
            "trigger.where",
        ),
        (
            json!({"name": "x", "status": "test", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "add_score", "points": 1}]}),
            "validation_failed",
            "test_segment",
        ),
        (
            json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip}, "actions": [{"type": "add_score", "points": 1, "bonus": 2}]}),
            "validation_failed",
            "actions[0].bonus",
        ),
    ];
    for (body, code, field) in cases {
        let (status, answer) = server
            .send("POST", "/v1/workflows", Some(body.clone()))
            .await;
        let error = error_of(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(
            error["details"]["field"], field,
            "{body} answered {answer:#}"
        );
    }
    // Setting itself off directly is refused with the reason.
    let (status, answer) = server
        .send(
            "POST",
            "/v1/workflows",
            Some(
                json!({"name": "loop", "trigger": {"type": "segment_entered", "segment": gifted},
                        "actions": [{"type": "add_to_segment", "segment": gifted}]}),
            ),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("would set off this workflow again"),
        "{message}"
    );
    assert_eq!(error["details"]["field"], "actions[0]");
    // A JSON filter's fault points into the body.
    let (status, answer) = server
        .send(
            "POST",
            "/v1/workflows",
            Some(
                json!({"name": "x", "trigger": {"type": "segment_entered", "segment": vip},
                        "filter": {"all": [{"field": "orders", "op": "gt", "value": "many"}]},
                        "actions": [{"type": "add_score", "points": 1}]}),
            ),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert!(
        error["details"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/filter/all/0"),
        "{answer:#}"
    );
    assert_eq!(server.get("/v1/workflows").await["items"], json!([]));
    // Names are unique; a bad PATCH changes nothing.
    let wf = workflow(&server, gift_body(&vip, &gifted)).await;
    let (status, answer) = server
        .send("POST", "/v1/workflows", Some(gift_body(&vip, &gifted)))
        .await;
    error_of(status, &answer, StatusCode::CONFLICT, "name_taken");
    let before = server.get(&format!("/v1/workflows/{wf}")).await;
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/workflows/{wf}"),
            Some(json!({"actions": [{"type": "remove_from_segment", "segment": vip}]})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(server.get(&format!("/v1/workflows/{wf}")).await, before);
    let (status, answer) = server
        .send("GET", &format!("/v1/workflows/{wf}/runs?status=nope"), None)
        .await;
    error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_workflow_answers_its_definition_with_texts() {
    let server = Server::new();
    orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let body = json!({
        "name": "Tag big buyers",
        "status": "active",
        "trigger": {"type": "event", "event_type": "purchase", "where": "amount > 50"},
        "filter": "in segment \"VIP\" and country = \"ES\"",
        "actions": [
            {"type": "set_property", "field": "tier", "value": "gold"},
            {"type": "add_score", "points": 2.5, "expires_after": "30 days"}
        ]
    });
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/workflows", Some(body))
        .await;
    let id = created["id"].as_str().unwrap();
    let names = [(id, "[id]"), (vip.as_str(), "[vip]")];
    assert_eq!(
        crate::common::redact(&created, &names),
        json!({
            "id": "[id]",
            "name": "Tag big buyers",
            "status": "active",
            "test_segment": null,
            "trigger": {"type": "event", "event_type": "purchase",
                        "where": {"field": "amount", "op": "gt", "value": 50},
                        "where_text": "amount > 50"},
            "filter": {"all": [{"in_segment": "[vip]"}, {"field": "country", "op": "eq", "value": "ES"}]},
            "filter_text": "in segment \"VIP\" and country = \"ES\"",
            "actions": [
                {"type": "set_property", "field": "tier", "value": "gold"},
                {"type": "add_score", "points": 2.5, "expires_after": "30d"}
            ],
            "queued": 0,
            "dropped": 0,
            "dropped_since": null,
            "last_dropped_at": null,
            "created_at": "[datetime]",
            "updated_at": "[datetime]"
        })
    );
    // The field the action sets exists, typed by its value.
    let fields = server.get("/v1/fields").await;
    assert!(
        fields["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "tier" && f["type"] == "string"),
        "{fields:#}"
    );
    server
        .put_contact("ana", json!({"orders": 6, "country": "ES"}))
        .await;
    server
        .events(json!({"contact_id": "ana", "type": "purchase", "properties": {"amount": 80}}))
        .await;
    server
        .events(json!({"id": "small", "contact_id": "ana", "type": "purchase", "properties": {"amount": 5}}))
        .await;
    settle(&server).await;
    let contact = server.get("/v1/contacts/ana").await;
    assert_eq!(contact["properties"]["tier"], "gold");
    assert_eq!(contact["lead_score"], 2.5);
    let all = runs(&server, id, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["trigger"]["type"], "event");
    assert_eq!(all[0]["trigger"]["event_type"], "purchase");
    assert_eq!(
        all[0]["actions"],
        json!([{"index": 0, "type": "set_property", "result": "set"},
               {"index": 1, "type": "add_score", "result": "added"}])
    );
    let listed = server.get("/v1/workflows").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

//! The schemas of the OpenAPI document for segments, scoring rules,
//! workflows, webhooks and Facebook exports: every body and answer is a
//! named type with an example, every reference resolves, and real answers
//! conform to what the document says, checked the way a schema-checking
//! client (schemathesis, a generated client) would.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, send};
use crate::schema_check::{resolve, violations};

/// The served document.
async fn document() -> Json {
    let server = Server::new();
    let (status, doc) = send(&server.app, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    doc
}

/// Segments, scoring rules, workflows, webhooks and Facebook exports, and
/// whether each takes a JSON body.
const TYPED_OPERATIONS: [(&str, bool); 30] = [
    ("segments_list", false),
    ("segments_create", true),
    ("segments_get", false),
    ("segments_update", true),
    ("segments_delete", false),
    ("segments_preview", true),
    ("segment_members_list", false),
    ("segment_members_add", true),
    ("segment_members_remove", true),
    ("segments_usages", false),
    ("scoring_rules_list", false),
    ("scoring_rules_create", true),
    ("scoring_rules_get", false),
    ("scoring_rules_update", true),
    ("scoring_rules_delete", false),
    ("workflows_list", false),
    ("workflows_create", true),
    ("workflows_get", false),
    ("workflows_update", true),
    ("workflows_delete", false),
    ("workflow_runs_list", false),
    ("webhooks_list", false),
    ("webhooks_create", true),
    ("webhooks_get", false),
    ("webhooks_update", true),
    ("webhooks_delete", false),
    ("facebook_exports_start", true),
    ("facebook_exports_list", false),
    ("facebook_exports_get", false),
    ("facebook_exports_stop", false),
];

fn operation<'a>(doc: &'a Json, id: &str) -> &'a Json {
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .find(|op| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
}

/// The operation that serves `method` on the concrete `path`.
fn operation_at<'a>(doc: &'a Json, method: &str, path: &str) -> &'a Json {
    let path = path.split('?').next().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    let (_, item) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| {
            let pattern: Vec<&str> = template.split('/').collect();
            pattern.len() == parts.len()
                && pattern
                    .iter()
                    .zip(&parts)
                    .all(|(p, part)| p.starts_with('{') || p == part)
        })
        .unwrap_or_else(|| panic!("no path serves {path}"));
    &item[method.to_lowercase()]
}

/// Asserts that `answer`, given by `operation_id` with `status`, is what
/// the document says that answer is.
fn conforms(doc: &Json, operation_id: &str, status: StatusCode, answer: &Json) {
    let response = &operation(doc, operation_id)["responses"][status.as_str()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{operation_id} documents no {status} schema"
    );
    let found = violations(doc, schema, answer, "");
    assert!(
        found.is_empty(),
        "{operation_id} {status}: {found:#?}\n{answer:#}"
    );
}

#[tokio::test]
async fn typed_operations_document_their_bodies_and_answers() {
    let doc = document().await;
    for (id, takes_body) in TYPED_OPERATIONS {
        let op = operation(&doc, id);
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(!body.is_null(), takes_body, "{id}: request body");
        if takes_body {
            assert!(
                body["$ref"].is_string(),
                "{id}: the body is not a named type"
            );
            let schema = resolve(&doc, body);
            assert!(schema["properties"].is_object(), "{id}: {schema:#}");
            let example = &schema["example"];
            assert!(!example.is_null(), "{id}: the body has no example");
            let found = violations(&doc, body, example, "");
            assert!(found.is_empty(), "{id}: its example: {found:#?}");
        }
        let responses = op["responses"].as_object().unwrap();
        let success: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert_eq!(success.len(), 1, "{id}: {success:?}");
        let schema = &responses[success[0]]["content"]["application/json"]["schema"];
        assert!(
            schema["$ref"].is_string(),
            "{id}: the answer is not a named type"
        );
        assert!(resolve(&doc, schema)["properties"].is_object(), "{id}");
    }
    // The main answer of each resource shows an example that it conforms to.
    for name in [
        "Segment",
        "SegmentPreview",
        "SegmentMembersChanged",
        "SegmentUsage",
        "ScoringRule",
        "ScoringRuleDeleted",
        "Workflow",
        "WorkflowRun",
        "Webhook",
        "ExportJob",
        "Deleted",
    ] {
        let schema = &doc["components"]["schemas"][name];
        let example = &schema["example"];
        assert!(!example.is_null(), "{name} has no example");
        let found = violations(&doc, schema, example, "");
        assert!(found.is_empty(), "{name}'s example: {found:#?}");
    }
}

/// The checker catches what it is for: a missing required key, a key the
/// schema does not name, and a wrong type deep down.
#[tokio::test]
async fn the_schema_checker_rejects_what_the_schema_forbids() {
    let doc = document().await;
    let schema = json!({"$ref": "#/components/schemas/Segment"});
    let mut segment = doc["components"]["schemas"]["Segment"]["example"].clone();
    assert!(violations(&doc, &schema, &segment, "").is_empty());
    segment.as_object_mut().unwrap().remove("size");
    segment["extra"] = json!(1);
    segment["kind"] = json!("sometimes");
    let found = violations(&doc, &schema, &segment, "");
    assert_eq!(found.len(), 3, "{found:#?}");
}

/// Real answers of every typed operation, checked against the document
/// as a schema-checking client would: each required key there, no key the
/// schema does not name, every type and enum right, all the way down. Each
/// body sent, one the server accepts, conforms to its documented request
/// schema too, so a generated client can send it.
#[tokio::test]
async fn real_answers_conform_to_their_documented_schemas() {
    let doc = document().await;
    let server = Server::new();
    let check = |id: &str, status: StatusCode, answer: &Json| conforms(&doc, id, status, answer);
    let call = |method: &'static str, path: String, body: Option<Json>| {
        let (server, doc) = (&server, &doc);
        async move {
            if let Some(body) = &body {
                let op = operation_at(doc, method, &path);
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(!schema.is_null(), "{method} {path} documents no body");
                let found = violations(doc, schema, body, "");
                assert!(found.is_empty(), "{method} {path}: {found:#?}\n{body:#}");
            }
            server.send(method, &path, body).await
        }
    };
    server.put_contact("c1", json!({"country": "ES"})).await;
    server.put_contact("c2", json!({"country": "FR"})).await;

    let (status, spain) = call(
        "POST",
        "/v1/segments".into(),
        Some(json!({"name": "Spain", "condition": "country = \"ES\""})),
    )
    .await;
    check("segments_create", status, &spain);
    let spain = spain["id"].as_str().unwrap().to_string();
    let (status, vip) = call(
        "POST",
        "/v1/segments".into(),
        Some(json!({"name": "VIP", "kind": "static", "test": true})),
    )
    .await;
    check("segments_create", status, &vip);
    let vip = vip["id"].as_str().unwrap().to_string();
    let members = json!({"contact_ids": ["c1", "c2"]});
    let (status, added) = call(
        "POST",
        format!("/v1/segments/{vip}/contacts"),
        Some(members),
    )
    .await;
    check("segment_members_add", status, &added);
    let (status, removed) = call(
        "DELETE",
        format!("/v1/segments/{vip}/contacts"),
        Some(json!({"contact_ids": ["c2"]})),
    )
    .await;
    check("segment_members_remove", status, &removed);
    let (status, list) = call("GET", "/v1/segments".into(), None).await;
    check("segments_list", status, &list);
    let (status, one) = call("GET", format!("/v1/segments/{spain}"), None).await;
    check("segments_get", status, &one);
    let patch = json!({"condition_tree": {"field": "country", "op": "in", "value": ["ES", "FR"]}});
    let (status, updated) = call("PATCH", format!("/v1/segments/{spain}"), Some(patch)).await;
    check("segments_update", status, &updated);
    let preview = json!({"condition": "country = \"FR\"", "segment_id": spain, "sample": 1});
    let (status, previewed) = call("POST", "/v1/segments:preview".into(), Some(preview)).await;
    check("segments_preview", status, &previewed);
    assert!(previewed.get("entering").is_some(), "{previewed}");
    let (status, page) = call(
        "GET",
        format!("/v1/segments/{spain}/contacts?limit=1"),
        None,
    )
    .await;
    check("segment_members_list", status, &page);

    let rule = json!({"event_type": "purchase", "where": "amount > 50", "points": 10, "expires_after": "30 days"});
    let (status, rule) = call("POST", "/v1/scoring-rules".into(), Some(rule)).await;
    check("scoring_rules_create", status, &rule);
    let rule = rule["id"].as_str().unwrap().to_string();
    let (status, plain) = call(
        "POST",
        "/v1/scoring-rules".into(),
        Some(json!({"event_type": "login", "points": 1.5})),
    )
    .await;
    check("scoring_rules_create", status, &plain);
    let (status, list) = call("GET", "/v1/scoring-rules".into(), None).await;
    check("scoring_rules_list", status, &list);
    let (status, one) = call("GET", format!("/v1/scoring-rules/{rule}"), None).await;
    check("scoring_rules_get", status, &one);
    let (status, updated) = call(
        "PATCH",
        format!("/v1/scoring-rules/{rule}"),
        Some(json!({"where": null, "expires_after": null})),
    )
    .await;
    check("scoring_rules_update", status, &updated);
    let (status, deleted) = call("DELETE", format!("/v1/scoring-rules/{rule}"), None).await;
    check("scoring_rules_delete", status, &deleted);

    let hook = json!({"url": "http://127.0.0.1:9/hook", "secret": "a-long-random-secret", "segments": [spain], "events": true});
    let (status, hook) = call("POST", "/v1/webhooks".into(), Some(hook)).await;
    check("webhooks_create", status, &hook);
    let hook = hook["id"].as_str().unwrap().to_string();
    let (status, list) = call("GET", "/v1/webhooks".into(), None).await;
    check("webhooks_list", status, &list);
    let (status, one) = call("GET", format!("/v1/webhooks/{hook}"), None).await;
    check("webhooks_get", status, &one);
    let (status, updated) = call(
        "PATCH",
        format!("/v1/webhooks/{hook}"),
        Some(json!({"enabled": false, "segments": null})),
    )
    .await;
    check("webhooks_update", status, &updated);
    let (status, deleted) = call("DELETE", format!("/v1/webhooks/{hook}"), None).await;
    check("webhooks_delete", status, &deleted);

    let workflow = json!({
        "name": "Welcome", "status": "active",
        "trigger": {"type": "segment_entered", "segment": vip},
        "filter": "country = \"ES\"",
        "actions": [
            {"type": "add_score", "points": 5, "expires_after": "7d"},
            {"type": "set_property", "field": "welcomed", "value": true},
            {"type": "webhook", "url": "http://127.0.0.1:9/welcome", "secret": "a-long-random-secret"}
        ]
    });
    let (status, workflow) = call("POST", "/v1/workflows".into(), Some(workflow)).await;
    check("workflows_create", status, &workflow);
    let wf = workflow["id"].as_str().unwrap().to_string();
    let on_event = json!({"name": "Buyers", "trigger": {"type": "event", "event_type": "purchase", "where": "amount > 5"}, "actions": [{"type": "add_to_segment", "segment": vip}]});
    let (status, on_event) = call("POST", "/v1/workflows".into(), Some(on_event)).await;
    check("workflows_create", status, &on_event);
    let (status, usages) = call("GET", format!("/v1/segments/{vip}/usages"), None).await;
    check("segments_usages", status, &usages);
    assert!(!usages["items"].as_array().unwrap().is_empty(), "{usages}");
    server.put_contact("c3", json!({"country": "ES"})).await;
    let (status, _) = call(
        "POST",
        format!("/v1/segments/{vip}/contacts"),
        Some(json!({"contact_ids": ["c3"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut runs = Json::Null;
    for _ in 0..250 {
        let (status, page) = call("GET", format!("/v1/workflows/{wf}/runs"), None).await;
        check("workflow_runs_list", status, &page);
        runs = page;
        if !runs["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let actions = runs["items"][0]["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a.get("delivery").is_some()),
        "{runs:#}"
    );
    let (status, list) = call("GET", "/v1/workflows".into(), None).await;
    check("workflows_list", status, &list);
    let (status, one) = call("GET", format!("/v1/workflows/{wf}"), None).await;
    check("workflows_get", status, &one);
    let (status, paused) = call(
        "PATCH",
        format!("/v1/workflows/{wf}"),
        Some(json!({"status": "paused"})),
    )
    .await;
    check("workflows_update", status, &paused);

    let export = json!({"audience_id": "23850000000000000", "access_token": "EAAB-test-token", "identifiers": ["email"], "graph_url": "http://127.0.0.1:9"});
    let (status, job) = call(
        "POST",
        format!("/v1/segments/{spain}/exports/facebook"),
        Some(export),
    )
    .await;
    check("facebook_exports_start", status, &job);
    let job = job["id"].as_str().unwrap().to_string();
    let (status, one) = call("GET", format!("/v1/exports/{job}"), None).await;
    check("facebook_exports_get", status, &one);
    let (status, list) = call("GET", format!("/v1/segments/{spain}/exports"), None).await;
    check("facebook_exports_list", status, &list);
    let (status, stopped) = call("DELETE", format!("/v1/exports/{job}"), None).await;
    check("facebook_exports_stop", status, &stopped);

    for id in [&wf, on_event["id"].as_str().unwrap()] {
        let (status, deleted) = call("DELETE", format!("/v1/workflows/{id}"), None).await;
        check("workflows_delete", status, &deleted);
    }
    let (status, deleted) = call("DELETE", format!("/v1/segments/{vip}"), None).await;
    check("segments_delete", status, &deleted);
}

/// A segment's members and a preview's sample are contacts as `GET
/// /v1/contacts/{id}` answers them, so a typed client reads their fields.
#[tokio::test]
async fn members_and_preview_samples_are_documented_as_contacts() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let members = &doc["paths"]["/v1/segments/{id}/contacts"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        members["$ref"], "#/components/schemas/Page_Contact",
        "{members}"
    );
    // utoipa inlines a generic page's item type.
    let item = &schemas["Page_Contact"]["properties"]["items"]["items"];
    assert!(
        item["$ref"] == "#/components/schemas/Contact" || item == &schemas["Contact"],
        "{item:#}"
    );
    let sample = &schemas["SegmentPreview"]["properties"]["sample"];
    assert_eq!(
        sample["items"]["$ref"], "#/components/schemas/Contact",
        "{sample}"
    );
}

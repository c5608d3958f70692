//! The schemas of the contact, event, identify, field, change-log and admin
//! operations in `/v1/openapi.json`: each body and answer is a named schema
//! with an example, every reference resolves, and real answers conform to
//! what the document says (checked by a small validator here, as a generated
//! client or a response-schema fuzzer would).

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, send};
use crate::openapi_ops::operations;
use crate::schema_check::{conforms, resolve};

/// The contact, event, field, change and admin operations: (method, path,
/// whether it takes a JSON body, whether its 2xx answer is JSON).
const TYPED_OPERATIONS: [(&str, &str, bool, bool); 20] = [
    ("put", "/v1/contacts/{id}", true, true),
    ("post", "/v1/contacts:batch", true, true),
    ("get", "/v1/contacts/{id}", false, true),
    ("get", "/v1/contacts", false, true),
    ("delete", "/v1/contacts/{id}", false, true),
    ("get", "/v1/contacts/{id}/explain", false, true),
    ("post", "/v1/events", true, true),
    ("post", "/v1/identify", true, true),
    ("get", "/v1/fields", false, true),
    ("put", "/v1/fields/{name}", true, true),
    ("get", "/v1/segments/{id}/changes", false, true),
    ("get", "/v1/changes/stream", false, false),
    ("get", "/v1/segments/{id}/export.csv", false, false),
    ("post", "/v1/workspaces", true, true),
    ("get", "/v1/workspaces", false, true),
    ("post", "/v1/workspaces/{ws}/keys", false, true),
    ("get", "/v1/workspaces/{ws}/keys", false, true),
    ("delete", "/v1/workspaces/{ws}/keys/{key}", false, true),
    ("get", "/healthz", false, false),
    ("get", "/metrics", false, false),
];

/// Whether a schema says what a value is: properties, a type, or a choice.
fn describes_something(schema: &Json) -> bool {
    schema.get("properties").is_some()
        || schema.get("type").is_some()
        || schema.get("oneOf").is_some()
}

#[tokio::test]
async fn contact_event_field_change_and_admin_operations_have_typed_bodies_and_answers() {
    let (doc, _) = operations().await;
    for (method, path, takes_body, answers_json) in TYPED_OPERATIONS {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        if takes_body {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                schema["$ref"].is_string(),
                "{method} {path}: the body is a named type: {schema}"
            );
            let body = resolve(&doc, schema);
            assert!(describes_something(body), "{method} {path}: {body}");
            assert!(
                body.get("examples").is_some() || body.get("example").is_some(),
                "{method} {path}: the body has no example: {body}"
            );
        } else {
            assert!(
                operation.get("requestBody").is_none(),
                "{method} {path} takes no body"
            );
        }
        let responses = operation["responses"].as_object().unwrap();
        let (status, answer) = responses
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .unwrap_or_else(|| panic!("{method} {path}: no 2xx answer"));
        let content = answer["content"].as_object().unwrap();
        if answers_json {
            let schema = &content["application/json"]["schema"];
            let body = resolve(&doc, schema);
            assert!(
                body.get("properties").is_some(),
                "{method} {path} {status}: no schema for the answer: {answer}"
            );
            assert!(body["required"].is_array(), "{method} {path}: {body}");
            if body["properties"].get("next_cursor").is_some() {
                // A page always sends it, `null` on the last page.
                assert!(
                    body["required"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("next_cursor")),
                    "{method} {path}: {body}"
                );
            }
        } else {
            assert!(
                !content.contains_key("application/json"),
                "{method} {path} answers text, not JSON"
            );
        }
    }
}

/// The 422 of a batch lists its failing items as `ItemError`s, and shows one.
#[tokio::test]
async fn batch_refusals_document_their_items() {
    let (doc, _) = operations().await;
    let items = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["details"]
        ["properties"]["items"];
    assert_eq!(
        items["items"]["$ref"], "#/components/schemas/ItemError",
        "{items}"
    );
    let item = &doc["components"]["schemas"]["ItemError"];
    assert_eq!(
        item["required"],
        json!(["code", "details", "index", "message"])
    );
    for path in ["/v1/contacts:batch", "/v1/events"] {
        let refusal = &doc["paths"][path]["post"]["responses"]["422"];
        let content = &refusal["content"]["application/json"];
        let example = &content["example"]["error"]["details"]["items"][0];
        conforms(&doc, item, example, path);
        assert!(
            refusal["description"]
                .as_str()
                .unwrap()
                .contains("ItemError"),
            "{refusal}"
        );
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    fn walk(doc: &Json, value: &Json, at: &str, count: &mut usize) {
        match value {
            Json::Object(map) => {
                if let Some(Json::String(reference)) = map.get("$ref") {
                    resolve(doc, value);
                    assert!(reference.starts_with("#/components/schemas/"), "{at}");
                    *count += 1;
                }
                for (key, inner) in map {
                    walk(doc, inner, &format!("{at}/{key}"), count);
                }
            }
            Json::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(doc, inner, &format!("{at}/{i}"), count);
                }
            }
            _ => {}
        }
    }
    let (doc, _) = operations().await;
    let mut count = 0;
    walk(&doc, &doc, "", &mut count);
    assert!(count > 100, "only {count} references");
    for name in [
        "Contact",
        "Event",
        "EventBatch",
        "ItemError",
        "Field",
        "Change",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{name} is not a component"
        );
    }
}

/// Sends requests and checks each answer against what the document says the
/// operation answers with that status.
struct Documented {
    server: Server,
    doc: Json,
}

impl Documented {
    async fn new() -> Documented {
        let (doc, _) = operations().await;
        Documented {
            server: Server::new(),
            doc,
        }
    }

    /// `operation` is (method, path template); the answer's status must be
    /// documented with a JSON schema, and the answer must conform to it.
    async fn call(
        &self,
        (method, path): (&str, &str),
        uri: &str,
        key: &str,
        body: Option<Json>,
    ) -> (StatusCode, Json) {
        let method_name = method.to_uppercase();
        let (status, answer) = send(&self.server.app, &method_name, uri, Some(key), body).await;
        let response = &self.doc["paths"][path][method]["responses"][status.as_str()];
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {uri} answered {status}, which is not documented: {answer}"
        );
        conforms(
            &self.doc,
            schema,
            &answer,
            &format!("{method} {uri} {status}"),
        );
        (status, answer)
    }

    /// [`Documented::call`] with the workspace key.
    async fn ws(
        &self,
        operation: (&str, &str),
        uri: &str,
        body: Option<Json>,
    ) -> (StatusCode, Json) {
        let key = self.server.key.clone();
        self.call(operation, uri, &key, body).await
    }
}

const CONTACT: (&str, &str) = ("put", "/v1/contacts/{id}");
const BATCH: (&str, &str) = ("post", "/v1/contacts:batch");
const EVENTS: (&str, &str) = ("post", "/v1/events");

#[tokio::test]
async fn real_answers_of_the_admin_operations_match_their_schemas() {
    let check = Documented::new().await;
    let admin = crate::common::ADMIN_KEY;
    let create = ("post", "/v1/workspaces");
    let named = Some(json!({"name": "Second"}));
    let (status, created) = check.call(create, "/v1/workspaces", admin, named).await;
    assert_eq!(status, StatusCode::CREATED);
    let unnamed = Some(json!({"name": ""}));
    let (status, _) = check.call(create, "/v1/workspaces", admin, unnamed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    check
        .call(("get", "/v1/workspaces"), "/v1/workspaces", admin, None)
        .await;
    let keys = format!("/v1/workspaces/{}/keys", created["id"].as_str().unwrap());
    let (status, key) = check
        .call(("post", "/v1/workspaces/{ws}/keys"), &keys, admin, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    check
        .call(("get", "/v1/workspaces/{ws}/keys"), &keys, admin, None)
        .await;
    let revoke = format!("{keys}/{}", key["id"].as_str().unwrap());
    let (status, _) = check
        .call(
            ("delete", "/v1/workspaces/{ws}/keys/{key}"),
            &revoke,
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = check
        .call(
            ("get", "/v1/workspaces/{ws}/keys"),
            "/v1/workspaces/none/keys",
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn real_answers_of_the_field_contact_and_event_operations_match_their_schemas() {
    let check = Documented::new().await;
    let declare = ("put", "/v1/fields/{name}");
    check
        .ws(
            declare,
            "/v1/fields/plan",
            Some(json!({"type": "string", "label": "Plan"})),
        )
        .await;
    let (status, _) = check
        .ws(declare, "/v1/fields/plan", Some(json!({"type": "colour"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    check
        .ws(("get", "/v1/fields"), "/v1/fields?limit=3", None)
        .await;

    let ana =
        json!({"properties": {"country": "ES", "tags": ["a"], "seen": "2026-11-29", "n": 1.5}});
    let (status, _) = check.ws(CONTACT, "/v1/contacts/ana", Some(ana)).await;
    assert_eq!(status, StatusCode::OK);
    let wrong = json!({"properties": {"plan": 42}});
    let (status, _) = check.ws(CONTACT, "/v1/contacts/ana", Some(wrong)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let two = json!({"contacts": [{"id": "ben", "anonymous": true}, {"id": "cy", "properties": {"country": "FR"}}]});
    let (status, _) = check.ws(BATCH, "/v1/contacts:batch", Some(two)).await;
    assert_eq!(status, StatusCode::OK);
    let bad = json!({"contacts": [{"properties": {}}, {"id": "dee", "properties": {"plan": 1}}]});
    let (status, refused) = check.ws(BATCH, "/v1/contacts:batch", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["details"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{refused}"
    );

    let one =
        json!({"id": "e1", "contact_id": "ana", "type": "purchase", "properties": {"amount": 5}});
    let (status, _) = check.ws(EVENTS, "/v1/events", Some(one)).await;
    assert_eq!(status, StatusCode::OK);
    let replayed = json!({"events": [{"id": "e1", "contact_id": "ana", "type": "purchase"}, {"contact_id": "ben", "type": "view"}]});
    let (_, ingested) = check.ws(EVENTS, "/v1/events", Some(replayed)).await;
    assert_eq!(ingested["duplicate_indexes"], json!([0]), "{ingested}");
    let bad = json!({"events": [{"contact_id": "ana"}, {"contact_id": "ana", "type": "x", "at": "soon"}]});
    let (status, _) = check.ws(EVENTS, "/v1/events", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let ids = json!({"anonymous_id": "ben", "contact_id": "ana"});
    let (_, identified) = check
        .ws(("post", "/v1/identify"), "/v1/identify", Some(ids))
        .await;
    assert_eq!(identified["merged"], true, "{identified}");

    check
        .ws(("get", "/v1/contacts/{id}"), "/v1/contacts/ana", None)
        .await;
    let (status, _) = check
        .ws(("get", "/v1/contacts/{id}"), "/v1/contacts/nobody", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = check
        .ws(("get", "/v1/contacts"), "/v1/contacts?limit=1", None)
        .await;
    assert!(page["next_cursor"].is_string(), "{page}");
    let (status, _) = check
        .ws(("delete", "/v1/contacts/{id}"), "/v1/contacts/cy", None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn real_answers_of_the_explain_and_change_operations_match_their_schemas() {
    let check = Documented::new().await;
    let segment = check
        .server
        .segment("Spain", "country = \"ES\" and performed purchase")
        .await;
    check
        .ws(
            CONTACT,
            "/v1/contacts/ana",
            Some(json!({"properties": {"country": "ES"}})),
        )
        .await;
    let purchase = json!({"contact_id": "ana", "type": "purchase"});
    check.ws(EVENTS, "/v1/events", Some(purchase)).await;
    let explain = format!("/v1/contacts/ana/explain?segment={segment}");
    let (_, explained) = check
        .ws(("get", "/v1/contacts/{id}/explain"), &explain, None)
        .await;
    assert_eq!(explained["member"], true, "{explained}");
    assert_eq!(
        explained["explanation"]["children"][0]["value"], "ES",
        "{explained}"
    );
    let changes = format!("/v1/segments/{segment}/changes?limit=1");
    let (_, page) = check
        .ws(("get", "/v1/segments/{id}/changes"), &changes, None)
        .await;
    assert!(page["next_cursor"].is_string(), "{page}");
    let (_, deleted) = check
        .ws(("delete", "/v1/contacts/{id}"), "/v1/contacts/ana", None)
        .await;
    assert_eq!(deleted["exited"], 1, "{deleted}");
}

/// Every example of these operations' schemas is an instance of its schema,
/// so a generated client's docs or a mock server built from them are right.
#[tokio::test]
async fn the_examples_of_the_typed_schemas_are_valid_against_them() {
    let (doc, _) = operations().await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for name in [
        "ContactBody",
        "BatchContact",
        "ContactBatch",
        "Contact",
        "BatchWritten",
        "ContactDeleted",
        "ContactExplanation",
        "Event",
        "EventBatch",
        "EventsBody",
        "Ingested",
        "IdentifyBody",
        "Identified",
        "Declaration",
        "Field",
        "Change",
        "NewWorkspace",
        "CreatedWorkspace",
        "WorkspaceSummary",
        "NewKey",
        "KeyInfo",
        "KeyRevoked",
        "ItemError",
    ] {
        let schema = &schemas[name];
        let examples: Vec<&Json> = schema
            .get("example")
            .into_iter()
            .chain(schema["examples"].as_array().into_iter().flatten())
            .collect();
        assert!(!examples.is_empty(), "{name} has no example");
        for example in examples {
            if let Some(choices) = schema["oneOf"].as_array() {
                // An instance of one of the choices: the first whose
                // required keys it has.
                let choice = choices
                    .iter()
                    .map(|c| resolve(&doc, c))
                    .find(|c| {
                        c["required"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .all(|k| example.get(k.as_str().unwrap()).is_some())
                    })
                    .unwrap_or_else(|| panic!("{name}: {example} is none of its choices"));
                conforms(&doc, choice, example, name);
            } else {
                conforms(&doc, schema, example, name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 23, "{checked}");
}

/// Seqs start at 1 (0 is a reader's "nothing seen yet"), and the document
/// says so: a client validating answers can rely on it.
#[tokio::test]
async fn a_change_seq_is_documented_from_1() {
    let (doc, _) = operations().await;
    let seq = &doc["components"]["schemas"]["Change"]["properties"]["seq"];
    assert_eq!(seq["minimum"], 1, "{seq}");
}

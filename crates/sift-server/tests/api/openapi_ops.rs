//! Operations endpoints (docs/api.md last row): `/healthz`, `/metrics` in the
//! Prometheus text format, and `/v1/openapi.json` describing every route.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, send};

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let server = Server::new();
    let (status, body) = send(&server.app, "GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!("ok"));
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_latencies() {
    let server = Server::new();
    server.put_contact("c1", json!({"country": "ES"})).await;
    server.get("/v1/contacts/c1").await;
    let response = tower::ServiceExt::oneshot(
        server.app.clone(),
        crate::common::request("GET", "/metrics", None, Vec::new()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains("# TYPE sift_http_request_seconds"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("sift_http_request_seconds")
                && l.contains("route=\"/v1/contacts/{id}\"")
                && l.contains("method=\"PUT\"")),
        "{text}"
    );
    assert!(text.contains("sift_http_requests_total"), "{text}");
    // Every sample line is `name{labels} value` or `name value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = Server::new();
    let (status, doc) = send(&server.app, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{doc:#}"
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/workspaces", &["post", "get"][..]),
        ("/v1/workspaces/{ws}/keys", &["post", "get"]),
        ("/v1/workspaces/{ws}/keys/{key}", &["delete"]),
        ("/v1/fields", &["get"]),
        ("/v1/fields/{name}", &["put"]),
        ("/v1/contacts", &["get"]),
        ("/v1/contacts/{id}", &["put", "get", "delete"]),
        ("/v1/contacts:batch", &["post"]),
        ("/v1/contacts/{id}/explain", &["get"]),
        ("/v1/events", &["post"]),
        ("/v1/scoring-rules", &["get", "post"]),
        ("/v1/scoring-rules/{id}", &["get", "patch", "delete"]),
        ("/v1/segments", &["get", "post"]),
        ("/v1/segments/{id}", &["get", "patch", "delete"]),
        ("/v1/segments:preview", &["post"]),
        ("/v1/segments/{id}/contacts", &["get", "post", "delete"]),
        ("/v1/segments/{id}/changes", &["get"]),
        ("/v1/segments/{id}/usages", &["get"]),
        ("/v1/changes/stream", &["get"]),
        ("/v1/workflows", &["get", "post"]),
        ("/v1/workflows/{id}", &["get", "patch", "delete"]),
        ("/v1/workflows/{id}/runs", &["get"]),
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
    ] {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        for method in methods {
            assert!(item.get(*method).is_some(), "{method} {path} is missing");
        }
    }
}

/// The served document, and every operation in it as (method, path, operation).
async fn operations() -> (Json, Vec<(String, String, Json)>) {
    let server = Server::new();
    let (status, doc) = send(&server.app, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                operations.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    assert!(operations.len() >= 50, "{} operations", operations.len());
    (doc, operations)
}

/// Routes anyone may call; every other one needs a key.
const PUBLIC: [&str; 2] = ["/healthz", "/metrics"];

fn is_resource_verb(id: &str) -> bool {
    let words: Vec<&str> = id.split('_').collect();
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

#[tokio::test]
async fn operation_ids_are_unique_resource_verb_names() {
    let (_, operations) = operations().await;
    let mut seen = std::collections::BTreeSet::new();
    for (method, path, operation) in &operations {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            is_resource_verb(id),
            "{method} {path}: operation id {id:?} is not resource_verb"
        );
        assert!(seen.insert(id.to_string()), "{id} is used twice");
    }
    for id in [
        "contacts_upsert",
        "segments_preview",
        "changes_stream",
        "workspaces_create",
    ] {
        assert!(seen.contains(id), "{id} is missing: {seen:?}");
    }
}

#[tokio::test]
async fn every_keyed_operation_declares_bearer_security() {
    let (doc, operations) = operations().await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    for (method, path, operation) in &operations {
        let security = &operation["security"];
        if PUBLIC.contains(&path.as_str()) {
            assert!(
                security.is_null(),
                "{method} {path} needs no key: {security}"
            );
        } else {
            assert_eq!(
                security,
                &json!([{"bearer": []}]),
                "{method} {path} needs a key"
            );
        }
    }
}

/// What the document says about keys is what the server does: without a key
/// a keyed route answers 401, and with the other kind of key 403.
#[tokio::test]
async fn the_documented_security_is_what_the_routes_enforce() {
    let server = Server::new();
    let (_, operations) = operations().await;
    for (method, path, operation) in &operations {
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let method = method.to_uppercase();
        let body = operation.get("requestBody").map(|_| json!({}));
        let (status, _) = send(&server.app, &method, &concrete, None, body.clone()).await;
        if operation.get("security").is_none() {
            assert_eq!(
                status,
                StatusCode::OK,
                "{method} {path} is documented as needing no key"
            );
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a key"
        );
        let admin = operation["tags"][0] == "admin";
        let other_key = if admin {
            server.key.as_str()
        } else {
            crate::common::ADMIN_KEY
        };
        let (status, _) = send(&server.app, &method, &concrete, Some(other_key), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path} with the wrong kind of key"
        );
    }
}

#[tokio::test]
async fn every_operation_documents_the_errors_it_can_answer() {
    let (_, operations) = operations().await;
    for (method, path, operation) in &operations {
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        assert!(has("503"), "{method} {path}: 503");
        if operation.get("requestBody").is_some() {
            assert!(has("413"), "{method} {path}: 413");
            assert!(has("408"), "{method} {path}: 408");
            assert!(has("422") || has("400"), "{method} {path}: 422 or 400");
        }
        if operation["security"].is_array() {
            assert!(has("401"), "{method} {path}: 401");
            assert!(has("403"), "{method} {path}: 403");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_error_schema_lists_the_error_table() {
    let (doc, _) = operations().await;
    let schema = &doc["components"]["schemas"]["Error"];
    assert_eq!(schema["required"], json!(["error"]), "{schema:#}");
    let inner = &schema["properties"]["error"];
    assert_eq!(
        inner["required"],
        json!(["code", "message", "details"]),
        "{inner:#}"
    );
    let codes: Vec<&str> = sift_server::Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(inner["properties"]["code"]["enum"], json!(codes));
    // A code the handlers answer with is in the table, and so in the schema.
    assert!(codes.contains(&"field_limit_exceeded"), "{codes:?}");
    assert_eq!(codes.len(), 17);
}

#[tokio::test]
async fn streams_and_files_declare_their_content_types() {
    let (doc, _) = operations().await;
    let ok = |path: &str| doc["paths"][path]["get"]["responses"]["200"]["content"].clone();
    assert!(
        ok("/v1/changes/stream").get("text/event-stream").is_some(),
        "{doc:#}"
    );
    assert!(ok("/v1/segments/{id}/export.csv").get("text/csv").is_some());
}

/// Query parameters were once documented as required path parameters, so a
/// generated client put `?limit=` into the path and demanded every filter.
#[tokio::test]
async fn parameters_are_in_the_path_only_when_the_path_names_them() {
    let (_, operations) = operations().await;
    for (method, path, operation) in &operations {
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for parameter in &parameters {
            let name = parameter["name"].as_str().unwrap();
            let in_path = path.contains(&format!("{{{name}}}"));
            let location = if in_path { "path" } else { "query" };
            assert_eq!(parameter["in"], location, "{method} {path} {name}");
        }
        for template in path.split('/').filter(|p| p.starts_with('{')) {
            let name = template.trim_matches(|c| c == '{' || c == '}');
            assert!(
                parameters
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path"),
                "{method} {path}: {name} is not documented"
            );
        }
    }
    let list = operations
        .iter()
        .find(|(_, _, op)| op["operationId"] == "contacts_list")
        .unwrap();
    for parameter in list.2["parameters"].as_array().unwrap() {
        assert_ne!(parameter["required"], true, "{parameter}");
    }
}

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

/// `schema` with a `$ref` followed to its component.
fn resolve<'a>(doc: &'a Json, schema: &'a Json) -> &'a Json {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{reference} is not a component"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{reference} resolves to nothing");
            resolve(doc, target)
        }
        None => schema,
    }
}

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

fn has_type(value: &Json, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Checks a real answer against its documented schema, as a response-schema
/// check of a client or a fuzzer would: the type of every value, the
/// required keys, and (for the typed shapes, which list their keys) no key
/// the schema does not declare.
fn conforms(doc: &Json, schema: &Json, value: &Json, at: &str) {
    let schema = resolve(doc, schema);
    let types: Vec<&str> = match &schema["type"] {
        Json::String(name) => vec![name.as_str()],
        Json::Array(names) => names.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    assert!(
        types.is_empty() || types.iter().any(|t| has_type(value, t)),
        "{at}: {value} is not {types:?}"
    );
    if let Some(allowed) = schema["enum"].as_array() {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not one of {allowed:?}"
        );
    }
    match value {
        Json::Object(map) => {
            let Some(properties) = schema["properties"].as_object() else {
                return;
            };
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                assert!(map.contains_key(key), "{at}: {key} is required: {value}");
            }
            for (key, inner) in map {
                match properties.get(key) {
                    Some(property) => conforms(doc, property, inner, &format!("{at}/{key}")),
                    None => assert!(
                        schema.get("required").is_none(),
                        "{at}: {key} is not in the schema: {value}"
                    ),
                }
            }
        }
        Json::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, inner) in items.iter().enumerate() {
                    conforms(doc, item, inner, &format!("{at}/{i}"));
                }
            }
        }
        _ => {}
    }
}

/// Sends a request and checks its answer against what the document says
/// the operation answers with that status.
async fn documented(
    server: &Server,
    doc: &Json,
    (method, path): (&str, &str),
    uri: &str,
    key: &str,
    body: Option<Json>,
) -> (StatusCode, Json) {
    let (status, answer) = send(&server.app, &method.to_uppercase(), uri, Some(key), body).await;
    let response = &doc["paths"][path][method]["responses"][status.as_str()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {uri} answered {status}, which is not documented: {answer}"
    );
    conforms(doc, schema, &answer, &format!("{method} {uri} {status}"));
    (status, answer)
}

#[tokio::test]
async fn real_answers_of_contact_event_field_change_and_admin_operations_match_their_schemas() {
    let server = Server::new();
    let (doc, _) = operations().await;
    let admin = crate::common::ADMIN_KEY;
    let key = server.key.clone();
    let key = key.as_str();

    let (status, created) = documented(
        &server,
        &doc,
        ("post", "/v1/workspaces"),
        "/v1/workspaces",
        admin,
        Some(json!({"name": "Second"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let ws = created["id"].as_str().unwrap().to_string();
    documented(
        &server,
        &doc,
        ("get", "/v1/workspaces"),
        "/v1/workspaces",
        admin,
        None,
    )
    .await;
    let keys = format!("/v1/workspaces/{ws}/keys");
    let (_, new_key) = documented(
        &server,
        &doc,
        ("post", "/v1/workspaces/{ws}/keys"),
        &keys,
        admin,
        None,
    )
    .await;
    documented(
        &server,
        &doc,
        ("get", "/v1/workspaces/{ws}/keys"),
        &keys,
        admin,
        None,
    )
    .await;
    let revoke = format!("{keys}/{}", new_key["id"].as_str().unwrap());
    let (status, _) = documented(
        &server,
        &doc,
        ("delete", "/v1/workspaces/{ws}/keys/{key}"),
        &revoke,
        admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    documented(
        &server,
        &doc,
        ("post", "/v1/workspaces"),
        "/v1/workspaces",
        admin,
        Some(json!({"name": ""})),
    )
    .await;

    documented(
        &server,
        &doc,
        ("put", "/v1/fields/{name}"),
        "/v1/fields/plan",
        key,
        Some(json!({"type": "string", "label": "Plan"})),
    )
    .await;
    documented(
        &server,
        &doc,
        ("put", "/v1/fields/{name}"),
        "/v1/fields/plan",
        key,
        Some(json!({"type": "colour"})),
    )
    .await;
    documented(
        &server,
        &doc,
        ("get", "/v1/fields"),
        "/v1/fields?limit=3",
        key,
        None,
    )
    .await;

    let segment = server
        .segment("Spain", "country = \"ES\" and performed purchase")
        .await;
    let contact = ("put", "/v1/contacts/{id}");
    let (status, _) = documented(
        &server,
        &doc,
        contact,
        "/v1/contacts/ana",
        key,
        Some(json!({"properties": {"country": "ES", "tags": ["a"], "seen": "2026-11-29"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    documented(
        &server,
        &doc,
        contact,
        "/v1/contacts/ana",
        key,
        Some(json!({"properties": {"plan": 42}})),
    )
    .await;
    let batch = ("post", "/v1/contacts:batch");
    let (status, _) = documented(&server, &doc, batch, "/v1/contacts:batch", key, Some(json!({"contacts": [{"id": "ben", "anonymous": true}, {"id": "cy", "properties": {"country": "FR"}}]}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = documented(
        &server,
        &doc,
        batch,
        "/v1/contacts:batch",
        key,
        Some(json!({"contacts": [{"properties": {}}, {"id": "dee", "properties": {"plan": 1}}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["details"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{refused}"
    );

    let events = ("post", "/v1/events");
    let (status, _) = documented(&server, &doc, events, "/v1/events", key, Some(json!({"id": "e1", "contact_id": "ana", "type": "purchase", "properties": {"amount": 5}}))).await;
    assert_eq!(status, StatusCode::OK);
    documented(&server, &doc, events, "/v1/events", key, Some(json!({"events": [{"id": "e1", "contact_id": "ana", "type": "purchase"}, {"contact_id": "ben", "type": "view"}]}))).await;
    let (status, _) = documented(&server, &doc, events, "/v1/events", key, Some(json!({"events": [{"contact_id": "ana"}, {"contact_id": "ana", "type": "x", "at": "soon"}]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    documented(
        &server,
        &doc,
        ("post", "/v1/identify"),
        "/v1/identify",
        key,
        Some(json!({"anonymous_id": "ben", "contact_id": "ana"})),
    )
    .await;

    documented(
        &server,
        &doc,
        ("get", "/v1/contacts/{id}"),
        "/v1/contacts/ana",
        key,
        None,
    )
    .await;
    documented(
        &server,
        &doc,
        ("get", "/v1/contacts/{id}"),
        "/v1/contacts/nobody",
        key,
        None,
    )
    .await;
    documented(
        &server,
        &doc,
        ("get", "/v1/contacts"),
        "/v1/contacts?limit=1",
        key,
        None,
    )
    .await;
    let explain = format!("/v1/contacts/ana/explain?segment={segment}");
    let (_, explained) = documented(
        &server,
        &doc,
        ("get", "/v1/contacts/{id}/explain"),
        &explain,
        key,
        None,
    )
    .await;
    assert_eq!(explained["member"], true, "{explained}");
    let changes = format!("/v1/segments/{segment}/changes?limit=1");
    let (_, page) = documented(
        &server,
        &doc,
        ("get", "/v1/segments/{id}/changes"),
        &changes,
        key,
        None,
    )
    .await;
    assert!(page["next_cursor"].is_string(), "{page}");
    let (_, deleted) = documented(
        &server,
        &doc,
        ("delete", "/v1/contacts/{id}"),
        "/v1/contacts/ana",
        key,
        None,
    )
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

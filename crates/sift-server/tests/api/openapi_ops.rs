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
pub async fn operations() -> (Json, Vec<(String, String, Json)>) {
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
    assert_eq!(codes.len(), 22);
}

/// A generated client reads `details.line` of an `invalid_condition` without
/// a cast only if the schema names it; the object stays open for the keys
/// that vary by code (a 404's `kind`, a 409's `usages`).
#[tokio::test]
async fn the_error_details_name_their_common_keys_and_stay_open() {
    let (doc, _) = operations().await;
    let details =
        &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["details"];
    assert_eq!(details["additionalProperties"], json!(true), "{details:#}");
    let properties = &details["properties"];
    for (key, kind) in [
        ("field", "string"),
        ("line", "integer"),
        ("path", "string"),
        ("items", "array"),
    ] {
        assert_eq!(properties[key]["type"], json!(kind), "{key}: {details:#}");
    }
    // A number for a condition, the column's name for a CSV export.
    assert_eq!(
        properties["column"]["type"],
        json!(["integer", "string"]),
        "{details:#}"
    );
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

/// Every list's `limit` is checked by one function (1 to 1,000, 100 when
/// absent); the document once said any integer from 0 would do, so a client
/// following it got a 400 for `limit=0` (schemathesis' positive-data check).
#[tokio::test]
async fn every_limit_parameter_documents_the_bounds_the_server_enforces() {
    let server = Server::new();
    let (_, operations) = operations().await;
    let mut seen = 0;
    for (method, path, operation) in &operations {
        let Some(parameters) = operation["parameters"].as_array() else {
            continue;
        };
        for parameter in parameters.iter().filter(|p| p["name"] == "limit") {
            seen += 1;
            let schema = &parameter["schema"];
            // Value suggestions answer few values: their own, smaller bounds.
            let (maximum, default) = if path.ends_with("/values") {
                (100, 20)
            } else {
                (1000, 100)
            };
            assert_eq!(schema["minimum"], 1, "{method} {path}: {schema}");
            assert_eq!(schema["maximum"], maximum, "{method} {path}: {schema}");
            assert_eq!(schema["default"], default, "{method} {path}: {schema}");
        }
    }
    assert!(seen >= 4, "only {seen} limit parameters");
    for (limit, status) in [
        (0, StatusCode::BAD_REQUEST),
        (1, StatusCode::OK),
        (100, StatusCode::OK),
        (101, StatusCode::BAD_REQUEST),
    ] {
        for path in [
            format!("/v1/fields/email/values?limit={limit}"),
            format!("/v1/event-types/purchase/properties/sku/values?limit={limit}"),
        ] {
            let (got, body) = send(&server.app, "GET", &path, Some(&server.key), None).await;
            assert_eq!(got, status, "{path}: {body}");
        }
    }
    // What the server does at and beyond the documented bounds.
    for (limit, status) in [
        (0, StatusCode::BAD_REQUEST),
        (1, StatusCode::OK),
        (1000, StatusCode::OK),
        (1001, StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/v1/contacts?limit={limit}");
        let (got, body) = send(&server.app, "GET", &path, Some(&server.key), None).await;
        assert_eq!(got, status, "{path}: {body}");
    }
}

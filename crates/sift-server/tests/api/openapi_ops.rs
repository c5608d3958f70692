//! Operations endpoints (docs/api.md last row): `/healthz`, `/metrics` in the
//! Prometheus text format, and `/v1/openapi.json` describing every route.

use axum::http::StatusCode;
use serde_json::json;

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

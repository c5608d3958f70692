//! Request bodies as the document describes them, checked against what the
//! handlers accept: a generated client or a fuzzer that builds a body from
//! the schema must not be refused for something the schema allows, nor be
//! told a body is valid that the server refuses.

use serde_json::{Value as Json, json};

use crate::common::Server;
use crate::openapi_ops::operations;

/// The request body schema of an operation, its `$ref` followed.
fn body_schema<'a>(doc: &'a Json, method: &str, path: &str) -> &'a Json {
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// `audience_id` is read as digits in a string or as a whole number (the
/// handler accepts both), so the schema offers both.
#[tokio::test]
async fn a_facebook_audience_id_is_documented_as_digits_or_a_whole_number() {
    let (doc, _) = operations().await;
    let export = body_schema(&doc, "post", "/v1/segments/{id}/exports/facebook");
    let audience = &export["properties"]["audience_id"];
    let choices = audience["oneOf"].as_array().expect("a choice");
    let types: Vec<&Json> = choices.iter().map(|c| &c["type"]).collect();
    assert_eq!(types, [&json!("string"), &json!("integer")], "{audience:#}");
    assert_eq!(choices[1]["minimum"], json!(0), "{audience:#}");
    assert!(
        export["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("audience_id"))),
        "{export:#}"
    );
}

/// An event without `properties` is accepted (tests/api/events.rs), so the
/// schema does not require the key; its values are any JSON.
#[tokio::test]
async fn an_events_properties_are_optional_and_open() {
    let (doc, _) = operations().await;
    let event = &doc["components"]["schemas"]["Event"];
    let required = event["required"].as_array().cloned().unwrap_or_default();
    assert!(!required.contains(&json!("properties")), "{event:#}");
    assert_eq!(
        event["properties"]["properties"]["additionalProperties"],
        json!(true),
        "{event:#}"
    );
}

/// Every object schema lists its keys or says whether others are allowed: a
/// bare `{"type": "object"}` is read by openapi-typescript as an object with
/// no keys at all (`Record<string, never>`), which no real value satisfies.
#[tokio::test]
async fn no_object_schema_leaves_its_keys_unsaid() {
    fn walk(schema: &Json, at: &str, bare: &mut Vec<String>) {
        match schema {
            Json::Object(map) => {
                let object = match &map.get("type") {
                    Some(Json::String(t)) => t == "object",
                    Some(Json::Array(types)) => types.contains(&json!("object")),
                    _ => false,
                };
                if object
                    && !map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                {
                    bare.push(at.to_string());
                }
                for (key, inner) in map {
                    walk(inner, &format!("{at}/{key}"), bare);
                }
            }
            Json::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{at}/{i}"), bare);
                }
            }
            _ => {}
        }
    }
    let (doc, _) = operations().await;
    let mut bare = Vec::new();
    walk(&doc, "", &mut bare);
    assert!(bare.is_empty(), "objects without keys: {bare:#?}");
}

/// The request bodies whose readers refuse a key they do not list, and
/// those that ignore one (serde's default): the document says which is which.
#[tokio::test]
async fn bodies_that_refuse_unknown_keys_say_so_in_the_document() {
    let (doc, _) = operations().await;
    let closed = [
        ("put", "/v1/contacts/{id}"),
        ("post", "/v1/identify"),
        ("put", "/v1/fields/{name}"),
        ("post", "/v1/scoring-rules"),
        ("patch", "/v1/scoring-rules/{id}"),
        ("post", "/v1/segments"),
        ("patch", "/v1/segments/{id}"),
        ("post", "/v1/segments:preview"),
        ("post", "/v1/segments/{id}/exports/facebook"),
        ("post", "/v1/webhooks"),
        ("patch", "/v1/webhooks/{id}"),
        ("post", "/v1/workflows"),
        ("patch", "/v1/workflows/{id}"),
        ("post", "/v1/workspaces"),
    ];
    for (method, path) in closed {
        let body = body_schema(&doc, method, path);
        assert_eq!(
            body["additionalProperties"],
            json!(false),
            "{method} {path}: {body:#}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for name in ["BatchContact", "Event", "EventBatch"] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            json!(false),
            "{name}"
        );
    }
    // Read by serde without deny_unknown_fields: an extra key is ignored.
    for (method, path) in [
        ("post", "/v1/contacts:batch"),
        ("post", "/v1/segments/{id}/contacts"),
    ] {
        let body = body_schema(&doc, method, path);
        assert!(
            body.get("additionalProperties").is_none(),
            "{method} {path}: {body:#}"
        );
    }
    // PUT takes a batch item as it is; its `id` is ignored.
    let contact = body_schema(&doc, "put", "/v1/contacts/{id}");
    assert!(contact["properties"]["id"].is_object(), "{contact:#}");
}

/// What the document says holds: an unknown key is a 422 naming it, and a
/// PUT with a batch item's `id` is accepted.
#[tokio::test]
async fn closed_bodies_refuse_an_unknown_key_and_a_put_takes_a_batch_item() {
    let server = Server::new();
    let cases = [
        (
            "PUT",
            "/v1/contacts/ana",
            json!({"properties": {}, "nickname": "a"}),
        ),
        (
            "POST",
            "/v1/contacts:batch",
            json!({"contacts": [{"id": "a", "nickname": "a"}]}),
        ),
        (
            "POST",
            "/v1/events",
            json!({"contact_id": "ana", "type": "x", "nickname": "a"}),
        ),
        ("POST", "/v1/events", json!({"events": [], "nickname": "a"})),
        (
            "POST",
            "/v1/identify",
            json!({"anonymous_id": "x", "contact_id": "y", "nickname": "a"}),
        ),
        (
            "POST",
            "/v1/segments",
            json!({"name": "S", "nickname": "a"}),
        ),
        ("POST", "/v1/segments:preview", json!({"nickname": "a"})),
        (
            "POST",
            "/v1/scoring-rules",
            json!({"event_type": "x", "points": 1, "nickname": "a"}),
        ),
        (
            "POST",
            "/v1/webhooks",
            json!({"url": "https://example.com/h", "secret": "s", "nickname": "a"}),
        ),
        (
            "POST",
            "/v1/workflows",
            json!({"name": "W", "nickname": "a"}),
        ),
    ];
    for (method, path, body) in cases {
        let (status, answer) = server.send(method, path, Some(body)).await;
        assert_eq!(status.as_u16(), 422, "{method} {path}: {answer}");
        let text = answer.to_string();
        assert!(text.contains("nickname"), "{method} {path}: {answer}");
    }
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/contacts/ana",
            Some(json!({"id": "someone-else", "properties": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{answer}");
    assert_eq!(answer["id"], "ana", "{answer}");
}

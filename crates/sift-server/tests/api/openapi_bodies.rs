//! Request bodies as the document describes them, checked against what the
//! handlers accept: a generated client or a fuzzer that builds a body from
//! the schema must not be refused for something the schema allows, nor be
//! told a body is valid that the server refuses.

use serde_json::{Value as Json, json};

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

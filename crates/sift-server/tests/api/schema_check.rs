//! One schema checker for the OpenAPI tests: whether a JSON value is what a
//! schema of the served document says, the way a response-schema check of a
//! client or a fuzzer reads it (types, enums, `oneOf`, required keys, and no
//! key an object's schema does not name unless it says it is open), all the
//! way down.

use serde_json::Value as Json;

/// `schema` itself, or the component its `$ref` names (followed to the end).
pub fn resolve<'a>(doc: &'a Json, schema: &'a Json) -> &'a Json {
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

fn has_type(value: &Json, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// Whether an object's schema takes keys it does not name.
fn is_open(schema: &Json) -> bool {
    match schema.get("additionalProperties") {
        None | Some(Json::Bool(false)) => false,
        Some(_) => true,
    }
}

/// What is wrong with `value` under `schema` (empty: it conforms).
pub fn violations(doc: &Json, schema: &Json, value: &Json, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut found = Vec::new();
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let matching = alternatives
            .iter()
            .filter(|alternative| violations(doc, alternative, value, at).is_empty())
            .count();
        if matching != 1 {
            found.push(format!("{at}: {matching} of oneOf match {value}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Json::String(name) => vec![name.as_str()],
        Json::Array(names) => names.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
        found.push(format!("{at}: {value} is not {types:?}"));
        return found;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        found.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Json::Object(map), Some(properties)) = (value, schema["properties"].as_object()) {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !map.contains_key(key.as_str().unwrap_or_default()) {
                found.push(format!("{at}: required {key} is missing"));
            }
        }
        for (key, item) in map {
            match properties.get(key) {
                None if is_open(schema) => {}
                None => found.push(format!("{at}: {key:?} is not documented")),
                Some(property) => {
                    found.extend(violations(doc, property, item, &format!("{at}/{key}")))
                }
            }
        }
    }
    if let (Json::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            found.extend(violations(doc, item_schema, item, &format!("{at}/{i}")));
        }
    }
    found
}

/// Asserts that `value` conforms to `schema`, naming every fault.
pub fn conforms(doc: &Json, schema: &Json, value: &Json, at: &str) {
    let found = violations(doc, schema, value, at);
    assert!(found.is_empty(), "{at}: {found:#?}\n{value:#}");
}

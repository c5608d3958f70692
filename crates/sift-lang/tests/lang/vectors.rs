//! docs/conditions.md's test vectors (`condition-vectors.json`, copied from the shared
//! spec folder because CI runs on a clean clone of the repository).

use serde_json::Value;
use sift_lang::{FieldType, from_json, parse_text, to_json, to_text};

use crate::schema::TestSchema;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../condition-vectors.json")).unwrap()
}

fn schema_for(vector: &Value) -> TestSchema {
    let mut schema = TestSchema::new();
    if let Some(fields) = vector.get("fields").and_then(Value::as_object) {
        for (name, ty) in fields {
            let ty = FieldType::from_name(ty.as_str().unwrap()).unwrap();
            schema = schema.with_field(name, ty);
        }
    }
    schema
}

#[test]
fn valid_vectors_parse_to_their_tree() {
    let vectors = vectors();
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 25);
    for vector in valid {
        let text = vector["text"].as_str().unwrap();
        let schema = schema_for(vector);
        let cond = parse_text(text, &schema).unwrap_or_else(|err| panic!("{text:?}: {err}"));
        assert_eq!(to_json(&cond), vector["tree"], "tree of {text:?}");
        assert_eq!(
            from_json(&vector["tree"], &schema),
            Ok(cond.clone()),
            "from_json of {text:?}"
        );

        let canonical = to_text(&cond, &schema);
        let reparsed = parse_text(&canonical, &schema)
            .unwrap_or_else(|err| panic!("canonical {canonical:?} of {text:?}: {err}"));
        assert_eq!(reparsed, cond, "canonical text {canonical:?} of {text:?}");
        assert_eq!(
            to_text(&reparsed, &schema),
            canonical,
            "fixpoint of {text:?}"
        );
    }
}

#[test]
fn invalid_vectors_fail_at_their_position() {
    let vectors = vectors();
    let invalid = vectors["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 13);
    for vector in invalid {
        let text = vector["text"].as_str().unwrap();
        let err = parse_text(text, &schema_for(vector)).expect_err(text);
        let position = err
            .position
            .unwrap_or_else(|| panic!("{text:?}: no position"));
        let expected = (
            vector["line"].as_u64().unwrap(),
            vector["column"].as_u64().unwrap(),
        );
        assert_eq!(
            (u64::from(position.line), u64::from(position.column)),
            expected,
            "{text:?} ({}) gave: {err}",
            vector["why"]
        );
    }
}

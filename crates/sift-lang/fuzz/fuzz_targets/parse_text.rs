//! Fuzzes the text parser: any UTF-8 input must return (never panic, never
//! overflow the stack), and any accepted input must print to canonical text
//! that parses back to the same tree, is a fixpoint, and survives JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sift_lang::{FieldType, Schema, from_json, parse_text, to_json, to_text};

/// A fixed workspace: a field of every type and one segment.
struct FuzzSchema;

impl Schema for FuzzSchema {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        Some(match name {
            "email" | "country" => FieldType::String,
            "lead_score" | "orders" => FieldType::Number,
            "newsletter" => FieldType::Boolean,
            "birth_date" => FieldType::Date,
            "last_seen_at" => FieldType::DateTime,
            "interests" => FieldType::StringList,
            _ => return None,
        })
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        name.eq_ignore_ascii_case("VIP customers")
            .then(|| "segment:vip".to_string())
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        (id == "segment:vip").then(|| "VIP customers".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schema = FuzzSchema;
    let Ok(cond) = parse_text(text, &schema) else {
        return;
    };
    let printed = to_text(&cond, &schema);
    let reparsed = parse_text(&printed, &schema);
    assert_eq!(reparsed.as_ref(), Ok(&cond), "canonical text: {printed:?}");
    assert_eq!(to_text(&cond, &schema), printed);
    assert_eq!(from_json(&to_json(&cond), &schema), Ok(cond));
});

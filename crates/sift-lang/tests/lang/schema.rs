//! The workspace the tests check conditions against: docs/concepts.md's built-in and
//! system fields, `orders` and `signup_at` (used by the vectors), and two
//! segments, one of them with a name that needs escaping.

use std::collections::BTreeMap;

use sift_lang::{FieldType, Schema};

pub const VIP_ID: &str = "segment:VIP customers";
pub const QUOTED_ID: &str = "segment:quoted";
pub const QUOTED_NAME: &str = "Say \"hi\" \\ bye";

#[derive(Clone, Debug)]
pub struct TestSchema {
    pub fields: BTreeMap<String, FieldType>,
    pub segments: Vec<(String, String)>,
}

impl TestSchema {
    pub fn new() -> TestSchema {
        use FieldType::*;
        let fields = [
            ("email", String),
            ("phone", String),
            ("first_name", String),
            ("last_name", String),
            ("country", String),
            ("birth_date", Date),
            ("newsletter", Boolean),
            ("interests", StringList),
            ("created_at", DateTime),
            ("updated_at", DateTime),
            ("last_seen_at", DateTime),
            ("anonymous", Boolean),
            ("lead_score", Number),
            ("orders", Number),
            ("signup_at", DateTime),
            // Field names that are keywords of the text form, to test quoting.
            ("total", Number),
            ("in", String),
        ];
        TestSchema {
            fields: fields
                .into_iter()
                .map(|(name, ty)| (name.to_string(), ty))
                .collect(),
            segments: vec![
                (VIP_ID.to_string(), "VIP customers".to_string()),
                (QUOTED_ID.to_string(), QUOTED_NAME.to_string()),
            ],
        }
    }

    pub fn with_field(mut self, name: &str, ty: FieldType) -> TestSchema {
        self.fields.insert(name.to_string(), ty);
        self
    }
}

impl Schema for TestSchema {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        self.fields.get(name).copied()
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        self.segments
            .iter()
            .find(|(_, candidate)| candidate.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone())
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        self.segments
            .iter()
            .find(|(candidate, _)| candidate == id)
            .map(|(_, name)| name.clone())
    }

    fn field_names(&self) -> Vec<String> {
        self.fields.keys().cloned().collect()
    }

    fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|(_, name)| name.clone()).collect()
    }
}

//! The workspace's schema of contact properties (docs/concepts.md): built-in and system
//! fields, declared fields, and fields inferred on first write.

use foldhash::HashMap;

use sift_lang::FieldType;

/// Built-in fields every workspace has; clients write them.
pub const BUILTIN_FIELDS: &[(&str, FieldType, &str)] = &[
    ("email", FieldType::String, "Email"),
    ("phone", FieldType::String, "Phone"),
    ("first_name", FieldType::String, "First name"),
    ("last_name", FieldType::String, "Last name"),
    ("country", FieldType::String, "Country"),
    ("birth_date", FieldType::Date, "Date of birth"),
    (
        "newsletter",
        FieldType::Boolean,
        "Subscribed to the newsletter",
    ),
    ("interests", FieldType::StringList, "Interests"),
];

/// System fields: kept by Sift, read-only to clients, usable in conditions.
pub const SYSTEM_FIELDS: &[(&str, FieldType, &str)] = &[
    ("created_at", FieldType::DateTime, "Created"),
    ("updated_at", FieldType::DateTime, "Updated"),
    ("last_seen_at", FieldType::DateTime, "Last seen"),
    ("anonymous", FieldType::Boolean, "Anonymous"),
    ("lead_score", FieldType::Number, "Lead score"),
];

/// Column numbers of the system fields, fixed so the contact table can reach
/// them without a lookup.
pub const CREATED_AT: usize = BUILTIN_FIELDS.len();
pub const UPDATED_AT: usize = CREATED_AT + 1;
pub const LAST_SEEN_AT: usize = CREATED_AT + 2;
pub const ANONYMOUS: usize = CREATED_AT + 3;
pub const LEAD_SCORE: usize = CREATED_AT + 4;

/// How many custom fields a workspace may have, and how many one write may
/// create. Every field costs a column (and a row in every field list); the
/// limits keep one careless or hostile write from making thousands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLimits {
    /// Custom fields (declared or inferred; built-in and system ones excluded).
    pub max_fields: usize,
    /// New fields one write (a batch counts as one) may create.
    pub max_new_per_write: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            max_fields: 1_000,
            max_new_per_write: 100,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub field_type: FieldType,
    pub label: String,
    pub builtin: bool,
    pub system: bool,
}

/// All fields of a workspace; a field's position is its column number.
#[derive(Clone, Debug)]
pub struct Fields {
    defs: Vec<FieldDef>,
    by_name: HashMap<String, usize>,
}

impl Default for Fields {
    fn default() -> Self {
        let mut fields = Fields {
            defs: Vec::new(),
            by_name: HashMap::default(),
        };
        for (system, list) in [(false, BUILTIN_FIELDS), (true, SYSTEM_FIELDS)] {
            for (name, field_type, label) in list {
                fields.push(FieldDef {
                    name: (*name).to_string(),
                    field_type: *field_type,
                    label: (*label).to_string(),
                    builtin: true,
                    system,
                });
            }
        }
        fields
    }
}

impl Fields {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, name: &str) -> Option<&FieldDef> {
        self.index(name).map(|i| &self.defs[i])
    }

    pub fn def(&self, index: usize) -> &FieldDef {
        &self.defs[index]
    }

    pub fn all(&self) -> &[FieldDef] {
        &self.defs
    }

    pub fn len(&self) -> usize {
        self.defs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Fields that are neither built-in nor system ones.
    pub fn custom_count(&self) -> usize {
        self.defs.len() - BUILTIN_FIELDS.len() - SYSTEM_FIELDS.len()
    }

    /// Adds a field, or replaces the definition of one with that name.
    /// Returns its column number.
    pub fn push(&mut self, def: FieldDef) -> usize {
        if let Some(&index) = self.by_name.get(&def.name) {
            self.defs[index] = def;
            return index;
        }
        let index = self.defs.len();
        self.by_name.insert(def.name.clone(), index);
        self.defs.push(def);
        index
    }
}

/// `[a-z][a-z0-9_]{0,63}` (docs/concepts.md).
pub fn valid_field_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// 1–128 bytes of UTF-8 without control characters (docs/concepts.md).
pub fn valid_contact_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control)
}

//! The model the merge differential test checks identify against: contacts
//! as plain data, merged by the rules of docs/concepts.md "Identify" themselves, the outcome
//! each identify must have, and the segments every run creates.

use std::collections::BTreeMap;

use sift_engine::{
    Error, RawValue, Record, ScoringRuleInput, SegmentInput, SegmentKind, Workspace,
};
use sift_lang::{Duration, DurationUnit, parse_text};

/// (name, condition text or None for static), in creation order.
pub const SEGMENTS: &[(&str, Option<&str>)] = &[
    ("Anonymous", Some("anonymous = true")),
    (
        "Known in Spain",
        Some("anonymous = false and country = \"ES\""),
    ),
    ("Viewers", Some("performed product_view at least 2 times")),
    ("Recent buyers", Some("performed purchase in last 7 days")),
    ("Big spenders", Some("total purchase.amount >= 100")),
    ("Scored", Some("lead_score >= 10")),
    ("Named", Some("first_name is set")),
    ("Seen lately", Some("last_seen_at in last 3 days")),
    ("VIP", None),
    (
        "Viewers not VIP",
        Some("in segment \"Viewers\" and not in segment \"VIP\""),
    ),
    (
        "Anonymous VIP",
        Some("in segment \"VIP\" and anonymous = true"),
    ),
];

#[derive(Clone, Debug, Default)]
pub struct MContact {
    pub anonymous: bool,
    pub properties: BTreeMap<String, RawValue>,
    /// (type, at, amount), in arrival order.
    pub events: Vec<(String, i64, Option<f64>)>,
    pub statics: bool,
}

#[derive(Default)]
pub struct Model {
    pub contacts: BTreeMap<String, MContact>,
    pub aliases: BTreeMap<String, String>,
}

impl Model {
    /// The live contact a write to `id` reaches, if any.
    pub fn resolve(&self, id: &str) -> Option<String> {
        if self.contacts.contains_key(id) {
            return Some(id.to_string());
        }
        self.aliases.get(id).cloned()
    }

    pub fn delete(&mut self, id: &str) {
        self.contacts.remove(id);
        self.aliases.retain(|_, target| target != id);
    }

    pub fn expected(&self, a: &str, k: &str) -> Outcome {
        if a == k {
            return Outcome::Refused("invalid");
        }
        let into = self.resolve(k);
        if let Some(target) = self.aliases.get(a) {
            return if Some(target) == into.as_ref() {
                Outcome::Unchanged
            } else {
                Outcome::Refused("already_merged")
            };
        }
        match self.contacts.get(a) {
            Some(_) if into.as_deref() == Some(a) => Outcome::Refused("invalid"),
            Some(c) if !c.anonymous => Outcome::Refused("known"),
            Some(_) => Outcome::Merged,
            None => Outcome::AliasOnly,
        }
    }

    pub fn identify(&mut self, a: &str, k: &str, merged: bool) {
        let into = self.resolve(k).unwrap_or_else(|| k.to_string());
        let from = if merged {
            self.contacts.remove(a)
        } else {
            None
        };
        let target = self.contacts.entry(into.clone()).or_default();
        target.anonymous = false;
        if let Some(from) = from {
            for (name, value) in from.properties {
                target.properties.entry(name).or_insert(value);
            }
            target.events.extend(from.events);
            target.statics |= from.statics;
            for alias_target in self.aliases.values_mut() {
                if alias_target == a {
                    *alias_target = into.clone();
                }
            }
        }
        self.aliases.insert(a.to_string(), into);
    }
}

/// What the model expects of identify.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Merged,
    AliasOnly,
    Unchanged,
    Refused(&'static str),
}

pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::KnownContact { .. } => "known",
        Error::AlreadyMerged { .. } => "already_merged",
        Error::Invalid(_) => "invalid",
        Error::InvalidContactId(_) => "invalid_id",
        _ => "other",
    }
}

pub fn setup(ws: &mut Workspace, now: i64) -> Vec<Record> {
    let mut records = Vec::new();
    let rule = ScoringRuleInput {
        id: "views".into(),
        event_type: "product_view".into(),
        filter: None,
        points: 4.0,
        expires_after: Some(Duration {
            amount: 10,
            unit: DurationUnit::Days,
        }),
    };
    match ws.create_scoring_rule(rule, now) {
        Ok(write) => records.extend(write.records),
        Err(e) => panic!("scoring rule refused: {e}"),
    }
    for (name, condition) in SEGMENTS {
        let id = name.to_lowercase().replace(' ', "_");
        let condition = condition.map(|text| match parse_text(text, &ws.schema()) {
            Ok(c) => c,
            Err(e) => panic!("{text}: {e}"),
        });
        let input = SegmentInput {
            id,
            name: name.to_string(),
            description: String::new(),
            kind: if condition.is_some() {
                SegmentKind::Dynamic
            } else {
                SegmentKind::Static
            },
            condition,
            test: false,
        };
        match ws.create_segment(input, now) {
            Ok(write) => records.extend(write.records),
            Err(e) => panic!("segment {name} refused: {e}"),
        }
    }
    records
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

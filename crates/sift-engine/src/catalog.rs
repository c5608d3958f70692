//! What events have shown of each event type: its property names, the kind
//! of value each holds and, for text properties, how often each value came,
//! so that the condition builder can offer properties and values to pick.
//!
//! Memory may keep only some properties of an event (events on disk keep
//! those windowed counts read), so the catalog is kept apart from the
//! histories: it counts every property of each event the workspace applies,
//! and on a start from a checkpoint it counts what the loaded histories hold.
//! Every dimension is bounded: past a bound, new names or values are not
//! added (those already known keep counting).

use std::collections::BTreeMap;

use foldhash::HashMap;

use crate::columns::Interner;
use crate::events::{Prop, StoredEvent};

/// Event types the catalog follows.
pub const CATALOG_TYPES: usize = 1_000;
/// Properties followed per event type.
pub const CATALOG_PROPERTIES: usize = 200;
/// Distinct text values counted per property.
pub const CATALOG_VALUES: usize = 1_000;
/// Distinct (type, property, value) entries counted in all, so that the
/// catalog stays a few megabytes however many types and properties come.
pub const CATALOG_VALUES_TOTAL: usize = 200_000;

#[derive(Clone, Debug, Default)]
pub struct EventCatalog {
    /// By interned type id.
    types: BTreeMap<u32, TypeEntry>,
    /// Distinct values counted across every property.
    values: usize,
}

#[derive(Clone, Debug, Default)]
struct TypeEntry {
    events: u64,
    /// By interned property name id.
    properties: BTreeMap<u32, PropertyEntry>,
}

#[derive(Clone, Debug, Default)]
struct PropertyEntry {
    /// Events holding the property, by kind of value (see [`KINDS`]).
    kinds: [u64; 6],
    /// By interned string id: events whose value is (or, for a list, holds) it.
    values: HashMap<u32, u64>,
}

/// The kinds of value, in the order of [`PropertyEntry::kinds`]; the names
/// are the field type names of the condition language.
const KINDS: [&str; 6] = [
    "string",
    "number",
    "boolean",
    "date",
    "datetime",
    "string_list",
];

fn kind_index(prop: &Prop) -> usize {
    match prop {
        Prop::Str(_) => 0,
        Prop::Num(_) => 1,
        Prop::Bool(_) => 2,
        Prop::Date(_) => 3,
        Prop::DateTime(_) => 4,
        Prop::List(_) => 5,
    }
}

/// One property of an event type, as the catalog has seen it.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertySeen {
    pub name: String,
    /// The kind of value most events had ("string", "number", …).
    pub kind: &'static str,
    /// Events of the type holding the property.
    pub count: u64,
}

/// One event type, as the catalog has seen it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventTypeSeen {
    pub event_type: String,
    /// Events of the type counted.
    pub events: u64,
    /// Most frequent first, then by name.
    pub properties: Vec<PropertySeen>,
}

impl EventCatalog {
    /// Counts one event (its names and values interned in the log).
    pub fn add(&mut self, event: &StoredEvent) {
        if !self.types.contains_key(&event.kind) && self.types.len() >= CATALOG_TYPES {
            return;
        }
        let entry = self.types.entry(event.kind).or_default();
        entry.events += 1;
        for (name, prop) in event.props.iter() {
            if !entry.properties.contains_key(name) && entry.properties.len() >= CATALOG_PROPERTIES
            {
                continue;
            }
            let property = entry.properties.entry(*name).or_default();
            property.kinds[kind_index(prop)] += 1;
            let total = &mut self.values;
            let mut count = |id: u32| {
                let room = property.values.len() < CATALOG_VALUES && *total < CATALOG_VALUES_TOTAL;
                match property.values.get_mut(&id) {
                    Some(n) => *n += 1,
                    None if room => {
                        property.values.insert(id, 1);
                        *total += 1;
                    }
                    None => {}
                }
            };
            match prop {
                Prop::Str(id) => count(*id),
                Prop::List(ids) => ids.iter().copied().for_each(count),
                _ => {}
            }
        }
    }

    /// Every event type followed, sorted by name, with its properties.
    pub fn types(&self, types: &Interner, names: &Interner) -> Vec<EventTypeSeen> {
        let mut out: Vec<EventTypeSeen> = self
            .types
            .iter()
            .map(|(kind, entry)| {
                let mut properties: Vec<PropertySeen> = entry
                    .properties
                    .iter()
                    .map(|(name, p)| {
                        let (best, _) = p
                            .kinds
                            .iter()
                            .enumerate()
                            .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
                            .unwrap_or((0, &0));
                        PropertySeen {
                            name: names.resolve(*name).to_string(),
                            kind: KINDS[best],
                            count: p.kinds.iter().sum(),
                        }
                    })
                    .collect();
                properties.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
                EventTypeSeen {
                    event_type: types.resolve(*kind).to_string(),
                    events: entry.events,
                    properties,
                }
            })
            .collect();
        out.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        out
    }

    /// The text values of property `name` of events of type `kind`
    /// containing `query` (ignoring case), most frequent first, then in
    /// text order; at most `limit`.
    pub fn values(
        &self,
        kind: u32,
        name: u32,
        query: &str,
        limit: usize,
        strings: &Interner,
    ) -> Vec<(String, u64)> {
        let Some(property) = self
            .types
            .get(&kind)
            .and_then(|entry| entry.properties.get(&name))
        else {
            return Vec::new();
        };
        let texts = property
            .values
            .iter()
            .map(|(id, n)| (strings.resolve(*id), *n));
        top_values(texts, query, limit)
    }
}

/// The values among `texts` containing `query` (ignoring case), most
/// frequent first, then in text order; at most `limit`.
pub fn top_values<'a>(
    texts: impl Iterator<Item = (&'a str, u64)>,
    query: &str,
    limit: usize,
) -> Vec<(String, u64)> {
    let needle = query.to_lowercase();
    let mut found: Vec<(&str, u64)> = texts
        .filter(|(text, n)| *n > 0 && (needle.is_empty() || text.to_lowercase().contains(&needle)))
        .collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    found.truncate(limit);
    found.into_iter().map(|(t, n)| (t.to_string(), n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_properties_kinds_and_values_within_bounds() {
        let mut log = crate::events::EventLog::default();
        let mut catalog = EventCatalog::default();
        for (category, amount) in [("shoes", 10.0), ("bags", 5.0), ("shoes", 1.0)] {
            let event = log.intern(
                "purchase",
                0,
                &[
                    (
                        "category".into(),
                        crate::value::RawValue::String(category.into()),
                    ),
                    ("amount".into(), crate::value::RawValue::Number(amount)),
                ],
                0,
            );
            catalog.add(&event);
        }
        let types = catalog.types(&log.types, &log.names);
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].events, 3);
        let kinds: Vec<(&str, &str, u64)> = types[0]
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.kind, p.count))
            .collect();
        assert_eq!(kinds, [("amount", "number", 3), ("category", "string", 3)]);
        let kind = log.types.lookup("purchase").unwrap_or(u32::MAX);
        let name = log.names.lookup("category").unwrap_or(u32::MAX);
        let values = catalog.values(kind, name, "", 10, &log.strings);
        assert_eq!(values, [("shoes".to_string(), 2), ("bags".to_string(), 1)]);
        assert_eq!(
            catalog.values(kind, name, "AG", 10, &log.strings),
            [("bags".to_string(), 1)]
        );
        assert_eq!(catalog.values(kind, name, "", 1, &log.strings).len(), 1);
    }
}

//! Read-only views of the event history for people: the event types a
//! workspace has seen (offered by the UI's condition builder) and a contact's
//! latest events (shown on its page).

use sift_lang::DateTime;

use super::Workspace;
use crate::events::Prop;
use crate::value::Value;

/// One stored event, with its interned names and values resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct EventView {
    pub event_type: String,
    pub at: DateTime,
    pub properties: Vec<(String, Value)>,
}

impl Workspace {
    /// Every event type accepted so far, sorted.
    pub fn event_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.events.types.strings().map(|s| s.to_string()).collect();
        types.sort();
        types
    }

    /// Contact `no`'s latest `limit` events, newest first.
    pub fn recent_events(&self, no: u32, limit: usize) -> Vec<EventView> {
        let log = &self.events;
        let mut events: Vec<&crate::events::StoredEvent> = log.of(no).iter().collect();
        // The history is in arrival order; late events make `at` unordered.
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        events
            .into_iter()
            .take(limit)
            .map(|event| EventView {
                event_type: log.types.resolve(event.kind).to_string(),
                at: event.at,
                properties: event
                    .props
                    .iter()
                    .map(|(name, prop)| {
                        let value = match prop {
                            Prop::Str(s) => Value::String(log.strings.resolve(*s).to_string()),
                            Prop::Num(n) => Value::Number(*n),
                            Prop::Bool(b) => Value::Boolean(*b),
                            Prop::Date(d) => Value::Date(*d),
                            Prop::DateTime(t) => Value::DateTime(*t),
                            Prop::List(items) => Value::StringList(
                                items
                                    .iter()
                                    .map(|i| log.strings.resolve(*i).to_string())
                                    .collect(),
                            ),
                        };
                        (log.names.resolve(*name).to_string(), value)
                    })
                    .collect(),
            })
            .collect()
    }
}

/// The bound on the values a suggestion answers.
pub const SUGGESTIONS_MAX: usize = 100;

impl Workspace {
    /// Each event type the catalog follows, with the properties its events
    /// had (`crate::catalog`).
    pub fn event_catalog(&self) -> Vec<crate::EventTypeSeen> {
        self.events
            .catalog
            .types(&self.events.types, &self.events.names)
    }

    /// The most frequent text values of property `property` of events of
    /// type `event_type` containing `query` (ignoring case); empty for a
    /// type or property never seen. At most `limit` (capped at
    /// [`SUGGESTIONS_MAX`]).
    pub fn event_property_values(
        &self,
        event_type: &str,
        property: &str,
        query: &str,
        limit: usize,
    ) -> Vec<(String, u64)> {
        let log = &self.events;
        let (Some(kind), Some(name)) = (log.types.lookup(event_type), log.names.lookup(property))
        else {
            return Vec::new();
        };
        log.catalog
            .values(kind, name, query, limit.min(SUGGESTIONS_MAX), &log.strings)
    }

    /// The most frequent values of text or text-list field `field` among
    /// live contacts, containing `query` (ignoring case), with the number of
    /// contacts holding each. `None` for an unknown field or one of
    /// another type.
    pub fn field_values(
        &self,
        field: &str,
        query: &str,
        limit: usize,
    ) -> Option<Vec<(String, u64)>> {
        use crate::columns::ColumnData;
        let index = self.fields.index(field)?;
        let alive = self.contacts.alive();
        let mut counts: Vec<u64>;
        let dict = match &self.contacts.column(index).data {
            ColumnData::Str { values, dict } => {
                counts = Vec::new();
                for no in alive.iter() {
                    if let Some(&id) = values.get(no) {
                        bump(&mut counts, id);
                    }
                }
                dict
            }
            ColumnData::List { values, dict, .. } => {
                counts = Vec::new();
                for no in alive.iter() {
                    if let Some(ids) = values.get(no) {
                        ids.iter().for_each(|&id| bump(&mut counts, id));
                    }
                }
                dict
            }
            _ => return None,
        };
        let texts = counts
            .iter()
            .enumerate()
            .map(|(id, n)| (dict.resolve(id as u32), *n));
        Some(crate::catalog::top_values(
            texts,
            query,
            limit.min(SUGGESTIONS_MAX),
        ))
    }
}

fn bump(counts: &mut Vec<u64>, id: u32) {
    let id = id as usize;
    if counts.len() <= id {
        counts.resize(id + 1, 0);
    }
    counts[id] += 1;
}

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

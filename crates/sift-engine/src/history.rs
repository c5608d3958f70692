//! The event history outside memory. With a source lent by the caller (the
//! server's SQLite store, a `MemoryStore` in tests), a workspace keeps in
//! memory only the events some live window can still read and streams the
//! rest from the source when a new all-time count, a window longer than
//! those kept, or a scoring rule needs them. The engine stays free of IO:
//! the source does the reading, the engine only folds what it is handed.

use std::fmt;
use std::sync::{Arc, RwLock};

use crate::changes::EventRecord;
use crate::store::MemoryStore;
use crate::value::RawValue;

/// Where a workspace streams its stored events from.
pub trait EventHistory: Send + Sync {
    /// Calls `visit` with every stored event in arrival order, with its
    /// stored sequence number (increasing with arrival). Events of deleted
    /// contacts may be included: they are skipped but for their id, which
    /// stays accepted. Everything the workspace applied must be visible:
    /// the caller makes the store catch up with the engine first.
    fn scan(&self, visit: &mut dyn FnMut(u64, &EventRecord)) -> Result<(), String>;

    /// As [`EventHistory::scan`], but only the events of `types`: what
    /// counting a new aggregate reads. A source that can select them
    /// before decoding their properties makes such a count much cheaper.
    fn scan_types(
        &self,
        types: &[String],
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.scan(&mut |seq, event| {
            if types.contains(&event.event_type) {
                visit(seq, event);
            }
        })
    }

    /// As [`EventHistory::scan_types`], in column form and with only the
    /// properties in `names` (those a count's filter and sum read): each
    /// call hands one type's events of one stretch of the history, stretches
    /// in seq order and each type's events in seq order (two types of one
    /// stretch may come one after the other: a count reads one type). A
    /// source that keeps columns hands them without making a record per
    /// event; by default each event comes as a stretch of one.
    fn scan_columns(
        &self,
        types: &[String],
        names: &[String],
        visit: &mut dyn FnMut(&EventColumns<'_>),
    ) -> Result<(), String> {
        let mut props: Vec<(String, PropValues)> = Vec::new();
        self.scan_types(types, &mut |seq, event| {
            props.clear();
            for (name, value) in &event.properties {
                if names.contains(name) {
                    props.push((name.clone(), PropValues::Raw(vec![Some(value.clone())])));
                }
            }
            visit(&EventColumns {
                event_type: &event.event_type,
                seqs: &[seq],
                contacts: &[event.no],
                ats: &[event.at],
                props: &props,
            });
        })
    }

    /// Calls `visit` with contact `no`'s stored events in arrival order:
    /// what explaining one contact's score reads. A source with an index by
    /// contact reads only those; by default every event is scanned.
    fn scan_contact(
        &self,
        no: u32,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.scan(&mut |seq, event| {
            if event.no == no {
                visit(seq, event);
            }
        })
    }

    /// [`EventHistory::rollups`] of contact `no` only: (key, count, sum).
    fn contact_rollups(
        &self,
        no: u32,
        visit: &mut dyn FnMut(&str, u32, f64),
    ) -> Result<(), String> {
        self.rollups(&mut |key, of, count, sum| {
            if of == no {
                visit(key, count, sum);
            }
        })
    }

    /// Calls `visit` with what deleted events (past the retention) gave to
    /// all-time counts and lasting rule points: (roll-up key, contact
    /// number, count, sum). A source that never deletes has none.
    fn rollups(&self, visit: &mut dyn FnMut(&str, u32, u32, f64)) -> Result<(), String> {
        let _ = visit;
        Ok(())
    }
}

/// One event type's events of a stretch of the history, column by column.
#[derive(Clone, Copy, Debug)]
pub struct EventColumns<'a> {
    pub event_type: &'a str,
    pub seqs: &'a [u64],
    pub contacts: &'a [u32],
    pub ats: &'a [i64],
    /// (property name, one value per event).
    pub props: &'a [(String, PropValues)],
}

/// One property's values over a stretch of events, one per event.
#[derive(Clone, Debug)]
pub enum PropValues {
    /// Values that are all numbers or absent, absent as NaN: a filter and
    /// a sum read an absent property and a number that is not finite
    /// alike (as absent), and a plain column of numbers is what a count
    /// over millions of events reads fastest.
    Numbers(Vec<f64>),
    /// Any values, `None` when the event lacks the property.
    Raw(Vec<Option<RawValue>>),
}

impl Default for PropValues {
    fn default() -> Self {
        PropValues::Numbers(Vec::new())
    }
}

impl PropValues {
    pub fn len(&self) -> usize {
        match self {
            PropValues::Numbers(values) => values.len(),
            PropValues::Raw(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Event `index`'s value as a finite number, if it is one.
    pub fn number(&self, index: usize) -> Option<f64> {
        match self {
            PropValues::Numbers(values) => values.get(index).copied(),
            PropValues::Raw(values) => match values.get(index)? {
                Some(RawValue::Number(x)) => Some(*x),
                _ => None,
            },
        }
        .filter(|x| x.is_finite())
    }

    /// Event `index`'s value as the event held it (`None`: absent).
    pub fn raw(&self, index: usize) -> Option<RawValue> {
        match self {
            PropValues::Numbers(values) => values
                .get(index)
                .filter(|x| !x.is_nan())
                .map(|x| RawValue::Number(*x)),
            PropValues::Raw(values) => values.get(index)?.clone(),
        }
    }

    /// Its memory for numbers, emptied (a decoder fills it and puts
    /// it back as [`PropValues::Numbers`]), leaving it empty.
    pub fn take_numbers(&mut self) -> Vec<f64> {
        match std::mem::take(self) {
            PropValues::Numbers(mut values) => {
                values.clear();
                values
            }
            PropValues::Raw(_) => Vec::new(),
        }
    }

    /// Its memory for any values, emptied, leaving it empty.
    pub fn take_raw(&mut self) -> Vec<Option<RawValue>> {
        match std::mem::take(self) {
            PropValues::Raw(mut values) => {
                values.clear();
                values
            }
            PropValues::Numbers(_) => Vec::new(),
        }
    }
}

/// A workspace's source, shared (the server keeps a handle for progress).
#[derive(Clone)]
pub struct HistorySource(pub Arc<dyn EventHistory>);

impl fmt::Debug for HistorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HistorySource")
    }
}

/// A `MemoryStore` behind a lock is a source: tests commit to it as a
/// server's writer would and let the workspace stream from it.
impl EventHistory for RwLock<MemoryStore> {
    fn scan(&self, visit: &mut dyn FnMut(u64, &EventRecord)) -> Result<(), String> {
        let store = self
            .read()
            .map_err(|_| "the memory store's lock is poisoned".to_string())?;
        for (seq, event) in store.stored_events() {
            visit(*seq, event);
        }
        Ok(())
    }
}

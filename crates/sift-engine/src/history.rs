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
        let mut props: Vec<(String, Vec<Option<RawValue>>)> = Vec::new();
        self.scan_types(types, &mut |seq, event| {
            props.clear();
            for (name, value) in &event.properties {
                if names.contains(name) {
                    props.push((name.clone(), vec![Some(value.clone())]));
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
    /// (property name, one value per event: `None` when it lacks it).
    pub props: &'a [(String, Vec<Option<RawValue>>)],
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

//! Reading the stored events back: the whole table in arrival (seq) order
//! for the engine's history folds (docs/storage.md "What memory holds"), and
//! one contact's latest events for its page.
//!
//! A scan reads and parses on its own thread, a batch at a time, while the
//! caller folds the previous batch: parsing the properties' JSON costs about
//! as much as folding, so the two cores share the work.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::params;
use sift_engine::{EventColumns, EventHistory, EventRecord};

use crate::StoreError;
use crate::block_scan::RangeEvents;
use crate::codec::event_properties_from_text;
use crate::schema::open;
use crate::workspace_db::WorkspaceReader;

/// Rows read and parsed per batch handed to the fold.
const BATCH: usize = 8_192;
/// Batches read ahead of the fold.
const AHEAD: usize = 4;

/// Streams a workspace's events from its database, each scan on a
/// connection of its own.
#[derive(Clone, Debug)]
pub struct EventStream {
    path: PathBuf,
}

impl EventStream {
    pub fn new(path: &Path) -> EventStream {
        EventStream {
            path: path.to_path_buf(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The highest seq stored (0 when none): how far a scan will go, for
    /// progress.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let conn = open(&self.path)?;
        let last: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        Ok(last as u64)
    }

    /// Builds the columnar copy of every sealed range that lacks one
    /// ([`crate::build_event_blocks`]).
    pub fn build_blocks(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<crate::BlocksBuilt, StoreError> {
        crate::build_event_blocks(&self.path, progress)
    }

    /// Calls `visit` with every stored event in seq order (deleted
    /// contacts' kept ids included, with an empty type), inside one read
    /// transaction: the scan sees one commit's table.
    pub fn stream(&self, visit: &mut dyn FnMut(u64, &EventRecord)) -> Result<u64, StoreError> {
        self.stream_types(None, visit)
    }

    /// As [`EventStream::stream`], only the events of `types` when given:
    /// SQLite skips the others before their properties are parsed.
    pub fn stream_types(
        &self,
        types: Option<&[String]>,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<u64, StoreError> {
        let types: Option<Vec<String>> = types.map(<[String]>::to_vec);
        self.pump(
            move |path, out, _| read_all(path, types.as_deref(), out),
            &mut |batch: &Vec<(u64, EventRecord)>| {
                for (seq, event) in batch {
                    visit(*seq, event);
                }
                batch.len() as u64
            },
        )
    }

    /// As [`EventStream::stream_types`] for `types`, in column form and
    /// with only the properties named in `names`
    /// ([`EventHistory::scan_columns`]): what a new count reads. Sealed
    /// ranges come from the columnar copy (`event_blocks.rs`), the others
    /// from the rows.
    pub fn stream_columns(
        &self,
        types: &[String],
        names: &[String],
        visit: &mut dyn FnMut(&EventColumns<'_>),
    ) -> Result<u64, StoreError> {
        self.stream_ranges(types, names, &mut |range| range.each_type(visit))
    }

    /// Reads the ranges of `types` on a thread of its own and hands each
    /// to `each` here as it comes.
    fn stream_ranges(
        &self,
        types: &[String],
        names: &[String],
        each: &mut dyn FnMut(&RangeEvents),
    ) -> Result<u64, StoreError> {
        let (types, names) = (types.to_vec(), names.to_vec());
        self.pump(
            move |path, out, recycled| {
                let conn = open(path)?;
                let snapshot = conn.unchecked_transaction()?;
                crate::block_scan::read_ranges(
                    &snapshot,
                    &types,
                    &names,
                    &mut || recycled.try_recv().unwrap_or_default(),
                    &mut |range| out.send(Ok(range)).is_ok(),
                )
            },
            &mut |range: &RangeEvents| {
                each(range);
                range.len() as u64
            },
        )
    }

    /// Runs `read` on a thread of its own, handing each batch it sends to
    /// `each` here as it comes (`each` answers the events it held), and
    /// the emptied batch back to `read`, which may fill it again: its
    /// memory is reused instead of freed and faulted in again.
    fn pump<B: Send + 'static>(
        &self,
        read: impl FnOnce(
            &Path,
            &mpsc::SyncSender<Result<B, StoreError>>,
            &mpsc::Receiver<B>,
        ) -> Result<(), StoreError>
        + Send
        + 'static,
        each: &mut dyn FnMut(&B) -> u64,
    ) -> Result<u64, StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Result<B, StoreError>>(AHEAD);
        // Bounded, and filled without waiting: a reader that takes no
        // batches back (the row-by-row stream) must not leave every batch
        // of the history queued here (at 100M events that was 24 GB).
        let (recycle, recycled) = mpsc::sync_channel::<B>(AHEAD + 1);
        let path = self.path.clone();
        let reader = std::thread::Builder::new()
            .name("event-scan".into())
            .spawn(move || {
                if let Err(error) = read(&path, &tx, &recycled) {
                    let _ = tx.send(Err(error));
                }
            })?;
        let mut read = 0;
        let mut failed = None;
        for batch in rx {
            match batch {
                Ok(batch) => {
                    read += each(&batch);
                    let _ = recycle.try_send(batch);
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        drop(recycle);
        let _ = reader.join();
        match failed {
            Some(error) => Err(error),
            None => Ok(read),
        }
    }
}

impl EventStream {
    /// Contact `no`'s stored events in seq order (by the index on
    /// contacts), inside one read transaction.
    pub fn stream_contact(
        &self,
        no: u32,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<u64, StoreError> {
        let mut conn = open(&self.path)?;
        let tx = conn.transaction()?;
        let mut read = 0;
        {
            let mut stmt = tx.prepare(
                "SELECT seq, id, contact_no, type, at, properties FROM events
                 WHERE contact_no = ?1 AND type != '' ORDER BY seq",
            )?;
            let mut rows = stmt.query(params![no])?;
            while let Some(row) = rows.next()? {
                let (seq, event) = event_row(row)?;
                read += 1;
                visit(seq, &event);
            }
        }
        tx.finish()?;
        Ok(read)
    }
}

/// A source the engine streams from when nothing writes beside it (a
/// start, `sift import`); the server puts a flush of its writer in front.
impl EventHistory for EventStream {
    fn scan(&self, visit: &mut dyn FnMut(u64, &EventRecord)) -> Result<(), String> {
        self.stream(visit).map(|_| ()).map_err(|e| e.to_string())
    }

    fn scan_types(
        &self,
        types: &[String],
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.stream_types(Some(types), visit)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn scan_columns(
        &self,
        types: &[String],
        names: &[String],
        visit: &mut dyn FnMut(&EventColumns<'_>),
    ) -> Result<(), String> {
        self.stream_columns(types, names, visit)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn rollups(&self, visit: &mut dyn FnMut(&str, u32, u32, f64)) -> Result<(), String> {
        self.read_rollups(visit).map_err(|e| e.to_string())
    }

    fn scan_contact(
        &self,
        no: u32,
        visit: &mut dyn FnMut(u64, &EventRecord),
    ) -> Result<(), String> {
        self.stream_contact(no, visit)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn contact_rollups(
        &self,
        no: u32,
        visit: &mut dyn FnMut(&str, u32, f64),
    ) -> Result<(), String> {
        self.read_contact_rollups(no, visit)
            .map_err(|e| e.to_string())
    }
}

type Batches = mpsc::SyncSender<Result<Vec<(u64, EventRecord)>, StoreError>>;

fn read_all(path: &Path, types: Option<&[String]>, out: &Batches) -> Result<(), StoreError> {
    let conn = open(path)?;
    let tx = conn.unchecked_transaction()?;
    let filter = match types {
        Some(types) => format!("WHERE type IN ({})", vec!["?"; types.len()].join(", ")),
        None => String::new(),
    };
    let mut stmt = tx.prepare(&format!(
        "SELECT seq, id, contact_no, type, at, properties FROM events {filter} ORDER BY seq"
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(types.unwrap_or(&[])))?;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(row) = rows.next()? {
        batch.push(event_row(row)?);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if out.send(Ok(full)).is_err() {
                // The fold stopped: nobody waits for the rest.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = out.send(Ok(batch));
    }
    Ok(())
}

/// One `events` row: (seq, the event), its properties parsed from the
/// stored text exactly as on a request.
pub(crate) fn event_row(row: &rusqlite::Row<'_>) -> Result<(u64, EventRecord), StoreError> {
    let seq: i64 = row.get(0)?;
    let properties_json: String = row.get(5)?;
    let properties = event_properties_from_text(&properties_json)
        .map_err(|e| StoreError::Corrupt(format!("event {seq} properties: {e}")))?;
    Ok((
        seq as u64,
        EventRecord {
            no: row.get(2)?,
            id: row.get(1)?,
            event_type: row.get(3)?,
            at: row.get(4)?,
            properties,
            properties_json,
        },
    ))
}

impl WorkspaceReader {
    /// Contact `no`'s latest `limit` events by `at` (then the latest to
    /// arrive first), read from the store: memory may keep only recent ones.
    pub fn contact_events(&self, no: u32, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT seq, id, contact_no, type, at, properties FROM events
             WHERE contact_no = ?1 AND type != '' ORDER BY at DESC, seq DESC LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![no, limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(event_row(row)?.1);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A batch that counts how many of its kind are alive.
    struct Counted(Arc<AtomicUsize>);

    impl Counted {
        fn new(live: &Arc<AtomicUsize>) -> Counted {
            live.fetch_add(1, Ordering::SeqCst);
            Counted(live.clone())
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A reader that takes no emptied batch back (the row-by-row stream)
    /// must not leave them all queued: the batches alive stay a handful
    /// however long the history is.
    #[test]
    fn batches_a_reader_does_not_take_back_are_freed() {
        let live = Arc::new(AtomicUsize::new(0));
        let stream = EventStream::new(Path::new("unused"));
        let made = live.clone();
        let mut most = 0;
        let read = stream
            .pump(
                move |_path, out, _recycled| {
                    for _ in 0..200 {
                        if out.send(Ok(Counted::new(&made))).is_err() {
                            break;
                        }
                    }
                    Ok(())
                },
                &mut |_batch: &Counted| {
                    most = most.max(live.load(Ordering::SeqCst));
                    1
                },
            )
            .unwrap();
        assert_eq!(read, 200);
        assert!(most <= 2 * AHEAD + 3, "{most} batches alive at once");
    }
}

//! Event retention in the store (docs/storage.md "Retention"): a chunk of
//! events older than the retention is deleted through the writer together
//! with what it gave to all-time counts and lasting rule points
//! (`event_rollups`, computed by the engine), so a later start still counts
//! them. An event with an idempotency key keeps its row, blanked like a
//! deleted contact's (`type` empty, `properties` `{}`): its id stays
//! accepted.

use rusqlite::params;
use sift_engine::{EventRecord, Rollup};

use crate::StoreError;
use crate::event_stream::{EventStream, event_row};
use crate::schema::open;
use crate::workspace_db::WorkspaceReader;

/// Version 10 (marker `event_rollups`).
pub(crate) const V10_EVENT_ROLLUPS: &str = "
    CREATE TABLE event_rollups (
        key TEXT NOT NULL,
        contact_no INTEGER NOT NULL,
        count INTEGER NOT NULL,
        sum REAL NOT NULL,
        PRIMARY KEY (key, contact_no)
    ) WITHOUT ROWID;
    CREATE INDEX event_rollups_by_contact ON event_rollups(contact_no);
";

/// One chunk of events to delete, with what they gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventPrune {
    pub seqs: Vec<u64>,
    pub rollups: Rollup,
}

pub(crate) fn apply(tx: &rusqlite::Transaction<'_>, prune: &EventPrune) -> Result<(), StoreError> {
    let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1 AND id IS NULL")?;
    let mut blank =
        tx.prepare_cached("UPDATE events SET type = '', properties = '{}' WHERE seq = ?1")?;
    for seq in &prune.seqs {
        let seq = *seq as i64;
        if delete.execute(params![seq])? == 0 {
            blank.execute(params![seq])?;
        }
    }
    let mut add = tx.prepare_cached(
        "INSERT INTO event_rollups (key, contact_no, count, sum) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key, contact_no) DO UPDATE SET
           count = count + excluded.count, sum = sum + excluded.sum",
    )?;
    for (key, no, count, sum) in &prune.rollups {
        add.execute(params![key, no, count, sum])?;
    }
    Ok(())
}

/// A merge moves the anonymous contact's roll-ups to the contact it joins.
pub(crate) fn merge(
    tx: &rusqlite::Transaction<'_>,
    from: u32,
    into: u32,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO event_rollups (key, contact_no, count, sum)
           SELECT key, ?2, count, sum FROM event_rollups WHERE contact_no = ?1 AND true
         ON CONFLICT(key, contact_no) DO UPDATE SET
           count = count + excluded.count, sum = sum + excluded.sum",
    )?
    .execute(params![from, into])?;
    tx.prepare_cached("DELETE FROM event_rollups WHERE contact_no = ?1")?
        .execute(params![from])?;
    Ok(())
}

pub(crate) fn contact_deleted(tx: &rusqlite::Transaction<'_>, no: u32) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM event_rollups WHERE contact_no = ?1")?
        .execute(params![no])?;
    Ok(())
}

/// A chunk's old events with their seqs, and the last seq examined.
pub type OldEvents = (Vec<(u64, EventRecord)>, Option<u64>);

impl WorkspaceReader {
    /// The events after seq `after` (at most `limit` rows examined, in seq
    /// order) that happened before `cutoff`, and the last seq examined
    /// (`None`: nothing after `after`). Bounded by the seq range, so a
    /// chunk costs its own rows however old the table is.
    pub fn events_before(
        &self,
        after: u64,
        cutoff: i64,
        limit: usize,
    ) -> Result<OldEvents, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT seq, id, contact_no, type, at, properties FROM events
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after as i64, limit as i64])?;
        let mut out = Vec::new();
        let mut last = None;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            last = Some(seq as u64);
            let at: i64 = row.get(4)?;
            let kind: String = row.get(3)?;
            if at < cutoff && !kind.is_empty() {
                out.push(event_row(row)?);
            }
        }
        Ok((out, last))
    }
}

impl EventStream {
    /// Every roll-up row: (key, contact number, count, sum).
    pub fn read_rollups(
        &self,
        visit: &mut dyn FnMut(&str, u32, u32, f64),
    ) -> Result<(), StoreError> {
        let conn = open(self.path())?;
        let mut stmt = conn.prepare("SELECT key, contact_no, count, sum FROM event_rollups")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            visit(&key, row.get(1)?, row.get(2)?, row.get(3)?);
        }
        Ok(())
    }

    /// Contact `no`'s roll-up rows: (key, count, sum).
    pub fn read_contact_rollups(
        &self,
        no: u32,
        visit: &mut dyn FnMut(&str, u32, f64),
    ) -> Result<(), StoreError> {
        let conn = open(self.path())?;
        let mut stmt =
            conn.prepare("SELECT key, count, sum FROM event_rollups WHERE contact_no = ?1")?;
        let mut rows = stmt.query(params![no])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            visit(&key, row.get(1)?, row.get(2)?);
        }
        Ok(())
    }
}

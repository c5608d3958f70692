//! Write numbers and touched contacts (schema version 11): what a start from
//! a checkpoint needs to know about the writes committed after it.
//!
//! Every queued write (one `Pending::Records`, even an empty one) gets the
//! next write number in the order the writer commits them, so the server,
//! which queues writes in that same order, knows the number of the last
//! write its engine applied without asking the store. Each contact a write
//! touches (its row, its events, a merge of either side, a grant, a static
//! membership, and every contact with events of a type a scoring-rule write
//! rescores) gets a `touched (write, no)` row in the write's own
//! transaction: a checkpoint taken after write `W` is caught up by
//! reloading exactly the contacts with a row past `W`.
//!
//! The rows go to a narrow append-only table rather than a column of
//! `contacts`: updating a column rewrites the whole contact row wherever it
//! lies, which made inserting events into a 300,000-contact database five
//! to six times slower (45,000–56,000 events/s against 290,000), while
//! rows keyed by a growing write number are appended at the end of one
//! index. Rows no kept checkpoint needs are deleted in bounded chunks by
//! later commits ([`Pending::ForgetTouched`](crate::Pending)).

use std::collections::HashMap;

use rusqlite::{Connection, params};
use sift_engine::Record;

use crate::StoreError;

/// Version 11 (marker `write_log`).
pub(crate) const V11_WRITE_LOG: &str = "
    CREATE TABLE write_log (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        last_write INTEGER NOT NULL,
        forgotten_through INTEGER NOT NULL
    );
    INSERT INTO write_log (only, last_write, forgotten_through) VALUES (0, 0, 0);
    CREATE TABLE touched (
        write INTEGER NOT NULL,
        no INTEGER NOT NULL,
        PRIMARY KEY (write, no)
    ) WITHOUT ROWID;
";

/// Rows of `touched` one commit deletes at most.
pub(crate) const FORGET_CHUNK: i64 = 20_000;

/// The number of the last committed write.
pub(crate) fn last_write(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT last_write FROM write_log", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// The contacts the writes of one transaction touched, each with the number
/// of the last write that did.
#[derive(Default)]
pub(crate) struct Touched {
    by_contact: HashMap<u32, u64>,
    /// Event types a scoring-rule write rescored, with its write number:
    /// the engine rescores every contact with events of the type without
    /// a record per contact, so each of them counts as touched.
    by_type: Vec<(String, u64)>,
}

impl Touched {
    fn mark(&mut self, no: u32, write: u64) {
        self.by_contact.insert(no, write);
    }

    /// Notes the contacts `record` touches as touched by `write`; called
    /// before the record is applied (a rule's former event type is read).
    pub(crate) fn note(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        record: &Record,
        write: u64,
    ) -> Result<(), StoreError> {
        let former_type = |id: &str| -> Result<Option<String>, StoreError> {
            let mut stmt =
                tx.prepare_cached("SELECT event_type FROM scoring_rules WHERE id = ?1")?;
            let mut rows = stmt.query([id])?;
            Ok(match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            })
        };
        match record {
            Record::Contact(c) => self.mark(c.no, write),
            Record::ContactDeleted { no } => self.mark(*no, write),
            Record::Merge { from, into, .. } => {
                if let Some(from) = from {
                    self.mark(*from, write);
                }
                self.mark(*into, write);
            }
            Record::Event(event) => self.mark(event.no, write),
            Record::ScoreGrant(grant) => self.mark(grant.no, write),
            // A static membership is read by `in segment` conditions of the
            // contact's dynamic segments.
            Record::StaticMembers { contacts, .. } => {
                for no in contacts {
                    self.mark(no, write);
                }
            }
            Record::ScoringRule(rule) => {
                if let Some(former) = former_type(&rule.id)? {
                    self.by_type.push((former, write));
                }
                self.by_type.push((rule.event_type.clone(), write));
            }
            Record::ScoringRuleDeleted { id } => {
                if let Some(former) = former_type(id)? {
                    self.by_type.push((former, write));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Stamps the touched rows and the last write number, inside the
    /// transaction that committed the writes.
    pub(crate) fn finish(
        self,
        tx: &rusqlite::Transaction<'_>,
        last_write: u64,
    ) -> Result<(), StoreError> {
        let mut by_type: HashMap<String, u64> = HashMap::new();
        for (event_type, write) in self.by_type {
            let highest = by_type.entry(event_type).or_default();
            *highest = (*highest).max(write);
        }
        for (event_type, write) in by_type {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO touched (write, no)
                 SELECT DISTINCT ?2, contact_no FROM events WHERE type = ?1",
            )?
            .execute(params![event_type, write as i64])?;
        }
        let mut stmt =
            tx.prepare_cached("INSERT OR IGNORE INTO touched (write, no) VALUES (?2, ?1)")?;
        for (no, write) in self.by_contact {
            stmt.execute(params![no, write as i64])?;
        }
        tx.prepare_cached("UPDATE write_log SET last_write = ?1")?
            .execute(params![last_write as i64])?;
        Ok(())
    }
}

/// The write up to which `touched` rows may have been deleted: a
/// checkpoint of an earlier write can no longer be caught up.
pub(crate) fn forgotten_through(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT forgotten_through FROM write_log", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Deletes up to [`FORGET_CHUNK`] rows of writes up to `through`; answers
/// whether rows may be left.
pub(crate) fn forget(tx: &rusqlite::Transaction<'_>, through: u64) -> Result<bool, StoreError> {
    tx.prepare_cached("UPDATE write_log SET forgotten_through = MAX(forgotten_through, ?1)")?
        .execute(params![through as i64])?;
    let deleted = tx
        .prepare_cached(
            "DELETE FROM touched WHERE (write, no) IN
               (SELECT write, no FROM touched WHERE write <= ?1 LIMIT ?2)",
        )?
        .execute(params![through as i64, FORGET_CHUNK])?;
    Ok(deleted as i64 == FORGET_CHUNK)
}

/// The contacts touched by a write numbered above `after`, in number order.
pub(crate) fn touched_since(conn: &Connection, after: u64) -> Result<Vec<u32>, StoreError> {
    let mut stmt = conn.prepare("SELECT DISTINCT no FROM touched WHERE write > ?1 ORDER BY no")?;
    let rows = stmt.query_map(params![after as i64], |row| row.get(0))?;
    Ok(rows.collect::<Result<Vec<u32>, _>>()?)
}

#[cfg(test)]
mod tests {
    use roaring::RoaringBitmap;
    use sift_engine::{ContactSnapshot, EventRecord, Record};

    use super::*;
    use crate::{Pending, WorkspaceDb};

    fn contact(no: u32) -> Record {
        Record::Contact(ContactSnapshot {
            no,
            id: format!("c{no}"),
            anonymous: false,
            created_at: 1,
            updated_at: 1,
            last_seen_at: None,
            lead_score: 0.0,
            properties: Vec::new(),
        })
    }

    /// Each queued write takes the next number, empty ones included, in
    /// one group commit or several; each contact keeps the number of the
    /// last write that touched it, whichever way; the numbers survive a
    /// reopen.
    #[test]
    fn writes_are_numbered_and_stamp_the_contacts_they_touch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let mut db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.last_write(), 0);
        let first = [contact(0), contact(1), contact(2), contact(3)];
        let event = [Record::Event(EventRecord {
            no: 1,
            id: None,
            event_type: "visit".into(),
            at: 1,
            properties: Vec::new(),
            properties_json: "{}".into(),
        })];
        db.commit_all([Pending::Records(&first), Pending::Records(&event)])
            .unwrap();
        db.commit_all([Pending::Records(&[])]).unwrap();
        assert_eq!(db.last_write(), 3);
        let delete = [Record::ContactDeleted { no: 2 }];
        let pick = [Record::StaticMembers {
            segment_id: "s".into(),
            contacts: RoaringBitmap::from_iter([0]),
            present: true,
        }];
        let merge = [Record::Merge {
            from: Some(3),
            into: 1,
            alias: "c3".into(),
        }];
        db.commit_all([
            Pending::Records(&delete),
            Pending::Webhooks(&[]),
            Pending::Records(&pick),
            Pending::Records(&merge),
        ])
        .unwrap();
        assert_eq!(db.last_write(), 6);
        let since = |after| touched_since(db.conn(), after).unwrap();
        assert_eq!(since(0), vec![0, 1, 2, 3]);
        assert_eq!(since(3), vec![0, 1, 2, 3]);
        assert_eq!(since(4), vec![0, 1, 3]);
        assert_eq!(since(5), vec![1, 3]);
        assert_eq!(since(6), Vec::<u32>::new());
        // Forgetting the rows of writes up to 4 (in chunks, by later
        // commits) leaves what a checkpoint of write 4 or later needs.
        db.commit_all([Pending::ForgetTouched(4)]).unwrap();
        assert_eq!(db.last_write(), 6);
        let since = |after| touched_since(db.conn(), after).unwrap();
        assert_eq!(since(0), vec![0, 1, 3]);
        assert_eq!(since(4), vec![0, 1, 3]);
        assert_eq!(since(5), vec![1, 3]);
        drop(db);
        assert_eq!(WorkspaceDb::open(&path).unwrap().last_write(), 6);
    }
}

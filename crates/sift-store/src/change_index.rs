//! Finding one segment's batches in the change log without an index entry
//! per batch on the write path.
//!
//! A write that moves a contact in and out of 50 segments appends 50
//! batches to `changes`. An SQLite index on `(segment_id, seq_start)` put
//! each of those at a different place in its B-tree, so every commit wrote
//! one page per segment touched: with 1,000 live segments, most of a
//! commit's WAL bytes were index pages, and durable single writes ran at
//! 1,400–2,500/s. Instead, the writer keeps the seq_starts of recent
//! batches in memory, per segment, and writes them out once 20,000 are
//! waiting, one `change_index` row per segment. Everything before
//! `change_index_mark.next_seq` is listed there; the batches at or after it
//! (the tail, at most that many rows) are found by scanning `changes` from
//! the mark, which its primary key makes a range scan. After a crash, the
//! writer reads the tail back from `changes` on open: the index is derived
//! data, never ahead of the log.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use sift_engine::{FIRST_SEQ, Record};

use crate::workspace_db::{StoredBatch, read_changes};
use crate::{StoreError, StoredChange, WorkspaceReader};

/// Version 13 (marker `change_index`): the per-segment index above, built
/// from the existing log (one row per segment and 2^20 seqs), replacing
/// `changes_by_segment`.
pub(crate) const V13_CHANGE_INDEX: &str = "
    CREATE TABLE change_index (
        segment_id TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        batches TEXT NOT NULL,
        PRIMARY KEY (segment_id, first_seq)
    ) WITHOUT ROWID;
    INSERT INTO change_index (segment_id, first_seq, last_seq, batches)
        SELECT segment_id, MIN(seq_start), MAX(seq_start),
               json_group_array(seq_start ORDER BY seq_start)
        FROM changes GROUP BY segment_id, seq_start >> 20;
    CREATE TABLE change_index_mark (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        next_seq INTEGER NOT NULL
    );
    INSERT INTO change_index_mark (only, next_seq)
        SELECT 0, COALESCE(MAX(seq_end), 1) FROM changes;
    DROP INDEX IF EXISTS changes_by_segment;
";

/// Batches waiting in memory before they are written to `change_index`.
const FLUSH_AT: usize = 20_000;

/// The writer's batches not yet in `change_index`, by segment.
#[derive(Debug)]
pub(crate) struct Indexer {
    pending: BTreeMap<String, Vec<u64>>,
    waiting: usize,
    flush_at: usize,
    /// The end of the newest batch committed: where the mark moves to.
    end: u64,
}

impl Indexer {
    /// The tail after the mark, read back from the log.
    pub(crate) fn load(conn: &Connection) -> Result<Indexer, StoreError> {
        let mark = mark(conn)?;
        let mut stmt = conn.prepare(
            "SELECT segment_id, seq_start FROM changes WHERE seq_start >= ?1 ORDER BY seq_start",
        )?;
        let mut rows = stmt.query(params![mark as i64])?;
        let end: Option<i64> =
            conn.query_row("SELECT MAX(seq_end) FROM changes", [], |r| r.get(0))?;
        let mut indexer = Indexer {
            pending: BTreeMap::new(),
            waiting: 0,
            flush_at: FLUSH_AT,
            end: end.map_or(mark, |e| (e as u64).max(mark)),
        };
        while let Some(row) = rows.next()? {
            let segment: String = row.get(0)?;
            let start: i64 = row.get(1)?;
            indexer
                .pending
                .entry(segment)
                .or_default()
                .push(start as u64);
            indexer.waiting += 1;
        }
        Ok(indexer)
    }

    /// The batches among `records`: (segment, seq_start, seq_end).
    pub(crate) fn batches_of(records: &[Record], out: &mut Vec<(String, u64, u64)>) {
        out.extend(records.iter().filter_map(|r| match r {
            Record::Changes(batch) => {
                Some((batch.segment_id.clone(), batch.seq_start, batch.seq_end()))
            }
            _ => None,
        }));
    }

    /// Inside the commit of `new` batches: when enough wait, writes every
    /// waiting one and `new` to `change_index` and moves the mark past
    /// them. Answers whether it did; [`Indexer::settle`] after the commit.
    pub(crate) fn flush_if_due(
        &self,
        tx: &rusqlite::Transaction<'_>,
        new: &[(String, u64, u64)],
    ) -> Result<bool, StoreError> {
        if self.waiting + new.len() < self.flush_at {
            return Ok(false);
        }
        let mut all = self.pending.clone();
        for (segment, start, _) in new {
            all.entry(segment.clone()).or_default().push(*start);
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO change_index (segment_id, first_seq, last_seq, batches) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (segment, starts) in &all {
            let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
                continue;
            };
            let list =
                serde_json::to_string(starts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            insert.execute(params![segment, *first as i64, *last as i64, list])?;
        }
        // Every batch committed is now listed: the mark moves to the end of
        // the newest.
        let end = new.iter().map(|(_, _, end)| *end).fold(self.end, u64::max);
        tx.prepare_cached("UPDATE change_index_mark SET next_seq = MAX(next_seq, ?1)")?
            .execute(params![end as i64])?;
        Ok(true)
    }

    /// After the commit: forget what was written, or keep `new` waiting.
    pub(crate) fn settle(&mut self, new: Vec<(String, u64, u64)>, flushed: bool) {
        self.end = new.iter().map(|(_, _, end)| *end).fold(self.end, u64::max);
        if flushed {
            self.pending.clear();
            self.waiting = 0;
            return;
        }
        self.waiting += new.len();
        for (segment, start, _) in new {
            self.pending.entry(segment).or_default().push(start);
        }
    }
}

/// Every batch with a seq_start below this is listed in `change_index`.
pub(crate) fn mark(conn: &Connection) -> Result<u64, StoreError> {
    let mark: Option<i64> = conn
        .query_row("SELECT next_seq FROM change_index_mark", [], |r| r.get(0))
        .optional()?;
    Ok(mark.map_or(FIRST_SEQ, |m| m as u64))
}

/// One `change_index` row's seq_starts.
fn decode(list: &str) -> Result<Vec<u64>, StoreError> {
    serde_json::from_str(list).map_err(|e| StoreError::Corrupt(format!("change index row: {e}")))
}

/// The seq_starts of `segment`'s indexed batches (below the mark), in
/// ascending order, from the last one at or before `from` (the batch that
/// may hold `from`); `visit` answers whether to go on.
pub(crate) fn indexed_from(
    conn: &Connection,
    segment: &str,
    from: u64,
    mut visit: impl FnMut(u64) -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    let floor_row: Option<String> = conn
        .prepare_cached(
            "SELECT batches FROM change_index WHERE segment_id = ?1 AND first_seq <= ?2
             ORDER BY first_seq DESC LIMIT 1",
        )?
        .query_row(params![segment, from as i64], |r| r.get(0))
        .optional()?;
    if let Some(list) = floor_row {
        let starts = decode(&list)?;
        let floor = starts.partition_point(|&s| s <= from).saturating_sub(1);
        for &start in &starts[floor..] {
            if !visit(start)? {
                return Ok(false);
            }
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT batches FROM change_index WHERE segment_id = ?1 AND first_seq > ?2 ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![segment, from as i64])?;
    while let Some(row) = rows.next()? {
        let list: String = row.get(0)?;
        for start in decode(&list)? {
            if !visit(start)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The seq_starts of `segment`'s indexed batches, newest first.
pub(crate) fn indexed_newest_first(
    conn: &Connection,
    segment: &str,
    mut visit: impl FnMut(u64) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT batches FROM change_index WHERE segment_id = ?1 ORDER BY first_seq DESC",
    )?;
    let mut rows = stmt.query(params![segment])?;
    while let Some(row) = rows.next()? {
        let list: String = row.get(0)?;
        for start in decode(&list)?.into_iter().rev() {
            if !visit(start)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

pub(crate) const BATCH_COLUMNS: &str =
    "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes";

impl WorkspaceReader {
    /// Up to `limit` changes of `segment` with seq >= `from`, in seq order.
    pub(crate) fn segment_changes(
        &self,
        segment: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        // One snapshot: the mark, the index and the tail must agree.
        let tx = self.conn.unchecked_transaction()?;
        let mark = mark(&tx)?;
        let mut out = Vec::new();
        {
            let mut batch = tx.prepare_cached(&format!("{BATCH_COLUMNS} WHERE seq_start = ?1"))?;
            indexed_from(&tx, segment, from, |start| {
                let rows = batch.query(params![start as i64])?;
                out.extend(read_changes(rows, from, u64::MAX, limit - out.len())?);
                Ok(out.len() < limit && start < mark)
            })?;
        }
        if out.len() < limit {
            // The tail, from the later of the mark and the segment's batch
            // that may hold `from`.
            let mut stmt = tx.prepare_cached(&format!(
                "{BATCH_COLUMNS} WHERE segment_id = ?1 AND seq_start >= MAX(?2, COALESCE(
                   (SELECT MAX(seq_start) FROM changes
                    WHERE segment_id = ?1 AND seq_start >= ?2 AND seq_start <= ?3), 0))
                 ORDER BY seq_start"
            ))?;
            let rows = stmt.query(params![segment, mark as i64, from as i64])?;
            out.extend(read_changes(rows, from, u64::MAX, limit - out.len())?);
        }
        Ok(out)
    }

    /// A segment's latest `limit` changes, newest first.
    pub fn recent_changes(
        &self,
        segment: &str,
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mark = mark(&tx)?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "{BATCH_COLUMNS} WHERE seq_start >= ?2 AND segment_id = ?1 ORDER BY seq_start DESC"
            ))?;
            let mut rows = stmt.query(params![segment, mark as i64])?;
            while let Some(row) = rows.next()? {
                if !newest_first(row, limit, &mut out)? {
                    return Ok(out);
                }
            }
        }
        let mut batch = tx.prepare_cached(&format!("{BATCH_COLUMNS} WHERE seq_start = ?1"))?;
        indexed_newest_first(&tx, segment, |start| {
            let mut rows = batch.query(params![start as i64])?;
            match rows.next()? {
                Some(row) => newest_first(row, limit, &mut out),
                None => Err(StoreError::Corrupt(format!(
                    "the change index lists batch {start}, missing from the log"
                ))),
            }
        })?;
        Ok(out)
    }

    /// When a segment's membership last changed, if ever.
    pub fn last_change_at(&self, segment: &str) -> Result<Option<i64>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mark = mark(&tx)?;
        let in_tail: Option<i64> = tx
            .prepare_cached(
                "SELECT at FROM changes WHERE seq_start >= ?2 AND segment_id = ?1
                 ORDER BY seq_start DESC LIMIT 1",
            )?
            .query_row(params![segment, mark as i64], |r| r.get(0))
            .optional()?;
        if in_tail.is_some() {
            return Ok(in_tail);
        }
        Ok(tx
            .prepare_cached(
                "SELECT at FROM changes WHERE seq_start = (SELECT last_seq FROM change_index
                 WHERE segment_id = ?1 ORDER BY first_seq DESC LIMIT 1)",
            )?
            .query_row(params![segment], |r| r.get(0))
            .optional()?)
    }
}

/// Adds a batch row's changes to `out`, newest first, up to `limit`;
/// answers whether there is room for more.
fn newest_first(
    row: &rusqlite::Row<'_>,
    limit: usize,
    out: &mut Vec<StoredChange>,
) -> Result<bool, StoreError> {
    let batch = StoredBatch::of(row)?;
    let last = batch.seq_start + batch.contacts.len().saturating_sub(1);
    for (back, no) in batch.contacts.iter().rev().enumerate() {
        if out.len() == limit {
            return Ok(false);
        }
        out.push(batch.change(last - back as u64, no));
    }
    Ok(out.len() < limit)
}

#[cfg(test)]
mod tests {
    use roaring::RoaringBitmap;
    use sift_engine::{Cause, ChangeBatch, ChangeKind};

    use super::*;
    use crate::WorkspaceDb;

    fn batch(seq_start: u64, segment: &str, contacts: &[u32]) -> Record {
        Record::Changes(ChangeBatch {
            seq_start,
            segment_id: segment.to_string(),
            kind: ChangeKind::Entered,
            cause: Cause::ContactUpdate,
            at: seq_start as i64 * 1000,
            contacts: contacts.iter().copied().collect::<RoaringBitmap>(),
        })
    }

    /// Every per-segment read equals the same read done by filtering the
    /// whole log, whichever side of the mark the batches are on.
    fn check(reader: &WorkspaceReader, next: u64) {
        let all = reader.changes(0, None, usize::MAX).unwrap();
        for segment in ["a", "b", "c", "never"] {
            let mine: Vec<_> = all
                .iter()
                .filter(|c| c.segment_id == segment)
                .cloned()
                .collect();
            for after in 0..next + 1 {
                for limit in [1, 2, 5, usize::MAX] {
                    let expected: Vec<_> = mine
                        .iter()
                        .filter(|c| c.seq > after)
                        .take(limit)
                        .cloned()
                        .collect();
                    assert_eq!(
                        reader.changes(after, Some(segment), limit).unwrap(),
                        expected,
                        "{segment} after {after} limit {limit}"
                    );
                }
            }
            for limit in [1, 3, 100] {
                let expected: Vec<_> = mine.iter().rev().take(limit).cloned().collect();
                assert_eq!(reader.recent_changes(segment, limit).unwrap(), expected);
            }
            assert_eq!(
                reader.last_change_at(segment).unwrap(),
                mine.last().map(|c| c.at),
                "{segment}"
            );
        }
    }

    #[test]
    fn per_segment_reads_agree_with_the_whole_log_across_flushes_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let mut db = WorkspaceDb::open(&path).unwrap();
        db.index.flush_at = 5;
        let reader = WorkspaceReader::open(&path).unwrap();
        let mut next = FIRST_SEQ;
        let segments = ["a", "b", "c"];
        for write in 0..40u32 {
            // Batches of one to three contacts over one or two segments.
            let mut records = Vec::new();
            for k in 0..(1 + write % 2) {
                let segment = segments[((write + k) % 3) as usize];
                let contacts: Vec<u32> = (0..1 + (write + k) % 3).map(|i| write * 10 + i).collect();
                records.push(batch(next, segment, &contacts));
                next += contacts.len() as u64;
            }
            db.commit([records.as_slice()]).unwrap();
            check(&reader, next);
            if write % 13 == 12 {
                // A restart: the waiting batches are read back from the log.
                drop(db);
                db = WorkspaceDb::open(&path).unwrap();
                db.index.flush_at = 5;
                check(&reader, next);
            }
        }
        let indexed: i64 = reader
            .conn
            .query_row("SELECT COUNT(*) FROM change_index", [], |r| r.get(0))
            .unwrap();
        assert!(indexed > 3, "the index was written out ({indexed} rows)");
    }

    /// A version 12 database's log is indexed by the migration, and its
    /// old per-row index is gone.
    #[test]
    fn a_version_12_log_is_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let mut next = FIRST_SEQ;
        {
            let conn = crate::schema::open(&path).unwrap();
            crate::schema::migrate_to(&conn, 12).unwrap();
            for write in 0..30u32 {
                let segment = ["a", "b", "c"][(write % 3) as usize];
                let contacts: RoaringBitmap = (0..1 + write % 4).map(|i| write * 10 + i).collect();
                conn.execute(
                    "INSERT INTO changes (seq_start, seq_end, segment_id, kind, cause, at, contacts)
                     VALUES (?1, ?2, ?3, 'entered', 'contact_update', ?4, ?5)",
                    params![
                        next as i64,
                        (next + contacts.len()) as i64,
                        segment,
                        write as i64,
                        crate::codec::bitmap_to_blob(&contacts).unwrap()
                    ],
                )
                .unwrap();
                next += contacts.len();
            }
        }
        let mut db = WorkspaceDb::open(&path).unwrap();
        let reader = WorkspaceReader::open(&path).unwrap();
        assert_eq!(mark(&reader.conn).unwrap(), next);
        let old_index: i64 = reader
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'changes_by_segment'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old_index, 0);
        check(&reader, next);
        db.commit([[batch(next, "b", &[7])].as_slice()]).unwrap();
        check(&reader, next + 1);
    }
}

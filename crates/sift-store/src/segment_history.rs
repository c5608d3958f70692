//! A segment's past: the revisions of its definition (who changed what,
//! and what it did to the membership), and its membership at any past
//! instant replayed from the change log.
//!
//! The change log is never pruned, and the engine's clock never moves
//! back, so a segment's batches are in the order of their instants as well
//! as of their seqs: the members at instant `t` are every entry and exit
//! stamped at or before `t`, applied in seq order, and the replay stops at
//! the first batch stamped after it.

use rusqlite::{OptionalExtension, params};
use sift_engine::{ChangeKind, FIRST_SEQ, SegmentRevision};
use sift_lang::DateTime;

use crate::change_index::{BATCH_COLUMNS, indexed_from, mark};
use crate::workspace_db::StoredBatch;
use crate::{StoreError, WorkspaceReader};

/// Version 14 (marker `segment_revisions`). A segment saved before it gets
/// one revision from its current definition, with what made it and what it
/// moved unknown (`via` says so).
pub(crate) const V14_SEGMENT_REVISIONS: &str = "
    CREATE TABLE segment_revisions (
        segment_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        at INTEGER NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        condition TEXT,
        condition_tree TEXT,
        entered INTEGER,
        exited INTEGER,
        key_id TEXT,
        via TEXT NOT NULL,
        PRIMARY KEY (segment_id, revision)
    ) WITHOUT ROWID;
    INSERT INTO segment_revisions
        (segment_id, revision, at, name, description, condition, condition_tree, entered, exited, key_id, via)
        SELECT id, 1, updated_at, name, description, NULL, condition, NULL, NULL, NULL, 'before history'
        FROM segments;
";

/// One revision as stored. `condition` is absent for revisions made before
/// history was kept (the tree is there; the reader prints it).
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionRow {
    pub revision: u64,
    pub at: DateTime,
    pub name: String,
    pub description: String,
    pub condition: Option<String>,
    pub condition_tree: Option<String>,
    pub entered: Option<u64>,
    pub exited: Option<u64>,
    pub key_id: Option<String>,
    pub via: String,
}

/// A segment's size at an instant, and its entries and exits since the
/// previous instant asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeAt {
    pub at: DateTime,
    pub size: u64,
    pub entered: u64,
    pub exited: u64,
}

/// Appends the segment's next revision (numbered from 1 per segment).
pub(crate) fn write_revision(
    tx: &rusqlite::Transaction<'_>,
    rev: &SegmentRevision,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO segment_revisions
           (segment_id, revision, at, name, description, condition, condition_tree, entered, exited, key_id, via)
         SELECT ?1, COALESCE(MAX(revision), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         FROM segment_revisions WHERE segment_id = ?1",
    )?
    .execute(params![
        rev.segment_id,
        rev.at,
        rev.name,
        rev.description,
        rev.condition,
        rev.condition_tree,
        rev.entered as i64,
        rev.exited as i64,
        rev.key_id,
        rev.via
    ])?;
    Ok(())
}

/// A deleted segment's history goes with it.
pub(crate) fn delete_revisions(
    tx: &rusqlite::Transaction<'_>,
    segment_id: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM segment_revisions WHERE segment_id = ?1")?
        .execute(params![segment_id])?;
    Ok(())
}

impl WorkspaceReader {
    /// Up to `limit` revisions of a segment numbered below `before` (all
    /// when `None`), newest first.
    pub fn revisions(
        &self,
        segment: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRow>, StoreError> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let mut stmt = self.conn().prepare_cached(
            "SELECT revision, at, name, description, condition, condition_tree, entered, exited, key_id, via
             FROM segment_revisions WHERE segment_id = ?1 AND revision < ?2
             ORDER BY revision DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![segment, before, limit as i64], |r| {
            Ok(RevisionRow {
                revision: r.get::<_, i64>(0)? as u64,
                at: r.get(1)?,
                name: r.get(2)?,
                description: r.get(3)?,
                condition: r.get(4)?,
                condition_tree: r.get(5)?,
                entered: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
                exited: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
                key_id: r.get(8)?,
                via: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the segment's first revision was made, if any is kept.
    pub fn first_revision_at(&self, segment: &str) -> Result<Option<DateTime>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT at FROM segment_revisions WHERE segment_id = ?1 ORDER BY revision LIMIT 1",
            )?
            .query_row(params![segment], |r| r.get(0))
            .optional()?)
    }

    /// The segment's members at instant `at`: its changes stamped at or
    /// before it, replayed in order.
    pub fn members_as_of(
        &self,
        segment: &str,
        at: DateTime,
    ) -> Result<roaring::RoaringBitmap, StoreError> {
        let mut members = roaring::RoaringBitmap::new();
        self.segment_batches(segment, |batch| {
            if batch.at > at {
                return false;
            }
            match batch.kind {
                ChangeKind::Entered => members |= &batch.contacts,
                ChangeKind::Exited => members -= &batch.contacts,
            }
            true
        })?;
        Ok(members)
    }

    /// The segment's size at each of `points` (ascending), with its entries
    /// and exits after the previous point (after `since` for the first) up
    /// to and including it. Every change is a move in or out, so sizes
    /// are counted, not replayed.
    pub fn sizes_at(
        &self,
        segment: &str,
        since: DateTime,
        points: &[DateTime],
    ) -> Result<Vec<SizeAt>, StoreError> {
        let mut out: Vec<SizeAt> = Vec::with_capacity(points.len());
        let (mut size, mut entered, mut exited) = (0u64, 0u64, 0u64);
        let mut next = 0;
        self.segment_batches(segment, |batch| {
            while next < points.len() && batch.at > points[next] {
                out.push(SizeAt {
                    at: points[next],
                    size,
                    entered,
                    exited,
                });
                (entered, exited) = (0, 0);
                next += 1;
            }
            if next == points.len() {
                return false;
            }
            let moved = batch.contacts.len();
            match batch.kind {
                ChangeKind::Entered => size += moved,
                ChangeKind::Exited => size = size.saturating_sub(moved),
            }
            if batch.at > since {
                match batch.kind {
                    ChangeKind::Entered => entered += moved,
                    ChangeKind::Exited => exited += moved,
                }
            }
            true
        })?;
        for &at in &points[next..] {
            out.push(SizeAt {
                at,
                size,
                entered,
                exited,
            });
            (entered, exited) = (0, 0);
        }
        Ok(out)
    }

    /// Every batch of one segment's changes in seq order, until `visit`
    /// answers false; all read in one snapshot.
    fn segment_batches(
        &self,
        segment: &str,
        mut visit: impl FnMut(&StoredBatch) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.conn().unchecked_transaction()?;
        let mark = mark(&tx)?;
        let mut going = true;
        {
            let mut batch = tx.prepare_cached(&format!("{BATCH_COLUMNS} WHERE seq_start = ?1"))?;
            indexed_from(&tx, segment, FIRST_SEQ, |start| {
                let mut rows = batch.query(params![start as i64])?;
                match rows.next()? {
                    Some(row) => going = visit(&StoredBatch::of(row)?),
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "the change index lists batch {start}, missing from the log"
                        )));
                    }
                }
                Ok(going)
            })?;
        }
        if going {
            let mut stmt = tx.prepare_cached(&format!(
                "{BATCH_COLUMNS} WHERE segment_id = ?1 AND seq_start >= ?2 ORDER BY seq_start"
            ))?;
            let mut rows = stmt.query(params![segment, mark as i64])?;
            while let Some(row) = rows.next()? {
                if !visit(&StoredBatch::of(row)?) {
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::params;
    use sift_engine::SegmentRevision;

    use crate::codec::bitmap_to_blob;
    use crate::schema::{LATEST, migrate_to, open};
    use crate::{WorkspaceDb, WorkspaceReader};

    fn blob(numbers: &[u32]) -> Vec<u8> {
        bitmap_to_blob(&numbers.iter().copied().collect::<roaring::RoaringBitmap>()).unwrap()
    }

    /// A segment saved before version 14 gets one revision from its
    /// definition; later ones are numbered after it.
    #[test]
    fn a_segment_saved_before_history_gets_its_first_revision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 13).unwrap();
            conn.execute(
                "INSERT INTO segments (id, name, description, kind, condition, test, created_at, updated_at)
                 VALUES ('s', 'Gold', 'top', 'dynamic', ?1, 0, 100, 200)",
                params![r#"{"field":"tier","op":"eq","value":"gold"}"#],
            )
            .unwrap();
            migrate_to(&conn, LATEST).unwrap();
        }
        let mut db = WorkspaceDb::open(&path).unwrap();
        let rev = SegmentRevision {
            segment_id: "s".into(),
            at: 300,
            name: "Gold tier".into(),
            description: "top".into(),
            condition: Some("tier = \"gold\"".into()),
            condition_tree: Some(r#"{"field":"tier","op":"eq","value":"gold"}"#.into()),
            entered: 0,
            exited: 0,
            key_id: Some("sk_12345678".into()),
            via: "api".into(),
        };
        let records = [sift_engine::Record::SegmentRevision(rev)];
        db.commit([&records[..]]).unwrap();
        let reader = WorkspaceReader::open(&path).unwrap();
        let rows = reader.revisions("s", None, 10).unwrap();
        let summary: Vec<(u64, i64, &str, &str, Option<u64>)> = rows
            .iter()
            .map(|r| (r.revision, r.at, r.name.as_str(), r.via.as_str(), r.entered))
            .collect();
        assert_eq!(
            summary,
            [
                (2, 300, "Gold tier", "api", Some(0)),
                (1, 200, "Gold", "before history", None)
            ]
        );
        assert_eq!(rows[1].condition, None, "the reader prints the tree");
        assert_eq!(reader.revisions("s", Some(2), 10).unwrap().len(), 1);
        assert_eq!(reader.first_revision_at("s").unwrap(), Some(200));
    }

    /// Members and sizes replayed from batches, with the index and the
    /// tail both read.
    #[test]
    fn members_and_sizes_replay_the_change_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, LATEST).unwrap();
            // 1–3 enter at 100; 1 exits at 200; 4 enters at 300; another
            // segment's batch between them.
            conn.execute(
                "INSERT INTO changes (seq_start, seq_end, segment_id, kind, cause, at, contacts)
                 VALUES (1, 4, 's', 'entered', 'segment_edit', 100, ?1),
                        (4, 5, 'o', 'entered', 'contact_update', 150, ?2),
                        (5, 6, 's', 'exited', 'contact_update', 200, ?3),
                        (6, 7, 's', 'entered', 'contact_update', 300, ?4)",
                params![blob(&[1, 2, 3]), blob(&[9]), blob(&[1]), blob(&[4])],
            )
            .unwrap();
            // The first two of `s` are indexed, the last one is in the tail.
            conn.execute_batch(
                "INSERT INTO change_index (segment_id, first_seq, last_seq, batches) VALUES ('s', 1, 5, '[1,5]'), ('o', 4, 4, '[4]');
                 UPDATE change_index_mark SET next_seq = 6;",
            )
            .unwrap();
        }
        let reader = WorkspaceReader::open(&path).unwrap();
        let members = |at| {
            reader
                .members_as_of("s", at)
                .unwrap()
                .iter()
                .collect::<Vec<u32>>()
        };
        assert_eq!(members(99), Vec::<u32>::new());
        assert_eq!(members(100), [1, 2, 3]);
        assert_eq!(members(250), [2, 3]);
        assert_eq!(members(300), [2, 3, 4]);
        let sizes = reader.sizes_at("s", 50, &[100, 199, 300, 400]).unwrap();
        let got: Vec<(i64, u64, u64, u64)> = sizes
            .iter()
            .map(|s| (s.at, s.size, s.entered, s.exited))
            .collect();
        assert_eq!(
            got,
            [
                (100, 3, 3, 0),
                (199, 3, 0, 0),
                (300, 3, 1, 1),
                (400, 3, 0, 0)
            ]
        );
    }
}

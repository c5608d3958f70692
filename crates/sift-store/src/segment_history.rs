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

use crate::change_index::{indexed_from, mark};
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
            let mut batch = tx.prepare_cached(
                "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes WHERE seq_start = ?1",
            )?;
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
            let mut stmt = tx.prepare_cached(
                "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes
                 WHERE segment_id = ?1 AND seq_start >= ?2 ORDER BY seq_start",
            )?;
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

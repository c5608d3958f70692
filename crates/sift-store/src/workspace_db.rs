//! One workspace's database: schema migrations, group commits of engine
//! records, restoring the engine on start, and reading the change log.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sift_engine::{
    Cause, ChangeBatch, ChangeKind, ContactSnapshot, EventRecord, FIRST_SEQ, FieldDef, Record,
    ScoringRule, SegmentDef, StoredState, Workspace,
};
use sift_lang::DateTime;

use crate::StoreError;
use crate::codec::{bitmap_from_blob, bitmap_to_blob, filter_to_json, properties_to_json};
use crate::load;
use crate::schema::{migrate, open};
use crate::{alias_db, change_index, workflow_db, write_log};

/// The writing connection of a workspace's database.
pub struct WorkspaceDb {
    conn: Connection,
    /// The number of the last committed write (`write_log.rs`).
    last_write: u64,
    /// `touched` rows of writes up to this one are no longer needed, and
    /// whether some may be left (deleted a chunk per commit).
    forget_through: u64,
    forgetting: bool,
    /// Batches not yet in the per-segment index (`change_index.rs`).
    pub(crate) index: change_index::Indexer,
}

#[path = "wal.rs"]
mod wal;

/// What one queued write commits: the engine's records, or changes to
/// webhook subscriptions and their cursors.
#[derive(Clone, Copy, Debug)]
pub enum Pending<'a> {
    Records(&'a [Record]),
    Webhooks(&'a [crate::WebhookWrite]),
    /// Facebook export jobs' state, sync tokens and sent rows.
    Exports(&'a [crate::ExportWrite]),
    /// Deletes a chunk of old workflow history (see `prune.rs`).
    Prune(&'a crate::Prune),
    /// Deletes a chunk of events past the retention, keeping what they
    /// gave to all-time counts and scores (`event_retention.rs`).
    PruneEvents(&'a crate::EventPrune),
    /// The `touched` rows of writes up to this number are no longer needed
    /// (every kept checkpoint is past them): this commit and the next ones
    /// delete them, a bounded chunk each (`write_log.rs`).
    ForgetTouched(u64),
}

/// One membership change as stored: contact by number.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredChange {
    pub seq: u64,
    pub segment_id: String,
    pub kind: ChangeKind,
    pub cause: Cause,
    pub at: DateTime,
    pub no: u32,
}

impl WorkspaceDb {
    pub fn open(path: &Path) -> Result<WorkspaceDb, StoreError> {
        let conn = open(path)?;
        // Checkpoints run on another connection (`WorkspaceReader::checkpoint`)
        // so that their fsync of the database file is never on a commit's path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        migrate(&conn)?;
        let last_write = write_log::last_write(&conn)?;
        let index = change_index::Indexer::load(&conn)?;
        Ok(WorkspaceDb {
            conn,
            last_write,
            forget_through: 0,
            forgetting: false,
            index,
        })
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The number of the last committed write: each `Pending::Records`
    /// committed takes the next one (see `write_log.rs`).
    pub fn last_write(&self) -> u64 {
        self.last_write
    }

    /// Commits several writes' records in one transaction (one fsync).
    pub fn commit<'a>(
        &mut self,
        writes: impl IntoIterator<Item = &'a [Record]>,
    ) -> Result<(), StoreError> {
        self.commit_all(writes.into_iter().map(Pending::Records))
    }

    /// Commits engine records and webhook writes in one transaction (one
    /// fsync), in the order given.
    pub fn commit_all<'a>(
        &mut self,
        writes: impl IntoIterator<Item = Pending<'a>>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        // Writes in a group may carry several clocks; only the latest matters.
        let mut clock: Option<DateTime> = None;
        let mut cursor: Option<u64> = None;
        let mut write_no = self.last_write;
        let mut touched = write_log::Touched::default();
        let mut batches = Vec::new();
        for write in writes {
            match write {
                Pending::Records(records) => {
                    write_no += 1;
                    change_index::Indexer::batches_of(records, &mut batches);
                    for record in records {
                        touched.note(&tx, record, write_no)?;
                        apply(&tx, record, &mut clock, &mut cursor)?;
                    }
                }
                Pending::Webhooks(writes) => {
                    for write in writes {
                        crate::webhooks::apply(&tx, write)?;
                    }
                }
                Pending::Exports(rows) => {
                    for row in rows {
                        crate::exports::apply(&tx, row)?;
                    }
                }
                Pending::Prune(prune) => crate::prune::apply(&tx, prune)?,
                Pending::PruneEvents(prune) => crate::event_retention::apply(&tx, prune)?,
                Pending::ForgetTouched(through) => {
                    if through > self.forget_through {
                        self.forget_through = through;
                        self.forgetting = true;
                    }
                }
            }
        }
        workflow_db::finish(&tx, cursor)?;
        if let Some(at) = clock {
            tx.prepare_cached("UPDATE clock SET at = MAX(at, ?1)")?
                .execute(params![at])?;
        }
        if write_no != self.last_write {
            touched.finish(&tx, write_no)?;
        }
        let forgetting = self.forgetting && write_log::forget(&tx, self.forget_through)?;
        let indexed = self.index.flush_if_due(&tx, &batches)?;
        tx.commit()?;
        self.index.settle(batches, indexed);
        self.last_write = write_no;
        self.forgetting = forgetting;
        Ok(())
    }

    /// Rebuilds the engine as it was at the stored clock (see
    /// [`Workspace::restore_from`]). The caller then calls
    /// [`Workspace::advance`] with the real time and commits what it returns,
    /// which fires the timers that fell due while the workspace was closed.
    pub fn load(&self) -> Result<Workspace, StoreError> {
        Ok(Workspace::restore_from(self.stored_state()?))
    }

    /// Everything stored, as [`WorkspaceDb::load`] hands it to the engine.
    pub fn stored_state(&self) -> Result<StoredState, StoreError> {
        self.state(true)
    }

    fn state(&self, with_events: bool) -> Result<StoredState, StoreError> {
        // One read transaction: a reader beside a running server (`sift
        // export`) sees one commit's state, not tables from different ones.
        let tx = self.conn.unchecked_transaction()?;
        let state = load::stored_state(&tx, with_events)?;
        tx.commit()?;
        Ok(state)
    }

    /// Rebuilds the engine as [`WorkspaceDb::load`] does, with its events
    /// left on disk: they are streamed once from `history` (which reads
    /// this database), folded into every count and score, and kept in
    /// memory only while a window reads them
    /// ([`Workspace::restore_streaming`]). Nothing writes meanwhile: the
    /// writer starts after the load.
    pub fn load_streaming(
        &self,
        history: sift_engine::HistorySource,
    ) -> Result<Workspace, StoreError> {
        let state = self.state(false)?;
        Workspace::restore_streaming(state, history).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The instant up to which the workspace has processed time.
    pub fn clock(&self) -> Result<DateTime, StoreError> {
        load::clock(&self.conn)
    }
}

impl sift_engine::Store for WorkspaceDb {
    type Error = StoreError;

    fn commit(&mut self, writes: &[&[Record]]) -> Result<(), StoreError> {
        WorkspaceDb::commit(self, writes.iter().copied())
    }

    fn load(&self) -> Result<Workspace, StoreError> {
        WorkspaceDb::load(self)
    }
}

/// Writes one record; a clock is only noted in `clock`, and the commit
/// writes the latest once.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    record: &Record,
    clock: &mut Option<DateTime>,
    cursor: &mut Option<u64>,
) -> Result<(), StoreError> {
    match record {
        Record::Field(def) => write_field(tx, def)?,
        Record::Contact(c) => write_contact(tx, c)?,
        Record::ContactDeleted { no } => erase_contact(tx, *no)?,
        Record::Merge { from, into, alias } => alias_db::merge(tx, *from, *into, alias)?,
        Record::Segment(def) => write_segment(tx, def)?,
        Record::SegmentRevision(rev) => crate::segment_history::write_revision(tx, rev)?,
        Record::SegmentDeleted { id } => delete_segment(tx, id)?,
        Record::StaticMembers {
            segment_id,
            contacts,
            present,
        } => write_static_members(tx, segment_id, contacts, *present)?,
        Record::Changes(batch) => write_changes(tx, batch)?,
        Record::Event(event) => write_event(tx, event)?,
        Record::ScoringRule(rule) => write_scoring_rule(tx, rule)?,
        Record::ScoringRuleDeleted { id } => {
            tx.prepare_cached("DELETE FROM scoring_rules WHERE id = ?1")?
                .execute(params![id])?;
        }
        Record::Clock(at) => *clock = (*clock).max(Some(*at)),
        Record::Workflow(_)
        | Record::WorkflowDeleted { .. }
        | Record::Triggers(_)
        | Record::TriggersDropped(_)
        | Record::RunCursor(_)
        | Record::Run(_)
        | Record::ScoreGrant(_)
        | Record::Webhook(_)
        | Record::WebhookAttempt(_) => workflow_db::apply(tx, record, cursor)?,
    }
    Ok(())
}

/// Upserts a field definition; `builtin` is set once, on insert.
fn write_field(tx: &rusqlite::Transaction<'_>, def: &FieldDef) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO fields (name, type, label, builtin) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET type = excluded.type, label = excluded.label",
    )?
    .execute(params![
        def.name,
        def.field_type.name(),
        def.label,
        def.builtin
    ])?;
    Ok(())
}

/// Upserts a contact's snapshot, reviving its row if it was a tombstone.
fn write_contact(tx: &rusqlite::Transaction<'_>, c: &ContactSnapshot) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO contacts (no, id, deleted, anonymous, created_at, updated_at, last_seen_at, lead_score, properties)
         VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(no) DO UPDATE SET id = excluded.id, deleted = 0, anonymous = excluded.anonymous,
           created_at = excluded.created_at, updated_at = excluded.updated_at,
           last_seen_at = excluded.last_seen_at, lead_score = excluded.lead_score,
           properties = excluded.properties",
    )?
    .execute(params![
        c.no,
        c.id,
        c.anonymous,
        c.created_at,
        c.updated_at,
        c.last_seen_at,
        c.lead_score,
        properties_to_json(&c.properties)
    ])?;
    Ok(())
}

/// Erases a deleted contact's data everywhere, keeping what replays need.
fn erase_contact(tx: &rusqlite::Transaction<'_>, no: u32) -> Result<(), StoreError> {
    // The id stays as a tombstone: the change log still names it.
    tx.prepare_cached("UPDATE contacts SET deleted = 1, properties = NULL WHERE no = ?1")?
        .execute(params![no])?;
    tx.prepare_cached("DELETE FROM static_members WHERE no = ?1")?
        .execute(params![no])?;
    // Events are erased, but an idempotency key stays accepted so a
    // replay cannot bring the erased contact back.
    tx.prepare_cached("DELETE FROM events WHERE contact_no = ?1 AND id IS NULL")?
        .execute(params![no])?;
    tx.prepare_cached("UPDATE events SET type = '', properties = '{}' WHERE contact_no = ?1")?
        .execute(params![no])?;
    workflow_db::contact_deleted(tx, no)?;
    alias_db::contact_deleted(tx, no)?;
    crate::event_retention::contact_deleted(tx, no)?;
    Ok(())
}

/// Upserts a segment's definition; its kind and creation time never change.
fn write_segment(tx: &rusqlite::Transaction<'_>, def: &SegmentDef) -> Result<(), StoreError> {
    let condition = def
        .condition
        .as_ref()
        .map(|c| sift_lang::to_json(c).to_string());
    tx.prepare_cached(
        "INSERT INTO segments (id, name, description, kind, condition, test, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, description = excluded.description,
           condition = excluded.condition, test = excluded.test, updated_at = excluded.updated_at",
    )?
    .execute(params![
        def.id,
        def.name,
        def.description,
        def.kind.as_str(),
        condition,
        def.test,
        def.created_at,
        def.updated_at
    ])?;
    Ok(())
}

/// Deletes a segment with its static members.
fn delete_segment(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM segments WHERE id = ?1")?
        .execute(params![id])?;
    tx.prepare_cached("DELETE FROM static_members WHERE segment_id = ?1")?
        .execute(params![id])?;
    crate::segment_history::delete_revisions(tx, id)?;
    Ok(())
}

/// Adds contacts to a static segment, or removes them when `present` is false.
fn write_static_members(
    tx: &rusqlite::Transaction<'_>,
    segment_id: &str,
    contacts: &roaring::RoaringBitmap,
    present: bool,
) -> Result<(), StoreError> {
    let sql = if present {
        "INSERT OR IGNORE INTO static_members (segment_id, no) VALUES (?1, ?2)"
    } else {
        "DELETE FROM static_members WHERE segment_id = ?1 AND no = ?2"
    };
    let mut stmt = tx.prepare_cached(sql)?;
    for no in contacts {
        stmt.execute(params![segment_id, no])?;
    }
    Ok(())
}

/// Appends a batch of membership changes to the change log.
fn write_changes(tx: &rusqlite::Transaction<'_>, batch: &ChangeBatch) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO changes (seq_start, seq_end, segment_id, kind, cause, at, contacts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        batch.seq_start as i64,
        batch.seq_end() as i64,
        batch.segment_id,
        batch.kind.as_str(),
        batch.cause.as_str(),
        batch.at,
        bitmap_to_blob(&batch.contacts)?
    ])?;
    Ok(())
}

/// Appends an event to the event log.
fn write_event(tx: &rusqlite::Transaction<'_>, event: &EventRecord) -> Result<(), StoreError> {
    // The seq is the rowid SQLite hands out: arrival order.
    tx.prepare_cached(
        "INSERT INTO events (id, contact_no, type, at, properties) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.id,
        event.no,
        event.event_type,
        event.at,
        event.properties_json
    ])?;
    Ok(())
}

/// Upserts a scoring rule.
fn write_scoring_rule(
    tx: &rusqlite::Transaction<'_>,
    rule: &ScoringRule,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO scoring_rules (id, event_type, filter, points, expires_after, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET event_type = excluded.event_type, filter = excluded.filter,
           points = excluded.points, expires_after = excluded.expires_after,
           created_at = excluded.created_at, updated_at = excluded.updated_at",
    )?
    .execute(params![
        rule.id,
        rule.event_type,
        rule.filter.as_ref().map(filter_to_json),
        rule.points,
        rule.expires_after.map(sift_lang::duration_to_json),
        rule.created_at,
        rule.updated_at
    ])?;
    Ok(())
}

/// A read-only connection for the change log; SQLite's WAL lets it read
/// while the writer commits.
pub struct WorkspaceReader {
    pub(crate) conn: Connection,
}

impl WorkspaceReader {
    pub fn open(path: &Path) -> Result<WorkspaceReader, StoreError> {
        Ok(WorkspaceReader { conn: open(path)? })
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Up to `limit` changes with seq > `after`, of one segment or all, in
    /// seq order. Seqs start at 1, so `after` 0 is from the beginning.
    pub fn changes(
        &self,
        after: u64,
        segment_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let from = after.saturating_add(1);
        match segment_id {
            Some(segment) => self.segment_changes(segment, from, limit),
            None => {
                // The batch holding `from` starts at or before it.
                let mut stmt = self.conn.prepare_cached(
                    "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes
                     WHERE seq_start >= COALESCE(
                       (SELECT MAX(seq_start) FROM changes WHERE seq_start <= ?1), 0)
                     ORDER BY seq_start",
                )?;
                let rows = stmt.query(params![from as i64])?;
                read_changes(rows, from, u64::MAX, limit)
            }
        }
    }

    /// Up to `limit` changes with `from <= seq < to`, in seq order, of the
    /// given segments only (`None`: all).
    pub fn changes_in(
        &self,
        from: u64,
        to: u64,
        segments: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let segments = segments.map(|ids| serde_json::Value::from(ids.to_vec()).to_string());
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes
             WHERE seq_start < ?2 AND seq_start >= COALESCE(
               (SELECT MAX(seq_start) FROM changes WHERE seq_start <= ?1), 0)
               AND (?3 IS NULL OR segment_id IN (SELECT value FROM json_each(?3)))
             ORDER BY seq_start",
        )?;
        let rows = stmt.query(params![
            from as i64,
            to.min(i64::MAX as u64) as i64,
            segments
        ])?;
        read_changes(rows, from, to, limit)
    }

    /// Copies committed WAL pages into the database file without blocking
    /// the writer (SQLite's PASSIVE checkpoint).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The highest committed seq + 1.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        let next: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq_end) FROM changes", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(next.map_or(FIRST_SEQ, |n| n as u64))
    }
}

/// The changes of `rows` (batches in seq order) with `from <= seq < to`,
/// at most `limit` of them.
pub(crate) fn read_changes(
    mut rows: rusqlite::Rows<'_>,
    from: u64,
    to: u64,
    limit: usize,
) -> Result<Vec<StoredChange>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let batch = StoredBatch::of(row)?;
        for (offset, no) in batch.contacts.iter().enumerate() {
            let seq = batch.seq_start + offset as u64;
            if seq < from {
                continue;
            }
            if seq >= to || out.len() == limit {
                return Ok(out);
            }
            out.push(batch.change(seq, no));
        }
    }
    Ok(out)
}

/// One `changes` row, read in the column order `seq_start, segment_id,
/// kind, cause, at, contacts`.
pub(crate) struct StoredBatch {
    pub(crate) seq_start: u64,
    segment_id: String,
    pub(crate) kind: ChangeKind,
    cause: Cause,
    pub(crate) at: i64,
    /// Numbered in ascending order from `seq_start`.
    pub(crate) contacts: roaring::RoaringBitmap,
}

impl StoredBatch {
    pub(crate) fn of(row: &rusqlite::Row<'_>) -> Result<StoredBatch, StoreError> {
        let seq_start: i64 = row.get(0)?;
        let kind: String = row.get(2)?;
        let cause: String = row.get(3)?;
        let blob: Vec<u8> = row.get(5)?;
        Ok(StoredBatch {
            seq_start: seq_start as u64,
            segment_id: row.get(1)?,
            kind: ChangeKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("change kind {kind:?}")))?,
            cause: Cause::parse(&cause)
                .ok_or_else(|| StoreError::Corrupt(format!("cause {cause:?}")))?,
            at: row.get(4)?,
            contacts: bitmap_from_blob(&blob)?,
        })
    }

    pub(crate) fn change(&self, seq: u64, no: u32) -> StoredChange {
        StoredChange {
            seq,
            segment_id: self.segment_id.clone(),
            kind: self.kind,
            cause: self.cause,
            at: self.at,
            no,
        }
    }
}

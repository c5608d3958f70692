//! One workspace's database: schema migrations, group commits of engine
//! records, restoring the engine on start, and reading the change log.

use std::collections::HashMap;
use std::path::Path;

use roaring::RoaringBitmap;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;
use sift_engine::{
    Cause, ChangeKind, ContactSnapshot, FieldDef, Record, SegmentDef, SegmentKind, Workspace,
};
use sift_lang::{DateTime, FieldType, Schema};

use crate::StoreError;
use crate::codec::{bitmap_from_blob, bitmap_to_blob, properties_to_json, value_from_json};

/// Each entry upgrades the schema by one version (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &["
    CREATE TABLE fields (
        name TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        label TEXT NOT NULL,
        builtin INTEGER NOT NULL
    );
    CREATE TABLE contacts (
        no INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        anonymous INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_seen_at INTEGER,
        lead_score REAL NOT NULL,
        properties TEXT
    );
    CREATE UNIQUE INDEX contacts_live_id ON contacts(id) WHERE deleted = 0;
    CREATE TABLE segments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        kind TEXT NOT NULL,
        condition TEXT,
        test INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE static_members (
        segment_id TEXT NOT NULL,
        no INTEGER NOT NULL,
        PRIMARY KEY (segment_id, no)
    ) WITHOUT ROWID;
    CREATE TABLE changes (
        seq_start INTEGER PRIMARY KEY,
        seq_end INTEGER NOT NULL,
        segment_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        cause TEXT NOT NULL,
        at INTEGER NOT NULL,
        contacts BLOB NOT NULL
    );
    CREATE INDEX changes_by_segment ON changes(segment_id, seq_start);
"];

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is fsynced before it returns, so an acknowledged write survives a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // 64 MiB of page cache: the change log's index takes inserts all over its
    // pages, and spilling the cache mid-transaction doubles the writer's work.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The writing connection of a workspace's database.
pub struct WorkspaceDb {
    conn: Connection,
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
        Ok(WorkspaceDb { conn })
    }

    /// Commits several writes' records in one transaction (one fsync).
    pub fn commit<'a>(
        &mut self,
        writes: impl IntoIterator<Item = &'a [Record]>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for records in writes {
            for record in records {
                apply(&tx, record)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Rebuilds the engine from the stored state, evaluating every dynamic
    /// segment at `now`.
    pub fn load(&self, now: DateTime) -> Result<Workspace, StoreError> {
        let conn = &self.conn;
        let mut fields = Vec::new();
        let mut types = HashMap::new();
        let mut stmt =
            conn.prepare("SELECT name, type, label, builtin FROM fields ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let type_name: String = row.get(1)?;
            let field_type = FieldType::from_name(&type_name)
                .ok_or_else(|| StoreError::Corrupt(format!("field type {type_name:?}")))?;
            types.insert(name.clone(), field_type);
            fields.push(FieldDef {
                name,
                field_type,
                label: row.get(2)?,
                builtin: row.get::<_, i64>(3)? != 0,
                system: false,
            });
        }
        // Built-ins come from the engine; only declared and inferred fields are restored.
        let builtin = Workspace::new();
        for def in builtin.fields() {
            types.insert(def.name.clone(), def.field_type);
        }
        // Built-in rows only carry a relabel; `Workspace::restore` keeps their type and flags.

        let mut contacts = Vec::new();
        let mut tombstones = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT no, id, deleted, anonymous, created_at, updated_at, last_seen_at, lead_score, properties
             FROM contacts ORDER BY no",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let no: i64 = row.get(0)?;
            let id: String = row.get(1)?;
            if row.get::<_, i64>(2)? != 0 {
                tombstones.push((no as u32, id));
                continue;
            }
            let properties_text: Option<String> = row.get(8)?;
            let mut properties = Vec::new();
            if let Some(text) = properties_text {
                let json: Json = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("contact {id:?} properties: {e}")))?;
                if let Json::Object(map) = json {
                    for (name, value) in map {
                        if let Some(value) =
                            types.get(&name).and_then(|t| value_from_json(&value, *t))
                        {
                            properties.push((name, value));
                        }
                    }
                }
            }
            contacts.push(ContactSnapshot {
                no: no as u32,
                id,
                anonymous: row.get::<_, i64>(3)? != 0,
                created_at: row.get(4)?,
                updated_at: row.get(5)?,
                last_seen_at: row.get(6)?,
                lead_score: row.get(7)?,
                properties,
            });
        }

        let mut static_members: HashMap<String, RoaringBitmap> = HashMap::new();
        let mut stmt = conn.prepare("SELECT segment_id, no FROM static_members")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let no: i64 = row.get(1)?;
            static_members
                .entry(row.get(0)?)
                .or_default()
                .insert(no as u32);
        }

        let mut raw_segments = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT id, name, description, kind, condition, test, created_at, updated_at FROM segments",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let kind: String = row.get(3)?;
            let condition: Option<String> = row.get(4)?;
            raw_segments.push((
                SegmentDef {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    description: row.get(2)?,
                    kind: SegmentKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("segment kind {kind:?}")))?,
                    condition: None,
                    test: row.get::<_, i64>(5)? != 0,
                    created_at: row.get(6)?,
                    updated_at: row.get(7)?,
                },
                condition,
            ));
        }
        let schema = LoadSchema {
            types: &types,
            names: raw_segments
                .iter()
                .map(|(def, _)| (def.id.clone(), def.name.clone()))
                .collect(),
        };
        let mut segments = Vec::new();
        for (mut def, condition) in raw_segments {
            if let Some(text) = condition {
                let json: Json = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Corrupt(format!("segment {:?} condition: {e}", def.id))
                })?;
                let cond = sift_lang::from_json(&json, &schema).map_err(|e| {
                    StoreError::Corrupt(format!("segment {:?} condition: {e}", def.id))
                })?;
                def.condition = Some(cond);
            }
            segments.push(def);
        }

        let next_seq: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq_end), 0) FROM changes", [], |r| {
                r.get(0)
            })?;
        let mut ws = Workspace::restore(
            fields,
            contacts,
            segments,
            static_members,
            next_seq as u64,
            now,
        );
        ws.reserve_numbers(tombstones);
        Ok(ws)
    }
}

impl sift_engine::Store for WorkspaceDb {
    type Error = StoreError;

    fn commit(&mut self, writes: &[&[Record]]) -> Result<(), StoreError> {
        WorkspaceDb::commit(self, writes.iter().copied())
    }

    fn load(&self, now: DateTime) -> Result<Workspace, StoreError> {
        WorkspaceDb::load(self, now)
    }
}

struct LoadSchema<'a> {
    types: &'a HashMap<String, FieldType>,
    names: HashMap<String, String>,
}

impl Schema for LoadSchema<'_> {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        self.types.get(name).copied()
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        self.names
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone())
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        self.names.get(id).cloned()
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, record: &Record) -> Result<(), StoreError> {
    match record {
        Record::Field(def) => {
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
        }
        Record::Contact(c) => {
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
        }
        Record::ContactDeleted { no } => {
            // The id stays as a tombstone: the change log still names it.
            tx.prepare_cached("UPDATE contacts SET deleted = 1, properties = NULL WHERE no = ?1")?
                .execute(params![no])?;
            tx.prepare_cached("DELETE FROM static_members WHERE no = ?1")?
                .execute(params![no])?;
        }
        Record::Segment(def) => {
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
        }
        Record::SegmentDeleted { id } => {
            tx.prepare_cached("DELETE FROM segments WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM static_members WHERE segment_id = ?1")?
                .execute(params![id])?;
        }
        Record::StaticMembers {
            segment_id,
            contacts,
            present,
        } => {
            let sql = if *present {
                "INSERT OR IGNORE INTO static_members (segment_id, no) VALUES (?1, ?2)"
            } else {
                "DELETE FROM static_members WHERE segment_id = ?1 AND no = ?2"
            };
            let mut stmt = tx.prepare_cached(sql)?;
            for no in contacts {
                stmt.execute(params![segment_id, no])?;
            }
        }
        Record::Changes(batch) => {
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
        }
    }
    Ok(())
}

/// A read-only connection for the change log; SQLite's WAL lets it read
/// while the writer commits.
pub struct WorkspaceReader {
    conn: Connection,
}

impl WorkspaceReader {
    pub fn open(path: &Path) -> Result<WorkspaceReader, StoreError> {
        Ok(WorkspaceReader { conn: open(path)? })
    }

    /// Up to `limit` changes with seq > `after`, of one segment or all, in seq order.
    pub fn changes(
        &self,
        after: Option<u64>,
        segment_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        // seq starts at 0, so "after nothing" is after -1.
        let after: i64 = after.map_or(-1, |a| a as i64);
        let mut out = Vec::new();
        let sql = if segment_id.is_some() {
            "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes
             WHERE seq_end > ?1 + 1 AND segment_id = ?2 ORDER BY seq_start"
        } else {
            "SELECT seq_start, segment_id, kind, cause, at, contacts FROM changes
             WHERE seq_end > ?1 + 1 AND ?2 IS NULL ORDER BY seq_start"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![after, segment_id])?;
        while let Some(row) = rows.next()? {
            let seq_start: i64 = row.get(0)?;
            let segment_id: String = row.get(1)?;
            let kind: String = row.get(2)?;
            let cause: String = row.get(3)?;
            let at: i64 = row.get(4)?;
            let blob: Vec<u8> = row.get(5)?;
            let kind = ChangeKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("change kind {kind:?}")))?;
            let cause = Cause::parse(&cause)
                .ok_or_else(|| StoreError::Corrupt(format!("cause {cause:?}")))?;
            for (offset, no) in bitmap_from_blob(&blob)?.iter().enumerate() {
                let seq = seq_start as u64 + offset as u64;
                if (seq as i64) <= after {
                    continue;
                }
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(StoredChange {
                    seq,
                    segment_id: segment_id.clone(),
                    kind,
                    cause,
                    at,
                    no,
                });
            }
        }
        Ok(out)
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
        Ok(next.unwrap_or(0) as u64)
    }
}

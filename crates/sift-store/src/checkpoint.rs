//! Checkpoint files (docs/storage.md "Checkpoints"): an engine checkpoint
//! written as a separate SQLite database in the data directory, and a start
//! that loads the newest one that verifies and catches up from the store.
//!
//! A file is written under a dot-name (never taken for a checkpoint, nor
//! copied by a backup), fsynced, renamed, and its directory fsynced: a file
//! cut by a crash is never found under a checkpoint's name. Each part holds
//! a SHA-256 of its bytes, checked before anything is decoded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};
use sift_engine::{EngineCheckpoint, HistorySource, Mismatch, Workspace};

use crate::StoreError;
use crate::checkpoint_codec::{decode_fields, decode_rest, encode};
use crate::checkpoint_columns::{decode_column, decode_contacts};
use crate::load::LoadSchema;
use crate::workspace_db::WorkspaceDb;

/// The layout this build writes (meta `format`).
const FORMAT: i64 = 4;
/// The oldest layout it still reads: 3 differs only in its column parts
/// (no dictionary form for strings).
const OLDEST_READ: i64 = 3;
/// Bytes per `parts` row: SQLite refuses a blob past 1 GB.
const CHUNK: usize = 8 << 20;
/// Checkpoints kept per workspace: the newest, and one to fall back to.
pub const KEEP: usize = 2;

/// What a checkpoint covers, beside its parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckpointMeta {
    /// Every write numbered up to this one is in it, none after.
    pub write_number: u64,
    /// The engine's clock when it was taken.
    pub clock: i64,
    /// When it was taken (ms since the epoch).
    pub taken_at: i64,
}

/// A checkpoint written: where, and how large.
#[derive(Clone, Debug)]
pub struct WrittenCheckpoint {
    pub path: PathBuf,
    pub bytes: u64,
}

/// A checkpoint passed over at a start, and why.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: String,
}

/// How a start went: from which checkpoint (if any), after which rejects.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub checkpoint: Option<(PathBuf, CheckpointMeta)>,
    /// Contacts reloaded from the store because written after it.
    pub reloaded: usize,
    pub rejected: Vec<Rejected>,
    /// Where the start's time went, phase by phase (for the log).
    pub phases: Vec<(&'static str, Duration)>,
}

impl LoadReport {
    /// `phase=ms` pairs, for the log line of a start.
    pub fn phases_text(&self) -> String {
        self.phases
            .iter()
            .map(|(phase, took)| format!("{phase}={}ms", took.as_millis()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `<id>.checkpoint.<write number, 20 digits>.db`.
pub fn file_name(workspace: &str, write_number: u64) -> String {
    format!("{workspace}.checkpoint.{write_number:020}.db")
}

/// A workspace's checkpoint files, newest first.
pub fn list(dir: &Path, workspace: &str) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let prefix = format!("{workspace}.checkpoint.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(number) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".db"))
            .filter(|digits| digits.len() == 20)
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((number, entry.path()));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Deletes all but the newest [`KEEP`] checkpoints of a workspace, and
/// drafts a crash left behind.
pub fn prune(dir: &Path, workspace: &str) -> Result<(), StoreError> {
    for (_, path) in list(dir, workspace)?.into_iter().skip(KEEP) {
        std::fs::remove_file(path)?;
    }
    let draft = format!(".{workspace}.checkpoint.");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&draft) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Writes `ckpt` as the checkpoint of `meta.write_number` into `dir`.
/// `pause` is called once the parts are in the draft, before it is synced
/// and renamed (tests stop there to crash a write half-way).
pub fn write(
    dir: &Path,
    workspace: &str,
    meta: CheckpointMeta,
    ckpt: &EngineCheckpoint,
    pause: &dyn Fn(),
) -> Result<WrittenCheckpoint, StoreError> {
    let name = file_name(workspace, meta.write_number);
    let draft = dir.join(format!(".{name}.draft"));
    let _ = std::fs::remove_file(&draft);
    {
        let conn = Connection::open(&draft)?;
        // The file is fsynced once, whole, below; a crash before the
        // rename leaves only a draft nobody reads.
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        // Large pages: an 8 MiB chunk spans 128 overflow pages, not 2,048,
        // each of which a read walks through SQLite's page cache.
        conn.pragma_update(None, "page_size", 65_536)?;
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE parts (name TEXT NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL,
               PRIMARY KEY (name, chunk)) WITHOUT ROWID;
             CREATE TABLE checksums (name TEXT PRIMARY KEY, bytes INTEGER NOT NULL,
               chunks INTEGER NOT NULL, sha256 BLOB NOT NULL);",
        )?;
        let tx = conn.unchecked_transaction()?;
        for (key, value) in [
            ("format", FORMAT),
            ("write_number", meta.write_number as i64),
            ("clock", meta.clock),
            ("taken_at", meta.taken_at),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        for (part, bytes) in encode(ckpt)? {
            put_part(&tx, &part, &bytes)?;
        }
        tx.commit()?;
    }
    pause();
    let file = std::fs::File::open(&draft)?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    drop(file);
    let path = dir.join(&name);
    std::fs::rename(&draft, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(WrittenCheckpoint { path, bytes })
}

fn put_part(tx: &rusqlite::Transaction<'_>, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO parts (name, chunk, data) VALUES (?1, ?2, ?3)")?;
    let mut chunks = 0i64;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        stmt.execute(params![name, i as i64, chunk])?;
        chunks += 1;
    }
    tx.execute(
        "INSERT INTO checksums (name, bytes, chunks, sha256) VALUES (?1, ?2, ?3, ?4)",
        params![
            name,
            bytes.len() as i64,
            chunks,
            Sha256::digest(bytes).to_vec()
        ],
    )?;
    Ok(())
}

/// An open checkpoint file: its meta, and its parts read and verified
/// one at a time, so that at most one part's bytes are held beside what is
/// decoded (a start's peak memory).
struct Reader {
    conn: Connection,
    format: i64,
    /// By part: length, chunks and SHA-256.
    sums: HashMap<String, (i64, i64, Vec<u8>)>,
}

impl Reader {
    fn open(path: &Path) -> Result<(Reader, CheckpointMeta), StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read through a memory map: the parts are read once, whole, and
        // copying them through the page cache doubled the work.
        conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
        let meta_value = |key: &str| -> Result<i64, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(|e| StoreError::Corrupt(format!("meta {key}: {e}")))
        };
        let format = meta_value("format")?;
        if !(OLDEST_READ..=FORMAT).contains(&format) {
            return Err(StoreError::Corrupt(format!(
                "format {format}, this build reads {OLDEST_READ} to {FORMAT}"
            )));
        }
        let meta = CheckpointMeta {
            write_number: meta_value("write_number")? as u64,
            clock: meta_value("clock")?,
            taken_at: meta_value("taken_at")?,
        };
        let mut sums = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT name, bytes, chunks, sha256 FROM checksums")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                sums.insert(row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?));
            }
        }
        Ok((Reader { conn, format, sums }, meta))
    }

    /// Part `name`'s bytes, once its chunks and checksum are verified.
    fn take(&mut self, name: &str) -> Result<Vec<u8>, StoreError> {
        let (len, chunks, sum) = self
            .sums
            .remove(name)
            .ok_or_else(|| StoreError::Corrupt(format!("part {name:?} missing")))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
        let mut stmt = self
            .conn
            .prepare_cached("SELECT chunk, data FROM parts WHERE name = ?1 ORDER BY chunk")?;
        let mut rows = stmt.query([name])?;
        let mut seen = 0i64;
        while let Some(chunk) = rows.next()? {
            if chunk.get::<_, i64>(0)? != seen {
                return Err(StoreError::Corrupt(format!(
                    "part {name:?}: a chunk missing"
                )));
            }
            let data = chunk
                .get_ref(1)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(format!("part {name:?}: {e}")))?;
            bytes.extend_from_slice(data);
            seen += 1;
        }
        if seen != chunks || bytes.len() as i64 != len {
            return Err(StoreError::Corrupt(format!(
                "part {name:?}: {seen} chunks and {} bytes, {chunks} and {len} expected",
                bytes.len()
            )));
        }
        if Sha256::digest(&bytes).as_slice() != sum.as_slice() {
            return Err(StoreError::Corrupt(format!(
                "part {name:?} fails its checksum"
            )));
        }
        Ok(bytes)
    }
}

/// Starts a workspace from its newest checkpoint in `dir` that verifies
/// and fits the store (each one that does not is reported and passed
/// over), or from a full rebuild when none does.
///
/// With `history` the events stay on disk: the engine streams them from it
/// when it needs them, and a full rebuild streams them once.
pub fn load(
    db: &WorkspaceDb,
    dir: &Path,
    workspace: &str,
    history: Option<HistorySource>,
) -> Result<(Workspace, LoadReport), StoreError> {
    let mut report = LoadReport::default();
    let found = match list(dir, workspace) {
        Ok(found) => found,
        Err(error) => {
            report.rejected.push(Rejected {
                path: dir.to_path_buf(),
                reason: format!("cannot list checkpoints: {error}"),
            });
            Vec::new()
        }
    };
    for (_, path) in found {
        match db.load_checkpoint(&path, &mut report.phases, history.clone()) {
            Ok((ws, meta, reloaded)) => {
                report.checkpoint = Some((path, meta));
                report.reloaded = reloaded;
                return Ok((ws, report));
            }
            Err(error) => report.rejected.push(Rejected {
                path,
                reason: error.to_string(),
            }),
        }
    }
    report.phases.clear();
    let started = Instant::now();
    let ws = match history {
        Some(history) => db.load_streaming(history)?,
        None => Workspace::restore_from(db.stored_state()?),
    };
    report.phases.push(("rebuild", started.elapsed()));
    Ok((ws, report))
}

impl WorkspaceDb {
    /// The workspace from one checkpoint file and what was stored after it.
    fn load_checkpoint(
        &self,
        path: &Path,
        phases: &mut Vec<(&'static str, Duration)>,
        history: Option<HistorySource>,
    ) -> Result<(Workspace, CheckpointMeta, usize), StoreError> {
        phases.clear();
        let started = Instant::now();
        let tx = self.conn().unchecked_transaction()?;
        let last = crate::write_log::last_write(&tx)?;
        let (mut state, types) = crate::load::definitions(&tx)?;
        let schema = LoadSchema {
            types: &types,
            names: state
                .segments
                .iter()
                .map(|def| (def.id.clone(), def.name.clone()))
                .collect(),
        };
        phases.push(("read_definitions", started.elapsed()));
        let started = Instant::now();
        let (mut reader, meta) = Reader::open(path)?;
        if meta.write_number > last {
            return Err(StoreError::Corrupt(format!(
                "it covers write {} but the store holds writes up to {last} only",
                meta.write_number
            )));
        }
        let forgotten = crate::write_log::forgotten_through(&tx)?;
        if meta.write_number < forgotten {
            return Err(StoreError::Corrupt(format!(
                "it covers write {} but the store no longer records which contacts writes up to {forgotten} touched",
                meta.write_number
            )));
        }
        // Fields first. Then three threads, each on a connection of its
        // own: two read, verify (SHA-256) and build the columns, largest
        // first, and this one lays down the contacts and their id index,
        // reads and decodes the rest (segments, aggregates, events,
        // timers), then builds columns too until none is left: building
        // the columns (the unique strings' indexes) takes longest.
        let misfit = |m: Mismatch| StoreError::Corrupt(format!("does not fit the store: {}", m.0));
        let fields = decode_fields(&reader.take("fields")?)?;
        let mut load =
            Workspace::begin_checkpoint(meta.clock, &fields, std::mem::take(&mut state.fields))
                .map_err(misfit)?;
        let contacts = reader.take("contacts")?;
        let (mut rest_reader, _) = Reader::open(path)?;
        phases.push(("read_contacts_part", started.elapsed()));
        let parallel = Instant::now();
        let schema = &schema;
        let column_types: Vec<_> = fields.iter().map(|def| def.field_type).collect();
        let dictionaries = reader.format >= 4;
        let mut order: Vec<usize> = (0..column_types.len()).collect();
        order.sort_by_key(|&index| {
            let size = reader
                .sums
                .get(&format!("column.{index}"))
                .map_or(0, |(bytes, _, _)| *bytes);
            std::cmp::Reverse(size)
        });
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (mut column_reader, _) = Reader::open(path)?;
        let rest = std::thread::scope(|scope| -> Result<_, StoreError> {
            let (next, order, column_types) = (&next, &order, &column_types);
            let build = move |reader: &mut Reader| -> Result<(Vec<_>, Duration), StoreError> {
                let started = Instant::now();
                let mut built = Vec::new();
                loop {
                    let taken = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = order.get(taken) else {
                        return Ok((built, started.elapsed()));
                    };
                    let name = format!("column.{index}");
                    let bytes = reader.take(&name)?;
                    let column = decode_column(&bytes, &name, column_types[index], dictionaries)?;
                    built.push((index, column));
                }
            };
            let reader = &mut reader;
            let column_reader = &mut column_reader;
            let first = scope.spawn(move || build(reader));
            let second = scope.spawn(move || build(column_reader));
            let laying = Instant::now();
            let contacts_len = decode_contacts(&contacts, &mut load);
            drop(contacts);
            phases.push(("lay_contacts", laying.elapsed()));
            let reading_rest = Instant::now();
            // Without contacts the load fails below, once the builders
            // are joined; there is no rest to read then.
            let rest = match &contacts_len {
                Ok(len) => {
                    decode_rest(&mut |name| rest_reader.take(name), meta.clock, schema, *len)
                }
                Err(_) => Ok(Default::default()),
            };
            phases.push(("read_rest", reading_rest.elapsed()));
            let third = build(&mut rest_reader);
            let joined = |worker: std::thread::ScopedJoinHandle<'_, _>| {
                worker
                    .join()
                    .map_err(|_| StoreError::Corrupt("a column builder panicked".into()))?
            };
            let (first, first_took) = joined(first)?;
            let (second, second_took) = joined(second)?;
            contacts_len?;
            let (third, third_took) = third?;
            phases.push(("build_columns_1", first_took));
            phases.push(("build_columns_2", second_took));
            phases.push(("build_columns_3", third_took));
            for (index, column) in first.into_iter().chain(second).chain(third) {
                load.set_column(index, column);
            }
            rest
        })?;
        phases.push(("contacts_columns_rest", parallel.elapsed()));
        phases.push(("read_checkpoint", started.elapsed()));
        let started = Instant::now();
        crate::load::add_touched(&tx, &mut state, &types, meta.write_number)?;
        tx.commit()?;
        phases.push(("read_touched", started.elapsed()));
        let reloaded = state.contacts.len() + state.tombstones.len();
        let started = Instant::now();
        let ws = load
            .finish(rest, state, history)
            .map_err(|m| StoreError::Corrupt(format!("does not fit the store: {}", m.0)))?;
        phases.push(("restore", started.elapsed()));
        Ok((ws, meta, reloaded))
    }
}

//! Copies of a data directory's databases taken while a server keeps
//! writing them (`sift backup`), and the checks a copy must pass before it
//! is trusted (`sift restore`).
//!
//! A copy is made with `VACUUM INTO`: it runs inside one read transaction,
//! so the copy is the database at one instant even while the server's
//! writer commits, and in WAL mode the reader never blocks that writer.
//! The online backup API, by contrast, restarts whenever the source
//! changes under it, which under a steady write load may never finish.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// The first bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long a copy waits for a lock the server holds (a WAL reset, a
/// schema change) before giving up.
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Whether a file is a SQLite database: by its name (`.db`, so a damaged
/// one is still treated, and refused, as a database) or by its header, so
/// databases added to the data directory later are copied as databases
/// whatever they are called.
pub fn is_database(path: &Path) -> std::io::Result<bool> {
    if path.extension().is_some_and(|ext| ext == "db") {
        return Ok(true);
    }
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(&head == MAGIC)
}

/// Whether a file is one of SQLite's companions of a database (its WAL,
/// shared-memory index or rollback journal): a snapshot already holds what
/// they hold, and a stale one beside a copy would corrupt it.
pub fn is_companion(name: &str) -> bool {
    name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")
}

/// Writes a consistent copy of the database at `source` to `dest` (which
/// must not exist), as one self-contained file in rollback-journal mode,
/// checks it, and syncs it to disk. Returns the copy's size in bytes.
pub fn snapshot(source: &Path, dest: &Path) -> Result<u64, StoreError> {
    let dest_text = dest
        .to_str()
        .ok_or_else(|| StoreError::Corrupt(format!("{} is not UTF-8", dest.display())))?;
    {
        // Read-write without create: a read-only connection cannot open a
        // WAL database whose shared-memory file is missing (no server
        // running), and a missing source must fail rather than appear empty.
        let conn = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_WAIT)?;
        conn.execute("VACUUM INTO ?1", [dest_text])?;
    }
    {
        // A copy in WAL mode could not be opened read-only for checking
        // (by `sift restore`, from read-only media); the server switches
        // it back to WAL when it opens it.
        let conn = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
    }
    check(dest)?;
    let file = std::fs::File::open(dest)?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// A database held at one instant by an open read transaction: what
/// [`Frozen::write_to`] copies later is the database as it was when
/// [`freeze`] returned, whatever is committed meanwhile (WAL mode keeps
/// that snapshot readable). Cluster mode freezes every database of a data
/// directory while it holds its writes, then copies them without holding
/// them.
pub struct Frozen {
    conn: Connection,
}

/// Opens a read transaction on the database at `source`.
pub fn freeze(source: &Path) -> Result<Frozen, StoreError> {
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_WAIT)?;
    conn.execute_batch("BEGIN")?;
    // A read transaction starts at its first read.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(Frozen { conn })
}

impl Frozen {
    /// Writes the frozen database to `dest` (which must not exist), as one
    /// self-contained file in rollback-journal mode, checks it and syncs
    /// it. Returns its size in bytes.
    pub fn write_to(self, dest: &Path) -> Result<u64, StoreError> {
        {
            let mut copy = Connection::open(dest)?;
            // Every page in one step, through the source's own read
            // transaction: the snapshot, even while others commit.
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut copy)?;
            backup.step(-1)?;
        }
        self.conn.execute_batch("COMMIT")?;
        {
            let conn = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.pragma_update(None, "journal_mode", "DELETE")?;
        }
        check(dest)?;
        let file = std::fs::File::open(dest)?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }
}

/// `PRAGMA integrity_check` on a database, opened read-only: Ok when it
/// answers `ok`, else `Corrupt` with what SQLite found (or the error that
/// stopped it reading, e.g. "file is not a database").
pub fn check(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let found = (|| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect()
    })();
    match found {
        Ok(rows) if rows == ["ok"] => Ok(()),
        Ok(rows) => Err(StoreError::Corrupt(rows.join("; "))),
        Err(error) => Err(StoreError::Corrupt(error.to_string())),
    }
}

/// The workspace ids a catalog database names, read without changing it.
pub fn catalog_workspaces(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("SELECT id, name FROM workspaces ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        conn
    }

    #[test]
    fn a_snapshot_holds_what_was_committed_while_the_source_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.db");
        let writer = wal_db(&source);
        let copy = dir.path().join("copy.db");
        let size = snapshot(&source, &copy).unwrap();
        assert!(size > 0);
        writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let read = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = read
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        let mode: String = read
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        assert!(!dir.path().join("copy.db-wal").exists());
    }

    #[test]
    fn a_frozen_database_is_copied_as_it_was_when_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.db");
        let writer = wal_db(&source);
        let frozen = freeze(&source).unwrap();
        // Commits after the freeze neither wait for it nor reach the copy,
        // the WAL checkpointed meanwhile included.
        for x in 3..200 {
            writer.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
        }
        writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        let copy = dir.path().join("copy.db");
        assert!(frozen.write_to(&copy).unwrap() > 0);
        let read = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = read
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        let mode: String = read
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        // The source is whole and free again.
        let n: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 199);
    }

    #[test]
    fn damaged_files_are_refused_and_recognised_by_name_or_header() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("plain");
        drop(wal_db(&good));
        assert!(is_database(&good).unwrap());
        check(&good).unwrap();
        let text = dir.path().join("secret.key");
        std::fs::write(&text, "00\n").unwrap();
        assert!(!is_database(&text).unwrap());
        let bad = dir.path().join("ws_x.db");
        std::fs::write(&bad, vec![7u8; 8192]).unwrap();
        assert!(is_database(&bad).unwrap());
        let error = check(&bad).unwrap_err().to_string();
        assert!(error.contains("not a database"), "{error}");
        assert!(is_companion("ws_x.db-wal") && !is_companion("ws_x.db"));
    }
}

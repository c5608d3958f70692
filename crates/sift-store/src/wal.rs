//! Keeping a workspace's WAL bounded: the writer empties it itself when the
//! checkpointer cannot keep up (see [`WorkspaceDb::truncate_wal_if_over`]).

use super::WorkspaceDb;
use crate::StoreError;

/// How long emptying the WAL waits for its readers before giving up.
pub const TRUNCATE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

impl WorkspaceDb {
    /// When the WAL file has grown past `limit` bytes, copies it into the
    /// database and empties it (SQLite's TRUNCATE checkpoint), on the
    /// writer's own connection between two commits. The PASSIVE checkpoints
    /// of the checkpointer never catch up with a writer that commits without
    /// pause (a bulk import): the WAL can only restart from its beginning
    /// once every frame in it is copied, so it grew without bound (past
    /// 21 GB for ten million events). This bounds it at the cost of one
    /// pause in writes, short because the PASSIVE checkpoints copied most of
    /// it already. A reader still reading the WAL
    /// for more than [`TRUNCATE_WAIT`] makes it give up; that is no error,
    /// the next commit tries again.
    /// Answers whether the WAL was emptied.
    pub fn truncate_wal_if_over(&self, limit: u64) -> Result<bool, StoreError> {
        let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
            return Ok(false);
        };
        let size = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
        if size <= limit {
            return Ok(false);
        }
        // Emptying the WAL waits for every reader of it to finish: wait for
        // them briefly, so a reader cannot hold the writer for the whole
        // busy timeout; giving up is fine, the next commit tries again.
        self.conn.busy_timeout(TRUNCATE_WAIT)?;
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
        self.conn.busy_timeout(crate::schema::BUSY_TIMEOUT)?;
        match busy {
            Ok(busy) => Ok(busy == 0),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn wal_size(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("ws.db-wal")).map_or(0, |m| m.len())
    }

    #[test]
    fn a_wal_past_the_limit_is_emptied_by_the_writer_and_its_rows_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
        db.conn
            .execute_batch("CREATE TABLE bulk (payload BLOB NOT NULL)")
            .unwrap();
        // Eight transactions of 1 MiB each: automatic checkpoints are off,
        // so all of it stays in the WAL.
        for _ in 0..8 {
            db.conn
                .execute("INSERT INTO bulk VALUES (zeroblob(1048576))", [])
                .unwrap();
        }
        let grown = wal_size(dir.path());
        assert!(grown > 8 * 1024 * 1024, "the WAL is {grown} bytes");
        assert!(
            !db.truncate_wal_if_over(grown).unwrap(),
            "under the limit: left alone"
        );
        assert_eq!(wal_size(dir.path()), grown);
        assert!(db.truncate_wal_if_over(1024 * 1024).unwrap());
        assert_eq!(wal_size(dir.path()), 0);
        let rows: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM bulk", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 8);
    }

    #[test]
    fn a_reader_in_the_wal_makes_the_writer_give_up_quickly_then_it_empties_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let db = WorkspaceDb::open(&path).unwrap();
        db.conn
            .execute_batch("CREATE TABLE bulk (payload BLOB NOT NULL)")
            .unwrap();
        for _ in 0..4 {
            db.conn
                .execute("INSERT INTO bulk VALUES (zeroblob(1048576))", [])
                .unwrap();
        }
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM bulk", [], |r| r.get(0))
            .unwrap();
        let started = std::time::Instant::now();
        assert!(!db.truncate_wal_if_over(1024).unwrap());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "waited {:?}",
            started.elapsed()
        );
        assert!(wal_size(dir.path()) > 0);
        reader.execute_batch("COMMIT").unwrap();
        assert!(db.truncate_wal_if_over(1024).unwrap());
        assert_eq!(wal_size(dir.path()), 0);
    }
}

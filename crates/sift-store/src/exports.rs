//! Facebook export jobs as last reported (schema version 6, marker
//! `exports`): one row per job, its JSON as `GET /v1/exports/{id}` answers
//! it, which never holds the access token. Written through the workspace's
//! writer like webhook cursors; read at start so that a job can still be
//! read after a restart.

use rusqlite::params;

use crate::StoreError;
use crate::workspace_db::WorkspaceReader;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    pub id: String,
    pub segment_id: String,
    pub created_at: i64,
    /// The job's JSON (no token).
    pub job: String,
}

pub(crate) fn apply(tx: &rusqlite::Transaction<'_>, row: &ExportRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO exports (id, segment_id, created_at, job) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET job = excluded.job",
    )?
    .execute(params![row.id, row.segment_id, row.created_at, row.job])?;
    Ok(())
}

impl WorkspaceReader {
    /// Every stored export job, oldest first.
    pub fn exports(&self) -> Result<Vec<ExportRow>, StoreError> {
        let mut statement = self.conn().prepare(
            "SELECT id, segment_id, created_at, job FROM exports ORDER BY created_at, id",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok(ExportRow {
                    id: row.get(0)?,
                    segment_id: row.get(1)?,
                    created_at: row.get(2)?,
                    job: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

//! Facebook export jobs (schema version 6, marker `exports`): one row per
//! job, its JSON as `GET /v1/exports/{id}` answers it, which never holds
//! the access token. Written through the workspace's writer like webhook
//! cursors; read at start so that a job can still be read after a restart.
//!
//! A sync that must survive a restart also keeps (version 7, marker
//! `export_sent`) its access token, sealed by the server under a key kept
//! outside the database (`export_tokens`), and per contact the row the
//! audience holds for it (`export_sent`), so that after a restart it can
//! remove exactly the rows of contacts that left meanwhile.
//!
//! A workspace may also keep one Facebook connection (version 14, marker
//! `facebook_connection`): an ad account and its access token, sealed the
//! same way, so that a marketer enters the token once and every export,
//! audience list and retry reuses it.

use rusqlite::{OptionalExtension, params};

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

/// One change to what is stored of export jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportWrite {
    /// The job's state as last reported.
    Job(ExportRow),
    /// A sync's access token, already sealed (never plain text).
    Token { job_id: String, sealed: Vec<u8> },
    /// Rows the audience holds, by contact number: `Some` (the row, as
    /// JSON) was sent, `None` was removed.
    Sent {
        job_id: String,
        rows: Vec<(u32, Option<String>)>,
    },
    /// The sync ended for good: its token and rows are dropped.
    Forget { job_id: String },
    /// The workspace's Facebook connection is set (`Some`, replacing any)
    /// or removed (`None`).
    Connection(Option<ConnectionRow>),
}

/// The workspace's stored Facebook connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    /// Digits only (the `act_` prefix is added when calling Facebook).
    pub ad_account_id: String,
    /// Where the Graph API is and its version; `None`: the server's setting.
    pub graph_url: Option<String>,
    pub version: Option<String>,
    /// The token's last characters, to tell tokens apart without showing one.
    pub token_hint: String,
    /// The access token, sealed (never plain text).
    pub sealed: Vec<u8>,
    pub updated_at: i64,
}

pub(crate) fn apply(tx: &rusqlite::Transaction<'_>, write: &ExportWrite) -> Result<(), StoreError> {
    match write {
        ExportWrite::Job(row) => {
            tx.prepare_cached(
                "INSERT INTO exports (id, segment_id, created_at, job) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET job = excluded.job",
            )?
            .execute(params![row.id, row.segment_id, row.created_at, row.job])?;
        }
        ExportWrite::Token { job_id, sealed } => {
            tx.prepare_cached(
                "INSERT INTO export_tokens (job_id, sealed) VALUES (?1, ?2)
                 ON CONFLICT(job_id) DO UPDATE SET sealed = excluded.sealed",
            )?
            .execute(params![job_id, sealed])?;
        }
        ExportWrite::Sent { job_id, rows } => {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO export_sent (job_id, contact_no, row) VALUES (?1, ?2, ?3)
                 ON CONFLICT(job_id, contact_no) DO UPDATE SET row = excluded.row",
            )?;
            let mut delete =
                tx.prepare_cached("DELETE FROM export_sent WHERE job_id = ?1 AND contact_no = ?2")?;
            for (no, row) in rows {
                match row {
                    Some(row) => upsert.execute(params![job_id, no, row])?,
                    None => delete.execute(params![job_id, no])?,
                };
            }
        }
        ExportWrite::Forget { job_id } => {
            tx.prepare_cached("DELETE FROM export_tokens WHERE job_id = ?1")?
                .execute(params![job_id])?;
            tx.prepare_cached("DELETE FROM export_sent WHERE job_id = ?1")?
                .execute(params![job_id])?;
        }
        ExportWrite::Connection(row) => {
            tx.prepare_cached("DELETE FROM facebook_connection")?
                .execute([])?;
            if let Some(row) = row {
                tx.prepare_cached(
                    "INSERT INTO facebook_connection
                     (id, ad_account_id, graph_url, version, token_hint, sealed, updated_at)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    row.ad_account_id,
                    row.graph_url,
                    row.version,
                    row.token_hint,
                    row.sealed,
                    row.updated_at
                ])?;
            }
        }
    }
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

    /// A sync's sealed access token, if one is stored.
    pub fn export_token(&self, job_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT sealed FROM export_tokens WHERE job_id = ?1")?
            .query_row([job_id], |row| row.get(0))
            .optional()?)
    }

    /// The workspace's Facebook connection, if one is stored.
    pub fn facebook_connection(&self) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT ad_account_id, graph_url, version, token_hint, sealed, updated_at
                 FROM facebook_connection WHERE id = 1",
            )?
            .query_row([], |row| {
                Ok(ConnectionRow {
                    ad_account_id: row.get(0)?,
                    graph_url: row.get(1)?,
                    version: row.get(2)?,
                    token_hint: row.get(3)?,
                    sealed: row.get(4)?,
                    updated_at: row.get(5)?,
                })
            })
            .optional()?)
    }

    /// The rows a sync's audience holds, by contact number.
    pub fn export_sent(&self, job_id: &str) -> Result<Vec<(u32, String)>, StoreError> {
        let mut statement = self
            .conn()
            .prepare_cached("SELECT contact_no, row FROM export_sent WHERE job_id = ?1")?;
        let rows = statement
            .query_map([job_id], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

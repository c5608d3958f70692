//! Retention of workflow history: finished runs and finished webhook
//! deliveries (delivered, or given up) older than the server's retention
//! are deleted, a bounded chunk per commit. The queue, its cursor, pending
//! deliveries, score grants and dropped-trigger counts are state, not
//! history, and are never pruned here.
//!
//! A prune goes through the writer like any write ([`crate::Pending::Prune`]),
//! so it never races a commit, and a chunk bounds how long it holds the
//! writer: a large backlog of old rows is deleted over many commits, with
//! client writes committed in between.

use rusqlite::{Transaction, params};
use sift_lang::DateTime;

use crate::StoreError;
use crate::workspace_db::WorkspaceReader;

/// One chunk of pruning: rows that ended before `before`, at most `limit`
/// of each table, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prune {
    pub before: DateTime,
    pub limit: usize,
}

pub(crate) fn apply(tx: &Transaction<'_>, prune: &Prune) -> Result<(), StoreError> {
    let limit = prune.limit as i64;
    // Both go by an index on the instant, so a chunk costs its own rows.
    tx.prepare_cached(
        "DELETE FROM workflow_runs WHERE id IN
           (SELECT id FROM workflow_runs WHERE at < ?1 ORDER BY at LIMIT ?2)",
    )?
    .execute(params![prune.before, limit])?;
    tx.prepare_cached(
        "DELETE FROM webhook_outbox WHERE id IN
           (SELECT id FROM webhook_outbox WHERE finished_at IS NOT NULL AND finished_at < ?1
            ORDER BY finished_at LIMIT ?2)",
    )?
    .execute(params![prune.before, limit])?;
    Ok(())
}

impl WorkspaceReader {
    /// When the oldest prunable row ended: the earliest run, or the
    /// earliest finished delivery. `None` when there is neither.
    pub fn oldest_history(&self) -> Result<Option<DateTime>, StoreError> {
        let runs: Option<DateTime> =
            self.conn
                .query_row("SELECT MIN(at) FROM workflow_runs", [], |r| r.get(0))?;
        let outbox: Option<DateTime> = self.conn.query_row(
            "SELECT MIN(finished_at) FROM webhook_outbox WHERE finished_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(match (runs, outbox) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

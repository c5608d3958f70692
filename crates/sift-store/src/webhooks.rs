//! Webhook subscriptions and their delivery cursors (schema version 3).
//!
//! A subscription's definition is in `webhooks`; how far its deliveries have
//! got is in `webhook_cursors`. Both are written through the workspace's
//! writer, in the same group commits as the engine's records (see
//! [`crate::WorkspaceDb::commit_all`]), so a cursor costs no fsync of its own
//! while the workspace is busy, and no second connection ever competes for
//! SQLite's write lock. Reads go through a [`WorkspaceReader`].

use rusqlite::{OptionalExtension, Row, params};

use crate::StoreError;
use crate::workspace_db::WorkspaceReader;

/// A subscription as the client defined it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    /// The HMAC key. It must be stored as given: deliveries are signed with it.
    pub secret: String,
    /// Segment ids whose changes are sent; `None`: every segment.
    pub segments: Option<Vec<String>>,
    /// Whether accepted events are sent too.
    pub events: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How far a subscription's deliveries have got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookCursor {
    /// Every change with a lower seq was acknowledged by the endpoint, or is
    /// not one the subscription sends (1: none; change seqs start at 1).
    pub change_seq: u64,
    /// Every event with this seq or a lower one was acknowledged (0: none;
    /// event seqs start at 1).
    pub event_seq: u64,
    /// When the endpoint last acknowledged a batch (ms).
    pub acked_at: Option<i64>,
    /// The window being delivered, if any: batches are cut from the cursor
    /// inside it, so after a restart the same batches are sent again under
    /// the same delivery ids.
    pub pending: Option<PendingBatch>,
}

/// The ends of a range that starts at the cursor (a delivery window, or one
/// batch): changes with `cursor.change_seq <= seq < change_end`, events
/// with `cursor.event_seq < seq <= event_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingBatch {
    pub change_end: u64,
    pub event_end: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWebhook {
    pub row: WebhookRow,
    pub cursor: WebhookCursor,
}

/// A change to subscriptions or cursors, committed by the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookWrite {
    /// A new subscription. Its cursors start after every change and event
    /// committed before it (in the same transaction, so nothing falls in
    /// between): it sends what happens from its creation on.
    Create(WebhookRow),
    /// New definition (url, secret, segments, events, enabled); the cursor
    /// stays where it is.
    Update(WebhookRow),
    Delete {
        id: String,
    },
    /// A delivery window opens (before its first batch is sent).
    Begin {
        id: String,
        batch: PendingBatch,
    },
    /// The endpoint acknowledged (or the subscription skipped, with
    /// `acked_at: None`) everything before these cursors; any pending batch
    /// is done.
    Advance {
        id: String,
        change_seq: u64,
        event_seq: u64,
        acked_at: Option<i64>,
    },
}

pub(crate) fn apply(
    tx: &rusqlite::Transaction<'_>,
    write: &WebhookWrite,
) -> Result<(), StoreError> {
    match write {
        WebhookWrite::Create(row) => {
            upsert(tx, row)?;
            // Nothing here may fail on data (a failed commit stops the
            // workspace's writer): ids are fresh ULIDs, and a repeated id
            // only resets its cursor.
            tx.prepare_cached(
                "INSERT INTO webhook_cursors (webhook_id, change_seq, event_seq)
                 VALUES (?1, (SELECT COALESCE(MAX(seq_end), 1) FROM changes),
                             (SELECT COALESCE(MAX(seq), 0) FROM events))
                 ON CONFLICT(webhook_id) DO UPDATE SET change_seq = excluded.change_seq,
                   event_seq = excluded.event_seq, acked_at = NULL,
                   pending_change_end = NULL, pending_event_end = NULL",
            )?
            .execute(params![row.id])?;
        }
        WebhookWrite::Update(row) => upsert(tx, row)?,
        WebhookWrite::Delete { id } => {
            tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM webhook_cursors WHERE webhook_id = ?1")?
                .execute(params![id])?;
        }
        WebhookWrite::Begin { id, batch } => {
            tx.prepare_cached(
                "UPDATE webhook_cursors SET pending_change_end = ?2, pending_event_end = ?3
                 WHERE webhook_id = ?1",
            )?
            .execute(params![id, batch.change_end as i64, batch.event_end as i64])?;
        }
        WebhookWrite::Advance {
            id,
            change_seq,
            event_seq,
            acked_at,
        } => {
            // Cursors only move forward, whatever order advances arrive in.
            tx.prepare_cached(
                "UPDATE webhook_cursors SET change_seq = MAX(change_seq, ?2),
                   event_seq = MAX(event_seq, ?3), acked_at = COALESCE(?4, acked_at),
                   pending_change_end = NULL, pending_event_end = NULL
                 WHERE webhook_id = ?1",
            )?
            .execute(params![id, *change_seq as i64, *event_seq as i64, acked_at])?;
        }
    }
    Ok(())
}

fn upsert(tx: &rusqlite::Transaction<'_>, row: &WebhookRow) -> Result<(), StoreError> {
    let segments = row
        .segments
        .as_ref()
        .map(|ids| serde_json::Value::from(ids.clone()).to_string());
    tx.prepare_cached(
        "INSERT INTO webhooks (id, url, secret, segments, events, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET url = excluded.url, secret = excluded.secret,
           segments = excluded.segments, events = excluded.events, enabled = excluded.enabled,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        row.id,
        row.url,
        row.secret,
        segments,
        row.events,
        row.enabled,
        row.created_at,
        row.updated_at
    ])?;
    Ok(())
}

const SELECT: &str = "SELECT w.id, w.url, w.secret, w.segments, w.events, w.enabled, w.created_at,
       w.updated_at, c.change_seq, c.event_seq, c.acked_at, c.pending_change_end, c.pending_event_end
     FROM webhooks w JOIN webhook_cursors c ON c.webhook_id = w.id";

fn stored(row: &Row<'_>) -> rusqlite::Result<(StoredWebhook, Option<String>)> {
    let segments: Option<String> = row.get(3)?;
    let pending_change: Option<i64> = row.get(11)?;
    let pending_event: Option<i64> = row.get(12)?;
    let webhook = StoredWebhook {
        row: WebhookRow {
            id: row.get(0)?,
            url: row.get(1)?,
            secret: row.get(2)?,
            segments: None,
            events: row.get(4)?,
            enabled: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
        },
        cursor: WebhookCursor {
            change_seq: row.get::<_, i64>(8)? as u64,
            event_seq: row.get::<_, i64>(9)? as u64,
            acked_at: row.get(10)?,
            pending: match (pending_change, pending_event) {
                (Some(change_end), Some(event_end)) => Some(PendingBatch {
                    change_end: change_end as u64,
                    event_end: event_end as u64,
                }),
                _ => None,
            },
        },
    };
    Ok((webhook, segments))
}

fn with_segments(
    (mut webhook, segments): (StoredWebhook, Option<String>),
) -> Result<StoredWebhook, StoreError> {
    webhook.row.segments = match segments {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!("webhook {} segments {text:?}: {e}", webhook.row.id))
        })?),
    };
    Ok(webhook)
}

/// An accepted event as a delivery sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Arrival order: the events table's rowid.
    pub seq: u64,
    pub id: Option<String>,
    pub contact_no: u32,
    /// Empty when the event's contact was erased (only its idempotency key
    /// is kept).
    pub event_type: String,
    pub at: i64,
    /// The client's JSON object, as sent.
    pub properties_json: String,
}

impl WorkspaceReader {
    /// Every subscription with its cursor, oldest first.
    pub fn webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("{SELECT} ORDER BY w.created_at, w.id"))?;
        let rows = stmt.query_map([], stored)?;
        rows.map(|r| with_segments(r?)).collect()
    }

    pub fn webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("{SELECT} WHERE w.id = ?1"))?;
        stmt.query_row(params![id], stored)
            .optional()?
            .map(with_segments)
            .transpose()
    }

    /// Up to `limit` events with `after < seq <= up_to`, in seq order;
    /// erased ones (empty type) included, so a reader knows how far it got.
    pub fn events_between(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT seq, id, contact_no, type, at, properties FROM events
             WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                after as i64,
                up_to.min(i64::MAX as u64) as i64,
                limit as i64
            ],
            |row| {
                Ok(StoredEvent {
                    seq: row.get::<_, i64>(0)? as u64,
                    id: row.get(1)?,
                    contact_no: row.get(2)?,
                    event_type: row.get(3)?,
                    at: row.get(4)?,
                    properties_json: row.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The seq of the latest committed event (0: none).
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        let last: i64 =
            self.conn()
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        Ok(last as u64)
    }
}

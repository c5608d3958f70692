//! Workflow tables: definitions, the trigger queue and its cursor, run
//! history, score grants and the webhook outbox — writing their records,
//! reading them back on load, and the reads the API makes (runs, deliveries).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Value as Json, json};
use sift_engine::{
    Action, ActionDone, ActionResult, ActionType, ChangeKind, DroppedTriggers, QueueBatch,
    QueuedItem, RawValue, Record, RunRecord, RunStatus, ScoreGrant, Trigger, TriggerKind,
    WorkflowDef, WorkflowStatus,
};
use sift_lang::Schema;

use crate::StoreError;
use crate::codec::{filter_from_json, filter_to_json, raw_value};
use crate::workspace_db::WorkspaceReader;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn raw_to_json(value: &RawValue) -> Json {
    match value {
        RawValue::Null | RawValue::Unsupported(_) => Json::Null,
        RawValue::Bool(b) => Json::Bool(*b),
        RawValue::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        RawValue::String(s) => Json::String(s.clone()),
        RawValue::StringList(items) => json!(items),
    }
}

pub(crate) fn trigger_kind_to_json(trigger: &TriggerKind) -> Json {
    match trigger {
        TriggerKind::Change { segment_id, kind } => {
            let name = match kind {
                ChangeKind::Entered => "segment_entered",
                ChangeKind::Exited => "segment_exited",
            };
            json!({"type": name, "segment": segment_id})
        }
        TriggerKind::Event { event_type } => json!({"type": "event", "event_type": event_type}),
    }
}

/// One action of a stored run, as [`Record::Run`] wrote it.
fn action_done_from_json(json: &Json) -> Result<ActionDone, StoreError> {
    let index = json["index"].as_u64().and_then(|i| u32::try_from(i).ok());
    let kind = json["type"].as_str().and_then(ActionType::parse);
    let result = json["result"].as_str().and_then(ActionResult::parse);
    match (index, kind, result) {
        (Some(index), Some(kind), Some(result)) => Ok(ActionDone {
            index,
            kind,
            result,
        }),
        _ => Err(corrupt(format!("run action {json}"))),
    }
}

fn trigger_kind_from_json(text: &str) -> Result<TriggerKind, StoreError> {
    let json: Json = serde_json::from_str(text).map_err(corrupt)?;
    let string = |key: &str| json[key].as_str().map(str::to_string);
    let kind = match json["type"].as_str() {
        Some("segment_entered") => Some(ChangeKind::Entered),
        Some("segment_exited") => Some(ChangeKind::Exited),
        _ => None,
    };
    match (kind, string("segment"), string("event_type")) {
        (Some(kind), Some(segment_id), _) => Ok(TriggerKind::Change { segment_id, kind }),
        (None, _, Some(event_type)) => Ok(TriggerKind::Event { event_type }),
        _ => Err(corrupt(format!("trigger {text}"))),
    }
}

/// A definition's parts besides its columns, as JSON text.
fn definition_to_json(def: &WorkflowDef) -> String {
    let trigger = match &def.trigger {
        Trigger::SegmentEntered(id) => json!({"type": "segment_entered", "segment": id}),
        Trigger::SegmentExited(id) => json!({"type": "segment_exited", "segment": id}),
        Trigger::Event { event_type, filter } => json!({
            "type": "event",
            "event_type": event_type,
            "where": filter.as_ref().map(filter_to_json),
        }),
    };
    let actions: Vec<Json> = def
        .actions
        .iter()
        .map(|action| match action {
            Action::AddToSegment(id) | Action::RemoveFromSegment(id) => {
                json!({"type": action.type_name(), "segment": id})
            }
            Action::AddScore {
                points,
                expires_after,
            } => json!({
                "type": "add_score",
                "points": points,
                "expires_after": expires_after.map(sift_lang::duration_to_json),
            }),
            Action::SetProperty { field, value } => {
                json!({"type": "set_property", "field": field, "value": raw_to_json(value)})
            }
            Action::Webhook { url, secret } => {
                json!({"type": "webhook", "url": url, "secret": secret})
            }
        })
        .collect();
    json!({
        "test_segment": def.test_segment,
        "trigger": trigger,
        "filter": def.filter.as_ref().map(sift_lang::to_json),
        "actions": actions,
    })
    .to_string()
}

type Definition = (
    Option<String>,
    Trigger,
    Option<sift_lang::Condition>,
    Vec<Action>,
);

fn definition_from_json(text: &str, schema: &dyn Schema) -> Result<Definition, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let string = |value: &Json, what: &str| {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{what} is not a string"))
    };
    let test_segment = json["test_segment"].as_str().map(str::to_string);
    let t = &json["trigger"];
    let trigger = match t["type"].as_str() {
        Some("segment_entered") => Trigger::SegmentEntered(string(&t["segment"], "segment")?),
        Some("segment_exited") => Trigger::SegmentExited(string(&t["segment"], "segment")?),
        Some("event") => {
            let event_type = string(&t["event_type"], "event_type")?;
            let filter = match &t["where"] {
                Json::String(text) => Some(filter_from_json(&event_type, text)?),
                _ => None,
            };
            Trigger::Event { event_type, filter }
        }
        other => return Err(format!("trigger type {other:?}")),
    };
    let filter = match &json["filter"] {
        Json::Null => None,
        tree => Some(sift_lang::from_json(tree, schema).map_err(|e| e.to_string())?),
    };
    let mut actions = Vec::new();
    for a in json["actions"].as_array().ok_or("actions is not a list")? {
        actions.push(match a["type"].as_str() {
            Some("add_to_segment") => Action::AddToSegment(string(&a["segment"], "segment")?),
            Some("remove_from_segment") => {
                Action::RemoveFromSegment(string(&a["segment"], "segment")?)
            }
            Some("add_score") => Action::AddScore {
                points: a["points"].as_f64().ok_or("points is not a number")?,
                expires_after: match a["expires_after"].as_str() {
                    Some(d) => {
                        Some(sift_lang::duration_from_json(d).ok_or(format!("duration {d:?}"))?)
                    }
                    None => None,
                },
            },
            Some("set_property") => Action::SetProperty {
                field: string(&a["field"], "field")?,
                value: raw_value(&a["value"]),
            },
            Some("webhook") => Action::Webhook {
                url: string(&a["url"], "url")?,
                secret: a["secret"].as_str().map(str::to_string),
            },
            other => return Err(format!("action type {other:?}")),
        });
    }
    Ok((test_segment, trigger, filter, actions))
}

fn items_to_json(items: &[QueuedItem]) -> String {
    let rows: Vec<Json> = items
        .iter()
        .map(|i| json!([i.no, i.seq, i.event_id, i.at]))
        .collect();
    Json::Array(rows).to_string()
}

fn items_from_json(text: &str) -> Result<Vec<QueuedItem>, StoreError> {
    let rows: Vec<(u32, Option<u64>, Option<String>, i64)> =
        serde_json::from_str(text).map_err(corrupt)?;
    Ok(rows
        .into_iter()
        .map(|(no, seq, event_id, at)| QueuedItem {
            no,
            seq,
            event_id,
            at,
        })
        .collect())
}

/// Writes one workflow record. The cursor is only noted in `cursor`: the
/// commit writes the latest once (see [`finish`]).
pub(crate) fn apply(
    tx: &Transaction<'_>,
    record: &Record,
    cursor: &mut Option<u64>,
) -> Result<(), StoreError> {
    match record {
        Record::Workflow(def) => {
            tx.prepare_cached(
                "INSERT INTO workflows (id, name, status, definition, generation, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, status = excluded.status,
                   definition = excluded.definition, generation = excluded.generation,
                   updated_at = excluded.updated_at",
            )?
            .execute(params![
                def.id,
                def.name,
                def.status.as_str(),
                definition_to_json(def),
                def.generation,
                def.created_at,
                def.updated_at
            ])?;
        }
        Record::WorkflowDeleted { id } => {
            tx.prepare_cached("DELETE FROM workflows WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM workflow_runs WHERE workflow_id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM workflow_dropped WHERE workflow_id = ?1")?
                .execute(params![id])?;
        }
        Record::TriggersDropped(drop) => {
            // Counts add up within a generation; a newer one starts afresh.
            tx.prepare_cached(
                "INSERT INTO workflow_dropped (workflow_id, generation, count, since, last_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(workflow_id) DO UPDATE SET
                   count = CASE WHEN generation = excluded.generation THEN count + excluded.count
                           ELSE excluded.count END,
                   since = CASE WHEN generation = excluded.generation THEN since
                           ELSE excluded.since END,
                   last_at = excluded.last_at,
                   generation = excluded.generation
                 WHERE excluded.generation >= generation",
            )?
            .execute(params![
                drop.workflow_id,
                drop.generation,
                drop.count as i64,
                drop.since,
                drop.last_at
            ])?;
        }
        Record::Triggers(batch) => {
            tx.prepare_cached(
                "INSERT INTO workflow_queue (first_id, end_id, workflow_id, generation, depth, trigger, items)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                batch.first_id as i64,
                batch.end_id() as i64,
                batch.workflow_id,
                batch.generation,
                batch.depth,
                trigger_kind_to_json(&batch.trigger).to_string(),
                items_to_json(&batch.items)
            ])?;
        }
        Record::RunCursor(at) => *cursor = (*cursor).max(Some(*at)),
        Record::Run(run) => {
            let actions: Vec<Json> = run
                .actions
                .iter()
                .map(|a| json!({"index": a.index, "type": a.kind.as_str(), "result": a.result.as_str()}))
                .collect();
            tx.prepare_cached(
                "INSERT INTO workflow_runs (id, workflow_id, contact_no, contact_id, trigger, seq,
                   event_id, trigger_at, depth, test, status, actions, error, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                run.id as i64,
                run.workflow_id,
                run.no,
                run.contact_id,
                trigger_kind_to_json(&run.trigger).to_string(),
                run.item.seq.map(|s| s as i64),
                run.item.event_id,
                run.item.at,
                run.depth,
                run.test,
                run.status.as_str(),
                Json::Array(actions).to_string(),
                run.error,
                run.at
            ])?;
        }
        Record::ScoreGrant(grant) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO score_grants (run_id, action, contact_no, points, at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                grant.run_id as i64,
                grant.action,
                grant.no,
                grant.points,
                grant.at,
                grant.expires_at
            ])?;
        }
        Record::Webhook(call) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_outbox (id, run_id, workflow_id, url, secret, body,
                   created_at, state, attempts, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?7)",
            )?
            .execute(params![
                call.id,
                call.run_id as i64,
                call.workflow_id,
                call.url,
                call.secret,
                crate::json::webhook_body(call),
                call.at
            ])?;
        }
        Record::WebhookAttempt(attempt) => {
            let state = if attempt.delivered {
                "delivered"
            } else if attempt.given_up {
                "failed"
            } else {
                "pending"
            };
            tx.prepare_cached(
                "UPDATE webhook_outbox SET state = ?2, attempts = ?3,
                   next_attempt_at = COALESCE(?4, next_attempt_at), last_error = COALESCE(?5, last_error),
                   delivered_at = CASE WHEN ?6 THEN ?7 ELSE delivered_at END,
                   finished_at = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?7 END
                 WHERE id = ?1",
            )?
            .execute(params![
                attempt.id,
                state,
                attempt.attempts,
                attempt.next_attempt_at,
                attempt.last_error,
                attempt.delivered,
                attempt.at
            ])?;
        }
        _ => {}
    }
    Ok(())
}

/// Writes the latest cursor of a commit and drops the queue rows it passed.
pub(crate) fn finish(tx: &Transaction<'_>, cursor: Option<u64>) -> Result<(), StoreError> {
    if let Some(cursor) = cursor {
        tx.prepare_cached("UPDATE workflow_cursor SET next_run = MAX(next_run, ?1)")?
            .execute(params![cursor as i64])?;
        tx.prepare_cached("DELETE FROM workflow_queue WHERE first_id < ?1 AND end_id <= ?1")?
            .execute(params![cursor as i64])?;
    }
    Ok(())
}

/// A contact's deletion erases the points workflows gave it.
pub(crate) fn contact_deleted(tx: &Transaction<'_>, no: u32) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM score_grants WHERE contact_no = ?1")?
        .execute(params![no])?;
    Ok(())
}

/// What the engine restores: definitions (conditions read with `schema`),
/// the queue, the cursor and next trigger number, and the grants.
pub(crate) struct Loaded {
    pub workflows: Vec<WorkflowDef>,
    pub queue: Vec<QueueBatch>,
    pub cursor: u64,
    pub next_id: u64,
    pub grants: Vec<ScoreGrant>,
    pub dropped: Vec<DroppedTriggers>,
}

pub(crate) fn load(conn: &Connection, schema: &dyn Schema) -> Result<Loaded, StoreError> {
    let mut workflows = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, name, status, definition, generation, created_at, updated_at
         FROM workflows ORDER BY rowid",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let status: String = row.get(2)?;
        let text: String = row.get(3)?;
        let (test_segment, trigger, filter, actions) = definition_from_json(&text, schema)
            .map_err(|e| corrupt(format!("workflow {id:?}: {e}")))?;
        workflows.push(WorkflowDef {
            name: row.get(1)?,
            status: WorkflowStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("workflow {id:?} status {status:?}")))?,
            test_segment,
            trigger,
            filter,
            actions,
            generation: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            id,
        });
    }
    let mut queue = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT first_id, workflow_id, generation, depth, trigger, items
         FROM workflow_queue ORDER BY first_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        queue.push(QueueBatch {
            first_id: row.get::<_, i64>(0)? as u64,
            workflow_id: row.get(1)?,
            generation: row.get(2)?,
            depth: row.get(3)?,
            trigger: trigger_kind_from_json(&row.get::<_, String>(4)?)?,
            items: items_from_json(&row.get::<_, String>(5)?)?,
        });
    }
    let cursor: i64 = conn.query_row(
        "SELECT COALESCE(MAX(next_run), 0) FROM workflow_cursor",
        [],
        |r| r.get(0),
    )?;
    let cursor = cursor as u64;
    let next_id = queue
        .iter()
        .map(QueueBatch::end_id)
        .max()
        .unwrap_or(0)
        .max(cursor);
    let mut grants = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT run_id, action, contact_no, points, at, expires_at FROM score_grants
         ORDER BY run_id, action",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        grants.push(ScoreGrant {
            run_id: row.get::<_, i64>(0)? as u64,
            action: row.get(1)?,
            no: row.get(2)?,
            points: row.get(3)?,
            at: row.get(4)?,
            expires_at: row.get(5)?,
        });
    }
    let mut dropped = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT workflow_id, generation, count, since, last_at FROM workflow_dropped
         ORDER BY workflow_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        dropped.push(DroppedTriggers {
            workflow_id: row.get(0)?,
            generation: row.get(1)?,
            count: row.get::<_, i64>(2)? as u64,
            since: row.get(3)?,
            last_at: row.get(4)?,
        });
    }
    Ok(Loaded {
        workflows,
        queue,
        cursor,
        next_id,
        grants,
        dropped,
    })
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter<'a> {
    /// Only runs numbered below this (the page cursor).
    pub before: Option<u64>,
    pub status: Option<RunStatus>,
    /// Only test-mode runs (true) or only active ones (false).
    pub test: Option<bool>,
    pub contact_id: Option<&'a str>,
}

/// A queued webhook's delivery state.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub run_id: u64,
    pub workflow_id: String,
    pub url: String,
    pub secret: Option<String>,
    pub body: String,
    /// `pending`, `delivered` or `failed` (retries given up).
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, run_id, workflow_id, url, secret, body, state, attempts,
    next_attempt_at, last_error, delivered_at";

fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        run_id: row.get::<_, i64>(1)? as u64,
        workflow_id: row.get(2)?,
        url: row.get(3)?,
        secret: row.get(4)?,
        body: row.get(5)?,
        state: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_error: row.get(9)?,
        delivered_at: row.get(10)?,
    })
}

impl WorkspaceReader {
    /// A workflow's durable runs, newest first, at most `limit`.
    pub fn runs(
        &self,
        workflow_id: &str,
        filter: &RunFilter<'_>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, workflow_id, contact_no, contact_id, trigger, seq, event_id, trigger_at,
               depth, test, status, actions, error, at
             FROM workflow_runs
             WHERE workflow_id = ?1 AND id < ?2 AND (?3 IS NULL OR status = ?3)
               AND (?4 IS NULL OR test = ?4) AND (?5 IS NULL OR contact_id = ?5)
             ORDER BY id DESC LIMIT ?6",
        )?;
        let before = filter.before.map_or(i64::MAX, |b| b as i64);
        let mut rows = stmt.query(params![
            workflow_id,
            before,
            filter.status.map(RunStatus::as_str),
            filter.test,
            filter.contact_id,
            limit as i64
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let status: String = row.get(10)?;
            let actions: Vec<Json> =
                serde_json::from_str(&row.get::<_, String>(11)?).map_err(corrupt)?;
            out.push(RunRecord {
                id: row.get::<_, i64>(0)? as u64,
                workflow_id: row.get(1)?,
                no: row.get(2)?,
                contact_id: row.get(3)?,
                trigger: trigger_kind_from_json(&row.get::<_, String>(4)?)?,
                item: QueuedItem {
                    no: row.get(2)?,
                    seq: row.get::<_, Option<i64>>(5)?.map(|s| s as u64),
                    event_id: row.get(6)?,
                    at: row.get(7)?,
                },
                depth: row.get(8)?,
                test: row.get(9)?,
                status: RunStatus::parse(&status)
                    .ok_or_else(|| corrupt(format!("run status {status:?}")))?,
                actions: actions
                    .iter()
                    .map(action_done_from_json)
                    .collect::<Result<_, _>>()?,
                error: row.get(12)?,
                at: row.get(13)?,
            });
        }
        Ok(out)
    }

    /// The workflow of each of `run_ids` still stored (runs past the
    /// retention are not): (run id, workflow id).
    pub fn run_workflows(&self, run_ids: &[u64]) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT workflow_id FROM workflow_runs WHERE id = ?1")?;
        let mut out = Vec::new();
        for &id in run_ids {
            let mut rows = stmt.query(params![id as i64])?;
            if let Some(row) = rows.next()? {
                out.push((id, row.get(0)?));
            }
        }
        Ok(out)
    }

    /// The webhook deliveries of runs `run_ids`.
    pub fn deliveries_of(&self, run_ids: &[u64]) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE run_id = ?1 ORDER BY id"
        ))?;
        let mut out = Vec::new();
        for id in run_ids {
            let rows = stmt.query_map(params![*id as i64], delivery)?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    pub fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox
             WHERE state = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, created_at, id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], delivery)?;
        rows.collect::<Result<_, _>>().map_err(StoreError::from)
    }

    /// When the earliest pending delivery is due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM webhook_outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}

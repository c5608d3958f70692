//! A workspace database's schema: its migrations (`PRAGMA user_version`) and
//! the connection settings every connection uses.

use std::path::Path;

use rusqlite::Connection;

use crate::StoreError;

/// One schema step. A step runs when the database lacks its `marker`
/// table, not merely when `user_version` is below its version: steps made on
/// separate branches (version 3 for webhooks, 4 for workflows) may land in
/// either order, and a database that got 4 first still gets 3 later.
/// `user_version` ends at the highest version applied.
pub(crate) struct Step {
    pub version: i64,
    pub marker: &'static str,
    pub sql: &'static str,
}

/// The newest schema this build knows.
pub(crate) const LATEST: i64 = 15;

pub(crate) const MIGRATIONS: &[Step] = &[
    Step {
        version: 1,
        marker: "fields",
        sql: V1,
    },
    Step {
        version: 2,
        marker: "events",
        sql: V2,
    },
    Step {
        version: 3,
        marker: "webhooks",
        sql: V3,
    },
    Step {
        version: 4,
        marker: "workflows",
        sql: V4,
    },
    Step {
        version: 5,
        marker: "aliases",
        sql: V5_ALIASES,
    },
    Step {
        version: 6,
        marker: "exports",
        sql: V6,
    },
    Step {
        version: 7,
        marker: "workflow_dropped",
        sql: V7_WORKFLOW_GROWTH,
    },
    Step {
        version: 8,
        marker: "export_sent",
        sql: V8_EXPORT_SENT,
    },
    Step {
        version: 9,
        marker: "seq_origin",
        sql: crate::seq_migration::V9_SEQS_FROM_ONE,
    },
    Step {
        version: 10,
        marker: "event_rollups",
        sql: crate::event_retention::V10_EVENT_ROLLUPS,
    },
    Step {
        version: 11,
        marker: "write_log",
        sql: crate::write_log::V11_WRITE_LOG,
    },
    Step {
        version: 12,
        marker: "event_blocks",
        sql: crate::event_blocks::V12_EVENT_BLOCKS,
    },
    Step {
        version: 13,
        marker: "change_index",
        sql: crate::change_index::V13_CHANGE_INDEX,
    },
    Step {
        version: 14,
        marker: "segment_revisions",
        sql: crate::segment_history::V14_SEGMENT_REVISIONS,
    },
    Step {
        version: 15,
        marker: "facebook_connection",
        sql: V15_FACEBOOK_CONNECTION,
    },
];

/// Version 15 (marker `facebook_connection`): the workspace's Facebook
/// connection (`exports.rs`), at most one row: an ad account and its access
/// token, sealed like a sync's.
const V15_FACEBOOK_CONNECTION: &str = "
    CREATE TABLE facebook_connection (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        ad_account_id TEXT NOT NULL,
        graph_url TEXT,
        version TEXT,
        token_hint TEXT NOT NULL,
        sealed BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    );
";

/// Version 7 (marker `workflow_dropped`): bounded workflow growth. Triggers
/// dropped because a workflow's queue was full, counted per workflow; and
/// what the retention pruning (`prune.rs`) finds its oldest rows by: runs by
/// time, outbox rows by when their delivery ended (delivered or given up;
/// pending rows have none and are never pruned). Rows finished before this
/// version get the best instant they have.
const V7_WORKFLOW_GROWTH: &str = "
    CREATE TABLE workflow_dropped (
        workflow_id TEXT PRIMARY KEY,
        generation INTEGER NOT NULL,
        count INTEGER NOT NULL,
        since INTEGER NOT NULL,
        last_at INTEGER NOT NULL
    );
    CREATE INDEX workflow_runs_by_at ON workflow_runs(at);
    ALTER TABLE webhook_outbox ADD COLUMN finished_at INTEGER;
    UPDATE webhook_outbox SET finished_at = COALESCE(delivered_at, next_attempt_at)
        WHERE state != 'pending';
    CREATE INDEX webhook_outbox_finished ON webhook_outbox(finished_at)
        WHERE finished_at IS NOT NULL;
";

/// Version 8 (marker `export_sent`): what a Facebook sync needs to resume
/// after a restart (`exports.rs`): the rows its audience holds and its
/// sealed access token.
const V8_EXPORT_SENT: &str = "
    CREATE TABLE export_sent (
        job_id TEXT NOT NULL,
        contact_no INTEGER NOT NULL,
        row TEXT NOT NULL,
        PRIMARY KEY (job_id, contact_no)
    ) WITHOUT ROWID;
    CREATE TABLE export_tokens (
        job_id TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    );
";

/// Facebook export jobs as last reported (`exports.rs`).
const V6: &str = "
    CREATE TABLE exports (
        id TEXT PRIMARY KEY,
        segment_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        job TEXT NOT NULL
    );
";

const V1: &str = "
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
";

// Version 2: events, scoring rules and the clock. A database from version
// 1 never processed time explicitly; its latest change is the latest
// instant it is known to have evaluated at.
const V2: &str = "
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT,
        contact_no INTEGER NOT NULL,
        type TEXT NOT NULL,
        at INTEGER NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX events_by_contact ON events(contact_no);
    CREATE TABLE scoring_rules (
        id TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        filter TEXT,
        points REAL NOT NULL,
        expires_after TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE clock (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        at INTEGER NOT NULL
    );
    INSERT INTO clock (only, at) SELECT 0, COALESCE(MAX(at), 0) FROM changes;
";

// Version 3: webhook subscriptions and their delivery cursors. Events get
// AUTOINCREMENT seqs: a webhook's event cursor is a seq, and without it
// SQLite hands the seq of a deleted last event (its contact erased) to
// the next one, which a cursor already past it would never send.
const V3: &str = "
    CREATE TABLE events_v3 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT,
        contact_no INTEGER NOT NULL,
        type TEXT NOT NULL,
        at INTEGER NOT NULL,
        properties TEXT NOT NULL
    );
    INSERT INTO events_v3 (seq, id, contact_no, type, at, properties)
        SELECT seq, id, contact_no, type, at, properties FROM events ORDER BY seq;
    DROP TABLE events;
    ALTER TABLE events_v3 RENAME TO events;
    CREATE INDEX events_by_contact ON events(contact_no);
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        segments TEXT,
        events INTEGER NOT NULL,
        enabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_cursors (
        webhook_id TEXT PRIMARY KEY,
        change_seq INTEGER NOT NULL,
        event_seq INTEGER NOT NULL,
        acked_at INTEGER,
        pending_change_end INTEGER,
        pending_event_end INTEGER
    );
";

// Version 4: workflows, their trigger queue and cursor, run history, the
// points their actions gave, and the webhook outbox.
const V4: &str = "
    CREATE TABLE workflows (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        definition TEXT NOT NULL,
        generation INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE workflow_queue (
        first_id INTEGER PRIMARY KEY,
        end_id INTEGER NOT NULL,
        workflow_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        items TEXT NOT NULL
    );
    CREATE TABLE workflow_cursor (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        next_run INTEGER NOT NULL
    );
    INSERT INTO workflow_cursor (only, next_run) VALUES (0, 0);
    CREATE TABLE workflow_runs (
        id INTEGER PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        contact_no INTEGER NOT NULL,
        contact_id TEXT NOT NULL,
        trigger TEXT NOT NULL,
        seq INTEGER,
        event_id TEXT,
        trigger_at INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        test INTEGER NOT NULL,
        status TEXT NOT NULL,
        actions TEXT NOT NULL,
        error TEXT,
        at INTEGER NOT NULL
    );
    CREATE INDEX workflow_runs_by_workflow ON workflow_runs(workflow_id, id);
    CREATE TABLE score_grants (
        run_id INTEGER NOT NULL,
        action INTEGER NOT NULL,
        contact_no INTEGER NOT NULL,
        points REAL NOT NULL,
        at INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (run_id, action)
    ) WITHOUT ROWID;
    CREATE INDEX score_grants_by_contact ON score_grants(contact_no);
    CREATE TABLE webhook_outbox (
        id TEXT PRIMARY KEY,
        run_id INTEGER NOT NULL,
        workflow_id TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        delivered_at INTEGER
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_attempt_at);
    CREATE INDEX webhook_outbox_by_run ON webhook_outbox(run_id);
";

// Version 5 (marker `aliases`): ids identified into other contacts
// (docs/concepts.md "Identify"). A version 5 made on another branch may land beside it: steps are
// applied by marker, so both run.
const V5_ALIASES: &str = "
    CREATE TABLE aliases (
        id TEXT PRIMARY KEY,
        contact_no INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX aliases_by_contact ON aliases(contact_no);
";

/// The size, in bytes, a workspace's WAL file is cut back to once checkpointed.
pub(crate) const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a connection waits for a lock another one holds.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a commit is fsynced before it returns (`synchronous=FULL`, the
/// default). Cluster mode turns it off for the whole process: there a write
/// is durable once JetStream has stored it, and the local databases are a
/// cache rebuilt from JetStream after a crash (`synchronous=NORMAL` still
/// keeps them consistent).
static SYNC_COMMITS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// See [`SYNC_COMMITS`]; set before any database is opened.
pub fn set_sync_commits(sync: bool) {
    SYNC_COMMITS.store(sync, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn synchronous() -> &'static str {
    if SYNC_COMMITS.load(std::sync::atomic::Ordering::SeqCst) {
        "FULL"
    } else {
        "NORMAL"
    }
}

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is fsynced before it returns, so an acknowledged write survives a crash.
    conn.pragma_update(None, "synchronous", synchronous())?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // 64 MiB of page cache: the change log's index takes inserts all over its
    // pages, and spilling the cache mid-transaction doubles the writer's work.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // A bulk load (the demo, an import) grows the WAL to hundreds of MB; a
    // checkpoint copies it back but leaves the file that large. With a
    // limit, the next write after a full checkpoint truncates it.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    migrate_to(conn, LATEST)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get(0),
    )?;
    Ok(n > 0)
}

/// Runs the steps up to version `target` that the database lacks, in
/// order, each in its own transaction.
pub(crate) fn migrate_to(conn: &Connection, target: i64) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if !(0..=LATEST).contains(&version) {
        return Err(StoreError::Corrupt(format!(
            "schema version {version} is newer than this build of Sift ({LATEST})"
        )));
    }
    for step in MIGRATIONS.iter().filter(|s| s.version <= target) {
        if has_table(conn, step.marker)? {
            continue;
        }
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(step.sql)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        tx.pragma_update(None, "user_version", current.max(step.version))?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkspaceDb;

    /// A version 1 database gains the new tables, and its clock starts at
    /// its latest change: the last instant it is known to have evaluated at.
    #[test]
    fn version_1_databases_migrate_with_the_clock_at_their_latest_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 1).unwrap();
            conn.execute_batch(
                "INSERT INTO contacts (no, id, anonymous, created_at, updated_at, lead_score, properties)
                   VALUES (0, 'c0', 0, 5, 5, 0, '{}');
                 INSERT INTO changes (seq_start, seq_end, segment_id, kind, cause, at, contacts)
                   VALUES (0, 1, 's', 'entered', 'contact_update', 1700000000000, x''),
                          (1, 2, 's', 'exited', 'contact_update', 1700000005000, x'');",
            )
            .unwrap();
        }
        let db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.clock().unwrap(), 1_700_000_005_000);
        let state = db.stored_state().unwrap();
        assert_eq!(state.clock, 1_700_000_005_000);
        assert_eq!(state.contacts.len(), 1);
        assert!(state.events.is_empty() && state.scoring_rules.is_empty());
        // Stored as seqs 0 and 1; version 9 moved them to 1 and 2.
        assert_eq!(state.next_seq, 3);
        drop(db);

        // Opening again runs nothing twice.
        let db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.clock().unwrap(), 1_700_000_005_000);
    }

    /// A version 2 database gains the workflow tables; a step that landed
    /// out of order (a table of a lower version missing at version 4) still
    /// runs.
    #[test]
    fn version_2_databases_gain_the_workflow_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 2).unwrap();
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(version, 2);
        }
        let db = WorkspaceDb::open(&path).unwrap();
        drop(db);
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST);
        assert!(has_table(&conn, "workflow_runs").unwrap());
        drop(conn);

        // A database at version 4 without version 2's tables (as one that
        // got a later branch's step first would be) gets them on open.
        let path = dir.path().join("out_of_order.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 1).unwrap();
            conn.pragma_update(None, "user_version", 4).unwrap();
        }
        let db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.clock().unwrap(), 0);
        drop(db);
        let conn = open(&path).unwrap();
        assert!(has_table(&conn, "events").unwrap());
        assert!(has_table(&conn, "workflows").unwrap());
    }

    /// Version 7 dates the outbox rows that finished before it (delivered:
    /// when; given up: the last planned attempt), so retention can prune
    /// them; pending rows stay undated and are never pruned.
    #[test]
    fn version_6_outbox_rows_get_their_finish_time_in_version_7() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 6).unwrap();
            conn.execute_batch(
                "INSERT INTO webhook_outbox (id, run_id, workflow_id, url, body, created_at, state,
                   attempts, next_attempt_at, delivered_at)
                 VALUES ('a', 1, 'wf', 'u', '', 1, 'delivered', 1, 1, 5),
                        ('b', 2, 'wf', 'u', '', 1, 'failed', 10, 9, NULL),
                        ('c', 3, 'wf', 'u', '', 1, 'pending', 2, 7, NULL);",
            )
            .unwrap();
        }
        drop(WorkspaceDb::open(&path).unwrap());
        let conn = open(&path).unwrap();
        let finished: Vec<(String, Option<i64>)> = conn
            .prepare("SELECT id, finished_at FROM webhook_outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            finished,
            [
                ("a".into(), Some(5)),
                ("b".into(), Some(9)),
                ("c".into(), None)
            ]
        );
        assert!(has_table(&conn, "workflow_dropped").unwrap());
    }

    #[test]
    fn new_databases_start_at_clock_zero() {
        let dir = tempfile::tempdir().unwrap();
        let db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
        assert_eq!(db.clock().unwrap(), 0);
    }

    #[test]
    fn a_checkpointed_wal_is_cut_back_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let conn = open(&path).unwrap();
        let limit: i64 = conn
            .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(limit, WAL_SIZE_LIMIT);
        // A WAL grown past the limit is cut back once checkpointed and
        // written again (the limit is lowered here to keep the test small).
        conn.pragma_update(None, "journal_size_limit", 256 * 1024)
            .unwrap();
        conn.execute_batch("CREATE TABLE blobs (b BLOB)").unwrap();
        for _ in 0..40 {
            conn.execute("INSERT INTO blobs VALUES (zeroblob(65536))", [])
                .unwrap();
        }
        let wal = dir.path().join("ws.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 1024 * 1024);
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        conn.execute("INSERT INTO blobs VALUES (zeroblob(16))", [])
            .unwrap();
        assert!(std::fs::metadata(&wal).unwrap().len() <= 256 * 1024);
    }

    #[test]
    fn a_database_from_a_newer_sift_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate(&conn).unwrap();
            conn.pragma_update(None, "user_version", LATEST + 1)
                .unwrap();
        }
        assert!(matches!(
            WorkspaceDb::open(&path),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Version 3 rebuilds `events` with AUTOINCREMENT: the rows and their
    /// seqs are kept, and later seqs go on after the highest one.
    #[test]
    fn version_2_events_keep_their_seqs_in_version_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, 2).unwrap();
            conn.execute_batch(
                "INSERT INTO events (seq, id, contact_no, type, at, properties)
                   VALUES (1, 'a', 0, 'purchase', 5, '{}'), (7, NULL, 1, 'visit', 6, '{\"p\":1}');",
            )
            .unwrap();
        }
        let db = WorkspaceDb::open(&path).unwrap();
        let state = db.stored_state().unwrap();
        assert_eq!(state.events.len(), 2);
        assert_eq!(state.events[1].event_type, "visit");
        drop(db);
        let conn = open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM events WHERE seq = 7;
             INSERT INTO events (id, contact_no, type, at, properties) VALUES (NULL, 0, 'x', 8, '{}');",
        )
        .unwrap();
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seqs, [1, 8]);
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_by_contact'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
    }
}

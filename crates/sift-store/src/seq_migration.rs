//! Schema step 9: change seqs start at 1 instead of 0, so that 0 is every
//! reader's "nothing seen yet" (`after=0` is the same as no `after`). A
//! database made before it numbered its first change 0; the step moves
//! every stored change seq, and everything that points into the change
//! log, up by one, in the step's one transaction.

/// Version 9 (marker `seq_origin`). What moves, and why each part must:
///
/// - `changes`: every batch's `seq_start` and `seq_end`. The table is
///   copied rather than updated in place: `seq_start` is the rowid, and
///   moving one batch onto the next one's start mid-update would collide.
/// - `webhook_cursors`: `change_seq` ("every lower seq acknowledged") and the
///   pending window's end, so a webhook resumes at the same change.
///   Event seqs are SQLite rowids and always started at 1: the event
///   cursors stay.
/// - `workflow_queue.items`: each queued change trigger's seq (the second
///   element; events have null). Trigger numbers (`first_id`, the
///   `workflow_cursor`) are not seqs and stay: they are the run ids that
///   runs, score grants and the outbox's delivery ids (receivers'
///   idempotency keys) already carry.
/// - `workflow_runs.seq` and `trigger.seq` in the bodies of the outbox's
///   webhook calls, so history and pending calls name the renumbered
///   change (a call keeps its delivery id).
///
/// Nothing else stores a change seq: events, the clock, exports (jobs,
/// sent rows, tokens) and static members do not.
pub(crate) const V9_SEQS_FROM_ONE: &str = "
    CREATE TABLE seq_origin (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        first_seq INTEGER NOT NULL
    );
    INSERT INTO seq_origin (only, first_seq) VALUES (0, 1);
    CREATE TABLE changes_v9 (
        seq_start INTEGER PRIMARY KEY,
        seq_end INTEGER NOT NULL,
        segment_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        cause TEXT NOT NULL,
        at INTEGER NOT NULL,
        contacts BLOB NOT NULL
    );
    INSERT INTO changes_v9 (seq_start, seq_end, segment_id, kind, cause, at, contacts)
        SELECT seq_start + 1, seq_end + 1, segment_id, kind, cause, at, contacts
        FROM changes ORDER BY seq_start;
    DROP TABLE changes;
    ALTER TABLE changes_v9 RENAME TO changes;
    CREATE INDEX changes_by_segment ON changes(segment_id, seq_start);
    UPDATE webhook_cursors SET change_seq = change_seq + 1,
        pending_change_end = pending_change_end + 1;
    UPDATE workflow_runs SET seq = seq + 1 WHERE seq IS NOT NULL;
    UPDATE workflow_queue SET items = (
        SELECT json_group_array(json(CASE
            WHEN json_type(value, '$[1]') = 'integer'
            THEN json_replace(value, '$[1]', json_extract(value, '$[1]') + 1)
            ELSE value END) ORDER BY key)
        FROM json_each(workflow_queue.items));
    UPDATE webhook_outbox
        SET body = json_replace(body, '$.trigger.seq', json_extract(body, '$.trigger.seq') + 1)
        WHERE CASE WHEN json_valid(body)
            THEN json_type(body, '$.trigger.seq') = 'integer' ELSE 0 END;
";

#[cfg(test)]
mod tests {
    use roaring::RoaringBitmap;
    use rusqlite::params;
    use sift_engine::{ChangeKind, FIRST_SEQ};

    use crate::codec::bitmap_to_blob;
    use crate::schema::{LATEST, migrate_to, open};
    use crate::{StoredChange, WorkspaceDb, WorkspaceReader};

    /// What identifies a change apart from its seq.
    fn what(changes: &[StoredChange]) -> Vec<(String, ChangeKind, u32, i64)> {
        changes
            .iter()
            .map(|c| (c.segment_id.clone(), c.kind, c.no, c.at))
            .collect()
    }

    fn seqs(changes: &[StoredChange]) -> Vec<u64> {
        changes.iter().map(|c| c.seq).collect()
    }

    fn blob(numbers: &[u32]) -> Vec<u8> {
        bitmap_to_blob(&numbers.iter().copied().collect::<RoaringBitmap>()).unwrap()
    }

    /// A version 7 database (before the Facebook sync rows of 8) and a
    /// version 8 one, numbered from 0: every change seq moves up by one,
    /// and the webhook and the workflow queue resume at the very change
    /// they had reached (nothing delivered twice, nothing skipped).
    #[test]
    fn version_7_and_8_seqs_move_up_by_one_and_cursors_resume_where_they_were() {
        renumbers_from(7);
        renumbers_from(8);
    }

    fn renumbers_from(version: i64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        {
            let conn = open(&path).unwrap();
            migrate_to(&conn, version).unwrap();
            // Seqs 0–2: contacts 10, 11, 12 enter `s`; 3: 10 exits `t`;
            // 4–5: 11 and 12 enter `t`. Adjacent batches: moving them in
            // place would collide.
            conn.execute(
                "INSERT INTO changes (seq_start, seq_end, segment_id, kind, cause, at, contacts)
                 VALUES (0, 3, 's', 'entered', 'contact_update', 100, ?1),
                        (3, 4, 't', 'exited', 'time', 200, ?2),
                        (4, 6, 't', 'entered', 'event', 300, ?3)",
                params![blob(&[10, 11, 12]), blob(&[10]), blob(&[11, 12])],
            )
            .unwrap();
            // The webhook acknowledged seqs 0 and 1 and is delivering the
            // window up to 4 (seqs 2 and 3).
            conn.execute_batch(
                "INSERT INTO webhooks (id, url, secret, segments, events, enabled, created_at, updated_at)
                   VALUES ('wh', 'http://x', 'secret', NULL, 1, 1, 1, 1);
                 INSERT INTO webhook_cursors (webhook_id, change_seq, event_seq, acked_at,
                   pending_change_end, pending_event_end)
                   VALUES ('wh', 2, 7, 50, 4, 9);
                 INSERT INTO workflow_queue (first_id, end_id, workflow_id, generation, depth, trigger, items)
                   VALUES (5, 8, 'wf', 1, 0, '{\"type\":\"segment_entered\",\"segment\":\"t\"}',
                           '[[11,4,null,300],[12,5,null,300],[10,null,\"ev-1\",301]]');
                 UPDATE workflow_cursor SET next_run = 6;
                 INSERT INTO workflow_runs (id, workflow_id, contact_no, contact_id, trigger, seq,
                   event_id, trigger_at, depth, test, status, actions, error, at)
                   VALUES (5, 'wf', 11, 'c11', '{}', 4, NULL, 300, 0, 0, 'done', '[]', NULL, 400),
                          (4, 'wf', 10, 'c10', '{}', NULL, 'ev-0', 290, 0, 0, 'done', '[]', NULL, 400);
                 INSERT INTO webhook_outbox (id, run_id, workflow_id, url, body, created_at, state,
                   attempts, next_attempt_at)
                   VALUES ('run_5_0', 5, 'wf', 'http://y',
                     '{\"workflow_id\":\"wf\",\"trigger\":{\"type\":\"segment_entered\",\"seq\":4,\"at\":\"x\"}}',
                     400, 'pending', 1, 500),
                          ('run_4_0', 4, 'wf', 'http://y',
                     '{\"workflow_id\":\"wf\",\"trigger\":{\"type\":\"event\",\"event_id\":\"ev-0\"}}',
                     400, 'pending', 1, 500);",
            )
            .unwrap();
        }
        // Before: what the webhook acknowledged, what its window holds,
        // what comes after, and the change the next trigger names.
        let reader = WorkspaceReader::open(&path).unwrap();
        let acked = reader.changes_in(0, 2, None, 100).unwrap();
        let window = reader.changes_in(2, 4, None, 100).unwrap();
        let rest = reader.changes_in(4, u64::MAX, None, 100).unwrap();
        let everything = reader.changes_in(0, u64::MAX, None, 100).unwrap();
        assert_eq!(seqs(&everything), [0, 1, 2, 3, 4, 5]);
        drop(reader);

        let db = WorkspaceDb::open(&path).unwrap();
        let reader = WorkspaceReader::open(&path).unwrap();
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST);

        // Every change is the same change, one seq later; `after` 0 reads
        // them all, and the next change will be 7.
        let moved = reader.changes(0, None, 100).unwrap();
        assert_eq!(seqs(&moved), [1, 2, 3, 4, 5, 6]);
        assert_eq!(what(&moved), what(&everything));
        assert_eq!(seqs(&reader.changes(0, Some("t"), 100).unwrap()), [4, 5, 6]);
        assert_eq!(db.stored_state().unwrap().next_seq, 7);
        assert_eq!(reader.next_seq().unwrap(), 7);

        // The webhook: the same changes are behind it, in its window and
        // ahead of it. Event cursors (event seqs always started at 1) stay.
        let hook = reader.webhook("wh").unwrap().unwrap().cursor;
        assert_eq!((hook.change_seq, hook.event_seq), (3, 7));
        let pending = hook.pending.unwrap();
        assert_eq!((pending.change_end, pending.event_end), (5, 9));
        assert_eq!(
            what(
                &reader
                    .changes_in(FIRST_SEQ, hook.change_seq, None, 100)
                    .unwrap()
            ),
            what(&acked)
        );
        let window_now = reader
            .changes_in(hook.change_seq, pending.change_end, None, 100)
            .unwrap();
        assert_eq!(seqs(&window_now), [3, 4]);
        assert_eq!(what(&window_now), what(&window));
        assert_eq!(
            what(
                &reader
                    .changes_in(pending.change_end, u64::MAX, None, 100)
                    .unwrap()
            ),
            what(&rest)
        );

        // The workflow queue: trigger numbers and the cursor stay (they are
        // run ids); the next trigger to run still names the change it named.
        let state = db.stored_state().unwrap();
        assert_eq!((state.run_cursor, state.next_run_id), (6, 8));
        let items = &state.queue[0].items;
        let item_seqs: Vec<Option<u64>> = items.iter().map(|i| i.seq).collect();
        assert_eq!(item_seqs, [Some(5), Some(6), None]);
        assert_eq!(items[2].event_id.as_deref(), Some("ev-1"));
        // Trigger 6 (item 1) is next: old seq 5, contact 12 entering `t`.
        let next = reader.changes(items[1].seq.unwrap() - 1, None, 1).unwrap();
        assert_eq!((next[0].segment_id.as_str(), next[0].no), ("t", 12));

        let runs: Vec<(i64, Option<i64>)> = conn
            .prepare("SELECT id, seq FROM workflow_runs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(runs, [(4, None), (5, Some(5))]);
        let bodies: Vec<(String, String)> = conn
            .prepare("SELECT id, body FROM webhook_outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            bodies,
            [
                (
                    "run_4_0".to_string(),
                    r#"{"workflow_id":"wf","trigger":{"type":"event","event_id":"ev-0"}}"#
                        .to_string()
                ),
                (
                    "run_5_0".to_string(),
                    r#"{"workflow_id":"wf","trigger":{"type":"segment_entered","seq":5,"at":"x"}}"#
                        .to_string()
                )
            ]
        );
        drop((db, reader, conn));

        // Opening again moves nothing twice.
        let db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.stored_state().unwrap().next_seq, 7);
    }

    /// A new database starts its log at seq 1.
    #[test]
    fn a_new_database_numbers_its_first_change_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.db");
        let db = WorkspaceDb::open(&path).unwrap();
        assert_eq!(db.stored_state().unwrap().next_seq, FIRST_SEQ);
        assert_eq!(db.load().unwrap().next_seq(), FIRST_SEQ);
        let reader = WorkspaceReader::open(&path).unwrap();
        assert_eq!(reader.next_seq().unwrap(), FIRST_SEQ);
        assert!(reader.changes(0, None, 10).unwrap().is_empty());
    }
}

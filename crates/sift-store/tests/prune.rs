//! Workflow history retention in the store: a prune deletes at most its
//! chunk of the oldest finished runs and finished deliveries (delivered or
//! given up), never a pending delivery, the queue or the dropped-trigger
//! counts; `oldest_history` says when the next row falls due. Runs and
//! deliveries are made by the engine and committed as a server would.
//! Runs also read back with what each action did, and a stored action the
//! store does not know is reported, not read as an empty name.

use sift_engine::{
    Action, ActionDone, ActionResult, ActionType, ContactInput, RawValue, Record, SegmentInput,
    SegmentKind, Trigger, WebhookAttempt, WorkflowInput, WorkflowStatus, Workspace, Write,
};
use sift_store::{Pending, Prune, RunFilter, StoreError, WorkspaceDb};

const T0: i64 = 1_790_000_000_000;

fn commit(db: &mut WorkspaceDb, write: &Write) {
    db.commit_all([Pending::Records(&write.records)]).unwrap();
}

fn prune(db: &mut WorkspaceDb, before: i64, limit: usize) {
    db.commit_all([Pending::Prune(&Prune { before, limit })])
        .unwrap();
}

fn ids(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("c{i}")).collect()
}

/// A workspace whose workflow gives a point and calls a webhook for every
/// contact added to `picked`, with `n` contacts (not yet added).
fn set_up(db: &mut WorkspaceDb, n: u32) -> Workspace {
    let mut ws = Workspace::new();
    let contacts: Vec<ContactInput> = ids(0..n)
        .into_iter()
        .map(|id| ContactInput {
            id,
            properties: vec![("newsletter".into(), RawValue::Bool(true))],
            anonymous: None,
        })
        .collect();
    let write = ws.upsert_contacts(&contacts, T0 - 100).unwrap();
    commit(db, &write);
    let segment = SegmentInput {
        id: "picked".into(),
        name: "Picked".into(),
        description: String::new(),
        kind: SegmentKind::Static,
        condition: None,
        test: false,
    };
    let write = ws.create_segment(segment, T0 - 90).unwrap();
    commit(db, &write);
    let workflow = WorkflowInput {
        id: "wf".into(),
        name: "Score and call".into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger: Trigger::SegmentEntered("picked".into()),
        filter: None,
        actions: vec![
            Action::AddScore {
                points: 1.0,
                expires_after: None,
            },
            Action::Webhook {
                url: "http://127.0.0.1:9/".into(),
                secret: None,
            },
        ],
    };
    let write = ws.create_workflow(workflow, T0 - 80).unwrap();
    commit(db, &write);
    ws
}

fn attempt(id: String, delivered: bool, at: i64) -> Record {
    Record::WebhookAttempt(WebhookAttempt {
        id,
        attempts: 1,
        delivered,
        given_up: !delivered,
        next_attempt_at: None,
        last_error: (!delivered).then(|| "refused".to_string()),
        at,
    })
}

#[test]
fn a_prune_deletes_a_bounded_chunk_of_finished_history_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
    let mut ws = set_up(&mut db, 2_510);
    let write = ws
        .set_static_members("picked", &ids(0..2_500), true, T0 - 50)
        .unwrap();
    commit(&mut db, &write);
    // 1,000 runs at T0, 1,000 at T0 + 10, 500 at T0 + 20.
    for (k, limit) in [1_000, 1_000, 500].into_iter().enumerate() {
        let write = ws.run_workflows(T0 + 10 * k as i64, limit);
        assert_eq!(write.runs, limit as u64);
        commit(&mut db, &write);
    }
    // Deliveries of the first 1,000 runs delivered at T0 + 5, of the next
    // 500 given up at T0 + 15, the last 1,000 still pending.
    let mut finished: Vec<Record> = (0..1_000)
        .map(|run| attempt(format!("run_{run}_1"), true, T0 + 5))
        .collect();
    finished.extend((1_000..1_500).map(|run| attempt(format!("run_{run}_1"), false, T0 + 15)));
    db.commit_all([Pending::Records(&finished)]).unwrap();
    // Ten more triggers wait in the queue.
    let write = ws
        .set_static_members("picked", &ids(2_500..2_510), true, T0 + 30)
        .unwrap();
    commit(&mut db, &write);

    let reader = sift_store::WorkspaceReader::open(&dir.path().join("ws.db")).unwrap();
    let runs = || reader.runs("wf", &RunFilter::default(), 10_000).unwrap();
    let all_runs: Vec<u64> = (0..2_510).collect();
    let deliveries = |state: &str| {
        reader
            .deliveries_of(&all_runs)
            .unwrap()
            .into_iter()
            .filter(|d| d.state == state)
            .count()
    };
    assert_eq!(runs().len(), 2_500);
    assert_eq!(reader.oldest_history().unwrap(), Some(T0));

    // Everything older than T0 + 16 is due: one chunk goes per prune.
    prune(&mut db, T0 + 16, 1_000);
    assert_eq!(runs().len(), 1_500);
    assert!(runs().iter().all(|r| r.at >= T0 + 10));
    assert_eq!(deliveries("delivered"), 0);
    assert_eq!(deliveries("failed"), 500);
    assert_eq!(reader.oldest_history().unwrap(), Some(T0 + 10));
    prune(&mut db, T0 + 16, 1_000);
    assert_eq!(runs().len(), 500);
    assert_eq!(deliveries("failed"), 0);
    assert_eq!(reader.oldest_history().unwrap(), Some(T0 + 20));
    // Nothing older than the cutoff is left: a prune changes nothing.
    prune(&mut db, T0 + 16, 1_000);
    assert_eq!(runs().len(), 500);

    // However late the cutoff, pending deliveries and the queue stay.
    prune(&mut db, i64::MAX, 1_000);
    assert!(runs().is_empty());
    assert_eq!(deliveries("pending"), 1_000);
    assert_eq!(reader.oldest_history().unwrap(), None);
    let restored = db.load().unwrap();
    assert_eq!(restored.queued_runs(), 10);
    assert_eq!(restored.pending_triggers(), ws.pending_triggers());
    assert_eq!(
        restored
            .contact(ws.lookup("c0").unwrap())
            .unwrap()
            .lead_score,
        1.0
    );
}

#[test]
fn dropped_trigger_counts_are_stored_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
    let mut ws = set_up(&mut db, 20);
    ws.set_max_queued_runs(5);
    for (range, at) in [(0..8, T0), (8..10, T0 + 7)] {
        let write = ws
            .set_static_members("picked", &ids(range), true, at)
            .unwrap();
        commit(&mut db, &write);
    }
    let dropped = ws.dropped_runs_for("wf").unwrap().clone();
    assert_eq!(
        (dropped.count, dropped.since, dropped.last_at),
        (5, T0, T0 + 7)
    );
    let restored = db.load().unwrap();
    assert_eq!(restored.dropped_runs_for("wf"), Some(&dropped));
    assert_eq!(restored.queued_runs_for("wf"), 5);
    // Deleting the workflow deletes its count.
    let write = ws.delete_workflow("wf", T0 + 9).unwrap();
    commit(&mut db, &write);
    let conn = rusqlite::Connection::open(dir.path().join("ws.db")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM workflow_dropped", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn runs_read_back_their_actions_and_a_damaged_action_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    let mut ws = set_up(&mut db, 1);
    let write = ws
        .set_static_members("picked", &ids(0..1), true, T0)
        .unwrap();
    commit(&mut db, &write);
    commit(&mut db, &ws.run_workflows(T0 + 1, 10));
    let reader = sift_store::WorkspaceReader::open(&path).unwrap();
    let runs = reader.runs("wf", &RunFilter::default(), 10).unwrap();
    assert_eq!(
        runs[0].actions,
        [
            ActionDone {
                index: 0,
                kind: ActionType::AddScore,
                result: ActionResult::Added,
            },
            ActionDone {
                index: 1,
                kind: ActionType::Webhook,
                result: ActionResult::Queued,
            },
        ]
    );

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE workflow_runs SET actions = '[{\"index\": 0, \"type\": \"teleport\", \"result\": \"added\"}]'",
            [],
        )
        .unwrap();
    match reader.runs("wf", &RunFilter::default(), 10) {
        Err(StoreError::Corrupt(what)) => assert!(what.contains("teleport"), "{what}"),
        other => panic!("a damaged action read back as {other:?}"),
    }
}

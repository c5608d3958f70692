//! Workflows in the engine: runs and their effects, test mode, pausing,
//! cascades, event triggers, expiring points, and replaying the queue after
//! a crash (the randomised check is `workflow_replay.rs`; what a save
//! refuses and usages are in `workflow_saves.rs`).

mod workflow_bench;

use sift_engine::{
    Action, ChangeKind, MAX_CASCADE_DEPTH, RunStatus, Store, Trigger, TriggerKind, WorkflowInput,
    WorkflowStatus,
};
use sift_lang::{Duration, DurationUnit, parse_text};
use workflow_bench::{Bench, Members, vip_bench, workflow};

#[test]
fn entering_vip_adds_to_gifted_and_gives_points_once_per_entry() {
    let mut bench = vip_bench();
    bench.orders("ana", 7.0);
    bench.orders("bob", 1.0);
    // Queued, not yet run: the client's write does not wait for workflows.
    assert!(bench.members("gifted").is_empty());
    assert_eq!(bench.ws.queued_runs(), 1);
    bench.run_all();
    assert_eq!(bench.members("gifted"), vec!["ana"]);
    assert_eq!(bench.score("ana"), 10.0);
    assert_eq!(bench.score("bob"), 0.0);
    // Leaving and entering again runs again; staying in does not.
    bench.orders("ana", 9.0);
    bench.orders("ana", 2.0);
    bench.orders("ana", 5.0);
    bench.orders("bob", 6.0);
    bench.run_all();
    assert_eq!(bench.members("gifted"), vec!["ana", "bob"]);
    assert_eq!(bench.score("ana"), 20.0);
    assert_eq!(bench.score("bob"), 10.0);
    let runs = bench.store.runs();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r.status == RunStatus::Done && r.depth == 0)
    );
    assert_eq!(runs[1].actions[0].result.as_str(), "already_member");
    // The points are part of the stored score: a restart keeps them.
    let restored = bench.store.load().unwrap();
    let ana = restored.lookup("ana").unwrap();
    assert_eq!(restored.contact(ana).unwrap().lead_score, 20.0);
}

#[test]
fn a_restart_replays_exactly_the_runs_not_committed() {
    let mut bench = vip_bench();
    for i in 0..10 {
        bench.orders(&format!("c{i}"), 6.0);
    }
    // Four runs commit; the next write (three more) is lost in a crash.
    let now = bench.tick();
    let write = bench.ws.run_workflows(now, 4);
    bench.keep(write);
    let now = bench.tick();
    let lost = bench.ws.run_workflows(now, 3);
    assert_eq!(lost.runs, 3);
    let mut restored = bench.store.load().unwrap();
    assert_eq!(restored.queued_runs(), 6);
    assert_eq!(restored.members_of("gifted").len(), 4);
    bench.ws = std::mem::take(&mut restored);
    bench.run_all();
    assert_eq!(bench.members("gifted").len(), 10);
    for i in 0..10 {
        assert_eq!(bench.score(&format!("c{i}")), 10.0, "c{i}");
    }
    let mut seqs: Vec<u64> = bench
        .store
        .runs()
        .iter()
        .filter_map(|r| r.item.seq)
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!((n, seqs.len()), (10, 10), "one run per trigger seq");
    // Replaying again finds nothing left.
    let mut again = bench.store.load().unwrap();
    assert_eq!(again.queued_runs(), 0);
    assert_eq!(again.run_workflows(bench.now + 1, 10).runs, 0);
}

#[test]
fn test_mode_touches_only_the_test_segment() {
    let mut bench = vip_bench();
    bench.segment("testers", None, true);
    let mut input = workflow(
        "try",
        Trigger::SegmentEntered("vip".into()),
        vec![Action::AddScore {
            points: 1.0,
            expires_after: None,
        }],
    );
    input.status = WorkflowStatus::Test;
    input.test_segment = Some("testers".into());
    bench.workflow(input).unwrap();
    bench.orders("tester", 0.0);
    bench.orders("customer", 0.0);
    let now = bench.tick();
    let write = bench
        .ws
        .set_static_members("testers", &["tester".to_string()], true, now)
        .unwrap();
    bench.keep(write);
    bench.orders("tester", 8.0);
    bench.orders("customer", 8.0);
    bench.run_all();
    // The active gift workflow ran for both; the test one only for the tester.
    assert_eq!(bench.score("tester"), 11.0);
    assert_eq!(bench.score("customer"), 10.0);
    let runs: Vec<_> = bench
        .store
        .runs()
        .iter()
        .filter(|r| r.workflow_id == "try")
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].test && runs[0].contact_id == "tester");
}

#[test]
fn a_paused_workflow_does_not_catch_up() {
    let mut bench = vip_bench();
    bench.orders("early", 9.0);
    let mut paused = bench.ws.workflow("gift").unwrap().clone();
    paused.status = WorkflowStatus::Paused;
    let to_input = |d: &sift_engine::WorkflowDef| WorkflowInput {
        id: d.id.clone(),
        name: d.name.clone(),
        status: d.status,
        test_segment: d.test_segment.clone(),
        trigger: d.trigger.clone(),
        filter: d.filter.clone(),
        actions: d.actions.clone(),
    };
    // Paused before the queued trigger ran: it is dropped, unrun.
    let now = bench.tick();
    let write = bench.ws.update_workflow(to_input(&paused), now).unwrap();
    bench.keep(write);
    bench.orders("while_paused", 9.0);
    let mut active = paused.clone();
    active.status = WorkflowStatus::Active;
    let now = bench.tick();
    let write = bench.ws.update_workflow(to_input(&active), now).unwrap();
    bench.keep(write);
    bench.orders("after", 9.0);
    bench.run_all();
    assert_eq!(bench.members("gifted"), vec!["after"]);
    assert_eq!(
        bench.runs("gift"),
        vec![("after".to_string(), RunStatus::Done)]
    );
}

#[test]
fn workflows_setting_each_other_off_stop_at_the_depth_limit() {
    let mut bench = Bench::new();
    bench.segment("p", None, false);
    bench.segment("q", None, false);
    // Entering P leaves P and enters Q; entering Q leaves Q and enters P.
    bench
        .workflow(workflow(
            "ping",
            Trigger::SegmentEntered("p".into()),
            vec![
                Action::RemoveFromSegment("p".into()),
                Action::AddToSegment("q".into()),
            ],
        ))
        .unwrap();
    bench
        .workflow(workflow(
            "pong",
            Trigger::SegmentEntered("q".into()),
            vec![
                Action::RemoveFromSegment("q".into()),
                Action::AddToSegment("p".into()),
            ],
        ))
        .unwrap();
    bench.upsert("ball", vec![]);
    let now = bench.tick();
    let write = bench
        .ws
        .set_static_members("p", &["ball".to_string()], true, now)
        .unwrap();
    bench.keep(write);
    bench.run_all();
    let runs = bench.store.runs();
    assert_eq!(runs.len() as u32, MAX_CASCADE_DEPTH + 1);
    for (depth, run) in runs.iter().enumerate() {
        assert_eq!(run.depth, depth as u32);
        let expected = if depth % 2 == 0 { "ping" } else { "pong" };
        assert_eq!(run.workflow_id, expected);
    }
    let last = runs.last().unwrap();
    assert_eq!(last.status, RunStatus::Stopped);
    assert!(
        last.error
            .as_deref()
            .is_some_and(|e| e.contains("cascade depth limit")),
        "{last:?}"
    );
    assert_eq!(bench.ws.queued_runs(), 0);
}

#[test]
fn event_triggers_filter_by_where_and_filters_read_the_contact_at_run_time() {
    let mut bench = vip_bench();
    let big = match parse_text("performed purchase where amount > 50", &bench.ws.schema()).unwrap()
    {
        sift_lang::Condition::Event { filter, .. } => filter.map(|f| *f),
        other => panic!("{other:?}"),
    };
    let mut input = workflow(
        "big",
        Trigger::Event {
            event_type: "purchase".into(),
            filter: big,
        },
        vec![Action::AddScore {
            points: 3.0,
            expires_after: None,
        }],
    );
    input.filter = Some(parse_text("orders >= 1", &bench.ws.schema()).unwrap());
    bench.workflow(input).unwrap();
    bench.orders("ana", 1.0);
    bench.event("ana", "purchase", 80.0);
    bench.event("ana", "purchase", 20.0);
    bench.event("ana", "page_visit", 80.0);
    // Queued while ana has an order; she has none when it runs.
    bench.event("bob", "purchase", 99.0);
    bench.run_all();
    assert_eq!(bench.score("ana"), 3.0);
    assert_eq!(bench.score("bob"), 0.0);
    let runs = bench.runs("big");
    assert_eq!(
        runs,
        vec![
            ("ana".to_string(), RunStatus::Done),
            ("bob".to_string(), RunStatus::Filtered)
        ]
    );
    let first = &bench.store.runs()[0];
    assert!(
        matches!(&first.trigger, TriggerKind::Event { event_type } if event_type == "purchase")
    );
}

#[test]
fn workflow_points_expire_at_their_exact_instant() {
    let mut bench = Bench::new();
    bench.segment("gifted", None, false);
    bench.segment("hot", Some("lead_score >= 5"), false);
    bench.upsert("ana", vec![]);
    bench
        .workflow(workflow(
            "boost",
            Trigger::SegmentEntered("gifted".into()),
            vec![Action::AddScore {
                points: 5.0,
                expires_after: Some(Duration {
                    amount: 1,
                    unit: DurationUnit::Hours,
                }),
            }],
        ))
        .unwrap();
    let now = bench.tick();
    let write = bench
        .ws
        .set_static_members("gifted", &["ana".to_string()], true, now)
        .unwrap();
    bench.keep(write);
    let ran_at = bench.tick();
    let write = bench.ws.run_workflows(ran_at, 10);
    bench.keep(write);
    assert_eq!(bench.score("ana"), 5.0);
    assert_eq!(bench.members("hot"), vec!["ana"]);
    let expiry = ran_at + 3_600_000;
    assert_eq!(bench.ws.next_timer(), Some(expiry));
    // A restart before the expiry keeps the points and the timer.
    let mut restored = bench.store.load().unwrap();
    assert_eq!(restored.next_timer(), Some(expiry));
    let write = bench.ws.advance(expiry - 1);
    bench.keep(write);
    assert_eq!(bench.score("ana"), 5.0);
    let write = bench.ws.advance(expiry);
    assert_eq!(bench.score("ana"), 0.0);
    let exits: Vec<_> = write
        .change_batches()
        .filter(|b| b.segment_id == "hot" && b.kind == ChangeKind::Exited)
        .map(|b| b.at)
        .collect();
    assert_eq!(exits, vec![expiry]);
    let replayed = restored.advance(expiry + 5);
    assert_eq!(
        replayed.change_batches().map(|b| b.at).collect::<Vec<_>>(),
        vec![expiry]
    );
}

#[test]
fn the_memory_store_restores_workflows_queue_and_grants() {
    let mut bench = vip_bench();
    for i in 0..5 {
        bench.orders(&format!("c{i}"), 6.0);
    }
    let now = bench.tick();
    let write = bench.ws.run_workflows(now, 2);
    bench.keep(write);
    let restored = bench.store.load().unwrap();
    assert_eq!(restored.workflows(), bench.ws.workflows());
    assert_eq!(restored.pending_triggers(), bench.ws.pending_triggers());
    assert_eq!(restored.run_cursor(), bench.ws.run_cursor());
    for i in 0..5 {
        let no = bench.ws.lookup(&format!("c{i}")).unwrap();
        assert_eq!(
            restored.contact(no).unwrap().lead_score,
            bench.ws.contact(no).unwrap().lead_score
        );
    }
}

#[test]
fn changes_before_a_save_do_not_trigger_the_saved_workflow() {
    let mut bench = Bench::new();
    bench.segment("gifted", None, false);
    bench.segment("recent", Some("performed visit in last 1 hours"), false);
    bench.event("ana", "visit", 1.0);
    // Ana leaves "recent" an hour later; the workflow is saved after that
    // instant, before any write has processed it.
    bench.now += 2 * 3_600_000;
    bench
        .workflow(workflow(
            "lapsed",
            Trigger::SegmentExited("recent".into()),
            vec![Action::AddToSegment("gifted".into())],
        ))
        .unwrap();
    assert!(
        bench
            .store
            .changes()
            .iter()
            .any(|b| b.segment_id == "recent" && b.kind == ChangeKind::Exited)
    );
    assert_eq!(bench.ws.queued_runs(), 0);
    // A later exit does trigger it.
    bench.event("bob", "visit", 1.0);
    bench.now += 2 * 3_600_000;
    let now = bench.tick();
    let write = bench.ws.advance(now);
    bench.keep(write);
    bench.run_all();
    assert_eq!(bench.members("gifted"), vec!["bob"]);
}

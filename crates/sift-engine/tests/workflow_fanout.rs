//! The bound on a workflow's queue: a write that triggers a workflow more
//! times than its queue has room for queues the earliest triggers and
//! records the rest as dropped, in its own records; the count survives a
//! restart, what was queued runs exactly once, later triggers run normally
//! once the queue drains, and restarting the workflow clears the count.

mod workflow_bench;

use sift_engine::{ContactInput, RawValue, RunStatus, Store, WorkflowInput, WorkflowStatus};
use workflow_bench::{Bench, vip_bench};

/// One write that makes contacts `ids` enter VIP.
fn enter(bench: &mut Bench, ids: &[String]) -> sift_engine::Write {
    let inputs: Vec<ContactInput> = ids
        .iter()
        .map(|id| ContactInput {
            id: id.clone(),
            properties: vec![("orders".into(), RawValue::Number(6.0))],
            anonymous: None,
        })
        .collect();
    let now = bench.tick();
    let write = bench.ws.upsert_contacts(&inputs, now).unwrap();
    bench.keep(write)
}

fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("c{i:02}")).collect()
}

#[test]
fn a_full_queue_drops_the_excess_counts_it_durably_and_runs_the_rest_once() {
    let mut bench = vip_bench();
    bench.ws.set_max_queued_runs(4);

    let write = enter(&mut bench, &names(0..10));
    let first_drop = bench.now;
    assert_eq!((write.queued, write.dropped), (4, 6));
    assert_eq!(bench.ws.queued_runs_for("gift"), 4);
    let dropped = bench.ws.dropped_runs_for("gift").unwrap();
    assert_eq!(
        (dropped.count, dropped.since, dropped.last_at),
        (6, first_drop, first_drop)
    );
    // A full queue takes nothing more; the count goes on.
    let write = enter(&mut bench, &names(10..12));
    assert_eq!((write.queued, write.dropped), (0, 2));
    let dropped = bench.ws.dropped_runs_for("gift").unwrap().clone();
    assert_eq!((dropped.count, dropped.since), (8, first_drop));
    assert_eq!(dropped.last_at, bench.now);

    // A restart from the committed records: the same queue and count.
    let mut restored = bench.store.load().unwrap();
    assert_eq!(restored.dropped_runs_for("gift"), Some(&dropped));
    assert_eq!(restored.pending_triggers(), bench.ws.pending_triggers());
    restored.set_max_queued_runs(4);
    bench.ws = restored;
    bench.run_all();
    // The earliest triggers were the ones queued, each run once.
    let ran: Vec<(String, RunStatus)> = names(0..4)
        .into_iter()
        .map(|id| (id, RunStatus::Done))
        .collect();
    assert_eq!(bench.runs("gift"), ran);
    assert_eq!(bench.members("gifted"), names(0..4));

    // Drained: new triggers queue and run normally.
    let write = enter(&mut bench, &names(20..23));
    assert_eq!((write.queued, write.dropped), (3, 0));
    bench.run_all();
    assert_eq!(bench.runs("gift").len(), 7);
    assert_eq!(bench.members("gifted").len(), 7);
    assert_eq!(bench.ws.dropped_runs_for("gift").unwrap().count, 8);

    // Pausing and resuming starts the workflow afresh, count included,
    // and the store agrees.
    let def = bench.ws.workflow("gift").unwrap().clone();
    for status in [WorkflowStatus::Paused, WorkflowStatus::Active] {
        let input = WorkflowInput {
            id: def.id.clone(),
            name: def.name.clone(),
            status,
            test_segment: None,
            trigger: def.trigger.clone(),
            filter: None,
            actions: def.actions.clone(),
        };
        let now = bench.tick();
        let write = bench.ws.update_workflow(input, now).unwrap();
        bench.keep(write);
    }
    assert_eq!(bench.ws.dropped_runs_for("gift"), None);
    assert_eq!(bench.store.load().unwrap().dropped_runs_for("gift"), None);
    let write = enter(&mut bench, &names(30..36));
    assert_eq!((write.queued, write.dropped), (4, 2));
    let restored = bench.store.load().unwrap();
    assert_eq!(restored.dropped_runs_for("gift").unwrap().count, 2);
    assert_eq!(restored.dropped_runs_for("gift").unwrap().since, bench.now);
}

/// The default bound is far above what ordinary writes queue.
#[test]
fn the_default_bound_queues_everything_a_batch_triggers() {
    let mut bench = vip_bench();
    let write = enter(&mut bench, &names(0..100));
    assert_eq!((write.queued, write.dropped), (100, 0));
    assert_eq!(bench.ws.dropped_runs_for("gift"), None);
}

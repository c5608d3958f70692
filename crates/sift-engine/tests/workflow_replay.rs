//! Workflows under random writes, runs, group commits and crashes (records
//! not yet committed are lost and the workspace is reloaded from the
//! store), checked against what the committed records say must hold:
//!
//! - every committed change of a trigger segment has exactly one run of
//!   each workflow it triggers (none lost, none doubled), and runs of a
//!   workflow follow the change log's order;
//! - every contact's `lead_score` is the sum of the unexpired points the
//!   committed runs granted it (there are no scoring rules here), and each
//!   grant belongs to a committed run;
//! - cascades never go deeper than the limit, and the run at the limit is
//!   recorded as stopped;
//! - a reload gives the same membership, scores and queue as the live
//!   workspace had committed;
//! - with a small bound on each workflow's queue, every committed
//!   triggering change either ran once or was dropped, and the committed
//!   drop counts say exactly how many were dropped.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift_engine::{
    Action, Cause, ChangeKind, ContactInput, EventInput, MAX_CASCADE_DEPTH, MemoryStore, RawValue,
    Record, RunStatus, SegmentInput, SegmentKind, Store, Trigger, WorkflowInput, WorkflowStatus,
    Workspace,
};
use sift_lang::{Duration, DurationUnit, FieldType, parse_text};

const NOW: i64 = 1_790_000_000_000;

fn segment(ws: &mut Workspace, id: &str, condition: Option<&str>) -> Vec<Record> {
    let condition = condition.map(|t| parse_text(t, &ws.schema()).unwrap());
    ws.create_segment(
        SegmentInput {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            kind: if condition.is_some() {
                SegmentKind::Dynamic
            } else {
                SegmentKind::Static
            },
            condition,
            test: false,
        },
        NOW,
    )
    .unwrap()
    .records
}

fn workflow(id: &str, trigger: Trigger, actions: Vec<Action>) -> WorkflowInput {
    WorkflowInput {
        id: id.into(),
        name: id.into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger,
        filter: None,
        actions,
    }
}

fn score(points: f64, hours: Option<u32>) -> Action {
    Action::AddScore {
        points,
        expires_after: hours.map(|amount| Duration {
            amount,
            unit: DurationUnit::Hours,
        }),
    }
}

fn setup() -> (Workspace, MemoryStore) {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let mut records = ws
        .declare_field("orders", FieldType::Number, None)
        .unwrap()
        .records;
    records.extend(segment(
        &mut ws,
        "vip",
        Some("orders >= 5 or performed purchase at least 2 times in last 3 hours"),
    ));
    records.extend(segment(&mut ws, "warm", Some("lead_score >= 20")));
    for id in ["gifted", "watch", "p", "q"] {
        records.extend(segment(&mut ws, id, None));
    }
    let workflows = [
        workflow(
            "gift",
            Trigger::SegmentEntered("vip".into()),
            vec![Action::AddToSegment("gifted".into()), score(10.0, None)],
        ),
        workflow(
            "ungift",
            Trigger::SegmentExited("vip".into()),
            vec![
                Action::RemoveFromSegment("gifted".into()),
                score(-3.0, Some(2)),
            ],
        ),
        workflow(
            "warm",
            Trigger::SegmentEntered("warm".into()),
            vec![
                Action::SetProperty {
                    field: "tier".into(),
                    value: RawValue::String("warm".into()),
                },
                score(5.0, Some(1)),
            ],
        ),
        workflow(
            "unwatch",
            Trigger::SegmentEntered("watch".into()),
            vec![Action::RemoveFromSegment("watch".into()), score(1.0, None)],
        ),
        workflow(
            "ping",
            Trigger::SegmentEntered("p".into()),
            vec![
                Action::RemoveFromSegment("p".into()),
                Action::AddToSegment("q".into()),
            ],
        ),
        workflow(
            "pong",
            Trigger::SegmentEntered("q".into()),
            vec![
                Action::RemoveFromSegment("q".into()),
                Action::AddToSegment("p".into()),
            ],
        ),
    ];
    for input in workflows {
        records.extend(ws.create_workflow(input, NOW).unwrap().records);
    }
    store.commit(&[&records]).unwrap();
    (ws, store)
}

/// Membership, scores and queue, as a text to compare.
fn summary(ws: &Workspace) -> String {
    let mut out = String::new();
    let mut ids: Vec<_> = ws.segments().iter().map(|(_, s)| s).collect();
    ids.sort_by(|a, b| a.def.id.cmp(&b.def.id));
    for s in ids {
        out += &format!(
            "{} {:?}\n",
            s.def.id,
            s.members.bitmap().iter().collect::<Vec<_>>()
        );
    }
    for no in ws.contacts().alive() {
        let view = ws.contact_data(no).unwrap();
        out += &format!("{} {} {:?}\n", view.id, view.lead_score, view.properties);
    }
    out += &format!("{:?} {:?}\n", ws.pending_triggers(), ws.run_cursor());
    for def in ws.workflows() {
        out += &format!("{} {:?}\n", def.id, ws.dropped_runs_for(&def.id));
    }
    out
}

/// Runs one script, with each workflow's queue bounded by `bound` when
/// given; answers (runs recorded, runs stopped, crashes, triggers dropped).
fn run_script(seed: u64, bound: Option<u64>) -> (usize, usize, usize, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ws, mut store) = setup();
    if let Some(bound) = bound {
        ws.set_max_queued_runs(bound);
    }
    let mut pending: Vec<Vec<Record>> = Vec::new();
    let mut now = NOW;
    let mut crashes = 0;
    for step in 0..400u32 {
        now += rng.random_range(1..20) * 60_000;
        pending.push(ws.advance(now).records);
        let id = format!("c{}", rng.random_range(0..25));
        let write = match rng.random_range(0..20) {
            0..=5 => {
                let orders = f64::from(rng.random_range(0..8u32));
                let input = ContactInput {
                    id: id.clone(),
                    properties: vec![("orders".into(), RawValue::Number(orders))],
                    anonymous: None,
                };
                ws.upsert_contacts(&[input], now).ok()
            }
            6..=8 => {
                let event = EventInput {
                    contact_id: id.clone(),
                    event_type: "purchase".into(),
                    at: Some(now - rng.random_range(0..3_600_000)),
                    properties_json: "{}".into(),
                    ..EventInput::default()
                };
                ws.ingest_events(&[event], now).ok()
            }
            9 => {
                let target = if rng.random_bool(0.8) { "watch" } else { "p" };
                ws.set_static_members(target, std::slice::from_ref(&id), true, now)
                    .ok()
            }
            10 => ws.delete_contact(&id, now).ok(),
            11..=16 => Some(ws.run_workflows(now, rng.random_range(1..6))),
            _ => None,
        };
        if let Some(write) = write {
            pending.push(write.records);
        }
        match rng.random_range(0..10) {
            // A crash: what was not committed is lost.
            0 => {
                crashes += 1;
                pending.clear();
                ws = store.load().unwrap();
                if let Some(bound) = bound {
                    ws.set_max_queued_runs(bound);
                }
                assert_eq!(summary(&ws), summary(&store.load().unwrap()));
            }
            1..=5 => {
                let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
                store.commit(&group).unwrap();
                pending.clear();
                let reloaded = store.load().unwrap();
                // The reload is at the stored clock; catch it up first.
                let mut caught_up = reloaded;
                caught_up.advance(ws.clock());
                if step % 25 == 0 {
                    let mut live = ws.clone();
                    live.advance(ws.clock());
                    assert_eq!(
                        summary(&caught_up),
                        summary(&live),
                        "seed {seed} step {step}"
                    );
                }
            }
            _ => {}
        }
    }
    // Drain: run everything left, committing each write.
    loop {
        now += 1_000;
        let write = ws.run_workflows(now, 7);
        let done = write.runs == 0;
        pending.push(write.records);
        let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
        store.commit(&group).unwrap();
        pending.clear();
        if done {
            break;
        }
    }
    let dropped = check(&ws, &store, now, seed);
    assert!(bound.is_some() || dropped == 0);
    let stopped = store
        .runs()
        .iter()
        .filter(|r| r.status == RunStatus::Stopped)
        .count();
    (store.runs().len(), stopped, crashes, dropped)
}

/// Checks the invariants; answers how many triggers were dropped.
fn check(ws: &Workspace, store: &MemoryStore, now: i64, seed: u64) -> u64 {
    let triggers: std::collections::HashMap<(&str, ChangeKind), Vec<&str>> = [
        (("vip", ChangeKind::Entered), vec!["gift"]),
        (("vip", ChangeKind::Exited), vec!["ungift"]),
        (("warm", ChangeKind::Entered), vec!["warm"]),
        (("watch", ChangeKind::Entered), vec!["unwatch"]),
        (("p", ChangeKind::Entered), vec!["ping"]),
        (("q", ChangeKind::Entered), vec!["pong"]),
    ]
    .into_iter()
    .collect();
    // Every committed triggering change: (workflow, seq) -> contact.
    let mut expected: BTreeMap<(String, u64), u32> = BTreeMap::new();
    for batch in store.changes() {
        if batch.cause == Cause::ContactDelete {
            continue;
        }
        let Some(workflows) = triggers.get(&(batch.segment_id.as_str(), batch.kind)) else {
            continue;
        };
        for (k, no) in batch.contacts.iter().enumerate() {
            for workflow in workflows {
                expected.insert((workflow.to_string(), batch.seq_start + k as u64), no);
            }
        }
    }
    let mut seen: BTreeMap<(String, u64), u32> = BTreeMap::new();
    let mut last_seq: BTreeMap<&str, u64> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for run in store.runs() {
        assert!(
            ids.insert(run.id),
            "seed {seed}: run {} recorded twice",
            run.id
        );
        let seq = run.item.seq.expect("segment triggers carry a seq");
        let key = (run.workflow_id.clone(), seq);
        assert!(
            seen.insert(key.clone(), run.no).is_none(),
            "seed {seed}: {key:?} ran twice"
        );
        let last = last_seq.entry(run.workflow_id.as_str()).or_insert(0);
        assert!(
            seq >= *last,
            "seed {seed}: {} ran out of order",
            run.workflow_id
        );
        *last = seq;
        assert!(run.depth <= MAX_CASCADE_DEPTH, "seed {seed}: {run:?}");
        assert_eq!(
            run.status == RunStatus::Stopped,
            run.depth == MAX_CASCADE_DEPTH,
            "seed {seed}: {run:?}"
        );
    }
    // What did not run was dropped, and the committed counts say how much.
    let restored = store.load().unwrap();
    let mut dropped_total = 0;
    for def in restored.workflows() {
        let dropped = restored.dropped_runs_for(&def.id).map_or(0, |d| d.count);
        let ran: BTreeMap<_, _> = seen.iter().filter(|(k, _)| k.0 == def.id).collect();
        let due: BTreeMap<_, _> = expected.iter().filter(|(k, _)| k.0 == def.id).collect();
        for (key, no) in &ran {
            assert_eq!(due.get(key), Some(no), "seed {seed}: {key:?} ran unbidden");
        }
        assert_eq!(
            (due.len() - ran.len()) as u64,
            dropped,
            "seed {seed}: {} runs and drops differ from the change log",
            def.id
        );
        dropped_total += dropped;
    }
    if dropped_total == 0 {
        assert_eq!(
            seen, expected,
            "seed {seed}: runs differ from the change log"
        );
    }
    assert_eq!(ws.queued_runs(), 0);
    // Scores: the unexpired points of committed grants of committed runs.
    let done: BTreeSet<u64> = store
        .runs()
        .iter()
        .filter(|r| r.status == RunStatus::Done)
        .map(|r| r.id)
        .collect();
    let mut points: BTreeMap<u32, f64> = BTreeMap::new();
    for record in store_grants(store) {
        assert!(
            done.contains(&record.run_id),
            "seed {seed}: grant of no run"
        );
        if restored.contacts().is_alive(record.no) && record.expires_at.is_none_or(|e| e > now) {
            *points.entry(record.no).or_default() += record.points;
        }
    }
    for no in ws.contacts().alive() {
        let score = ws.contact_data(no).unwrap().lead_score;
        let expected = points.get(&no).copied().unwrap_or(0.0);
        assert_eq!(score, expected, "seed {seed}: contact {no}");
    }
    let mut restored = restored;
    restored.advance(now);
    assert_eq!(summary(&restored), summary(ws), "seed {seed}");
    dropped_total
}

/// The grants the store holds (a reload restores them; they are read back
/// here through the records the store kept).
fn store_grants(store: &MemoryStore) -> Vec<sift_engine::ScoreGrant> {
    store.grants().to_vec()
}

#[test]
fn runs_survive_crashes_exactly_once() {
    let (mut runs, mut stopped, mut crashes) = (0, 0, 0);
    for seed in 0..12 {
        let (r, s, c, _) = run_script(seed, None);
        runs += r;
        stopped += s;
        crashes += c;
    }
    // The scripts did what they are for.
    assert!(
        runs > 1_000 && stopped > 5 && crashes > 100,
        "{runs} {stopped} {crashes}"
    );
}

#[test]
fn runs_and_drops_survive_crashes_exactly_once_with_a_small_queue_bound() {
    let (mut runs, mut dropped, mut crashes) = (0, 0, 0);
    for seed in 100..108 {
        let (r, _, c, d) = run_script(seed, Some(1));
        runs += r;
        crashes += c;
        dropped += d;
    }
    assert!(
        runs > 300 && dropped > 20 && crashes > 50,
        "{runs} {dropped} {crashes}"
    );
}

//! The SQLite store against the in-memory one: the same writes committed to
//! both (in groups, as the server's writer does) must load back into the same
//! workspace — fields with their types and labels, contacts with their data
//! and scores, tombstoned ids, segment definitions, memberships (event
//! conditions included), scoring rules, the clock, pending timers, the event
//! ids already accepted, the next seq, and aliases with the merged
//! histories and memberships identify left. After a restart, advancing the
//! loaded workspace to a later instant fires the same timers as the live one.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift_engine::{
    Action, ContactInput, EventInput, MemoryStore, RawValue, Record, ScoringRuleInput,
    ScoringRulePatch, SegmentInput, SegmentKind, SegmentPatch, Store, Trigger, WorkflowInput,
    WorkflowStatus, Workspace,
};
use sift_lang::{Duration, DurationUnit, FieldType};
use sift_store::WorkspaceDb;

const NOW: i64 = 1_790_000_000_000;
const DAY: i64 = 86_400_000;

fn summary(ws: &Workspace) -> String {
    let mut out = String::new();
    for field in ws.fields() {
        out += &format!(
            "field {} {} {:?} {} {}\n",
            field.name,
            field.field_type.name(),
            field.label,
            field.builtin,
            field.system
        );
    }
    let mut ids: Vec<u32> = ws.contacts().alive().iter().collect();
    ids.sort();
    for no in ids {
        // A contact's segments are listed in slot order, which a restart
        // does not keep; the set is what must survive.
        let view = ws.contact(no).map(|mut view| {
            view.segments.sort();
            view
        });
        out += &format!("contact {view:?}\n");
    }
    for no in 0..ws.contacts().capacity() {
        out += &format!("id {no} {}\n", ws.contacts().id(no));
    }
    let mut segments: Vec<_> = ws.segments().iter().map(|(_, s)| s).collect();
    segments.sort_by(|a, b| a.def.id.cmp(&b.def.id));
    for segment in segments {
        out += &format!(
            "segment {:?} {:?}\n",
            segment.def,
            segment.members.iter().collect::<Vec<_>>()
        );
    }
    for rule in ws.scoring_rules() {
        out += &format!("rule {rule:?}\n");
    }
    for workflow in ws.workflows() {
        out += &format!("workflow {workflow:?}\n");
    }
    for batch in ws.pending_triggers() {
        out += &format!("queued {batch:?}\n");
    }
    out += &format!("aliases {:?}\n", ws.aliases());
    out += &format!("run cursor {:?}\n", ws.run_cursor());
    out += &format!("clock {}\n", ws.clock());
    out += &format!("next timer {:?}\n", ws.next_timer());
    out += &format!("next seq {}\n", ws.next_seq());
    out
}

/// An event as the server builds one from a client's JSON.
fn event(
    id: Option<String>,
    contact_id: &str,
    event_type: &str,
    at: i64,
    json: &str,
) -> EventInput {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
    EventInput {
        id,
        contact_id: contact_id.to_string(),
        event_type: event_type.to_string(),
        at: Some(at),
        properties: sift_store::event_properties(&object),
        properties_json: json.to_string(),
        anonymous: None,
    }
}

fn filter(ws: &Workspace, text: &str) -> sift_lang::Condition {
    match sift_lang::parse_text(text, &ws.schema()).unwrap() {
        sift_lang::Condition::Event {
            filter: Some(filter),
            ..
        } => *filter,
        other => panic!("not an event filter: {other:?}"),
    }
}

fn days(amount: u32) -> Duration {
    Duration {
        amount,
        unit: DurationUnit::Days,
    }
}

/// Equal summaries, or a panic showing only the lines that differ.
#[track_caller]
fn assert_same(what: &str, got: &str, expected: &str) {
    if got == expected {
        return;
    }
    let differing: Vec<String> = got
        .lines()
        .zip(expected.lines())
        .filter(|(g, e)| g != e)
        .map(|(g, e)| format!("  got      {g}\n  expected {e}"))
        .collect();
    panic!(
        "{what} differs from the live workspace ({} lines vs {}):\n{}",
        got.lines().count(),
        expected.lines().count(),
        differing.join("\n")
    );
}

fn text(ws: &Workspace, condition: &str) -> sift_lang::Condition {
    sift_lang::parse_text(condition, &ws.schema()).unwrap()
}

#[test]
fn sqlite_and_memory_stores_load_the_same_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
    let mut memory = MemoryStore::default();
    let mut ws = Workspace::new();
    let mut pending: Vec<Vec<Record>> = Vec::new();
    let mut rng = StdRng::seed_from_u64(7);

    let keep =
        |write: sift_engine::Write, pending: &mut Vec<Vec<Record>>| pending.push(write.records);
    keep(
        ws.declare_field("orders", FieldType::Number, Some("Orders"))
            .unwrap(),
        &mut pending,
    );
    keep(
        ws.declare_field("signup_at", FieldType::DateTime, None)
            .unwrap(),
        &mut pending,
    );
    keep(
        ws.declare_field("email", FieldType::String, Some("E-mail address"))
            .unwrap(),
        &mut pending,
    );
    keep(
        ws.declare_field("lead_score", FieldType::Number, Some("Score"))
            .unwrap(),
        &mut pending,
    );
    let vip = text(&ws, "orders >= 5 and newsletter = true");
    keep(
        ws.create_segment(
            SegmentInput {
                id: "vip".into(),
                name: "VIP".into(),
                description: "big buyers".into(),
                kind: SegmentKind::Dynamic,
                condition: Some(vip),
                test: false,
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );
    let outside = text(
        &ws,
        "not in segment \"VIP\" and interests contains \"shoes\"",
    );
    keep(
        ws.create_segment(
            SegmentInput {
                id: "shoes".into(),
                name: "Shoes, not VIP".into(),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(outside),
                test: false,
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );
    keep(
        ws.create_segment(
            SegmentInput {
                id: "testers".into(),
                name: "Testers".into(),
                description: String::new(),
                kind: SegmentKind::Static,
                condition: None,
                test: true,
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );

    for (id, condition) in [
        (
            "buyers",
            "performed purchase at least 2 times in last 30 days",
        ),
        ("spenders", "total purchase.amount >= 100 in last 7 days"),
        ("hot", "lead_score >= 12"),
    ] {
        let condition = text(&ws, condition);
        keep(
            ws.create_segment(
                SegmentInput {
                    id: id.into(),
                    name: id.into(),
                    description: String::new(),
                    kind: SegmentKind::Dynamic,
                    condition: Some(condition),
                    test: false,
                },
                NOW,
            )
            .unwrap(),
            &mut pending,
        );
    }
    let big = filter(
        &ws,
        "performed purchase where (amount > 50 and not tags contains \"test\")",
    );
    keep(
        ws.create_scoring_rule(
            ScoringRuleInput {
                id: "big".into(),
                event_type: "purchase".into(),
                filter: Some(big),
                points: 10.0,
                expires_after: Some(days(3)),
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );
    keep(
        ws.create_scoring_rule(
            ScoringRuleInput {
                id: "visits".into(),
                event_type: "page_visit".into(),
                filter: None,
                points: 1.0,
                expires_after: None,
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );

    // Workflows: points that expire, a new field set from an event, a
    // webhook, and a test-mode workflow.
    keep(
        ws.create_segment(
            SegmentInput {
                id: "gifted".into(),
                name: "Gifted".into(),
                description: String::new(),
                kind: SegmentKind::Static,
                condition: None,
                test: false,
            },
            NOW,
        )
        .unwrap(),
        &mut pending,
    );
    let gift = WorkflowInput {
        id: "gift".into(),
        name: "Gift VIPs".into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger: Trigger::SegmentEntered("vip".into()),
        filter: Some(text(&ws, "not in segment \"Testers\"")),
        actions: vec![
            Action::AddToSegment("gifted".into()),
            Action::AddScore {
                points: 10.0,
                expires_after: Some(days(2)),
            },
        ],
    };
    keep(ws.create_workflow(gift.clone(), NOW).unwrap(), &mut pending);
    let big_where = filter(&ws, "performed purchase where amount > 50");
    let tag = WorkflowInput {
        id: "tag".into(),
        name: "Tag big buyers".into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger: Trigger::Event {
            event_type: "purchase".into(),
            filter: Some(big_where),
        },
        filter: None,
        actions: vec![
            Action::SetProperty {
                field: "tier".into(),
                value: RawValue::String("gold".into()),
            },
            Action::Webhook {
                url: "http://127.0.0.1:9/hook".into(),
                secret: Some("s3cret".into()),
            },
        ],
    };
    keep(ws.create_workflow(tag, NOW).unwrap(), &mut pending);
    let try_out = WorkflowInput {
        id: "try".into(),
        name: "Try ungifting".into(),
        status: WorkflowStatus::Test,
        test_segment: Some("testers".into()),
        trigger: Trigger::SegmentExited("hot".into()),
        filter: None,
        actions: vec![
            Action::RemoveFromSegment("gifted".into()),
            Action::AddScore {
                points: -1.0,
                expires_after: None,
            },
        ],
    };
    keep(ws.create_workflow(try_out, NOW).unwrap(), &mut pending);

    // Ten minutes a step, so that windows and expiries pass during the run.
    let step_ms = 600_000;
    let mut event_ids: Vec<String> = Vec::new();
    for step in 0..600u32 {
        let id = format!("c{}", rng.random_range(0..60));
        let now = NOW + i64::from(step) * step_ms;
        // Timers due since the last step fire first, as the server's timer task does.
        pending.push(ws.advance(now).records);
        if rng.random_range(0..8) == 0 {
            // Anonymous visitors, some identified into known contacts
            // (docs/concepts.md "Identify"): merged histories, static memberships and aliases.
            let anon = format!("anon{}", rng.random_range(0..20));
            let mut visit = event(None, &anon, "page_visit", now - DAY, "{}");
            visit.anonymous = Some(true);
            pending.push(ws.ingest_events(&[visit], now).unwrap().records);
            if rng.random_bool(0.3)
                && let Ok(write) =
                    ws.set_static_members("testers", std::slice::from_ref(&anon), true, now)
            {
                pending.push(write.records);
            }
            if rng.random_bool(0.5)
                && let Ok(write) = ws.identify(&anon, &id, now)
            {
                pending.push(write.records);
            }
        }
        let write = match rng.random_range(0..14) {
            0 => ws.delete_contact(&id, now).ok(),
            10 | 11 => {
                let event_id = match rng.random_range(0..4) {
                    0 => None,
                    // A replayed id is acknowledged and not applied again.
                    1 if !event_ids.is_empty() => {
                        Some(event_ids[rng.random_range(0..event_ids.len())].clone())
                    }
                    _ => {
                        event_ids.push(format!("e{step}"));
                        event_ids.last().cloned()
                    }
                };
                let at = now - rng.random_range(0..4 * DAY);
                let amount = rng.random_range(0..120);
                let json = if rng.random_bool(0.5) {
                    format!(
                        r#"{{"amount":{amount},"tags":["{}"],"cart":{{"items":[{{"sku":"S{step}","qty":1}}]}}}}"#,
                        if rng.random_bool(0.2) { "test" } else { "web" }
                    )
                } else {
                    format!(r#"{{"amount":{amount}.5,"note":null}}"#)
                };
                ws.ingest_events(&[event(event_id, &id, "purchase", at, &json)], now)
                    .ok()
            }
            12 => ws
                .ingest_events(
                    &[event(
                        None,
                        &id,
                        "page_visit",
                        now - rng.random_range(0..DAY),
                        "{}",
                    )],
                    now,
                )
                .ok(),
            13 if step % 40 == 0 => match rng.random_range(0..3) {
                0 => ws
                    .update_scoring_rule(
                        "big",
                        ScoringRulePatch {
                            points: Some(f64::from(rng.random_range(1..20u32))),
                            ..ScoringRulePatch::default()
                        },
                        now,
                    )
                    .ok(),
                1 if ws.scoring_rule("visits").is_some() => {
                    ws.delete_scoring_rule("visits", now).ok()
                }
                _ => ws
                    .create_scoring_rule(
                        ScoringRuleInput {
                            id: format!("r{step}"),
                            event_type: "page_visit".into(),
                            filter: None,
                            points: 2.0,
                            expires_after: Some(days(1)),
                        },
                        now,
                    )
                    .ok(),
            },
            1 => ws
                .set_static_members(
                    "testers",
                    std::slice::from_ref(&id),
                    rng.random_bool(0.6),
                    now,
                )
                .ok(),
            2 if step % 50 == 0 => {
                let threshold = rng.random_range(1..10);
                let condition = text(&ws, &format!("orders >= {threshold} and newsletter = true"));
                ws.update_segment(
                    "vip",
                    SegmentPatch {
                        condition: Some(condition),
                        ..SegmentPatch::default()
                    },
                    now,
                )
                .ok()
            }
            _ => {
                let mut properties = vec![
                    (
                        "orders".to_string(),
                        RawValue::Number(f64::from(rng.random_range(0..10u32))),
                    ),
                    (
                        "newsletter".to_string(),
                        RawValue::Bool(rng.random_bool(0.5)),
                    ),
                ];
                if rng.random_bool(0.5) {
                    properties.push((
                        "interests".into(),
                        RawValue::StringList(vec!["shoes".into(), "bags".into()]),
                    ));
                } else {
                    properties.push(("interests".into(), RawValue::Null));
                }
                if rng.random_bool(0.3) {
                    properties.push((
                        "signup_at".into(),
                        RawValue::String("2026-01-31T09:30:00.250+02:00".into()),
                    ));
                    properties.push(("birth_date".into(), RawValue::String("2000-02-29".into())));
                    properties.push((
                        "nickname".into(),
                        RawValue::String("Ñandú \"quoted\"".into()),
                    ));
                }
                let input = ContactInput {
                    id: id.clone(),
                    properties,
                    anonymous: Some(rng.random_bool(0.2)),
                };
                ws.upsert_contacts(&[input], now).ok()
            }
        };
        if let Some(write) = write {
            pending.push(write.records);
        }
        // Workflows run in between, a few triggers at a time, and "gift" is
        // paused and resumed now and then.
        if rng.random_bool(0.5) {
            pending.push(ws.run_workflows(now, rng.random_range(1..6)).records);
        }
        if step % 97 == 0 {
            let mut input = gift.clone();
            if ws
                .workflow("gift")
                .is_some_and(|w| w.status == WorkflowStatus::Active)
            {
                input.status = WorkflowStatus::Paused;
            }
            pending.push(ws.update_workflow(input, now).unwrap().records);
        }
        // Commit in groups of a few writes, as the server's writer does.
        if pending.len() >= rng.random_range(1..6) {
            let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
            Store::commit(&mut db, &group).unwrap();
            memory.commit(&group).unwrap();
            pending.clear();
        }
    }
    let last = NOW + 600 * step_ms;
    let kept = event(
        Some("kept".into()),
        "keeper",
        "purchase",
        last,
        r#"{"amount":75}"#,
    );
    pending.push(ws.ingest_events(&[kept], last).unwrap().records);
    let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
    Store::commit(&mut db, &group).unwrap();
    memory.commit(&group).unwrap();

    // A restart rebuilds the workspace at the stored clock: the same as live.
    let live = summary(&ws);
    let mut from_memory = memory.load().unwrap();
    let mut from_sqlite = Store::load(&db).unwrap();
    assert_same("memory load", &summary(&from_memory), &live);
    assert_same("sqlite load", &summary(&from_sqlite), &live);
    assert!(live.contains("rule ScoringRule { id: \"big\""), "{live}");
    // Merges happened, and some merged contacts are still alive with aliases.
    assert!(ws.aliases().len() > 3, "{:?}", ws.aliases());

    // Then it catches up with time, firing what fell due while it was down
    // exactly as the live workspace does.
    let later = last + 5 * DAY;
    let live_advance = ws.advance(later).records;
    let memory_advance = from_memory.advance(later).records;
    let sqlite_advance = from_sqlite.advance(later).records;
    assert_eq!(memory_advance, live_advance);
    assert_eq!(sqlite_advance, live_advance);
    let live = summary(&ws);
    assert_same("memory catch-up", &summary(&from_memory), &live);
    assert_same("sqlite catch-up", &summary(&from_sqlite), &live);

    // The queue left at the restart runs the same from either store.
    let live_runs = ws.run_workflows(later, 100_000).records;
    assert!(
        live_runs.iter().any(|r| matches!(r, Record::Run(_))),
        "nothing was left queued"
    );
    assert_eq!(from_memory.run_workflows(later, 100_000).records, live_runs);
    assert_eq!(from_sqlite.run_workflows(later, 100_000).records, live_runs);
    assert_same("memory runs", &summary(&from_memory), &summary(&ws));
    assert_same("sqlite runs", &summary(&from_sqlite), &summary(&ws));

    // Accepted event ids survive the restart. (The replayed event's contact
    // is never deleted: what a deleted contact's event ids become is the
    // engine's decision, and its events are gone from the store.)
    for workspace in [&mut ws, &mut from_memory, &mut from_sqlite] {
        let replay = event(Some("kept".into()), "keeper", "purchase", later, "{}");
        let write = workspace.ingest_events(&[replay], later).unwrap();
        assert_eq!(write.duplicates, vec![0]);
        assert_eq!(write.accepted, 0);
    }

    // The catch-up and the runs are stored like any write; a second restart
    // starts from them.
    let group: Vec<&[Record]> = vec![live_advance.as_slice(), live_runs.as_slice()];
    Store::commit(&mut db, &group).unwrap();
    memory.commit(&group).unwrap();
    let live = summary(&ws);
    assert_same("second load", &summary(&Store::load(&db).unwrap()), &live);
    assert!(
        live.contains("field email string \"E-mail address\" true false"),
        "{live}"
    );
    assert!(
        live.contains("field lead_score number \"Score\" true true"),
        "{live}"
    );

    // The change log read back from SQLite is the one the engine produced.
    let reader = sift_store::WorkspaceReader::open(&dir.path().join("ws.db")).unwrap();
    let stored = reader.changes(0, None, usize::MAX).unwrap();
    let produced: Vec<(u64, String, u32)> = memory
        .changes()
        .iter()
        .flat_map(|b| {
            b.contacts
                .iter()
                .enumerate()
                .map(move |(k, no)| (b.seq_start + k as u64, b.segment_id.clone(), no))
        })
        .collect();
    let read: Vec<(u64, String, u32)> = stored
        .iter()
        .map(|c| (c.seq, c.segment_id.clone(), c.no))
        .collect();
    assert_eq!(read, produced);
    // Seqs start at 1: the log holds every seq below the next one.
    assert_eq!(read.first().map(|c| c.0), Some(sift_engine::FIRST_SEQ));
    assert_eq!(read.len() as u64 + sift_engine::FIRST_SEQ, ws.next_seq());

    // So is the run history, newest first, and the webhooks' outbox.
    for workflow in ["gift", "tag", "try"] {
        let mut stored = reader
            .runs(workflow, &sift_store::RunFilter::default(), usize::MAX)
            .unwrap();
        stored.reverse();
        let committed: Vec<_> = memory
            .runs()
            .iter()
            .filter(|r| r.workflow_id == workflow)
            .cloned()
            .collect();
        assert!(!committed.is_empty(), "{workflow} never ran");
        assert_eq!(stored, committed, "{workflow}");
    }
    let run_ids: Vec<u64> = memory.webhooks().iter().map(|w| w.run_id).collect();
    let deliveries = reader.deliveries_of(&run_ids).unwrap();
    assert_eq!(deliveries.len(), memory.webhooks().len());
    assert!(
        deliveries
            .iter()
            .all(|d| d.state == "pending" && d.attempts == 0)
    );
}

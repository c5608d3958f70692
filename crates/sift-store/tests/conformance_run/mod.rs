//! The scripted run the conformance tests share: a workspace declared with
//! fields, segments of every kind, scoring rules and workflows, then 600
//! steps of ten minutes of random writes (seed 7) committed in groups, as
//! the server's writer does, to SQLite and to the in-memory store alike.

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
pub const DAY: i64 = 86_400_000;

/// The live workspace and both stores after the script, all committed.
pub struct Run {
    /// Holds the SQLite file for as long as the run lives.
    pub dir: tempfile::TempDir,
    pub db: WorkspaceDb,
    pub memory: MemoryStore,
    pub ws: Workspace,
    /// The instant of the last write.
    pub last: i64,
}

/// Runs the script; the last write is the event `kept` of contact `keeper`,
/// who is never deleted.
pub fn run() -> Run {
    run_with(|_, _, _, _| {})
}

/// [`run`], calling `hook` after each group commit of the script's steps
/// (when the store holds everything the workspace applied) with the step,
/// the workspace, the store and the run's directory.
pub fn run_with(mut hook: impl FnMut(u32, &Workspace, &WorkspaceDb, &std::path::Path)) -> Run {
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
            hook(step, &ws, &db, dir.path());
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

    Run {
        dir,
        db,
        memory,
        ws,
        last,
    }
}

/// An event as the server builds one from a client's JSON.
pub fn event(
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

fn text(ws: &Workspace, condition: &str) -> sift_lang::Condition {
    sift_lang::parse_text(condition, &ws.schema()).unwrap()
}

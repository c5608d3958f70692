//! Events, windows, relative dates and scores at exact instants, on small
//! hand-made cases (the randomised check is `time_differential.rs`).

use sift_engine::{
    Cause, ChangeKind, ContactInput, EventInput, FIRST_SEQ, MemoryStore, RawValue, Record,
    ScoringRuleInput, SegmentInput, SegmentKind, Store, Workspace, Write, format_datetime,
    parse_datetime,
};
use sift_lang::parse_text;

fn at(text: &str) -> i64 {
    parse_datetime(text).expect("a datetime")
}

fn segment(ws: &mut Workspace, store: &mut MemoryStore, id: &str, text: &str, now: i64) {
    let condition = parse_text(text, &ws.schema()).expect("a valid condition");
    let write = ws
        .create_segment(
            SegmentInput {
                id: id.into(),
                name: id.into(),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(condition),
                test: false,
            },
            now,
        )
        .expect("segment created");
    keep(store, &write);
}

fn keep(store: &mut MemoryStore, write: &Write) {
    store.commit(&[&write.records]).expect("memory store");
}

fn event(contact: &str, kind: &str, when: i64, amount: f64) -> EventInput {
    EventInput {
        id: None,
        contact_id: contact.into(),
        event_type: kind.into(),
        at: Some(when),
        properties: vec![("amount".into(), RawValue::Number(amount))],
        properties_json: format!("{{\"amount\":{amount}}}"),
        anonymous: None,
    }
}

fn members(ws: &Workspace, id: &str) -> Vec<String> {
    let segment = ws.segment(id).expect("segment");
    segment
        .members
        .bitmap()
        .iter()
        .map(|no| ws.contacts().id(no).to_string())
        .collect()
}

fn time_changes(write: &Write) -> Vec<(String, ChangeKind, String)> {
    write
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Changes(b) if b.cause == Cause::Time => {
                Some((b.segment_id.clone(), b.kind, format_datetime(b.at)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_purchase_window_closes_at_its_exact_instant() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let now = at("2026-03-01T12:00:00Z");
    segment(
        &mut ws,
        &mut store,
        "twice",
        "performed purchase at least 2 times in last 30 days",
        now,
    );
    let w = ws
        .ingest_events(
            &[
                event("ana", "purchase", at("2026-02-01T10:00:00Z"), 10.0),
                event("ana", "purchase", at("2026-02-20T10:00:00Z"), 20.0),
            ],
            now,
        )
        .expect("events");
    keep(&mut store, &w);
    assert_eq!(members(&ws, "twice"), ["ana"]);
    // The first purchase leaves the window 30 days after it, plus 1 ms.
    let exit = at("2026-03-03T10:00:00.001Z");
    assert_eq!(ws.next_timer(), Some(exit));
    let w = ws.advance(exit - 1);
    assert!(time_changes(&w).is_empty());
    assert_eq!(members(&ws, "twice"), ["ana"]);
    let w = ws.advance(at("2026-04-01T00:00:00Z"));
    assert_eq!(
        time_changes(&w),
        [(
            "twice".to_string(),
            ChangeKind::Exited,
            "2026-03-03T10:00:00.001Z".to_string()
        )]
    );
    assert!(members(&ws, "twice").is_empty());
    keep(&mut store, &w);
    let restored = store.load().expect("load");
    assert!(members(&restored, "twice").is_empty());
}

#[test]
fn a_birthday_enters_on_the_day_and_a_restart_records_it_when_due() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let now = at("2026-02-01T00:00:00Z");
    segment(
        &mut ws,
        &mut store,
        "adults",
        "birth_date before 18 years ago",
        now,
    );
    let w = ws
        .upsert_contacts(
            &[
                ContactInput {
                    id: "leap".into(),
                    properties: vec![("birth_date".into(), RawValue::String("2008-02-29".into()))],
                    anonymous: None,
                },
                ContactInput {
                    id: "march".into(),
                    properties: vec![("birth_date".into(), RawValue::String("2008-03-01".into()))],
                    anonymous: None,
                },
            ],
            now,
        )
        .expect("contacts");
    keep(&mut store, &w);
    assert!(members(&ws, "adults").is_empty());
    // Down from now until March: the restart fires both at their instants.
    let mut restored = store.load().expect("load");
    let w = restored.advance(at("2026-03-05T00:00:00Z"));
    assert_eq!(
        time_changes(&w),
        [
            (
                "adults".to_string(),
                ChangeKind::Entered,
                "2026-02-28T00:00:00.001Z".to_string()
            ),
            (
                "adults".to_string(),
                ChangeKind::Entered,
                "2026-03-01T00:00:00.001Z".to_string()
            ),
        ]
    );
    assert_eq!(members(&restored, "adults"), ["leap", "march"]);
}

#[test]
fn points_expire_and_sums_follow_the_window() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let now = at("2026-05-10T00:00:00Z");
    let w = ws
        .create_scoring_rule(
            ScoringRuleInput {
                id: "r1".into(),
                event_type: "purchase".into(),
                filter: None,
                points: 30.0,
                expires_after: Some(sift_lang::Duration {
                    amount: 7,
                    unit: sift_lang::DurationUnit::Days,
                }),
            },
            now,
        )
        .expect("rule");
    keep(&mut store, &w);
    segment(&mut ws, &mut store, "hot", "lead_score >= 50", now);
    segment(
        &mut ws,
        &mut store,
        "big",
        "total purchase.amount >= 100 in last 7 days",
        now,
    );
    let w = ws
        .ingest_events(
            &[
                event("bo", "purchase", at("2026-05-04T00:00:00Z"), 60.0),
                event("bo", "purchase", at("2026-05-09T00:00:00Z"), 40.0),
            ],
            now,
        )
        .expect("events");
    keep(&mut store, &w);
    let no = ws.lookup("bo").expect("bo");
    assert_eq!(ws.contact(no).expect("view").lead_score, 60.0);
    assert_eq!(members(&ws, "hot"), ["bo"]);
    assert_eq!(members(&ws, "big"), ["bo"]);
    let w = ws.advance(at("2026-05-20T00:00:00Z"));
    assert_eq!(
        time_changes(&w),
        [
            (
                "hot".to_string(),
                ChangeKind::Exited,
                "2026-05-11T00:00:00Z".to_string()
            ),
            (
                "big".to_string(),
                ChangeKind::Exited,
                "2026-05-11T00:00:00.001Z".to_string()
            ),
        ]
    );
    assert_eq!(ws.contact(no).expect("view").lead_score, 0.0);
}

#[test]
fn a_replayed_event_id_stays_a_duplicate_after_its_contact_is_erased() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let now = at("2026-06-01T00:00:00Z");
    let mut e1 = event("cy", "purchase", now, 5.0);
    e1.id = Some("e1".into());
    keep(
        &mut store,
        &ws.ingest_events(std::slice::from_ref(&e1), now)
            .expect("event"),
    );
    keep(&mut store, &ws.delete_contact("cy", now).expect("delete"));
    let live = ws
        .ingest_events(std::slice::from_ref(&e1), now)
        .expect("replay");
    assert_eq!(live.duplicates, [0]);
    let mut restored = store.load().expect("load");
    let replay = restored
        .ingest_events(std::slice::from_ref(&e1), now)
        .expect("replay");
    assert_eq!(replay.duplicates, [0]);
    assert_eq!(restored.lookup("cy"), None);
}

/// Seqs start at 1, so 0 is every reader's "nothing seen yet": a fresh
/// workspace's first change is seq 1, also when it was saved and restored
/// before recording anything, and the next ones follow without a gap.
#[test]
fn the_first_change_of_a_fresh_workspace_is_seq_1() {
    let now = at("2026-03-01T00:00:00Z");
    for restored in [false, true] {
        let mut store = MemoryStore::default();
        let mut ws = Workspace::new();
        if restored {
            ws = store.load().expect("memory store");
        }
        assert_eq!(ws.next_seq(), FIRST_SEQ, "restored: {restored}");
        segment(&mut ws, &mut store, "news", "newsletter = true", now);
        let subscriber = |id: &str| ContactInput {
            id: id.into(),
            properties: vec![("newsletter".into(), RawValue::Bool(true))],
            anonymous: None,
        };
        let write = ws
            .upsert_contacts(&[subscriber("ana")], now)
            .expect("upsert");
        keep(&mut store, &write);
        let first: Vec<u64> = write.change_batches().map(|b| b.seq_start).collect();
        assert_eq!(first, [1], "restored: {restored}");
        let write = ws
            .upsert_contacts(&[subscriber("luis")], now)
            .expect("upsert");
        keep(&mut store, &write);
        assert_eq!(write.change_batches().next().map(|b| b.seq_start), Some(2));
        assert_eq!(store.load().expect("memory store").next_seq(), 3);
    }
}

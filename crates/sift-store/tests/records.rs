//! Records committed to SQLite read back as the state the engine restores
//! from (`WorkspaceDb::stored_state`), without running the engine: events in
//! arrival order with their JSON kept verbatim, events leaving with their
//! contact, scoring rules created, replaced and deleted, and the clock kept
//! at its maximum. Also measures how fast events are inserted.

use std::time::Instant;

use sift_engine::{
    ContactSnapshot, EventRecord, FieldDef, Record, ScoringRule, StoredState, Workspace,
};
use sift_lang::{Condition, Duration, DurationUnit, FieldType};
use sift_store::WorkspaceDb;

const NOW: i64 = 1_790_000_000_000;

fn contact(no: u32) -> Record {
    Record::Contact(ContactSnapshot {
        no,
        id: format!("c{no}"),
        anonymous: false,
        created_at: NOW,
        updated_at: NOW,
        last_seen_at: None,
        lead_score: 0.0,
        properties: Vec::new(),
    })
}

fn event(no: u32, id: Option<&str>, event_type: &str, at: i64, json: &str) -> EventRecord {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
    EventRecord {
        no,
        id: id.map(str::to_string),
        event_type: event_type.to_string(),
        at,
        properties: sift_store::event_properties(&object),
        properties_json: json.to_string(),
    }
}

/// The `where` of `performed T where ...`, as a scoring rule holds it.
fn filter(text: &str) -> Condition {
    let ws = Workspace::new();
    match sift_lang::parse_text(text, &ws.schema()).unwrap() {
        Condition::Event {
            filter: Some(filter),
            ..
        } => *filter,
        other => panic!("not an event filter: {other:?}"),
    }
}

fn rule(id: &str, event_type: &str, filter: Option<Condition>, points: f64) -> ScoringRule {
    ScoringRule {
        id: id.to_string(),
        event_type: event_type.to_string(),
        filter,
        points,
        expires_after: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn commit(db: &mut WorkspaceDb, writes: &[Vec<Record>]) {
    let group: Vec<&[Record]> = writes.iter().map(Vec::as_slice).collect();
    sift_engine::Store::commit(db, &group).unwrap();
}

#[test]
fn events_scoring_rules_and_the_clock_read_back_as_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();

    let nested = r#"{"z":1,"cart":{"items":[{"sku":"A-1","qty":2}],"coupon":null},"amount":30.5,"tags":["x","y"],"mixed":[1,"a"],"note":"Ñandú \"q\"","ok":true,"gone":null}"#;
    let bought = event(0, Some("evt-1"), "purchase", NOW - 5_000, nested);
    let anonymous_visit = event(1, None, "page_visit", NOW - 4_000, r#"{"path":"/"}"#);
    let empty = event(2, None, "email_open", NOW - 3_000, "{}");
    // Same id as another event: idempotency is the engine's to decide; the
    // store keeps what it is given.
    let late = event(
        0,
        Some("evt-2"),
        "purchase",
        NOW - 86_400_000,
        r#"{"amount":120}"#,
    );

    let mut shoes = rule(
        "r1",
        "product_view",
        Some(filter(
            "performed product_view where (category = \"shoes\" and price >= 20)",
        )),
        3.0,
    );
    shoes.expires_after = Some(Duration {
        amount: 30,
        unit: DurationUnit::Days,
    });
    let visits = rule("r2", "page_visit", None, 1.0);
    let mut big = rule(
        "r3",
        "purchase",
        Some(filter(
            "performed purchase where (amount > 50 and not tags contains \"test\")",
        )),
        10.5,
    );
    big.expires_after = Some(Duration {
        amount: 6,
        unit: DurationUnit::Months,
    });

    commit(
        &mut db,
        &[
            vec![
                Record::Field(FieldDef {
                    name: "orders".into(),
                    field_type: FieldType::Number,
                    label: "Orders".into(),
                    builtin: false,
                    system: false,
                }),
                contact(0),
                contact(1),
                contact(2),
                Record::Clock(NOW - 10_000),
            ],
            vec![
                Record::Event(bought.clone()),
                Record::Event(anonymous_visit),
                Record::ScoringRule(shoes.clone()),
                Record::ScoringRule(visits),
                Record::Clock(NOW),
                Record::Clock(NOW - 2_000),
            ],
            vec![Record::Event(empty.clone())],
        ],
    );
    commit(
        &mut db,
        &[
            vec![Record::ContactDeleted { no: 1 }, Record::Clock(NOW - 1)],
            vec![Record::Event(late.clone())],
            vec![
                Record::ScoringRuleDeleted { id: "r2".into() },
                Record::ScoringRule(big.clone()),
            ],
        ],
    );
    let mut replaced = shoes.clone();
    replaced.points = 4.0;
    replaced.filter = None;
    replaced.expires_after = None;
    replaced.updated_at = NOW + 1;
    commit(&mut db, &[vec![Record::ScoringRule(replaced.clone())]]);
    drop(db);

    let db = WorkspaceDb::open(&path).unwrap();
    let state: StoredState = db.stored_state().unwrap();
    assert_eq!(state.events, vec![bought, empty, late]);
    assert_eq!(state.events[0].properties_json, nested);
    assert_eq!(
        state.events[0].properties,
        vec![
            ("amount".to_string(), sift_engine::RawValue::Number(30.5)),
            (
                "cart".to_string(),
                sift_engine::RawValue::Unsupported("an object")
            ),
            ("gone".to_string(), sift_engine::RawValue::Null),
            (
                "mixed".to_string(),
                sift_engine::RawValue::Unsupported("a list holding something other than strings")
            ),
            (
                "note".to_string(),
                sift_engine::RawValue::String("Ñandú \"q\"".into())
            ),
            ("ok".to_string(), sift_engine::RawValue::Bool(true)),
            (
                "tags".to_string(),
                sift_engine::RawValue::StringList(vec!["x".into(), "y".into()])
            ),
            ("z".to_string(), sift_engine::RawValue::Number(1.0)),
        ]
    );
    assert_eq!(state.scoring_rules, vec![replaced, big]);
    assert_eq!(state.clock, NOW);
    assert_eq!(db.clock().unwrap(), NOW);
    assert_eq!(state.tombstones, vec![(1, "c1".to_string())]);
    assert_eq!(
        state.contacts.iter().map(|c| c.no).collect::<Vec<_>>(),
        [0, 2]
    );
}

/// Events arrive in writes of 1,000, each its own commit and fsync, as a
/// client posting batches to a busy server would send them.
#[test]
fn event_inserts_are_fast() {
    const TOTAL: u32 = 100_000;
    const PER_WRITE: u32 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let mut db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
    commit(&mut db, &[(0..1_000).map(contact).collect()]);
    let writes: Vec<Vec<Record>> = (0..TOTAL / PER_WRITE)
        .map(|w| {
            (0..PER_WRITE)
                .map(|i| {
                    let n = w * PER_WRITE + i;
                    let json = format!(
                        r#"{{"amount":{},"category":"shoes","sku":"SKU-{n}","tags":["a","b"]}}"#,
                        n % 200
                    );
                    let id = format!("evt-{n}");
                    Record::Event(event(
                        n % 1_000,
                        Some(&id),
                        "purchase",
                        NOW + i64::from(n),
                        &json,
                    ))
                })
                .chain([Record::Clock(NOW + i64::from(w))])
                .collect()
        })
        .collect();
    let started = Instant::now();
    for write in &writes {
        commit(&mut db, std::slice::from_ref(write));
    }
    let took = started.elapsed();
    eprintln!(
        "inserted {TOTAL} events in {:.3}s: {:.0} events/s ({} commits of {PER_WRITE})",
        took.as_secs_f64(),
        f64::from(TOTAL) / took.as_secs_f64(),
        TOTAL / PER_WRITE
    );
    let state = db.stored_state().unwrap();
    assert_eq!(state.events.len(), TOTAL as usize);
    assert!(state.events.windows(2).all(|pair| pair[0].at < pair[1].at));
}

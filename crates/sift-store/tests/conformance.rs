//! The SQLite store against the in-memory one: the same writes committed to
//! both (in groups, as the server's writer does) must load back into the same
//! workspace — fields with their types and labels, contacts with their data,
//! tombstoned ids, segment definitions, memberships and the next seq.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift_engine::{
    ContactInput, MemoryStore, RawValue, Record, SegmentInput, SegmentKind, SegmentPatch, Store,
    Workspace,
};
use sift_lang::FieldType;
use sift_store::WorkspaceDb;

const NOW: i64 = 1_790_000_000_000;

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
        out += &format!("contact {:?}\n", ws.contact(no));
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
    out += &format!("next seq {}\n", ws.next_seq());
    out
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

    for step in 0..600u32 {
        let id = format!("c{}", rng.random_range(0..60));
        let now = NOW + i64::from(step) * 1000;
        let write = match rng.random_range(0..10) {
            0 => ws.delete_contact(&id, now).ok(),
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
        // Commit in groups of a few writes, as the server's writer does.
        if pending.len() >= rng.random_range(1..6) {
            let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
            Store::commit(&mut db, &group).unwrap();
            memory.commit(&group).unwrap();
            pending.clear();
        }
    }
    let group: Vec<&[Record]> = pending.iter().map(Vec::as_slice).collect();
    Store::commit(&mut db, &group).unwrap();
    memory.commit(&group).unwrap();

    let live = summary(&ws);
    let from_memory = summary(&memory.load(NOW + 1_000_000).unwrap());
    let from_sqlite = summary(&Store::load(&db, NOW + 1_000_000).unwrap());
    assert_eq!(from_memory, live);
    assert_eq!(from_sqlite, live);
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
    let stored = reader.changes(None, None, usize::MAX).unwrap();
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
    assert_eq!(read.len() as u64, ws.next_seq());
}

//! A burst of timers fired a slice at a time (`Workspace::begin_burst`,
//! `burst_slice`, `apply_burst_slice`) ends where one `advance` ends: the
//! same members and the same changes, each once, also when a write lands
//! between two slices (it fires the rest first, and the slice computed
//! before it is dropped).

use std::collections::BTreeSet;

use sift_engine::{
    ChangeKind, ContactInput, EventInput, RawValue, SegmentInput, SegmentKind, Workspace, Write,
    parse_datetime,
};
use sift_lang::parse_text;

const DAY: i64 = 86_400_000;
const CONTACTS: u32 = 600;

/// The smallest slice the engine takes: a burst is more contacts than 1
/// (debug builds, so that tests slice small bursts) or 256 due at once.
const MIN_SLICE: usize = if cfg!(debug_assertions) { 2 } else { 257 };

fn t0() -> i64 {
    parse_datetime("2026-06-01T12:00:00Z").expect("a datetime")
}

/// The instant every early ping leaves its one-day window.
fn due() -> i64 {
    t0() + 60_000 + 1
}

fn segment(ws: &mut Workspace, id: &str, text: &str) {
    let condition = parse_text(text, &ws.schema()).expect("condition");
    let input = SegmentInput {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        kind: SegmentKind::Dynamic,
        condition: Some(condition),
        test: false,
    };
    ws.create_segment(input, t0()).expect("segment");
}

/// Every contact pinged one day minus a minute ago; every fifth pinged
/// again now, so it stays. `lapsed` depends on `pinged`.
fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    let contacts: Vec<ContactInput> = (0..CONTACTS)
        .map(|i| ContactInput {
            id: format!("c{i}"),
            properties: vec![("tier".into(), RawValue::String("gold".into()))],
            anonymous: None,
        })
        .collect();
    ws.upsert_contacts(&contacts, t0()).expect("contacts");
    segment(&mut ws, "pinged", "performed ping in last 1 days");
    segment(
        &mut ws,
        "lapsed",
        "not in segment \"pinged\" and tier = \"gold\"",
    );
    let ping = |i: u32, at: i64| EventInput {
        contact_id: format!("c{i}"),
        event_type: "ping".into(),
        at: Some(at),
        properties_json: "{}".into(),
        ..EventInput::default()
    };
    let mut events: Vec<EventInput> = (0..CONTACTS)
        .map(|i| ping(i, t0() - DAY + 60_000))
        .collect();
    events.extend((0..CONTACTS).step_by(5).map(|i| ping(i, t0())));
    ws.ingest(events, t0()).expect("events");
    ws
}

/// Every (segment, kind, contact, instant) the writes recorded; each must
/// be recorded once.
fn changes(writes: &[Write]) -> BTreeSet<(String, bool, u32, i64)> {
    let mut seen = BTreeSet::new();
    for write in writes {
        for batch in write.change_batches() {
            for no in &batch.contacts {
                let change = (
                    batch.segment_id.clone(),
                    batch.kind == ChangeKind::Entered,
                    no,
                    batch.at,
                );
                assert!(seen.insert(change.clone()), "recorded twice: {change:?}");
            }
        }
    }
    seen
}

fn members(ws: &Workspace, id: &str) -> Vec<u32> {
    ws.segment(id)
        .expect("segment")
        .members
        .bitmap()
        .iter()
        .collect()
}

#[test]
fn slices_end_where_one_advance_ends() {
    let mut whole = workspace();
    let expected = changes(&[whole.advance(due())]);
    // 480 leave `pinged` and enter `lapsed`.
    assert_eq!(expected.len(), 960);
    for slice in [1, 3, 7, 100, 1000] {
        let mut sliced = workspace();
        assert!(sliced.begin_burst(due(), slice));
        let mut slices = 0;
        while let Some(part) = sliced.burst_slice() {
            sliced.apply_burst_slice(part);
            slices += 1;
        }
        assert!(!sliced.burst_in_progress());
        let expected_slices = (CONTACTS as usize).div_ceil(slice.max(MIN_SLICE));
        assert_eq!(slices, expected_slices, "slices of {slice}");
        assert_eq!(
            changes(&[sliced.advance(due())]),
            expected,
            "slices of {slice}"
        );
        for id in ["pinged", "lapsed"] {
            assert_eq!(members(&sliced, id), members(&whole, id), "{id}");
        }
        assert_eq!(sliced.clock(), whole.clock());
    }
}

#[test]
fn a_write_between_slices_sees_the_whole_instant() {
    let mut whole = workspace();
    let mut expected = vec![whole.advance(due())];
    let gold = |id: &str| ContactInput {
        id: id.into(),
        properties: vec![("tier".into(), RawValue::String("silver".into()))],
        anonymous: None,
    };
    expected.push(whole.upsert_contacts(&[gold("c1")], due()).expect("upsert"));

    let mut sliced = workspace();
    assert!(sliced.begin_burst(due(), 4));
    let first = sliced.burst_slice().expect("a slice");
    sliced.apply_burst_slice(first);
    let stale = sliced.burst_slice().expect("a second slice");
    // The write fires what is left of the burst before its own change.
    let write = sliced
        .upsert_contacts(&[gold("c1")], due())
        .expect("upsert");
    assert!(!sliced.burst_in_progress());
    sliced.apply_burst_slice(stale);
    let after = sliced.advance(due());
    assert_eq!(changes(&[write, after]), changes(&expected));
    for id in ["pinged", "lapsed"] {
        assert_eq!(members(&sliced, id), members(&whole, id), "{id}");
    }
    // c1 left `pinged` at the burst's instant, then `lapsed` by the write.
    let c1 = whole.lookup("c1").expect("c1");
    assert!(!members(&whole, "lapsed").contains(&c1));
}

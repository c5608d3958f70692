//! Webhook subscriptions and cursors (schema version 3): written through the
//! same group commits as the engine's records, read back after a reopen; a
//! new subscription starts after everything committed before it; cursors
//! only move forward; the change log read by seq range and segment set; and
//! event seqs that are never reused after the last event is erased.

use roaring::RoaringBitmap;
use sift_engine::{Cause, ChangeBatch, ChangeKind, ContactSnapshot, EventRecord, Record};
use sift_store::{
    Pending, PendingBatch, WebhookCursor, WebhookRow, WebhookWrite, WorkspaceDb, WorkspaceReader,
};

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

fn batch(seq_start: u64, segment: &str, contacts: &[u32]) -> Record {
    Record::Changes(ChangeBatch {
        seq_start,
        segment_id: segment.to_string(),
        kind: ChangeKind::Entered,
        cause: Cause::ContactUpdate,
        at: NOW + seq_start as i64,
        contacts: contacts.iter().copied().collect::<RoaringBitmap>(),
    })
}

fn event(no: u32, id: Option<&str>) -> Record {
    Record::Event(EventRecord {
        no,
        id: id.map(str::to_string),
        event_type: "purchase".into(),
        at: NOW,
        properties: Vec::new(),
        properties_json: r#"{"amount":5}"#.into(),
    })
}

fn row(id: &str, segments: Option<&[&str]>) -> WebhookRow {
    WebhookRow {
        id: id.to_string(),
        url: "https://example.com/hook".into(),
        secret: "s3cret".into(),
        segments: segments.map(|s| s.iter().map(|x| x.to_string()).collect()),
        events: true,
        enabled: true,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn records(db: &mut WorkspaceDb, records: Vec<Record>) {
    db.commit(std::iter::once(records.as_slice())).unwrap();
}

fn webhooks(db: &mut WorkspaceDb, writes: Vec<WebhookWrite>) {
    db.commit_all([Pending::Webhooks(&writes)]).unwrap();
}

fn seqs(changes: &[sift_store::StoredChange]) -> Vec<u64> {
    changes.iter().map(|c| c.seq).collect()
}

#[test]
fn subscriptions_and_cursors_are_written_read_and_kept_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    records(
        &mut db,
        vec![
            contact(0),
            contact(1),
            contact(2),
            batch(0, "a", &[0, 1]),
            batch(2, "b", &[2]),
            event(0, Some("e1")),
            event(1, None),
        ],
    );
    // One transaction: records, then the subscription, then more records.
    let more = vec![batch(3, "a", &[2]), event(2, None)];
    let create = vec![WebhookWrite::Create(row("wh_1", Some(&["a"])))];
    db.commit_all([Pending::Webhooks(&create), Pending::Records(&more)])
        .unwrap();

    let reader = WorkspaceReader::open(&path).unwrap();
    let stored = reader.webhook("wh_1").unwrap().unwrap();
    assert_eq!(stored.row, row("wh_1", Some(&["a"])));
    // It starts after what was committed before it, not after `more`.
    assert_eq!(
        stored.cursor,
        WebhookCursor {
            change_seq: 3,
            event_seq: 2,
            acked_at: None,
            pending: None
        }
    );

    let mut edited = row("wh_1", None);
    edited.url = "https://example.com/other".into();
    edited.enabled = false;
    edited.updated_at = NOW + 5;
    webhooks(
        &mut db,
        vec![
            WebhookWrite::Create(row("wh_2", None)),
            WebhookWrite::Update(edited.clone()),
            WebhookWrite::Begin {
                id: "wh_1".into(),
                batch: PendingBatch {
                    change_end: 4,
                    event_end: 3,
                },
            },
        ],
    );
    let stored = reader.webhook("wh_1").unwrap().unwrap();
    assert_eq!(stored.row, edited, "an update keeps created_at");
    assert_eq!(stored.cursor.change_seq, 3, "an update keeps the cursor");
    assert_eq!(
        stored.cursor.pending,
        Some(PendingBatch {
            change_end: 4,
            event_end: 3
        })
    );
    assert_eq!(
        reader.webhook("wh_2").unwrap().unwrap().cursor.change_seq,
        4
    );

    webhooks(
        &mut db,
        vec![WebhookWrite::Advance {
            id: "wh_1".into(),
            change_seq: 4,
            event_seq: 3,
            acked_at: Some(NOW + 9),
        }],
    );
    // An older advance arriving late moves nothing back.
    webhooks(
        &mut db,
        vec![WebhookWrite::Advance {
            id: "wh_1".into(),
            change_seq: 1,
            event_seq: 0,
            acked_at: None,
        }],
    );
    drop(db);
    drop(reader);

    let db = WorkspaceDb::open(&path).unwrap();
    let reader = WorkspaceReader::open(&path).unwrap();
    let all = reader.webhooks().unwrap();
    assert_eq!(
        all.iter().map(|w| w.row.id.as_str()).collect::<Vec<_>>(),
        ["wh_1", "wh_2"]
    );
    assert_eq!(
        all[0].cursor,
        WebhookCursor {
            change_seq: 4,
            event_seq: 3,
            acked_at: Some(NOW + 9),
            pending: None
        }
    );
    drop(db);

    let mut db = WorkspaceDb::open(&path).unwrap();
    webhooks(&mut db, vec![WebhookWrite::Delete { id: "wh_1".into() }]);
    assert!(reader.webhook("wh_1").unwrap().is_none());
    assert_eq!(reader.webhooks().unwrap().len(), 1);
    // Writes about a deleted subscription change nothing and do not fail
    // (a failed commit would stop the workspace's writer).
    webhooks(
        &mut db,
        vec![
            WebhookWrite::Begin {
                id: "wh_1".into(),
                batch: PendingBatch {
                    change_end: 9,
                    event_end: 9,
                },
            },
            WebhookWrite::Advance {
                id: "wh_1".into(),
                change_seq: 9,
                event_seq: 9,
                acked_at: None,
            },
        ],
    );
    assert!(reader.webhook("wh_1").unwrap().is_none());
}

#[test]
fn the_change_log_reads_by_seq_range_and_segment_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    let mut all = vec![contact(0), contact(1), contact(2), contact(3)];
    // seqs 1-4 in a, 5 in b, 6-7 in c, 8-9 in a, 10 in b
    all.extend([
        batch(1, "a", &[0, 1, 2, 3]),
        batch(5, "b", &[1]),
        batch(6, "c", &[0, 2]),
        batch(8, "a", &[1, 3]),
        batch(10, "b", &[3]),
    ]);
    records(&mut db, all);
    let reader = WorkspaceReader::open(&path).unwrap();
    let a = ["a".to_string()];
    let ab = ["a".to_string(), "b".to_string()];
    assert_eq!(
        seqs(&reader.changes_in(1, 11, None, 100).unwrap()),
        (1..11).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&reader.changes_in(3, 7, None, 100).unwrap()),
        [3, 4, 5, 6]
    );
    assert_eq!(
        seqs(&reader.changes_in(3, 11, Some(&a), 100).unwrap()),
        [3, 4, 8, 9]
    );
    assert_eq!(
        seqs(&reader.changes_in(4, 11, Some(&ab), 3).unwrap()),
        [4, 5, 8]
    );
    assert_eq!(seqs(&reader.changes_in(9, 10, Some(&ab), 3).unwrap()), [9]);
    assert!(reader.changes_in(6, 8, Some(&ab), 3).unwrap().is_empty());
    assert!(reader.changes_in(6, 6, None, 3).unwrap().is_empty());
    assert!(reader.changes_in(1, 11, Some(&[]), 3).unwrap().is_empty());
    let change = &reader.changes_in(7, 8, None, 1).unwrap()[0];
    assert_eq!(
        (change.segment_id.as_str(), change.no, change.at),
        ("c", 2, NOW + 6)
    );

    // The paged reads start from the batch holding the first seq wanted;
    // seqs start at 1, so after 0 is from the beginning.
    assert_eq!(seqs(&reader.changes(0, None, 3).unwrap()), [1, 2, 3]);
    assert_eq!(seqs(&reader.changes(6, None, 100).unwrap()), [7, 8, 9, 10]);
    assert_eq!(
        seqs(&reader.changes(2, Some("a"), 100).unwrap()),
        [3, 4, 8, 9]
    );
    assert_eq!(seqs(&reader.changes(8, Some("a"), 100).unwrap()), [9]);
    assert_eq!(seqs(&reader.changes(5, Some("b"), 100).unwrap()), [10]);
    assert!(reader.changes(10, None, 100).unwrap().is_empty());
    assert!(reader.changes(10, Some("c"), 100).unwrap().is_empty());
}

/// A webhook made before any change starts at the first seq, 1: nothing
/// was acknowledged and the first change is not skipped.
#[test]
fn a_webhook_made_on_an_empty_log_starts_at_seq_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    webhooks(&mut db, vec![WebhookWrite::Create(row("wh_1", None))]);
    let reader = WorkspaceReader::open(&path).unwrap();
    let cursor = reader.webhook("wh_1").unwrap().unwrap().cursor;
    assert_eq!((cursor.change_seq, cursor.event_seq), (1, 0));
    records(&mut db, vec![contact(0), batch(1, "a", &[0])]);
    let next = reader.changes_in(cursor.change_seq, 2, None, 10).unwrap();
    assert_eq!(seqs(&next), [1]);
}

#[test]
fn event_seqs_are_never_reused_after_the_last_event_is_erased() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    records(
        &mut db,
        vec![contact(0), contact(1), event(0, None), event(1, None)],
    );
    let reader = WorkspaceReader::open(&path).unwrap();
    assert_eq!(reader.last_event_seq().unwrap(), 2);
    // Erasing contact 1 deletes its event, the last one (seq 2).
    records(&mut db, vec![Record::ContactDeleted { no: 1 }]);
    assert_eq!(reader.last_event_seq().unwrap(), 1);
    records(&mut db, vec![event(0, Some("k"))]);
    let events = reader.events_between(0, u64::MAX, 10).unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(events[1].id.as_deref(), Some("k"));
    assert_eq!(events[1].properties_json, r#"{"amount":5}"#);
    assert_eq!(
        reader.events_between(1, 3, 1).unwrap()[0].seq,
        3,
        "after 1, up to 3, one at most"
    );
    assert!(reader.events_between(3, 10, 10).unwrap().is_empty());
}

//! Events on disk, on small hand-made cases: with a history source memory
//! keeps only the events a live window reads, and what it cannot answer is
//! streamed from the source (the randomised check is the on-disk run of
//! `time_differential.rs`).

use std::sync::{Arc, RwLock};

use sift_engine::{
    Error, EventHistory, EventInput, EventRecord, HistorySource, MemoryStore, RawValue,
    ScoringRuleInput, SegmentInput, SegmentKind, Store, Workspace, Write, parse_datetime,
};
use sift_lang::parse_text;

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    parse_datetime("2026-06-01T12:00:00Z").expect("a datetime")
}

/// A workspace streaming from `store`, which every write is committed to.
struct Shop {
    ws: Workspace,
    store: Arc<RwLock<MemoryStore>>,
}

impl Shop {
    fn new() -> Shop {
        let store = Arc::new(RwLock::new(MemoryStore::default()));
        let mut ws = Workspace::new();
        ws.set_history(HistorySource(store.clone()));
        Shop { ws, store }
    }

    fn keep(&self, write: Result<Write, Error>) -> Write {
        let write = write.expect("write applied");
        self.store
            .write()
            .expect("store lock")
            .commit(&[&write.records])
            .expect("memory store");
        write
    }

    fn segment(&mut self, id: &str, text: &str) -> Write {
        let condition = parse_text(text, &self.ws.schema()).expect("a valid condition");
        let write = self.ws.create_segment(
            SegmentInput {
                id: id.into(),
                name: id.into(),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(condition),
                test: false,
            },
            now(),
        );
        self.keep(write)
    }

    fn ping(&mut self, contact: &str, days_ago: i64) {
        let event = EventInput {
            contact_id: contact.into(),
            event_type: "ping".into(),
            at: Some(now() - days_ago * DAY),
            properties: vec![("amount".into(), RawValue::Number(2.0))],
            properties_json: "{\"amount\":2}".into(),
            ..EventInput::default()
        };
        let write = self.ws.ingest(vec![event], now());
        self.keep(write);
    }

    fn members(&self, id: &str) -> Vec<String> {
        let segment = self.ws.segment(id).expect("segment");
        segment
            .members
            .bitmap()
            .iter()
            .map(|no| self.ws.contacts().id(no).to_string())
            .collect()
    }
}

#[test]
fn memory_keeps_only_the_events_a_window_reads_and_streams_the_rest() {
    let mut shop = Shop::new();
    shop.segment("week", "performed ping in last 7 days");
    for days_ago in [300, 200, 100, 1] {
        shop.ping("ana", days_ago);
    }
    shop.ping("bob", 50);
    assert_eq!(shop.ws.event_count(), 1, "only this week's ping stays");
    assert_eq!(shop.members("week"), ["ana"]);

    // An all-time count no segment keeps is counted from the store.
    let write = shop.segment("loyal", "performed ping at least 4 times");
    assert_eq!(write.history_read, 5);
    assert_eq!(shop.members("loyal"), ["ana"]);
    // A longer window reloads memory for it.
    let write = shop.segment("half", "total ping.amount >= 4 in last 180 days");
    assert_eq!(write.history_read, 5);
    assert_eq!(shop.members("half"), ["ana"]);
    assert_eq!(shop.ws.event_count(), 3, "the last 180 days' pings stay");
    // A preview streams without keeping anything.
    let all = parse_text("performed ping", &shop.ws.schema()).expect("a condition");
    assert_eq!(shop.ws.preview(&all, now()).expect("preview").len(), 2);
    // A rule without expiry counts every stored ping.
    let rule = ScoringRuleInput {
        id: "r".into(),
        event_type: "ping".into(),
        filter: None,
        points: 1.0,
        expires_after: None,
    };
    let write = shop.ws.create_scoring_rule(rule, now());
    let write = shop.keep(write);
    assert_eq!(write.history_read, 5);
    let ana = shop.ws.lookup("ana").expect("ana");
    assert_eq!(shop.ws.contact(ana).map(|c| c.lead_score), Some(4.0));

    // A start streams the store once and comes back the same.
    let store = shop.store.read().expect("store lock").clone();
    let back = store
        .load_streaming(shop.store.clone())
        .expect("a streaming restore");
    for id in ["week", "loyal", "half"] {
        assert_eq!(
            back.segment(id).map(|s| &s.members),
            shop.ws.segment(id).map(|s| &s.members)
        );
    }
    assert_eq!(back.contact(ana).map(|c| c.lead_score), Some(4.0));
    assert_eq!(back.event_count(), 3);
}

/// A source that cannot be read.
struct Broken;

impl EventHistory for Broken {
    fn scan(&self, _: &mut dyn FnMut(u64, &EventRecord)) -> Result<(), String> {
        Err("disk on fire".into())
    }
}

#[test]
fn a_write_that_cannot_read_the_history_changes_nothing() {
    let mut ws = Workspace::new();
    ws.set_history(HistorySource(Arc::new(Broken)));
    let condition = parse_text("performed ping", &ws.schema()).expect("a condition");
    let refused = ws.create_segment(
        SegmentInput {
            id: "s".into(),
            name: "s".into(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: Some(condition),
            test: false,
        },
        now(),
    );
    assert!(
        matches!(refused, Err(Error::HistoryUnavailable(_))),
        "{refused:?}"
    );
    assert!(ws.segment("s").is_none());
    assert_eq!(ws.clock(), 0, "not even the clock moved");
    let rule = ScoringRuleInput {
        id: "r".into(),
        event_type: "ping".into(),
        filter: None,
        points: 1.0,
        expires_after: None,
    };
    let refused = ws.create_scoring_rule(rule, now());
    assert!(
        matches!(refused, Err(Error::HistoryUnavailable(_))),
        "{refused:?}"
    );
    assert!(ws.scoring_rules().is_empty());
}

/// The `where` of an event condition.
fn event_filter(text: &str) -> sift_lang::Condition {
    match parse_text(text, &Workspace::new().schema()) {
        Ok(sift_lang::Condition::Event {
            filter: Some(filter),
            ..
        }) => *filter,
        other => panic!("not an event condition with a filter: {other:?}"),
    }
}

/// The same writes to a workspace on disk and to one holding every event
/// in memory (the oracle).
struct Twins {
    disk: Shop,
    memory: Workspace,
}

impl Twins {
    fn new() -> Twins {
        Twins {
            disk: Shop::new(),
            memory: Workspace::new(),
        }
    }

    fn segment(&mut self, id: &str, text: &str) -> Write {
        let condition = parse_text(text, &self.memory.schema()).expect("a valid condition");
        let input = SegmentInput {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: Some(condition),
            test: false,
        };
        self.memory
            .create_segment(input.clone(), now())
            .expect("created in memory");
        let write = self.disk.ws.create_segment(input, now());
        self.disk.keep(write)
    }

    fn delete(&mut self, id: &str) {
        self.memory.delete_segment(id).expect("deleted in memory");
        let write = self.disk.ws.delete_segment(id);
        self.disk.keep(write);
    }

    fn rule(&mut self, rule: ScoringRuleInput) -> Write {
        self.memory
            .create_scoring_rule(rule.clone(), now())
            .expect("created in memory");
        let write = self.disk.ws.create_scoring_rule(rule, now());
        self.disk.keep(write)
    }

    fn visit(&mut self, contact: &str, days_ago: i64, amount: f64, tag: &str) {
        let event = EventInput {
            contact_id: contact.into(),
            event_type: "visit".into(),
            at: Some(now() - days_ago * DAY),
            properties: vec![
                ("amount".into(), RawValue::Number(amount)),
                ("tag".into(), RawValue::String(tag.into())),
            ],
            properties_json: format!("{{\"amount\":{amount},\"tag\":\"{tag}\"}}"),
            ..EventInput::default()
        };
        self.memory
            .ingest(vec![event.clone()], now())
            .expect("ingested in memory");
        let write = self.disk.ws.ingest(vec![event], now());
        self.disk.keep(write);
    }

    fn assert_same(&self, what: &str) {
        for (_, segment) in self.memory.segments().iter() {
            let id = &segment.def.id;
            assert_eq!(
                self.disk.ws.segment(id).map(|s| &s.members),
                Some(&segment.members),
                "{what}: segment {id}"
            );
        }
        for no in self.memory.contacts().alive().iter() {
            assert_eq!(
                self.disk.ws.contact(no).map(|c| c.lead_score),
                self.memory.contact(no).map(|c| c.lead_score),
                "{what}: score of contact {no}"
            );
        }
    }
}

/// Memory keeps of an event only the properties live windowed counts and
/// expiring rules read; a new windowed count, or a rule, reading another
/// one reloads memory with it, and stays exact.
#[test]
fn memory_keeps_the_properties_windows_read_and_reloads_for_new_ones() {
    let mut twins = Twins::new();
    twins.segment("week", "performed visit in last 7 days");
    for (contact, days_ago, amount, tag) in [
        ("ana", 1, 5.0, "x"),
        ("ana", 2, 1.0, "y"),
        ("bob", 3, 2.0, "x"),
        ("cy", 20, 9.0, "x"),
        ("dee", 4, 7.0, "z"),
    ] {
        twins.visit(contact, days_ago, amount, tag);
    }
    twins.assert_same("no property read");

    // Within the kept window, but `amount` was not kept: read again.
    let write = twins.segment("big", "performed visit where amount > 3 in last 7 days");
    assert!(write.history_read > 0, "memory was not reloaded");
    twins.assert_same("amount read");
    twins.segment(
        "x",
        "performed visit where tag = \"x\" at least 1 times in last 7 days",
    );
    twins.assert_same("tag read");
    let write = twins.segment("big2", "total visit.amount >= 6 in last 7 days");
    assert_eq!(write.history_read, 0, "amount is held: no reload");
    twins.assert_same("a second count on amount");

    // Nothing reads `amount` any more: new events lose it, so a count on it
    // reloads again.
    twins.delete("big");
    twins.delete("big2");
    twins.visit("eve", 1, 8.0, "y");
    twins.visit("bob", 0, 6.0, "y");
    let write = twins.segment("big3", "performed visit where amount > 5 in last 7 days");
    assert!(write.history_read > 0, "memory was not reloaded for amount");
    twins.assert_same("amount read again");

    // An expiring rule reading `tag` scores from memory's events.
    twins.delete("x");
    twins.visit("fay", 1, 1.0, "y");
    let write = twins.rule(ScoringRuleInput {
        id: "tagged".into(),
        event_type: "visit".into(),
        filter: Some(event_filter("performed visit where tag = \"y\"")),
        points: 3.0,
        // The window memory keeps already: only `tag` makes it reload.
        expires_after: Some(sift_lang::Duration {
            amount: 7,
            unit: sift_lang::DurationUnit::Days,
        }),
    });
    assert!(write.history_read > 0);
    twins.assert_same("an expiring rule on tag");
    twins.visit("ana", 0, 2.0, "y");
    twins.assert_same("a new event scored");

    // A start from the store comes back the same.
    let store = twins.disk.store.read().expect("store lock").clone();
    let back = store
        .load_streaming(twins.disk.store.clone())
        .expect("a streaming restore");
    for (_, segment) in twins.memory.segments().iter() {
        assert_eq!(
            back.segment(&segment.def.id).map(|s| &s.members),
            Some(&segment.members)
        );
    }
}

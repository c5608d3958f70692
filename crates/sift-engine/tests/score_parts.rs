//! Where a contact's `lead_score` comes from (`Workspace::score_parts`):
//! per rule (points, events, earliest expiry), on a workspace holding every
//! event in memory and on one streaming its history from a store, checked
//! against sums made here by hand.

use std::sync::{Arc, RwLock};

use sift_engine::{
    EventInput, HistorySource, MemoryStore, RawValue, ScorePart, ScoreSource, ScoringRuleInput,
    Store, Workspace, Write, parse_datetime,
};
use sift_lang::{Duration, DurationUnit, parse_text};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    parse_datetime("2026-06-01T12:00:00Z").expect("a datetime")
}

fn filter(text: &str) -> sift_lang::Condition {
    match parse_text(
        &format!("performed visit where ({text})"),
        &Workspace::new().schema(),
    ) {
        Ok(sift_lang::Condition::Event {
            filter: Some(filter),
            ..
        }) => *filter,
        other => panic!("not an event condition with a filter: {other:?}"),
    }
}

struct Both {
    memory: Workspace,
    disk: Workspace,
    store: Arc<RwLock<MemoryStore>>,
}

impl Both {
    fn new() -> Both {
        let store = Arc::new(RwLock::new(MemoryStore::default()));
        let mut disk = Workspace::new();
        disk.set_history(HistorySource(store.clone()));
        Both {
            memory: Workspace::new(),
            disk,
            store,
        }
    }

    fn keep(&self, write: Write) {
        self.store
            .write()
            .expect("store lock")
            .commit(&[&write.records])
            .expect("memory store");
    }

    fn rule(&mut self, id: &str, where_: Option<&str>, points: f64, expires_days: Option<u32>) {
        let input = ScoringRuleInput {
            id: id.into(),
            event_type: "visit".into(),
            filter: where_.map(filter),
            points,
            expires_after: expires_days.map(|amount| Duration {
                amount,
                unit: DurationUnit::Days,
            }),
        };
        self.memory
            .create_scoring_rule(input.clone(), now())
            .expect("rule in memory");
        let write = self
            .disk
            .create_scoring_rule(input, now())
            .expect("rule on disk");
        self.keep(write);
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
        let write = self
            .disk
            .ingest(vec![event], now())
            .expect("ingested on disk");
        self.keep(write);
    }
}

fn rule_part(id: &str, points: f64, count: u64, next_expiry: Option<i64>) -> ScorePart {
    ScorePart {
        source: ScoreSource::Rule(id.into()),
        points,
        count,
        next_expiry,
    }
}

#[test]
fn parts_name_each_rule_with_its_points_events_and_next_expiry() {
    let mut both = Both::new();
    both.rule("big", Some("amount > 10"), 5.0, None);
    both.rule("recent", None, 1.0, Some(7));
    both.rule("tagged", Some("tag = \"a\""), 2.5, None);
    both.rule("never", Some("amount > 1000"), 100.0, None);
    // ann: 40 days ago (big, tagged), 3 days ago (big, recent), 1 day ago
    // (recent, tagged): the 40-day-old one is past every window memory keeps.
    both.visit("ann", 40, 20.0, "a");
    both.visit("ann", 3, 11.0, "b");
    both.visit("ann", 1, 5.0, "a");
    both.visit("bob", 2, 1.0, "c");
    let ann_expected = vec![
        rule_part("big", 10.0, 2, None),
        rule_part("recent", 2.0, 2, Some(now() - 3 * DAY + 7 * DAY)),
        rule_part("tagged", 5.0, 2, None),
    ];
    let bob_expected = vec![rule_part("recent", 1.0, 1, Some(now() - 2 * DAY + 7 * DAY))];
    for (what, ws) in [("memory", &both.memory), ("disk", &both.disk)] {
        let ann = ws.lookup("ann").expect("ann");
        let parts = ws.score_parts(ann).expect("parts");
        assert_eq!(parts, ann_expected, "{what}: ann");
        let sum: f64 = parts.iter().map(|p| p.points).sum();
        assert_eq!(sum, 17.0, "{what}: ann's parts add up");
        assert_eq!(ws.contact(ann).map(|c| c.lead_score), Some(17.0), "{what}");
        let bob = ws.lookup("bob").expect("bob");
        assert_eq!(
            ws.score_parts(bob).expect("parts"),
            bob_expected,
            "{what}: bob"
        );
    }
}

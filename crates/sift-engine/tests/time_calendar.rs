//! Focused cases of time-dependent membership at calendar edges: leap-day
//! birthdays, month-end windows, `last_seen_at` with late and early events,
//! `after … ago`, windows across a restart, `next_timer()` and lead score
//! expiry. Every expected instant is written out by hand (months and years
//! clamp to the target month's last day, docs/conditions.md), so these pin the exact
//! millisecond at which a change is recorded, with cause `time`.

use sift_engine::{
    Cause, ChangeKind, ContactInput, EventInput, MemoryStore, RawValue, ScoringRuleInput,
    ScoringRulePatch, SegmentInput, SegmentKind, Store, Workspace, Write,
};
use sift_lang::{CmpOp, Condition, Duration, DurationUnit, FieldTest, Scalar, parse_text};

fn t(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .expect("a test timestamp")
        .as_millisecond()
}

/// A workspace whose clock stands at `now`.
fn workspace_at(now: i64) -> Workspace {
    let mut ws = Workspace::new();
    ws.advance(now);
    ws
}

fn segment(ws: &mut Workspace, id: &str, condition: &str, now: i64) -> Write {
    let condition = parse_text(condition, &ws.schema()).expect("a valid condition");
    ws.create_segment(
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
    .expect("segment created")
}

fn upsert(ws: &mut Workspace, id: &str, properties: &[(&str, &str)], now: i64) {
    let input = ContactInput {
        id: id.into(),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), RawValue::String(v.to_string())))
            .collect(),
        anonymous: None,
    };
    ws.upsert_contacts(&[input], now).expect("upsert accepted");
}

fn event(id: Option<&str>, contact: &str, event_type: &str, at: i64) -> EventInput {
    EventInput {
        id: id.map(str::to_string),
        contact_id: contact.into(),
        event_type: event_type.into(),
        at: Some(at),
        properties: Vec::new(),
        properties_json: "{}".into(),
        anonymous: None,
    }
}

fn with_amount(mut e: EventInput, amount: f64) -> EventInput {
    e.properties = vec![("amount".into(), RawValue::Number(amount))];
    e.properties_json = format!("{{\"amount\":{amount}}}");
    e
}

fn ingest(ws: &mut Workspace, events: &[EventInput], now: i64) -> Write {
    ws.ingest_events(events, now).expect("events accepted")
}

fn members(ws: &Workspace, segment: &str) -> Vec<String> {
    let mut ids: Vec<String> = ws
        .segment(segment)
        .expect("segment exists")
        .members
        .bitmap()
        .iter()
        .map(|no| ws.contacts().id(no).to_string())
        .collect();
    ids.sort();
    ids
}

type Change = (String, ChangeKind, Cause, String, Vec<String>);

/// A write's changes as (segment, kind, cause, at, contact ids). Adjacent
/// batches of one segment, kind, cause and instant are merged: the engine may
/// record simultaneous flips of several contacts as one batch each.
fn changes(ws: &Workspace, write: &Write) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for b in write.change_batches() {
        let at = jiff::Timestamp::from_millisecond(b.at).unwrap().to_string();
        let mut ids: Vec<String> = b
            .contacts
            .iter()
            .map(|no| ws.contacts().id(no).to_string())
            .collect();
        match out.last_mut() {
            Some(last)
                if (&last.0, last.1, last.2, &last.3) == (&b.segment_id, b.kind, b.cause, &at) =>
            {
                last.4.append(&mut ids);
                last.4.sort();
            }
            _ => {
                ids.sort();
                out.push((b.segment_id.clone(), b.kind, b.cause, at, ids));
            }
        }
    }
    out
}

fn change(segment: &str, kind: ChangeKind, at: &str, ids: &[&str]) -> Change {
    (
        segment.into(),
        kind,
        Cause::Time,
        jiff::Timestamp::from_millisecond(t(at))
            .unwrap()
            .to_string(),
        ids.iter().map(|s| s.to_string()).collect(),
    )
}

fn score(ws: &Workspace, id: &str) -> f64 {
    ws.contact(ws.lookup(id).expect("contact exists"))
        .unwrap()
        .lead_score
}

#[test]
fn leap_day_birthdays_come_of_age_on_february_28th_in_one_big_step() {
    let now = t("2025-06-01T00:00:00Z");
    let mut ws = workspace_at(now);
    upsert(&mut ws, "leap", &[("birth_date", "2008-02-29")], now);
    upsert(&mut ws, "feb28", &[("birth_date", "2008-02-28")], now);
    upsert(&mut ws, "mar1", &[("birth_date", "2008-03-01")], now);
    upsert(&mut ws, "older", &[("birth_date", "2008-02-27")], now);
    segment(&mut ws, "adults", "birth_date before 18 years ago", now);
    assert!(members(&ws, "adults").is_empty());
    // 2008-02-27 + 18 years = 2026-02-27; "before" is strict, so one ms later.
    assert_eq!(ws.next_timer(), Some(t("2026-02-27T00:00:00.001Z")));

    let write = ws.advance(t("2026-06-01T00:00:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![
            change(
                "adults",
                ChangeKind::Entered,
                "2026-02-27T00:00:00.001Z",
                &["older"]
            ),
            // 2008-02-29 + 18 years clamps to 2026-02-28, the same day as 02-28.
            change(
                "adults",
                ChangeKind::Entered,
                "2026-02-28T00:00:00.001Z",
                &["feb28", "leap"]
            ),
            change(
                "adults",
                ChangeKind::Entered,
                "2026-03-01T00:00:00.001Z",
                &["mar1"]
            ),
        ]
    );
    let seqs: Vec<(u64, u64)> = write
        .change_batches()
        .map(|b| (b.seq_start, b.seq_end()))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0].1 == w[1].0),
        "gapless {seqs:?}"
    );
    assert_eq!(ws.clock(), t("2026-06-01T00:00:00Z"));
    assert_eq!(ws.next_timer(), None);
}

#[test]
fn leap_day_birthday_flips_exactly_one_millisecond_after_midnight() {
    let now = t("2026-02-01T00:00:00Z");
    let mut ws = workspace_at(now);
    upsert(&mut ws, "leap", &[("birth_date", "2008-02-29")], now);
    upsert(&mut ws, "mar1", &[("birth_date", "2008-03-01")], now);
    segment(&mut ws, "adults", "birth_date before 18 years ago", now);
    segment(&mut ws, "minors", "birth_date after 18 years ago", now);
    assert_eq!(members(&ws, "minors"), ["leap", "mar1"]);
    assert_eq!(ws.next_timer(), Some(t("2026-02-28T00:00:00Z")));

    let write = ws.advance(t("2026-02-28T00:00:00Z"));
    // "after 18 years ago" stops holding at the instant itself (add = now is
    // not after), "before" starts one ms later.
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "minors",
            ChangeKind::Exited,
            "2026-02-28T00:00:00Z",
            &["leap"]
        )]
    );
    assert!(members(&ws, "adults").is_empty());
    assert_eq!(ws.next_timer(), Some(t("2026-02-28T00:00:00.001Z")));
    let write = ws.advance(t("2026-02-28T00:00:00.001Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "adults",
            ChangeKind::Entered,
            "2026-02-28T00:00:00.001Z",
            &["leap"]
        )]
    );

    let write = ws.advance(t("2026-03-01T00:00:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "minors",
            ChangeKind::Exited,
            "2026-03-01T00:00:00Z",
            &["mar1"]
        )]
    );
    assert_eq!(ws.next_timer(), Some(t("2026-03-01T00:00:00.001Z")));
    let write = ws.advance(t("2026-03-01T00:00:00.001Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "adults",
            ChangeKind::Entered,
            "2026-03-01T00:00:00.001Z",
            &["mar1"]
        )]
    );
    assert_eq!(members(&ws, "adults"), ["leap", "mar1"]);
}

/// `performed purchase in last 1 month` for a purchase on January 31st: one
/// month later is the last day of February (28th, or 29th in a leap year).
#[test]
fn month_windows_end_on_the_last_day_of_february() {
    for (year, leaves) in [
        (2026, "2026-02-28T10:00:00.001Z"),
        (2024, "2024-02-29T10:00:00.001Z"),
    ] {
        let at = t(&format!("{year}-01-31T10:00:00Z"));
        for big_step in [false, true] {
            let mut ws = workspace_at(at);
            segment(&mut ws, "recent", "performed purchase in last 1 month", at);
            segment(
                &mut ws,
                "lapsed",
                "performed purchase and not performed purchase in last 1 month",
                at,
            );
            ingest(&mut ws, &[event(Some("p1"), "a", "purchase", at)], at);
            assert_eq!(members(&ws, "recent"), ["a"], "{year}");
            assert_eq!(ws.next_timer(), Some(t(leaves)), "{year}");
            if !big_step {
                let write = ws.advance(t(leaves) - 1);
                assert_eq!(write.change_batches().count(), 0, "{year}");
                assert_eq!(members(&ws, "recent"), ["a"], "{year}");
            }
            let until = if big_step {
                t(leaves) + 60 * 86_400_000
            } else {
                t(leaves)
            };
            let write = ws.advance(until);
            // Two independent segments flip at the same instant, in either order.
            let mut got = changes(&ws, &write);
            got.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                got,
                vec![
                    change("lapsed", ChangeKind::Entered, leaves, &["a"]),
                    change("recent", ChangeKind::Exited, leaves, &["a"]),
                ],
                "{year} big step {big_step}"
            );
            assert!(members(&ws, "recent").is_empty());
            assert_eq!(members(&ws, "lapsed"), ["a"]);
        }
    }
}

#[test]
fn last_seen_at_in_last_7_days_follows_late_and_early_events() {
    let now = t("2026-03-10T12:00:00Z");
    let mut ws = workspace_at(now);
    segment(&mut ws, "active", "last_seen_at in last 7 days", now);
    ingest(
        &mut ws,
        &[
            event(Some("a1"), "a", "page_visit", t("2026-03-10T11:00:00Z")),
            // Stamped 4 minutes ahead: last_seen_at is in the future, and a
            // value after now is not "in the last 7 days" until it is reached.
            event(Some("b1"), "b", "page_visit", t("2026-03-10T12:04:00Z")),
        ],
        now,
    );
    let b = ws.lookup("b").unwrap();
    assert_eq!(
        ws.contact(b).unwrap().last_seen_at,
        Some(t("2026-03-10T12:04:00Z"))
    );
    assert_eq!(members(&ws, "active"), ["a"]);
    assert_eq!(ws.next_timer(), Some(t("2026-03-10T12:04:00Z")));
    let write = ws.advance(t("2026-03-10T13:00:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "active",
            ChangeKind::Entered,
            "2026-03-10T12:04:00Z",
            &["b"]
        )]
    );

    // A late event raises last_seen_at only if it is later than the last one.
    let now = t("2026-03-15T09:00:00Z");
    ws.advance(now);
    ingest(
        &mut ws,
        &[
            event(Some("a2"), "a", "page_visit", t("2026-03-12T00:00:00Z")),
            event(Some("b2"), "b", "page_visit", t("2026-03-01T00:00:00Z")),
        ],
        now,
    );
    let a = ws.lookup("a").unwrap();
    assert_eq!(
        ws.contact(a).unwrap().last_seen_at,
        Some(t("2026-03-12T00:00:00Z"))
    );
    assert_eq!(
        ws.contact(b).unwrap().last_seen_at,
        Some(t("2026-03-10T12:04:00Z"))
    );
    // a's timer for its old last_seen_at (exit at 2026-03-17T11:00:00.001)
    // may stay queued: timers are only ever moved earlier, and one firing
    // early finds nothing to change and re-arms at the real instant.
    let next = ws.next_timer().unwrap();
    assert!(next <= t("2026-03-17T12:04:00.001Z"));
    if next < t("2026-03-17T12:04:00.001Z") {
        assert_eq!(ws.advance(next).change_batches().count(), 0);
        assert_eq!(members(&ws, "active"), ["a", "b"]);
    }
    assert_eq!(ws.next_timer(), Some(t("2026-03-17T12:04:00.001Z")));
    let write = ws.advance(t("2026-04-01T00:00:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![
            change(
                "active",
                ChangeKind::Exited,
                "2026-03-17T12:04:00.001Z",
                &["b"]
            ),
            change(
                "active",
                ChangeKind::Exited,
                "2026-03-19T00:00:00.001Z",
                &["a"]
            ),
        ]
    );
}

#[test]
fn after_30_days_ago_on_a_datetime_ends_at_the_instant() {
    let now = t("2026-01-20T00:00:00Z");
    let mut ws = workspace_at(now);
    ws.declare_field("renewal_at", sift_lang::FieldType::DateTime, None)
        .unwrap();
    upsert(
        &mut ws,
        "a",
        &[("renewal_at", "2026-01-15T10:30:00+02:00")],
        now,
    );
    upsert(&mut ws, "b", &[("renewal_at", "2026-01-31T08:00:00Z")], now);
    segment(&mut ws, "fresh", "renewal_at after 30 days ago", now);
    segment(&mut ws, "month", "renewal_at after 1 month ago", now);
    assert_eq!(members(&ws, "fresh"), ["a", "b"]);
    assert_eq!(members(&ws, "month"), ["a", "b"]);
    // a: 2026-01-15T08:30Z + 1 month = 2026-02-15T08:30Z; + 30 days = 02-14.
    assert_eq!(ws.next_timer(), Some(t("2026-02-14T08:30:00Z")));
    let write = ws.advance(t("2026-02-14T08:29:59.999Z"));
    assert_eq!(write.change_batches().count(), 0);
    let write = ws.advance(t("2026-02-14T08:30:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "fresh",
            ChangeKind::Exited,
            "2026-02-14T08:30:00Z",
            &["a"]
        )]
    );
    let write = ws.advance(t("2026-04-01T00:00:00Z"));
    let mut got = changes(&ws, &write);
    got.sort_by(|x, y| (&x.3, &x.0).cmp(&(&y.3, &y.0)));
    assert_eq!(
        got,
        vec![
            change("month", ChangeKind::Exited, "2026-02-15T08:30:00Z", &["a"]),
            // b: January 31st + 1 month clamps to February 28th.
            change("month", ChangeKind::Exited, "2026-02-28T08:00:00Z", &["b"]),
            change("fresh", ChangeKind::Exited, "2026-03-02T08:00:00Z", &["b"]),
        ]
    );
}

/// A restart rebuilds the workspace at its last stored clock; advancing it
/// past a due instant records the change at that instant, once.
#[test]
fn a_window_closes_at_its_instant_across_a_restart() {
    let at = t("2026-01-31T10:00:00Z");
    let mut ws = workspace_at(at);
    let mut store = MemoryStore::default();
    let commit = |w: &Write, store: &mut MemoryStore| {
        let Ok(()) = store.commit(&[&w.records]);
    };
    let w = segment(&mut ws, "recent", "performed purchase in last 1 month", at);
    commit(&w, &mut store);
    let w = ingest(&mut ws, &[event(Some("p1"), "a", "purchase", at)], at);
    commit(&w, &mut store);
    let w = ws.advance(t("2026-02-10T00:00:00Z"));
    commit(&w, &mut store);

    // The live workspace goes on past the due instant; the store does not
    // see it, as if the process died at 2026-02-10.
    let live = ws.advance(t("2026-03-15T00:00:00Z"));
    let live_changes = changes(&ws, &live);

    let Ok(mut restored) = store.load();
    // An advance that fires nothing stores no clock; the restore then
    // evaluates at the last stored one, with nothing due in between.
    assert!(restored.clock() <= t("2026-02-10T00:00:00Z"));
    assert_eq!(members(&restored, "recent"), ["a"]);
    assert_eq!(restored.next_timer(), Some(t("2026-02-28T10:00:00.001Z")));
    let w = restored.advance(t("2026-03-15T00:00:00Z"));
    let expected = vec![change(
        "recent",
        ChangeKind::Exited,
        "2026-02-28T10:00:00.001Z",
        &["a"],
    )];
    assert_eq!(changes(&restored, &w), expected);
    assert_eq!(live_changes, expected);
    assert_eq!(
        w.change_batches().next().unwrap().seq_start,
        live.change_batches().next().unwrap().seq_start
    );
    commit(&w, &mut store);

    // Loaded again: the exit is stored, so nothing is recorded twice.
    let Ok(mut again) = store.load();
    assert!(members(&again, "recent").is_empty());
    assert_eq!(
        again
            .advance(t("2026-03-20T00:00:00Z"))
            .change_batches()
            .count(),
        0
    );
    assert_eq!(again.next_seq(), restored.next_seq());
}

#[test]
fn next_timer_walks_the_exact_instants() {
    let now = t("2026-05-01T00:00:00Z");
    let mut ws = workspace_at(now);
    ws.declare_field("renewal_at", sift_lang::FieldType::DateTime, None)
        .unwrap();
    segment(&mut ws, "buyers", "performed purchase in last 2 hours", now);
    segment(&mut ws, "renewing", "renewal_at in last 1 day", now);
    segment(
        &mut ws,
        "twice",
        "performed page_visit at least 2 times in last 90 minutes",
        now,
    );
    ingest(
        &mut ws,
        &[
            event(Some("p"), "a", "purchase", t("2026-04-30T23:30:00Z")),
            event(Some("v1"), "b", "page_visit", t("2026-04-30T23:00:00Z")),
            event(Some("v2"), "b", "page_visit", t("2026-04-30T23:45:00Z")),
        ],
        now,
    );
    upsert(&mut ws, "c", &[("renewal_at", "2026-05-01T00:30:00Z")], now);
    assert_eq!(members(&ws, "buyers"), ["a"]);
    assert_eq!(members(&ws, "twice"), ["b"]);
    assert!(members(&ws, "renewing").is_empty());

    let mut flips = Vec::new();
    let mut steps = 0;
    while let Some(next) = ws.next_timer() {
        assert!(next > ws.clock());
        let write = ws.advance(next);
        flips.extend(changes(&ws, &write));
        steps += 1;
        assert!(steps < 100, "timers never run out");
    }
    assert_eq!(
        flips,
        vec![
            change(
                "renewing",
                ChangeKind::Entered,
                "2026-05-01T00:30:00Z",
                &["c"]
            ),
            // The first visit leaves the 90-minute window 1 ms after 00:30.
            change(
                "twice",
                ChangeKind::Exited,
                "2026-05-01T00:30:00.001Z",
                &["b"]
            ),
            change(
                "buyers",
                ChangeKind::Exited,
                "2026-05-01T01:30:00.001Z",
                &["a"]
            ),
            change(
                "renewing",
                ChangeKind::Exited,
                "2026-05-02T00:30:00.001Z",
                &["c"]
            ),
        ]
    );
}

#[test]
fn lead_score_points_expire_at_their_instant() {
    let at = t("2026-01-31T10:00:00Z");
    let mut ws = workspace_at(at);
    let rule = |id: &str, event_type: &str, points, expires_after, filter| ScoringRuleInput {
        id: id.into(),
        event_type: event_type.into(),
        filter,
        points,
        expires_after,
    };
    let month = Some(Duration {
        amount: 1,
        unit: DurationUnit::Months,
    });
    let two_hours = Some(Duration {
        amount: 2,
        unit: DurationUnit::Hours,
    });
    let r1 = rule("r1", "purchase", 10.0, month, None);
    let r3 = rule("r3", "page_visit", 2.5, two_hours, None);
    ws.create_scoring_rule(r1, at).unwrap();
    ws.create_scoring_rule(r3, at).unwrap();
    segment(&mut ws, "warm", "lead_score >= 10", at);
    segment(&mut ws, "hot", "lead_score > 16", at);
    ingest(
        &mut ws,
        &[
            with_amount(event(Some("p1"), "a", "purchase", at), 60.0),
            event(Some("v1"), "a", "page_visit", at),
        ],
        at,
    );
    assert_eq!(score(&ws, "a"), 12.5);
    // A rule created later scores past events too.
    // A where names event properties: built as a tree, since parse_text
    // would read `amount` as a contact field.
    let big = Condition::Field {
        field: "amount".into(),
        test: FieldTest::Compare(CmpOp::Gte, Scalar::Number(50.0)),
        ignore_case: false,
    };
    let r2 = rule("r2", "purchase", 5.0, None, Some(big));
    ws.create_scoring_rule(r2, at).unwrap();
    assert_eq!(score(&ws, "a"), 17.5);
    assert_eq!(members(&ws, "hot"), ["a"]);
    assert_eq!(members(&ws, "warm"), ["a"]);

    // A replayed id is acknowledged and not scored again.
    let write = ingest(
        &mut ws,
        &[with_amount(event(Some("p1"), "a", "purchase", at), 60.0)],
        at,
    );
    assert_eq!((write.accepted, write.duplicates.clone()), (0, vec![0]));
    assert_eq!(score(&ws, "a"), 17.5);

    // The page visit's points are taken away 2 hours after it, exactly.
    assert_eq!(ws.next_timer(), Some(t("2026-01-31T12:00:00Z")));
    ws.advance(t("2026-01-31T11:59:59.999Z"));
    assert_eq!(score(&ws, "a"), 17.5);
    let write = ws.advance(t("2026-01-31T12:00:00Z"));
    assert_eq!(score(&ws, "a"), 15.0);
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "hot",
            ChangeKind::Exited,
            "2026-01-31T12:00:00Z",
            &["a"]
        )]
    );

    // The purchase's 10 points go one calendar month later: February 28th.
    assert_eq!(ws.next_timer(), Some(t("2026-02-28T10:00:00Z")));
    let write = ws.advance(t("2026-03-10T00:00:00Z"));
    assert_eq!(score(&ws, "a"), 5.0);
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "warm",
            ChangeKind::Exited,
            "2026-02-28T10:00:00Z",
            &["a"]
        )]
    );

    // Edited in place: no expiry any more, so the points come back.
    let patch = ScoringRulePatch {
        expires_after: Some(None),
        ..ScoringRulePatch::default()
    };
    ws.update_scoring_rule("r1", patch, t("2026-03-10T00:00:00Z"))
        .unwrap();
    assert_eq!(score(&ws, "a"), 15.0);
    assert_eq!(members(&ws, "warm"), ["a"]);
    ws.delete_scoring_rule("r2", t("2026-03-10T00:00:00Z"))
        .unwrap();
    assert_eq!(score(&ws, "a"), 10.0);
    assert_eq!(ws.next_timer(), None);
}

/// docs/concepts.md: events up to 5 minutes ahead are accepted and count at once;
/// further ahead the batch is refused whole.
#[test]
fn early_events_count_at_once_and_later_ones_are_refused() {
    let now = t("2026-06-30T23:58:00Z");
    let mut ws = workspace_at(now);
    segment(&mut ws, "today", "performed purchase in last 1 day", now);
    let early = t("2026-07-01T00:03:00Z");
    let write = ingest(&mut ws, &[event(Some("e1"), "a", "purchase", early)], now);
    assert_eq!(write.accepted, 1);
    assert_eq!(members(&ws, "today"), ["a"]);
    let refused = ws.ingest_events(
        &[
            event(Some("e2"), "b", "purchase", now),
            event(Some("e3"), "b", "purchase", early + 1),
        ],
        now,
    );
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(ws.lookup("b"), None);
    assert_eq!(ws.next_timer(), Some(t("2026-07-02T00:03:00.001Z")));
    let write = ws.advance(t("2026-07-05T00:00:00Z"));
    assert_eq!(
        changes(&ws, &write),
        vec![change(
            "today",
            ChangeKind::Exited,
            "2026-07-02T00:03:00.001Z",
            &["a"]
        )]
    );
}

//! Differential test of the segmentation engine against an independent oracle.
//!
//! Random sequences of writes — contact upserts (single and in batches, with
//! missing properties and `Null` removals, deletes and re-creation of deleted
//! ids), segment creates, condition edits (also ones that would close a
//! reference cycle), renames, segment deletes (also of segments still in use),
//! static adds and removes, field declarations and retypes, and invalid writes
//! of every kind — are applied to a [`Workspace`] and to a plain model kept by
//! this test. After every step it checks that:
//!
//! - every segment's incrementally kept membership equals a from-scratch
//!   evaluation by the oracle below (a straightforward recursive evaluator of
//!   docs/conditions.md over the model, `in segment` answered from the oracle's own
//!   membership in dependency order, static segments = added − removed −
//!   deleted contacts); the engine's evaluator is never used as the oracle;
//! - bulk evaluation (`Workspace::preview`, i.e. `evaluate_all`) equals the
//!   incremental membership, and so does `explain` for a few contacts;
//! - every contact's stored view (properties, system fields, segments) equals
//!   the model, and the schema equals the model's;
//! - the change log is gapless from seq 1, every change has a plausible cause,
//!   and replaying entered/exited per segment from empty gives exactly the
//!   current membership;
//! - a rejected write returns the expected error and changes nothing.
//!
//! Every `RESTORE_EVERY` steps (and at the end) a workspace is rebuilt with
//! `Workspace::restore` from the records the writes returned; its state must
//! equal the live one, and every other time the run continues on the restored
//! workspace.
//!
//! Besides the regular runs (20 to 300 contacts), a large run starts with
//! 2,600 contacts and makes static writes and edits that change thousands of
//! members at once, so that re-evaluations over scopes above the engine's
//! one-contact-at-a-time limit (2,048) are checked too.
//!
//! Knobs: `SIFT_DIFF_SEEDS` (a count, default 8, or a comma-separated list of
//! seeds), `SIFT_DIFF_STEPS` (steps per seed, default 400), `SIFT_DIFF_LARGE`
//! (number of large runs, default 1), `SIFT_DIFF_LARGE_STEPS` (default 40).
//! To reproduce a failure, `SIFT_DIFF_SEED` or `SIFT_DIFF_LARGE_SEED` runs
//! that one run alone.
//!
//! The run itself (model and oracle, generator, steps, checks) is in
//! `harness/plain/`; `harness/` holds what both differential tests share.

use std::time::Instant;

use sift_engine::{ContactInput, RawValue, SegmentInput, SegmentKind, Workspace};
use sift_lang::{Condition, FieldTest};

mod harness;
#[path = "harness/plain/mod.rs"]
mod plain;

use harness::fmt_datetime;
use harness::oracle::{days_from_civil, fmt_date};
use plain::{DAY_MS, Run, Stats, T0, runs};

#[test]
fn hand_written_dates() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2026, 1, 1) * DAY_MS, T0);
    assert_eq!(fmt_date(days_from_civil(2000, 2, 29)), "2000-02-29");
    assert_eq!(fmt_date(-1), "1969-12-31");
    assert_eq!(fmt_datetime(-1, 0), "1969-12-31T23:59:59.999Z");
    assert_eq!(fmt_datetime(T0, -330), "2025-12-31T18:30:00-05:30");
    assert_eq!(fmt_datetime(T0 + 250, 120), "2026-01-01T02:00:00.250+02:00");
}

#[test]
fn incremental_membership_matches_oracle() {
    let started = Instant::now();
    let mut total = Stats::default();
    let runs = runs();
    for (seed, steps, large) in &runs {
        let mut run = Run::new(*seed, *steps, *large);
        run.run();
        total.add(&run.stats);
    }
    let s = total;
    let seeds: Vec<String> = runs
        .iter()
        .map(|(seed, steps, large)| format!("{seed}{}x{steps}", if *large { "L" } else { "" }))
        .collect();
    eprintln!(
        "differential: runs {seeds:?}, {} steps in {:.1?}: {} upserted items, {} contact deletes, \
         {} segment creates, {} edits, {} deletes, {} static writes, {} field retypes, {} rejected writes \
         ({} cycles, {} in use), {} restores, {} changes ({} segment writes changing over 2048 \
         members of a referenced segment); at most {} contacts, {} segments, reference chains of {}",
        s.steps,
        started.elapsed(),
        s.upserted_items,
        s.contact_deletes,
        s.segment_creates,
        s.segment_edits,
        s.segment_deletes,
        s.static_writes,
        s.retypes,
        s.rejected,
        s.cycles,
        s.in_use,
        s.restores,
        s.changes,
        s.wide_changes,
        s.max_contacts,
        s.max_segments,
        s.max_rank,
    );
}

/// The first bug this test found: a new contact was only checked against the
/// segments reading a field it set and those holding for a contact with no
/// properties, so it missed `not in segment A` when A holds for the blank
/// contact but not for it (A's membership did not change, so nothing queued
/// the segment referring to it).
#[test]
fn new_contact_enters_a_segment_negating_a_blank_true_one() {
    let mut ws = Workspace::new();
    let dynamic = |id: &str, condition| SegmentInput {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        kind: SegmentKind::Dynamic,
        condition: Some(condition),
        test: false,
    };
    let no_email = Condition::Field {
        field: "email".into(),
        test: FieldTest::IsNotSet,
        ignore_case: false,
    };
    ws.create_segment(dynamic("a", no_email), T0).unwrap();
    let not_a = Condition::Not(Box::new(Condition::InSegment("a".into())));
    ws.create_segment(dynamic("b", not_a), T0).unwrap();
    let input = ContactInput {
        id: "c".into(),
        properties: vec![("email".into(), RawValue::String("c@example.com".into()))],
        anonymous: None,
    };
    ws.upsert_contacts(&[input], T0).unwrap();
    let no = ws.lookup("c").unwrap();
    assert!(!ws.segment("a").unwrap().members.contains(no));
    assert!(ws.segment("b").unwrap().members.contains(no));
}

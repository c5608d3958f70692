//! Differential test of events, lead scoring and the passing of time against
//! an independent oracle.
//!
//! Random runs mix event ingestion (late, on-time and up to 5 minutes early
//! events, replayed ids, events for unknown contacts, rejected batches with
//! events stamped too far ahead), contact upserts and deletes, scoring rules
//! (with and without `where` and `expires_after`; created, edited in place and
//! deleted), dynamic segments mixing field tests, relative-time field tests
//! (`in last`, `before … ago`, `after … ago`, minutes to years),
//! `performed …` with `where`, counts and windows, `not performed …`,
//! `total x.amount …`, `lead_score` tests and `in segment` references, and
//! static segments. The clock moves forward in random steps from 1 ms to 120
//! days, often landing exactly on the engine's `next_timer()`, 1 ms before or
//! after it, and on month ends and leap days.
//!
//! After every step the test calls `advance(now)` and checks that:
//!
//! - every segment's members equal the oracle's from-scratch evaluation at
//!   `now` over the whole event history (the oracle below implements the
//!   semantics itself, with jiff only for calendar months; it never calls the
//!   engine's evaluator), and every contact's `lead_score`, `last_seen_at`,
//!   `created_at`, `updated_at`, `anonymous` and properties equal the model;
//! - every change batch caused by time (and every batch `advance` records)
//!   has `at` after the previous clock and at most `now`, in instant order,
//!   and for each of its contacts the oracle's membership at `at - 1` and at
//!   `at` is exactly the recorded exit or entry;
//! - the engine's `next_timer()` is after `now` and no later than the first
//!   instant at which the oracle sees any membership flip (so no flip can be
//!   late), and `clock()` is `now`;
//! - the change log is gapless from seq 1 and replays to current membership;
//! - a rejected event batch or rule write changes nothing (not even the
//!   clock), and `check_events` names the same items.
//!
//! Every `RESTORE_EVERY` steps (and at the end) all records are committed to
//! a `MemoryStore`, a workspace is loaded from it and advanced to `now`: it
//! must record no change and equal the live one; every other time the run
//! continues on the restored workspace.
//!
//! Knobs: `SIFT_TIME_SEEDS` (a count, default 20, or a comma-separated list),
//! `SIFT_TIME_STEPS` (steps per seed, default 300); `SIFT_TIME_SEED=N` runs
//! seed N alone, which is how a failure message says to reproduce it.
//!
//! The run itself (model and oracle, generator, steps, checks) is in
//! `harness/time/`; `harness/` holds what both differential tests share.

use std::time::Instant;

use sift_lang::{Duration, DurationUnit};

mod harness;
#[path = "harness/time/mod.rs"]
mod time;

use harness::oracle::{days_from_civil, fmt_date};
use time::{DAY, Run, Stats, add, at_utc, runs, show};

#[test]
fn hand_written_calendar() {
    assert_eq!(at_utc(2026, 1, 1, 0, 0), 1_767_225_600_000);
    assert_eq!(fmt_date(days_from_civil(2000, 2, 29)), "2000-02-29");
    let month = Duration {
        amount: 1,
        unit: DurationUnit::Months,
    };
    let years = Duration {
        amount: 18,
        unit: DurationUnit::Years,
    };
    assert_eq!(
        add(at_utc(2026, 1, 31, 10, 0), month),
        at_utc(2026, 2, 28, 10, 0)
    );
    assert_eq!(
        add(at_utc(2024, 1, 31, 10, 0), month),
        at_utc(2024, 2, 29, 10, 0)
    );
    assert_eq!(
        add(at_utc(2008, 2, 29, 0, 0), years),
        at_utc(2026, 2, 28, 0, 0)
    );
    assert_eq!(
        show(at_utc(2026, 2, 28, 10, 0) + 1),
        "2026-02-28T10:00:00.001Z"
    );
}

#[test]
fn time_dependent_membership_matches_oracle() {
    differential("time differential", Run::new);
}

/// The same runs with the events on disk: the workspace streams its
/// history from a store kept in step with it and holds in memory only the
/// events a live window reads, so new all-time and long-window segments,
/// rule writes and restores are counted from the store.
#[test]
fn time_dependent_membership_matches_oracle_on_disk() {
    differential("time differential on disk", Run::on_disk);
}

fn differential(name: &str, make: fn(u64, usize) -> Run) {
    let started = Instant::now();
    let mut total = Stats::default();
    let runs = runs();
    for (seed, steps) in &runs {
        let mut run = make(*seed, *steps);
        run.run();
        total.add(&run.stats);
    }
    let s = total;
    eprintln!(
        "{name}: {} runs, {} steps in {:.1?} covering {:.0} days: {} events ({} replays), \
         {} refused writes, {} upserts, {} contact deletes, {} segment writes, {} rule writes, \
         {} restores ({} from an older clock, re-firing {} changes), {} changes ({} by time), {} steps onto the next timer; \
         {} of {} segment checks had members and non-members",
        runs.len(),
        s.steps,
        started.elapsed(),
        s.clock_ms as f64 / DAY as f64,
        s.events,
        s.replays,
        s.rejected_batches,
        s.upserts,
        s.deletes,
        s.segment_writes,
        s.rule_writes,
        s.restores,
        s.lag_restores,
        s.lag_changes,
        s.changes,
        s.time_changes,
        s.on_timer,
        s.mixed_checks,
        s.segment_checks,
    );
}

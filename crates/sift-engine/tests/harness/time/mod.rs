//! The time run: a model of contacts with events, scoring rules and
//! segments whose answers depend on the clock, writes generated at random
//! against it and a `Workspace`, and the checks after every step.
//! `time_differential.rs` drives it.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use sift_engine::{
    Cause, ChangeBatch, ChangeKind, ContactInput, ContactView, Error, EventHistory, EventInput,
    HistorySource, MemoryStore, RawValue, Record, ScoringRule, ScoringRuleInput, ScoringRulePatch,
    SegmentDef, SegmentInput, SegmentKind, SegmentPatch, Store, Value, Workspace, Write,
};
use sift_lang::{
    CmpOp, Condition, CountTest, Duration, DurationUnit, FieldTest, FieldType, Scalar, to_text,
};

use crate::harness::oracle::{
    case_foldable, civil_from_days, days_from_civil, env_number, fmt_date, lower_test, refs_of,
};
use crate::harness::replay::Replay;
use crate::harness::{CMP_OPS, ConditionGen, History, fmt_datetime, seed_list};

mod checks;
mod generator;
mod model;
mod steps;

use model::*;

pub(crate) const DEFAULT_SEEDS: u64 = 20;
pub(crate) const DEFAULT_STEPS: usize = 300;
pub(crate) const RESTORE_EVERY: usize = 25;

pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;
/// docs/concepts.md: events more than 5 minutes ahead of now are rejected.
pub(crate) const MAX_FUTURE: i64 = 5 * MINUTE;

pub(crate) const EVENT_TYPES: &[&str] = &["purchase", "page_visit", "email_open", "signup"];
pub(crate) const COUNTRIES: &[&str] = &["ES", "FR", "PT", "DE", "es", "Fr"];
pub(crate) const CATEGORIES: &[&str] = &["shoes", "hats", "bags", "shoes/red", "Shoes"];
pub(crate) const SUBSTRINGS: &[&str] = &["sho", "s", "/", "red", "x", "SHO", "Red"];
pub(crate) const TAGS: &[&str] = &["sale", "new", "gift", "Sale"];
pub(crate) const INTERESTS: &[&str] = &["shoes", "hats", "travel", "Travel"];
pub(crate) const MAX_SEGMENTS: usize = 10;
pub(crate) const MAX_RULES: usize = 6;

// ---------------------------------------------------------------------------
// Calendar, written here so that neither inputs nor expectations come from
// the engine. Only month arithmetic (with its end-of-month clamping) is left
// to jiff, as the brief for this test asks.

pub(crate) fn at_utc(y: i64, m: i64, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, m, d) * DAY + h * HOUR + mi * MINUTE
}

pub(crate) fn show(ms: i64) -> String {
    fmt_datetime(ms, 0)
}

thread_local! {
    /// `add` of months is called for the same instants over and over.
    static MONTHS: RefCell<HashMap<(i64, i64), i64>> = RefCell::new(HashMap::new());
}

/// `t + d`: fixed units in milliseconds; months and years on t's UTC civil
/// date-time, the day clamped to the target month's last day.
pub(crate) fn add(t: i64, d: Duration) -> i64 {
    let n = i64::from(d.amount);
    let months = match d.unit {
        DurationUnit::Minutes => return t + n * MINUTE,
        DurationUnit::Hours => return t + n * HOUR,
        DurationUnit::Days => return t + n * DAY,
        DurationUnit::Weeks => return t + 7 * n * DAY,
        DurationUnit::Months => n,
        DurationUnit::Years => 12 * n,
    };
    MONTHS.with(|cache| {
        *cache.borrow_mut().entry((t, months)).or_insert_with(|| {
            let zoned = jiff::Timestamp::from_millisecond(t)
                .expect("instant in range")
                .to_zoned_datetime(jiff::tz::TimeZone::UTC);
            zoned
                .checked_add(jiff::Span::new().months(months))
                .expect("instant in range")
                .timestamp()
                .as_millisecond()
        })
    })
}

/// `t - d`, calendar months as in [`add`].
pub(crate) fn sub(t: i64, d: Duration) -> i64 {
    let n = i64::from(d.amount);
    let months = match d.unit {
        DurationUnit::Months => n,
        DurationUnit::Years => 12 * n,
        _ => return t - (add(t, d) - t),
    };
    jiff::Timestamp::from_millisecond(t)
        .expect("instant in range")
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .checked_sub(jiff::Span::new().months(months))
        .expect("instant in range")
        .timestamp()
        .as_millisecond()
}

// ---------------------------------------------------------------------------
// One run.

/// The write whose records are being absorbed, for the cause checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Events,
    Upsert,
    DeleteContact,
    Segment,
    Static,
    Rule,
    Advance,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) steps: usize,
    pub(crate) events: usize,
    pub(crate) replays: usize,
    pub(crate) rejected_batches: usize,
    pub(crate) upserts: usize,
    pub(crate) deletes: usize,
    pub(crate) segment_writes: usize,
    pub(crate) rule_writes: usize,
    pub(crate) restores: usize,
    pub(crate) changes: u64,
    pub(crate) time_changes: u64,
    pub(crate) on_timer: usize,
    pub(crate) clock_ms: i64,
    /// Segment checks, and those where some but not all contacts were members.
    pub(crate) segment_checks: usize,
    pub(crate) mixed_checks: usize,
    pub(crate) lag_restores: usize,
    pub(crate) lag_changes: usize,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.events += o.events;
        self.replays += o.replays;
        self.rejected_batches += o.rejected_batches;
        self.upserts += o.upserts;
        self.deletes += o.deletes;
        self.segment_writes += o.segment_writes;
        self.rule_writes += o.rule_writes;
        self.restores += o.restores;
        self.changes += o.changes;
        self.time_changes += o.time_changes;
        self.on_timer += o.on_timer;
        self.clock_ms += o.clock_ms;
        self.segment_checks += o.segment_checks;
        self.mixed_checks += o.mixed_checks;
        self.lag_restores += o.lag_restores;
        self.lag_changes += o.lag_changes;
    }
}

/// What a rejected write must leave untouched.
#[derive(Debug, PartialEq)]
pub(crate) struct Digest {
    pub(crate) next_seq: u64,
    pub(crate) views: Vec<ContactView>,
    pub(crate) segments: Vec<(SegmentDef, RoaringBitmap)>,
    pub(crate) rules: Vec<ScoringRule>,
    pub(crate) next_timer: Option<i64>,
    pub(crate) clock: i64,
}

pub(crate) fn digest(ws: &Workspace) -> Digest {
    let mut segments: Vec<(SegmentDef, RoaringBitmap)> = ws
        .segments()
        .iter()
        .map(|(_, s)| (s.def.clone(), s.members.bitmap().into_owned()))
        .collect();
    segments.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let views = ws
        .contacts()
        .alive()
        .iter()
        .map(|no| {
            let mut view = ws.contact(no).expect("alive contact has a view");
            view.segments.sort();
            view
        })
        .collect();
    Digest {
        next_seq: ws.next_seq(),
        views,
        segments,
        rules: ws.scoring_rules().to_vec(),
        next_timer: ws.next_timer(),
        clock: ws.clock(),
    }
}

/// The parts of two digests that differ, for failure messages.
pub(crate) fn digest_diff(a: &Digest, b: &Digest) -> String {
    let mut out = String::new();
    if a.next_seq != b.next_seq {
        let _ = writeln!(out, "  next_seq {} vs {}", a.next_seq, b.next_seq);
    }
    if a.clock != b.clock {
        let _ = writeln!(out, "  clock {} vs {}", show(a.clock), show(b.clock));
    }
    if a.next_timer != b.next_timer {
        let timers = (a.next_timer.map(show), b.next_timer.map(show));
        let _ = writeln!(out, "  next_timer {timers:?}");
    }
    if a.rules != b.rules {
        let _ = writeln!(out, "  rules {:?}\n     vs {:?}", a.rules, b.rules);
    }
    if a.views.len() != b.views.len() {
        let _ = writeln!(out, "  {} vs {} contacts", a.views.len(), b.views.len());
    }
    for (x, y) in a.views.iter().zip(&b.views) {
        if x != y {
            let _ = writeln!(out, "  {x:?}\n  vs {y:?}");
        }
    }
    if a.segments.len() != b.segments.len() {
        let _ = writeln!(
            out,
            "  {} vs {} segments",
            a.segments.len(),
            b.segments.len()
        );
    }
    for (x, y) in a.segments.iter().zip(&b.segments) {
        if x != y {
            let _ = writeln!(out, "  {x:?}\n  vs {y:?}");
        }
    }
    out
}

/// A store as it was when a stretch of steps without writes began, and the
/// changes the live workspace recorded since: a restart from it must fire
/// the same ones.
pub(crate) struct Lag {
    pub(crate) store: MemoryStore,
    pub(crate) clock: i64,
    pub(crate) changes: Vec<(String, ChangeKind, Cause, i64, u32)>,
}

pub(crate) struct Run {
    pub(crate) seed: u64,
    pub(crate) steps: usize,
    pub(crate) rng: StdRng,
    pub(crate) ws: Workspace,
    pub(crate) store: MemoryStore,
    /// On disk: the store the workspace streams its history from (a copy
    /// of `store` kept in step with it), memory holding recent events only.
    pub(crate) shared: Option<Arc<RwLock<MemoryStore>>>,
    pub(crate) model: Model,
    pub(crate) now: i64,
    pub(crate) start: i64,
    pub(crate) step: usize,
    pub(crate) pool: usize,
    pub(crate) next_event: usize,
    pub(crate) next_rule: usize,
    pub(crate) next_segment: usize,
    /// Membership per segment, replayed from the change log.
    pub(crate) replay: Replay,
    /// The engine's clock when the last returned records were absorbed: a
    /// change caused by time is due after it. Not simply the last `now`,
    /// since a write without one (a segment delete) leaves the clock alone.
    pub(crate) recorded: i64,
    pub(crate) next_seq: u64,
    pub(crate) history: History,
    pub(crate) stats: Stats,
    pub(crate) swap_next_restore: bool,
    /// Steps left in the current stretch without writes.
    pub(crate) quiet: usize,
    pub(crate) lag: Option<Lag>,
}

pub(crate) fn dur(amount: u32, unit: DurationUnit) -> Duration {
    Duration { amount, unit }
}

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Run {
    pub(crate) fn new(seed: u64, steps: usize) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        // Starts chosen so that runs cross month ends, 2024-02-29 and 2028-02-29.
        let starts = [
            at_utc(2026, 1, 1, 0, 0),
            at_utc(2023, 12, 20, 8, 0),
            at_utc(2027, 11, 15, 12, 0),
            at_utc(2024, 2, 27, 23, 59) + 59_000,
        ];
        let start = starts[(seed % starts.len() as u64) as usize];
        let pool = *[8, 16, 30].choose(&mut rng).unwrap();
        Run {
            seed,
            steps,
            rng,
            ws: Workspace::new(),
            store: MemoryStore::default(),
            shared: None,
            model: Model::default(),
            now: start,
            start,
            step: 0,
            pool,
            next_event: 0,
            next_rule: 0,
            next_segment: 0,
            replay: Replay::default(),
            recorded: i64::MIN,
            next_seq: sift_engine::FIRST_SEQ,
            history: History::new(600),
            stats: Stats::default(),
            swap_next_restore: true,
            quiet: 0,
            lag: None,
        }
    }

    /// A run whose workspace keeps its events in a history source.
    pub(crate) fn on_disk(seed: u64, steps: usize) -> Run {
        let mut run = Run::new(seed, steps);
        let shared = Arc::new(RwLock::new(MemoryStore::default()));
        run.ws.set_history(HistorySource(shared.clone()));
        run.shared = Some(shared);
        run
    }

    pub(crate) fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let text = self.history.lines();
        panic!(
            "seed {} step {} (now {}): {msg}\nrecent steps:\n{text}reproduce: SIFT_TIME_SEED={} SIFT_TIME_STEPS={}",
            self.seed,
            self.step,
            show(self.now),
            self.seed,
            self.step + 1
        );
    }

    pub(crate) fn note(&mut self, text: String) {
        self.history.note(self.step, text);
    }

    pub(crate) fn text(&self, cond: &Condition) -> String {
        to_text(cond, &self.ws.schema())
    }

    /// A contact and its events, for failure messages.
    pub(crate) fn describe(&self, cid: &str) -> String {
        let Some(c) = self.model.contacts.get(cid) else {
            return format!("{cid:?} (not in the model)");
        };
        let mut out = format!(
            "{cid:?}: props {:?}, created {}, updated {}, anonymous {}, lead_score {} now\n",
            c.props,
            show(c.created_at),
            show(c.updated_at),
            c.anonymous,
            self.model.lead_score(c, self.now)
        );
        for e in &c.events {
            let _ = writeln!(
                out,
                "      event {:?} {} at {} {:?}",
                e.id,
                e.ty,
                show(e.at),
                e.props
            );
        }
        out
    }

    pub(crate) fn run(&mut self) {
        let write = self
            .ws
            .declare_field("renewal_at", FieldType::DateTime, Some("Renewal"))
            .unwrap_or_else(|e| self.fail(format!("declare renewal_at: {e}")));
        self.absorb(&write, Kind::Upsert);
        self.advance();
        self.check();
        while self.step < self.steps {
            self.one_step();
            self.step += 1;
        }
        self.restore_check();
        self.stats.steps = self.steps;
        self.stats.clock_ms = self.now - self.start;
    }

    pub(crate) fn one_step(&mut self) {
        let before = self.now;
        self.now = self.next_now();
        self.note(format!(
            "clock {} -> {} (+{} ms)",
            show(before),
            show(self.now),
            self.now - before
        ));
        if self.quiet == 0 && self.rng.random_bool(0.08) {
            self.quiet = self.rng.random_range(1..=5);
            self.lag = Some(Lag {
                store: self.store.clone(),
                clock: self.ws.clock(),
                changes: Vec::new(),
            });
        }
        // Sometimes the clock is advanced before writes, as a server ticking
        // every second would; otherwise writes meet timers already due.
        if self.rng.random_bool(0.3) {
            self.advance();
        }
        let writes = if self.quiet > 0 {
            0
        } else {
            self.rng.random_range(0..=3)
        };
        for _ in 0..writes {
            match self.rng.random_range(0..100) {
                0..=37 => self.events_step(),
                38..=41 => self.rejected_events_step(),
                42..=55 => self.upsert_step(),
                56..=59 => self.delete_contact_step(),
                60..=69 => self.create_segment_step(),
                70..=77 => self.edit_segment_step(),
                78..=80 => self.delete_segment_step(),
                81..=85 => self.static_step(),
                86..=91 => self.create_rule_step(),
                92..=95 => self.edit_rule_step(),
                96 => self.refused_rule_step(),
                _ => self.delete_rule_step(),
            }
        }
        self.advance();
        self.check();
        if self.quiet > 0 {
            self.quiet -= 1;
            if self.quiet == 0 {
                self.lag_check();
            }
        }
        if (self.step + 1).is_multiple_of(RESTORE_EVERY) {
            self.restore_check();
        }
    }
}

pub(crate) fn describe_events(items: &[EventInput]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|e| {
            format!(
                "{{id {:?} {:?} {} at {} {}{}}}",
                e.id,
                e.contact_id,
                e.event_type,
                e.at.map_or("now".to_string(), show),
                e.properties_json,
                e.anonymous
                    .map_or(String::new(), |a| format!(" anonymous {a}"))
            )
        })
        .collect();
    shown.join(", ")
}

pub(crate) fn runs() -> Vec<(u64, usize)> {
    let steps = env_number("SIFT_TIME_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    if let Some(seed) = env_number("SIFT_TIME_SEED") {
        return vec![(seed, steps)];
    }
    let seeds = seed_list("SIFT_TIME_SEEDS", DEFAULT_SEEDS);
    seeds.into_iter().map(|s| (s, steps)).collect()
}

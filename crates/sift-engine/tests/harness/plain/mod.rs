//! The plain differential run: a model of contacts, fields and segments,
//! writes generated at random against it and a `Workspace`, and the checks
//! after every step. `differential.rs` drives it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use sift_engine::{
    Cause, ChangeBatch, ChangeKind, ContactInput, ContactSnapshot, Error, FieldDef, RawValue,
    Record, SegmentDef, SegmentInput, SegmentKind, SegmentPatch, Value, Workspace, Write,
};
use sift_lang::{CmpOp, Condition, FieldTest, FieldType, Scalar, to_text};

use crate::harness::oracle::{days_from_civil, env_number, fmt_date, refs_of};
use crate::harness::replay::Replay;
use crate::harness::{CMP_OPS, ConditionGen, History, fmt_datetime, seed_list};

mod checks;
mod contact_steps;
mod generator;
mod model;
mod segment_steps;

use model::*;

pub(crate) const DEFAULT_SEEDS: u64 = 8;
pub(crate) const DEFAULT_STEPS: usize = 400;
pub(crate) const DEFAULT_LARGE_RUNS: u64 = 1;
pub(crate) const DEFAULT_LARGE_STEPS: usize = 40;
/// Seeds of large runs start here.
pub(crate) const LARGE_SEEDS: u64 = 1000;
pub(crate) const LARGE_POOL: usize = 2600;
pub(crate) const RESTORE_EVERY: usize = 125;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z, where the clock of every run starts.
pub(crate) const T0: i64 = 1_767_225_600_000;
pub(crate) const MAX_SEGMENTS: usize = 14;
/// Segment ids are drawn from `g0..gN`, so deleted ids get reused.
pub(crate) const SEGMENT_IDS: usize = 22;

pub(crate) const STRINGS: &[&str] = &[
    "",
    "a",
    "ab",
    "abc",
    "b",
    "ES",
    "FR",
    "PT",
    "es",
    "shoes",
    "x@example.com",
    "y@example.org",
    "Ünïcode",
    "ÜNÏCODE",
    "Es",
    "quote\"d",
    "back\\slash",
    "two words",
];
pub(crate) const SUBSTRINGS: &[&str] = &[
    "", "a", "b", "ab", "@example", ".com", "s", "Ü", "\"", "\\", " ", "zz", "AB", ".COM",
];
pub(crate) const ITEMS: &[&str] = &["shoes", "hats", "bags", "", "Shoes", "a b", "ü"];
pub(crate) const NUMBERS: &[f64] = &[-2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 10.0, 42.0, 1e6];

/// Built-in and system fields as docs/concepts.md lists them.
pub(crate) const BUILTINS: &[(&str, FieldType)] = &[
    ("email", FieldType::String),
    ("phone", FieldType::String),
    ("first_name", FieldType::String),
    ("last_name", FieldType::String),
    ("country", FieldType::String),
    ("birth_date", FieldType::Date),
    ("newsletter", FieldType::Boolean),
    ("interests", FieldType::StringList),
];
pub(crate) const SYSTEM: &[(&str, FieldType)] = &[
    ("created_at", FieldType::DateTime),
    ("updated_at", FieldType::DateTime),
    ("last_seen_at", FieldType::DateTime),
    ("anonymous", FieldType::Boolean),
    ("lead_score", FieldType::Number),
];
/// Declared at the start of every run.
pub(crate) const DECLARED: &[(&str, FieldType)] = &[
    ("s1", FieldType::String),
    ("s2", FieldType::String),
    ("n1", FieldType::Number),
    ("n2", FieldType::Number),
    ("b1", FieldType::Boolean),
    ("d1", FieldType::Date),
    ("t1", FieldType::DateTime),
    ("t2", FieldType::DateTime),
    ("l1", FieldType::StringList),
    ("f1", FieldType::Number),
    ("f2", FieldType::String),
];
/// Declared in the middle of a run.
pub(crate) const LATE: &[(&str, FieldType)] = &[
    ("late_d", FieldType::Date),
    ("late_l", FieldType::StringList),
    ("late_b", FieldType::Boolean),
    ("late_t", FieldType::DateTime),
];
/// Created by inference on their first write (always with this type).
pub(crate) const INFERRED: &[(&str, FieldType)] = &[
    ("x_str", FieldType::String),
    ("x_num", FieldType::Number),
    ("x_flag", FieldType::Boolean),
    ("x_tags", FieldType::StringList),
];
pub(crate) const ALL_TYPES: [FieldType; 6] = [
    FieldType::String,
    FieldType::Number,
    FieldType::Boolean,
    FieldType::Date,
    FieldType::DateTime,
    FieldType::StringList,
];

// ---------------------------------------------------------------------------
// What the writes returned: the change log replayed, and the store rebuilt.

#[derive(Default)]
pub(crate) struct Log {
    pub(crate) next_seq: u64,
    /// Membership per segment, replayed from entered/exited.
    pub(crate) replay: Replay,
    pub(crate) fields: Vec<FieldDef>,
    pub(crate) contacts: BTreeMap<u32, ContactSnapshot>,
    pub(crate) deleted: BTreeMap<u32, String>,
    pub(crate) segments: BTreeMap<String, SegmentDef>,
    pub(crate) statics: HashMap<String, RoaringBitmap>,
}

/// Which error a rejected write must return.
pub(crate) type Expected = fn(&Error) -> bool;

/// The write whose records are being absorbed, for cause checks.
pub(crate) enum Kind {
    Upsert(HashSet<String>),
    DeleteContact(u32),
    CreateSegment(String),
    EditSegment(String),
    Static {
        id: String,
        add: bool,
        contacts: RoaringBitmap,
    },
    DeleteSegment,
    DeclareField,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) steps: usize,
    pub(crate) upserted_items: usize,
    pub(crate) contact_deletes: usize,
    pub(crate) segment_creates: usize,
    pub(crate) segment_edits: usize,
    pub(crate) segment_deletes: usize,
    pub(crate) static_writes: usize,
    pub(crate) rejected: usize,
    pub(crate) cycles: usize,
    pub(crate) in_use: usize,
    pub(crate) restores: usize,
    pub(crate) changes: u64,
    pub(crate) max_contacts: usize,
    pub(crate) max_segments: usize,
    pub(crate) max_rank: usize,
    /// Segment writes that changed more than 2,048 members of a segment
    /// other segments refer to.
    pub(crate) wide_changes: usize,
    pub(crate) retypes: usize,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.upserted_items += o.upserted_items;
        self.contact_deletes += o.contact_deletes;
        self.segment_creates += o.segment_creates;
        self.segment_edits += o.segment_edits;
        self.segment_deletes += o.segment_deletes;
        self.static_writes += o.static_writes;
        self.rejected += o.rejected;
        self.cycles += o.cycles;
        self.in_use += o.in_use;
        self.restores += o.restores;
        self.changes += o.changes;
        self.max_contacts = self.max_contacts.max(o.max_contacts);
        self.max_segments = self.max_segments.max(o.max_segments);
        self.max_rank = self.max_rank.max(o.max_rank);
        self.wide_changes += o.wide_changes;
        self.retypes += o.retypes;
    }
}

/// What a rejected write must leave untouched (contacts are compared with
/// the model by the check that follows every step).
#[derive(Debug, PartialEq)]
pub(crate) struct Digest {
    pub(crate) next_seq: u64,
    pub(crate) contacts: u64,
    pub(crate) fields: Vec<FieldDef>,
    pub(crate) segments: Vec<(SegmentDef, RoaringBitmap)>,
}

pub(crate) fn digest(ws: &Workspace) -> Digest {
    let mut segments: Vec<(SegmentDef, RoaringBitmap)> = ws
        .segments()
        .iter()
        .map(|(_, s)| (s.def.clone(), s.members.bitmap().into_owned()))
        .collect();
    segments.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Digest {
        next_seq: ws.next_seq(),
        contacts: ws.contact_count(),
        fields: ws.fields().to_vec(),
        segments,
    }
}

// ---------------------------------------------------------------------------
// One run.

pub(crate) struct Run {
    pub(crate) seed: u64,
    pub(crate) large: bool,
    pub(crate) steps: usize,
    pub(crate) rng: StdRng,
    pub(crate) ws: Workspace,
    pub(crate) model: Model,
    pub(crate) log: Log,
    pub(crate) now: i64,
    /// Every `now` a write used, for thresholds that hit exactly.
    pub(crate) nows: Vec<i64>,
    pub(crate) step: usize,
    pub(crate) pool: usize,
    pub(crate) names: usize,
    pub(crate) dates: Vec<i64>,
    pub(crate) datetimes: Vec<i64>,
    pub(crate) history: History,
    pub(crate) stats: Stats,
    pub(crate) swap_next_restore: bool,
}

pub(crate) fn contact_id(k: usize) -> String {
    match k {
        0 => "ü-ñ 0".to_string(),
        1 => "with space".to_string(),
        2 => "x".repeat(128),
        _ => format!("c{k}"),
    }
}

impl Run {
    pub(crate) fn new(seed: u64, steps: usize, large: bool) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let pool = if large {
            LARGE_POOL
        } else {
            *[20, 40, 80, 150, 300].choose(&mut rng).unwrap()
        };
        let day = |y, m, d| days_from_civil(y, m, d);
        let dates = vec![
            day(1965, 1, 1),
            day(1969, 12, 31),
            day(1970, 1, 1),
            day(1990, 6, 15),
            day(2000, 2, 29),
            day(2024, 12, 31),
            day(1900, 3, 1),
            day(2038, 1, 19),
        ];
        let datetimes = vec![
            T0,
            T0 - 30 * DAY_MS,
            T0 + 3_600_000,
            T0 - 1,
            T0 + 250,
            day(2024, 2, 29) * DAY_MS + 12 * 3_600_000,
            -1,
            day(2000, 1, 1) * DAY_MS,
        ];
        let mut model = Model::default();
        for (name, t) in BUILTINS.iter().chain(SYSTEM) {
            model.types.insert(name.to_string(), *t);
        }
        Run {
            seed,
            large,
            steps,
            rng,
            ws: Workspace::new(),
            model,
            // The oracle's log expects the first change at seq 1.
            log: Log {
                next_seq: sift_engine::FIRST_SEQ,
                ..Log::default()
            },
            now: T0,
            nows: vec![T0],
            step: 0,
            pool,
            names: 0,
            dates,
            datetimes,
            history: History::new(400),
            stats: Stats::default(),
            swap_next_restore: true,
        }
    }

    pub(crate) fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let text = self.history.lines();
        let how = if self.large {
            format!(
                "SIFT_DIFF_LARGE_SEED={} SIFT_DIFF_LARGE_STEPS={}",
                self.seed,
                self.step + 1
            )
        } else {
            format!(
                "SIFT_DIFF_SEED={} SIFT_DIFF_STEPS={}",
                self.seed,
                self.step + 1
            )
        };
        panic!(
            "seed {} step {}: {msg}\nrecent steps:\n{text}reproduce: {how}",
            self.seed, self.step
        );
    }

    pub(crate) fn note(&mut self, text: String) {
        self.history.note(self.step, text);
    }

    pub(crate) fn text(&self, cond: &Condition) -> String {
        to_text(cond, &self.ws.schema())
    }

    pub(crate) fn run(&mut self) {
        for (name, t) in DECLARED {
            let label = format!("Field {name}");
            let write = self
                .ws
                .declare_field(name, *t, Some(&label))
                .unwrap_or_else(|e| self.fail(format!("declare {name}: {e}")));
            self.model.types.insert(name.to_string(), *t);
            self.absorb(&write, &Kind::DeclareField);
        }
        self.check();
        if self.large {
            // Everyone at once: the first upsert is a batch of the whole pool.
            self.upsert_ids((0..self.pool).map(contact_id).collect());
            self.check();
        }
        while self.step < self.steps {
            self.one_step();
            self.step += 1;
        }
        self.restore_check();
        self.stats.steps = self.steps;
    }

    pub(crate) fn one_step(&mut self) {
        self.now += match self.rng.random_range(0..10) {
            0 => 0,
            1 => 1,
            _ => self.rng.random_range(1..=600_000),
        };
        self.nows.push(self.now);
        if self.large && self.rng.random_bool(0.3) {
            self.wide_step();
            self.check();
            return;
        }
        match self.rng.random_range(0..100) {
            0..=21 => self.upsert_step(1),
            22..=33 => {
                let n = if self.large && self.rng.random_bool(0.3) {
                    self.rng.random_range(300..=1500)
                } else if self.rng.random_bool(0.1) {
                    self.rng.random_range(20..=60)
                } else {
                    self.rng.random_range(2..=10)
                };
                self.upsert_step(n)
            }
            34..=37 => self.invalid_batch_step(),
            38..=43 => self.delete_contact_step(),
            44..=53 => self.create_segment_step(),
            54..=65 => self.edit_segment_step(),
            66..=68 => self.rename_step(),
            69..=73 => self.delete_segment_step(),
            74..=85 => self.static_step(),
            86..=88 => self.declare_field_step(),
            89..=91 => self.misc_invalid_step(),
            _ => self.upsert_step(1),
        }
        self.check();
        if (self.step + 1).is_multiple_of(RESTORE_EVERY) {
            self.restore_check();
        }
    }
}

/// (seed, steps, large) of every run to make.
pub(crate) fn runs() -> Vec<(u64, usize, bool)> {
    let steps = env_number("SIFT_DIFF_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    let large_steps =
        env_number("SIFT_DIFF_LARGE_STEPS").map_or(DEFAULT_LARGE_STEPS, |n| n as usize);
    if let Some(seed) = env_number("SIFT_DIFF_LARGE_SEED") {
        return vec![(seed, large_steps, true)];
    }
    if let Some(seed) = env_number("SIFT_DIFF_SEED") {
        return vec![(seed, steps, false)];
    }
    let large = env_number("SIFT_DIFF_LARGE").unwrap_or(DEFAULT_LARGE_RUNS);
    let mut runs: Vec<(u64, usize, bool)> = seed_list("SIFT_DIFF_SEEDS", DEFAULT_SEEDS)
        .into_iter()
        .map(|s| (s, steps, false))
        .collect();
    runs.extend((0..large).map(|i| (LARGE_SEEDS + i, large_steps, true)));
    runs
}

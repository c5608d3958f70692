//! The harness of the two differential tests. This module holds what both
//! runs use; each run's model and oracle, generator, steps and checks live
//! in `plain/` (`differential.rs`) and `time/` (`time_differential.rs`),
//! which a test file includes by path so that it compiles only its own run.

use std::collections::VecDeque;

use sift_lang::{CmpOp, Condition};

pub mod oracle;
pub mod replay;

use oracle::fmt_date;

/// Every comparison operator, for generated conditions.
pub const CMP_OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Lte,
    CmpOp::Gt,
    CmpOp::Gte,
];

/// RFC 3339 of `ms`, written in the zone `offset_min` minutes east of UTC
/// (by hand, so that the inputs do not come from the engine).
pub fn fmt_datetime(ms: i64, offset_min: i64) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let local = ms + offset_min * MINUTE;
    let (days, rem) = (local.div_euclid(DAY), local.rem_euclid(DAY));
    let (h, mi, s, milli) = (rem / HOUR, rem / MINUTE % 60, rem / 1000 % 60, rem % 1000);
    let frac = if milli != 0 {
        format!(".{milli:03}")
    } else {
        String::new()
    };
    let zone = if offset_min == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    };
    format!("{}T{h:02}:{mi:02}:{s:02}{frac}{zone}", fmt_date(days))
}

/// The last steps of a run, printed when it fails.
pub struct History {
    entries: VecDeque<String>,
    /// Bytes kept of each entry.
    width: usize,
}

impl History {
    /// How many steps a failure shows.
    const LEN: usize = 40;

    pub fn new(width: usize) -> History {
        History {
            entries: VecDeque::with_capacity(Self::LEN),
            width,
        }
    }

    pub fn note(&mut self, step: usize, text: String) {
        if self.entries.len() == Self::LEN {
            self.entries.pop_front();
        }
        self.entries
            .push_back(clip(format!("[{step}] {text}"), self.width));
    }

    /// The entries, oldest first, one indented line each.
    pub fn lines(&self) -> String {
        self.entries.iter().map(|h| format!("  {h}\n")).collect()
    }
}

/// `text` cut to at most `limit` bytes (at a character boundary).
fn clip(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The seeds to run: `var` holds a count (seeds 0 to count - 1) or a
/// comma-separated list of seeds; unset, seeds 0 to `default` - 1.
pub fn seed_list(var: &str, default: u64) -> Vec<u64> {
    match std::env::var(var) {
        Ok(text) if text.contains(',') => text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: a count or a list of seeds"))
            })
            .collect(),
        _ => (0..oracle::env_number(var).unwrap_or(default)).collect(),
    }
}

/// How both runs draw a condition: a random AND/OR/NOT tree whose leaves
/// each run draws its own way, and the check that a client could send it.
pub trait ConditionGen {
    fn rng(&mut self) -> &mut rand::rngs::StdRng;
    /// One leaf; `refs` are the segments it may refer to.
    fn gen_leaf(&mut self, refs: &[String]) -> Condition;
    fn workspace(&self) -> &sift_engine::Workspace;
    fn fail_with(&self, message: String) -> !;

    /// A condition as the checker would accept it: groups are never empty.
    fn gen_node(&mut self, refs: &[String], depth: u32, budget: &mut i32) -> Condition {
        use rand::Rng;
        *budget -= 1;
        if depth == 0 || *budget <= 0 || self.rng().random_bool(0.4) {
            return self.gen_leaf(refs);
        }
        match self.rng().random_range(0..10) {
            0..=7 => {
                let n = self.rng().random_range(1..=3);
                let children = (0..n)
                    .map(|_| self.gen_node(refs, depth - 1, budget))
                    .collect();
                if self.rng().random_bool(0.5) {
                    Condition::All(children)
                } else {
                    Condition::Any(children)
                }
            }
            _ => Condition::Not(Box::new(self.gen_node(refs, depth - 1, budget))),
        }
    }

    /// The generated tree is one a client could send: JSON → checker → the same tree.
    fn check_tree(&self, cond: &Condition) {
        match sift_lang::from_json(&sift_lang::to_json(cond), &self.workspace().schema()) {
            Ok(back) if back == *cond => {}
            Ok(back) => self.fail_with(format!(
                "generator made a tree the checker reads differently: {cond:?} -> {back:?}"
            )),
            Err(e) => self.fail_with(format!("generator made an invalid tree {cond:?}: {e}")),
        }
    }
}

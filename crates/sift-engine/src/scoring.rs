//! Lead scoring rules (docs/concepts.md): each matching event adds `points` to the
//! contact's `lead_score`; with `expires_after`, the points are taken away
//! again once that long has passed since the event's `at`.

use sift_lang::{Condition, DateTime, Duration};

use crate::aggregates::summable;
use crate::changes::EventRecord;
use crate::events::{EventLog, Filter, StoredEvent, raw_value_ref};
use crate::time::{NEVER, add};

#[derive(Clone, Debug, PartialEq)]
pub struct ScoringRule {
    pub id: String,
    pub event_type: String,
    /// A condition over the event's properties.
    pub filter: Option<Condition>,
    pub points: f64,
    pub expires_after: Option<Duration>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A rule to create; the id is chosen by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringRuleInput {
    pub id: String,
    pub event_type: String,
    pub filter: Option<Condition>,
    pub points: f64,
    pub expires_after: Option<Duration>,
}

/// An edit; `None` leaves a part unchanged, `Some(None)` removes an optional one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoringRulePatch {
    pub event_type: Option<String>,
    pub filter: Option<Option<Condition>>,
    pub points: Option<f64>,
    pub expires_after: Option<Option<Duration>>,
}

/// The rules of a workspace in creation order, with filters compiled.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<ScoringRule>,
    compiled: Vec<Compiled>,
}

#[derive(Clone, Debug)]
struct Compiled {
    kind: u32,
    filter: Option<Filter>,
}

impl Rules {
    pub fn all(&self) -> &[ScoringRule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&ScoringRule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn any_expiring(&self) -> bool {
        self.rules.iter().any(|r| r.expires_after.is_some())
    }

    /// Adds a rule, or replaces the one with its id in place.
    pub fn put(&mut self, rule: ScoringRule, log: &mut EventLog) {
        let compiled = Compiled {
            kind: log.types.intern(&rule.event_type),
            filter: rule
                .filter
                .as_ref()
                .map(|f| Filter::compile(f, &mut log.names)),
        };
        match self.rules.iter().position(|r| r.id == rule.id) {
            Some(i) => {
                self.rules[i] = rule;
                self.compiled[i] = compiled;
            }
            None => {
                self.rules.push(rule);
                self.compiled.push(compiled);
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<ScoringRule> {
        let i = self.rules.iter().position(|r| r.id == id)?;
        self.compiled.remove(i);
        Some(self.rules.remove(i))
    }

    /// Points `event` earns at `now`, added rule by rule to `score`, and the
    /// earliest instant some of them expire.
    pub fn score_event(
        &self,
        event: &StoredEvent,
        log: &EventLog,
        now: DateTime,
        score: &mut f64,
        next_expiry: &mut DateTime,
    ) {
        for (rule, compiled) in self.rules.iter().zip(&self.compiled) {
            if compiled.kind != event.kind
                || !compiled
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(event, &log.strings))
            {
                continue;
            }
            match rule.expires_after {
                Some(d) => {
                    let expiry = add(event.at, d);
                    if expiry > now {
                        *score += summable(rule.points);
                        *next_expiry = (*next_expiry).min(expiry);
                    }
                }
                None => *score += rule.points,
            }
        }
    }

    /// The points `event` earns for good under the rules without
    /// `expires_after`: what an event on disk keeps adding to its contact's
    /// score once memory no longer holds it.
    pub fn lasting_points(&self, event: &StoredEvent, log: &EventLog) -> f64 {
        let mut points = 0.0;
        for (rule, compiled) in self.rules.iter().zip(&self.compiled) {
            if rule.expires_after.is_none()
                && compiled.kind == event.kind
                && compiled
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(event, &log.strings))
            {
                points += rule.points;
            }
        }
        points
    }

    /// The points of the rules with `expires_after` that `events` still
    /// earn at `now`, and the earliest instant some of them expire.
    pub fn expiring_score(
        &self,
        events: &[StoredEvent],
        log: &EventLog,
        now: DateTime,
    ) -> (f64, DateTime) {
        let mut score = 0.0;
        let mut next = NEVER;
        for event in events {
            for (rule, compiled) in self.rules.iter().zip(&self.compiled) {
                let Some(d) = rule.expires_after else {
                    continue;
                };
                if compiled.kind != event.kind
                    || !compiled
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(event, &log.strings))
                {
                    continue;
                }
                let expiry = add(event.at, d);
                if expiry > now {
                    score += summable(rule.points);
                    next = next.min(expiry);
                }
            }
        }
        (score, next)
    }

    /// The durations of the rules with `expires_after`: how long their
    /// events must stay in memory.
    /// The event types and property names the rules with an expiry read:
    /// those read events memory keeps (on disk).
    pub fn expiring_reads(&self) -> impl Iterator<Item = (u32, Vec<u32>)> + '_ {
        self.rules
            .iter()
            .zip(&self.compiled)
            .filter(|(rule, _)| rule.expires_after.is_some())
            .map(|(_, compiled)| {
                let mut names = Vec::new();
                if let Some(filter) = &compiled.filter {
                    filter.names(&mut names);
                }
                (compiled.kind, names)
            })
    }

    pub fn expiries(&self) -> impl Iterator<Item = Duration> + '_ {
        self.rules.iter().filter_map(|r| r.expires_after)
    }

    /// A contact's score from its whole history at `now`, in arrival order.
    pub fn score(&self, events: &[StoredEvent], log: &EventLog, now: DateTime) -> (f64, DateTime) {
        let mut score = 0.0;
        let mut next = NEVER;
        if self.rules.is_empty() {
            return (score, next);
        }
        for event in events {
            self.score_event(event, log, now, &mut score, &mut next);
        }
        (score, next)
    }
}

/// Where part of a contact's `lead_score` comes from (see
/// [`crate::Workspace::score_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ScoreSource {
    /// A scoring rule, by id.
    Rule(String),
    /// The `add_score` actions of one workflow run, by run id.
    Run(u64),
    /// Events deleted past the retention: what rules without expiry gave
    /// them, kept as one sum per contact (docs/storage.md "Retention").
    Deleted,
}

/// One source's share of a contact's `lead_score`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorePart {
    pub source: ScoreSource,
    pub points: f64,
    /// The events (a rule) or grants (a run) whose points count now; 0 for
    /// deleted events, which are not counted one by one.
    pub count: u64,
    /// The earliest instant some of these points are taken away.
    pub next_expiry: Option<DateTime>,
}

/// Which rules a tally counts: a contact on disk takes the points of rules
/// without expiry from its stored history, the others from memory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lasting {
    All,
    Only,
    Not,
}

impl Lasting {
    fn counts(self, rule: &ScoringRule) -> bool {
        match self {
            Lasting::All => true,
            Lasting::Only => rule.expires_after.is_none(),
            Lasting::Not => rule.expires_after.is_some(),
        }
    }
}

/// Points, events and earliest expiry of one rule for one contact.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tally {
    pub points: f64,
    pub count: u64,
    pub next: DateTime,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            points: 0.0,
            count: 0,
            next: NEVER,
        }
    }
}

impl Rules {
    /// Adds what an event at `at` earns at `now` to `tally`, rule by rule
    /// (by index), as [`Rules::score_event`] adds it to a score; `earns`
    /// says whether the event is of a rule's type and passes its filter.
    fn tally(
        &self,
        at: DateTime,
        now: DateTime,
        which: Lasting,
        earns: &dyn Fn(&ScoringRule, &Compiled) -> bool,
        tally: &mut [Tally],
    ) {
        for ((rule, compiled), t) in self.rules.iter().zip(&self.compiled).zip(tally) {
            if !which.counts(rule) || !earns(rule, compiled) {
                continue;
            }
            match rule.expires_after {
                Some(d) => {
                    let expiry = add(at, d);
                    if expiry > now {
                        t.points += summable(rule.points);
                        t.count += 1;
                        t.next = t.next.min(expiry);
                    }
                }
                None => {
                    t.points += rule.points;
                    t.count += 1;
                }
            }
        }
    }

    /// [`Rules::tally`] for an event memory holds.
    pub(crate) fn tally_stored(
        &self,
        event: &StoredEvent,
        log: &EventLog,
        now: DateTime,
        which: Lasting,
        tally: &mut [Tally],
    ) {
        let earns = |_: &ScoringRule, c: &Compiled| {
            c.kind == event.kind
                && c.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(event, &log.strings))
        };
        self.tally(event.at, now, which, &earns, tally);
    }

    /// [`Rules::tally`] for a stored event as the history hands it: its
    /// properties are read as sent, the way interning them would store
    /// them, without interning anything.
    pub(crate) fn tally_record(
        &self,
        record: &EventRecord,
        log: &EventLog,
        now: DateTime,
        which: Lasting,
        tally: &mut [Tally],
    ) {
        let earns = |rule: &ScoringRule, c: &Compiled| {
            rule.event_type == record.event_type
                && c.filter.as_ref().is_none_or(|f| {
                    f.matches_with(&|name| {
                        let name = log.names.resolve(name);
                        // The last value of a repeated name is the one kept.
                        record
                            .properties
                            .iter()
                            .rev()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, raw)| raw_value_ref(raw))
                    })
                })
        };
        self.tally(record.at, now, which, &earns, tally);
    }
}

/// Points given by workflow actions (`add_score`), per contact: part of its
/// `lead_score` beside the rules' points, each until it expires.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// (points, expiry or [`NEVER`], the run that gave them) by contact
    /// number, in grant order.
    by_contact: crate::paged::PagedVec<Vec<(f64, DateTime, u64)>>,
    expiring: bool,
}

impl Grants {
    pub fn add(&mut self, no: u32, points: f64, expires_at: Option<DateTime>, run_id: u64) {
        let index = no as usize;
        if index >= self.by_contact.len() {
            self.by_contact.resize(index + 1, Vec::new());
        }
        self.expiring |= expires_at.is_some();
        self.by_contact[index].push((summable(points), expires_at.unwrap_or(NEVER), run_id));
    }

    /// Contact `no`'s granted points at `now`, and the earliest instant some
    /// of them expire. Points count while `now` is before their expiry.
    pub fn score(&self, no: u32, now: DateTime) -> (f64, DateTime) {
        let mut score = 0.0;
        let mut next = NEVER;
        for &(points, expiry, _) in self
            .by_contact
            .get(no as usize)
            .map_or(&[][..], Vec::as_slice)
        {
            if expiry > now {
                score += points;
                if expiry < NEVER {
                    next = next.min(expiry);
                }
            }
        }
        (score, next)
    }

    /// Contact `no`'s granted points at `now` by run, in grant order: (run
    /// id, points, grants, earliest expiry).
    pub(crate) fn by_run(&self, no: u32, now: DateTime) -> Vec<(u64, Tally)> {
        let mut out: Vec<(u64, Tally)> = Vec::new();
        for &(points, expiry, run) in self
            .by_contact
            .get(no as usize)
            .map_or(&[][..], Vec::as_slice)
        {
            if expiry <= now {
                continue;
            }
            let at = match out.iter().position(|(r, _)| *r == run) {
                Some(at) => at,
                None => {
                    out.push((run, Tally::default()));
                    out.len() - 1
                }
            };
            let t = &mut out[at].1;
            t.points += points;
            t.count += 1;
            t.next = t.next.min(expiry);
        }
        out
    }

    pub fn has(&self, no: u32) -> bool {
        self.by_contact
            .get(no as usize)
            .is_some_and(|g| !g.is_empty())
    }

    pub fn forget(&mut self, no: u32) {
        if let Some(list) = self.by_contact.get_mut(no as usize) {
            *list = Vec::new();
        }
    }

    pub fn any_expiring(&self) -> bool {
        self.expiring
    }

    /// Moves contact `from`'s grants, expiries included, to `into`.
    pub fn merge(&mut self, from: u32, into: u32) {
        let Some(moved) = self.by_contact.get_mut(from as usize).map(std::mem::take) else {
            return;
        };
        let index = into as usize;
        if index >= self.by_contact.len() {
            self.by_contact.resize(index + 1, Vec::new());
        }
        self.by_contact[index].extend(moved);
    }
}

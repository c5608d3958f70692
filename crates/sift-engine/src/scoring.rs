//! Lead scoring rules (docs/concepts.md): each matching event adds `points` to the
//! contact's `lead_score`; with `expires_after`, the points are taken away
//! again once that long has passed since the event's `at`.

use sift_lang::{Condition, DateTime, Duration};

use crate::aggregates::summable;
use crate::events::{EventLog, Filter, StoredEvent};
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

/// Points given by workflow actions (`add_score`), per contact: part of its
/// `lead_score` beside the rules' points, each until it expires.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// (points, expiry or [`NEVER`]) by contact number, in grant order.
    by_contact: crate::paged::PagedVec<Vec<(f64, DateTime)>>,
    expiring: bool,
}

impl Grants {
    pub fn add(&mut self, no: u32, points: f64, expires_at: Option<DateTime>) {
        let index = no as usize;
        if index >= self.by_contact.len() {
            self.by_contact.resize(index + 1, Vec::new());
        }
        self.expiring |= expires_at.is_some();
        self.by_contact[index].push((summable(points), expires_at.unwrap_or(NEVER)));
    }

    /// Contact `no`'s granted points at `now`, and the earliest instant some
    /// of them expire. Points count while `now` is before their expiry.
    pub fn score(&self, no: u32, now: DateTime) -> (f64, DateTime) {
        let mut score = 0.0;
        let mut next = NEVER;
        for &(points, expiry) in self
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
        for (points, expiry) in moved {
            let index = into as usize;
            if index >= self.by_contact.len() {
                self.by_contact.resize(index + 1, Vec::new());
            }
            self.by_contact[index].push((points, expiry));
        }
    }
}

//! Lead scoring rules: create, edit and delete them, recomputing the
//! `lead_score` of every contact with events of the types involved.

use rayon::prelude::*;
use sift_lang::{Condition, DateTime};

use super::ondisk::Restreamed;
use super::retention::SCORE_ROLLUP;
use super::*;
use crate::changes::Cause;
use crate::error::Error;
use crate::fields::LEAD_SCORE;
use crate::history::HistorySource;
use crate::scoring::{
    Lasting, ScorePart, ScoreSource, ScoringRule, ScoringRuleInput, ScoringRulePatch, Tally,
};
use crate::time::NEVER;

impl Workspace {
    pub fn scoring_rules(&self) -> &[ScoringRule] {
        self.rules.all()
    }

    pub fn scoring_rule(&self, id: &str) -> Option<&ScoringRule> {
        self.rules.get(id)
    }

    /// Creates a rule and scores past events with it. `Write::rescored`
    /// counts the contacts whose score changed.
    pub fn create_scoring_rule(
        &mut self,
        input: ScoringRuleInput,
        now: DateTime,
    ) -> Result<Write, Error> {
        if self.rules.get(&input.id).is_some() {
            return Err(Error::Invalid(format!(
                "scoring rule id {:?} is taken",
                input.id
            )));
        }
        let mut rule = ScoringRule {
            id: input.id,
            event_type: input.event_type,
            filter: input.filter,
            points: input.points,
            expires_after: input.expires_after,
            created_at: now,
            updated_at: now,
        };
        check_rule(&rule)?;
        self.check_retention(rule.expires_after)?;
        let kinds = vec![rule.event_type.clone()];
        let mut rules = self.rules.clone();
        rules.put(rule.clone(), &mut self.events);
        let streamed = self.restream(rules, &kinds, now)?;
        let now = self.tick(now);
        rule.created_at = now;
        rule.updated_at = now;
        self.rules.put(rule.clone(), &mut self.events);
        let mut write = Write {
            records: vec![Record::ScoringRule(rule)],
            ..Write::default()
        };
        self.rescore(&kinds, streamed, now, &mut write);
        Ok(self.finish(write))
    }

    pub fn update_scoring_rule(
        &mut self,
        id: &str,
        patch: ScoringRulePatch,
        now: DateTime,
    ) -> Result<Write, Error> {
        let mut rule = self.rules.get(id).cloned().ok_or_else(|| Error::NotFound {
            what: "scoring rule",
            id: id.to_string(),
        })?;
        let mut kinds = vec![rule.event_type.clone()];
        if let Some(event_type) = patch.event_type {
            rule.event_type = event_type;
        }
        if let Some(filter) = patch.filter {
            rule.filter = filter;
        }
        if let Some(points) = patch.points {
            rule.points = points;
        }
        if let Some(expires_after) = patch.expires_after {
            rule.expires_after = expires_after;
        }
        check_rule(&rule)?;
        self.check_retention(rule.expires_after)?;
        if !kinds.contains(&rule.event_type) {
            kinds.push(rule.event_type.clone());
        }
        let mut rules = self.rules.clone();
        rules.put(rule.clone(), &mut self.events);
        let streamed = self.restream(rules, &kinds, now)?;
        let now = self.tick(now);
        rule.updated_at = now;
        self.rules.put(rule.clone(), &mut self.events);
        let mut write = Write {
            records: vec![Record::ScoringRule(rule)],
            ..Write::default()
        };
        self.rescore(&kinds, streamed, now, &mut write);
        Ok(self.finish(write))
    }

    pub fn delete_scoring_rule(&mut self, id: &str, now: DateTime) -> Result<Write, Error> {
        let rule = self.rules.get(id).cloned().ok_or_else(|| Error::NotFound {
            what: "scoring rule",
            id: id.to_string(),
        })?;
        let kinds = [rule.event_type];
        let mut rules = self.rules.clone();
        rules.remove(id);
        let streamed = self.restream(rules, &kinds, now)?;
        let now = self.tick(now);
        self.rules.remove(id);
        let mut write = Write {
            records: vec![Record::ScoringRuleDeleted { id: id.to_string() }],
            ..Write::default()
        };
        self.rescore(&kinds, streamed, now, &mut write);
        Ok(self.finish(write))
    }

    /// Where contact `no`'s `lead_score` comes from, at the clock (the
    /// instant the score was last brought up to): one part per rule that
    /// gives it points now, in the rules' order, one per workflow run that
    /// gave it points still counting, in grant order, and what deleted
    /// events gave. Computed as [`Workspace::full_score`] computes the
    /// score, from the same events, so the parts add up to `lead_score`.
    /// On disk, the points of rules without expiry are read from the
    /// contact's stored events (an indexed read of that contact's rows).
    pub fn score_parts(&self, no: u32) -> Result<Vec<ScorePart>, Error> {
        let now = self.clock;
        let mut tally = vec![Tally::default(); self.rules.all().len()];
        let mut deleted = 0.0;
        match &self.history {
            Some(HistorySource(source)) => {
                for event in self.events.of(no) {
                    self.rules
                        .tally_stored(event, &self.events, now, Lasting::Not, &mut tally);
                }
                if self.rules.all().iter().any(|r| r.expires_after.is_none()) {
                    source
                        .scan_contact(no, &mut |_, record| {
                            if !record.event_type.is_empty() {
                                self.rules.tally_record(
                                    record,
                                    &self.events,
                                    now,
                                    Lasting::Only,
                                    &mut tally,
                                );
                            }
                        })
                        .map_err(Error::HistoryUnavailable)?;
                }
                source
                    .contact_rollups(no, &mut |key, _, sum| {
                        if key == SCORE_ROLLUP {
                            deleted += sum;
                        }
                    })
                    .map_err(Error::HistoryUnavailable)?;
            }
            None => {
                for event in self.events.of(no) {
                    self.rules
                        .tally_stored(event, &self.events, now, Lasting::All, &mut tally);
                }
            }
        }
        let part = |source, t: Tally| ScorePart {
            source,
            points: t.points,
            count: t.count,
            next_expiry: (t.next < NEVER).then_some(t.next),
        };
        let mut parts: Vec<ScorePart> = self
            .rules
            .all()
            .iter()
            .zip(tally)
            .filter(|(_, t)| t.count > 0)
            .map(|(rule, t)| part(ScoreSource::Rule(rule.id.clone()), t))
            .collect();
        parts.extend(
            self.grants
                .by_run(no, now)
                .into_iter()
                .map(|(run, t)| part(ScoreSource::Run(run), t)),
        );
        if deleted != 0.0 {
            parts.push(ScorePart {
                source: ScoreSource::Deleted,
                points: deleted,
                count: 0,
                next_expiry: None,
            });
        }
        Ok(parts)
    }

    /// Contact `no`'s `lead_score` at `at` from scratch: its events' points
    /// under the rules, then the points workflows gave it; and the earliest
    /// instant some of them expire.
    pub(super) fn full_score(&self, no: u32, at: DateTime) -> (f64, DateTime) {
        let (mut score, mut next) = self.rule_score(no, at);
        if self.grants.has(no) {
            let (granted, expiry) = self.grants.score(no, at);
            score += granted;
            next = next.min(expiry);
        }
        (score, next)
    }

    /// Contact `no`'s points from the rules at `at`: over its whole history
    /// in memory, or, on disk, its lasting points and the expiring ones of
    /// the events memory keeps (every event an expiry can still reach).
    pub(super) fn rule_score(&self, no: u32, at: DateTime) -> (f64, DateTime) {
        if self.on_disk() {
            let (expiring, next) = self
                .rules
                .expiring_score(self.events.of(no), &self.events, at);
            return (self.lasting(no) + expiring, next);
        }
        self.rules.score(self.events.of(no), &self.events, at)
    }

    /// On disk, before a rule write: the lasting points of every contact
    /// under `rules` (the rules as the write leaves them), from the whole
    /// stored history, and the contacts with events of `types`. `None` in
    /// memory, where the history is at hand.
    fn restream(
        &mut self,
        rules: crate::scoring::Rules,
        types: &[String],
        now: DateTime,
    ) -> Result<Option<Restreamed>, Error> {
        if !self.on_disk() {
            return Ok(None);
        }
        let kinds: Vec<u32> = types
            .iter()
            .filter_map(|t| self.events.types.lookup(t))
            .collect();
        let now = now.max(self.clock);
        let saved = std::mem::replace(&mut self.rules, rules);
        let streamed = self.restream_scores(kinds, now);
        self.rules = saved;
        streamed.map(Some)
    }

    /// Recomputes the score of every contact with events of `types` (on
    /// disk: those `streamed` found), and the memberships that follow.
    fn rescore(
        &mut self,
        types: &[String],
        streamed: Option<Restreamed>,
        now: DateTime,
        write: &mut Write,
    ) {
        if self.on_disk() {
            self.refresh_horizon();
        }
        let kinds: Vec<u32> = types
            .iter()
            .filter_map(|t| self.events.types.lookup(t))
            .collect();
        let candidates: Vec<u32> = match streamed {
            Some(streamed) => {
                write.history_read = streamed.read;
                self.lasting = streamed.lasting.into();
                (streamed.touched & self.contacts.alive()).iter().collect()
            }
            None => self.contacts.alive().iter().collect(),
        };
        if kinds.is_empty() {
            return;
        }
        let on_disk = self.on_disk();
        let scores: Vec<(u32, (f64, DateTime))> = candidates
            .par_iter()
            .filter_map(|&no| {
                let events = self.events.of(no);
                if !on_disk && !events.iter().any(|e| kinds.contains(&e.kind)) {
                    return None;
                }
                Some((no, self.full_score(no, now)))
            })
            .collect();
        for (no, (score, expiry)) in scores {
            self.timers.schedule(no, expiry);
            if score.to_bits() == self.lead_score(no).to_bits() {
                continue;
            }
            write.rescored += 1;
            let mut slots = Vec::new();
            self.set_tracked(no, LEAD_SCORE, Some(Value::Number(score)), now, &mut slots);
            self.propagate_contact(no, slots, true, Cause::ContactUpdate, now, write);
        }
    }
}

fn check_rule(rule: &ScoringRule) -> Result<(), Error> {
    if rule.event_type.is_empty()
        || rule.event_type.len() > 128
        || rule.event_type.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "event type {:?} is invalid: it must be 1 to 128 bytes without control characters",
            rule.event_type
        )));
    }
    if !points_in_bound(rule.points) {
        return Err(Error::Invalid(POINTS_BOUND.into()));
    }
    if rule.expires_after.is_some_and(|d| d.amount == 0) {
        return Err(Error::Invalid(
            "expires_after must be a positive duration, like \"30d\"".into(),
        ));
    }
    if let Some(filter) = &rule.filter {
        let wrapped = Condition::Event {
            event_type: rule.event_type.clone(),
            filter: Some(Box::new(filter.clone())),
            count: None,
            in_last: None,
        };
        check_supported(&wrapped)?;
    }
    Ok(())
}

/// Why points were refused: one bound for rules and workflow grants.
pub(super) const POINTS_BOUND: &str = "points must be a number between -1e15 and 1e15 (Sift adds them up; larger ones could not be added exactly)";

/// Whether `points` may be given: finite and within the bound on what Sift adds up.
pub(super) fn points_in_bound(points: f64) -> bool {
    points.is_finite() && points.abs() <= crate::aggregates::SUM_BOUND
}

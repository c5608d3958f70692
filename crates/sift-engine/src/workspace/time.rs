//! The passing of time: firing due timers (window exits, relative dates
//! crossing their threshold, points expiring) and re-arming each contact at
//! the next instant something about it can change.

use std::collections::BTreeMap;
use std::mem;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use sift_lang::{DateTime, FieldTest};

use super::events::flips;
use super::*;
use crate::changes::Cause;
use crate::eval::{ValueRef, instant, test_value};
use crate::fields::LEAD_SCORE;
use crate::time::{NEVER, add};

/// Contacts due at one instant beyond this are processed in parallel and
/// their segments re-evaluated in bulk.
pub(super) const PARALLEL_DUE: usize = 256;

/// Contacts refired at a time. Debug builds take a few, so that the
/// differential tests cross chunk boundaries in every firing.
const FIRE_CHUNK: usize = if cfg!(debug_assertions) { 7 } else { 65_536 };

/// What firing one contact's timer changes.
pub(super) struct Fired {
    no: u32,
    /// (aggregate, count, sum) that differ from the kept ones.
    tallies: Vec<(usize, u32, f64)>,
    score: Option<f64>,
    next: DateTime,
}

/// The next instant after `now` at which `test` on `value` changes its answer.
/// The segments refired contacts may now change in: each contact's own
/// (few contacts), or per segment the contacts it may change for (many).
#[derive(Default)]
pub(super) struct Flips {
    by_contact: Vec<(u32, Vec<Slot>)>,
    scopes: BTreeMap<Slot, RoaringBitmap>,
}

pub(crate) fn flip_instant(
    value: Option<ValueRef<'_>>,
    test: &FieldTest,
    now: DateTime,
) -> Option<DateTime> {
    let v = instant(value?)?;
    match test {
        FieldTest::InLast(d) if v > now => Some(v),
        FieldTest::InLast(d) | FieldTest::BeforeAgo(d) => {
            let end = add(v, *d);
            (end >= now && end < NEVER).then(|| end + 1)
        }
        FieldTest::AfterAgo(d) => {
            let end = add(v, *d);
            (end > now && end < NEVER).then_some(end)
        }
        _ => None,
    }
}

pub(crate) fn is_relative(test: &FieldTest) -> bool {
    matches!(
        test,
        FieldTest::InLast(_) | FieldTest::BeforeAgo(_) | FieldTest::AfterAgo(_)
    )
}

impl Workspace {
    /// Fires every timer due at or before `now`, in instant order; each
    /// flip is recorded at the instant it became due, with cause `time`.
    pub fn advance(&mut self, now: DateTime) -> Write {
        self.tick(now);
        if self.pending.records.is_empty() && self.pending.staged.is_empty() {
            return Write::default();
        }
        self.finish(Write::default())
    }

    /// The instant of the earliest pending timer (possibly one that will
    /// find nothing to change).
    pub fn next_timer(&self) -> Option<DateTime> {
        self.timers.peek()
    }

    /// Timer entries queued (stale ones included).
    pub fn timers_pending(&self) -> usize {
        self.timers.pending()
    }

    /// The instant up to which time has been processed.
    pub fn clock(&self) -> DateTime {
        self.clock
    }

    /// Moves the clock to `now` (never backwards), firing what falls due on
    /// the way into `pending`. Returns the clock.
    pub(super) fn tick(&mut self, now: DateTime) -> DateTime {
        self.finish_burst();
        let now = now.max(self.clock);
        let mut pending = mem::take(&mut self.pending);
        while let Some((at, due)) = self.timers.pop_due(now) {
            self.fire(at, &due, &mut pending);
        }
        self.pending = pending;
        self.clock = now;
        now
    }

    /// Completes a successful write: the changes timers made before it come
    /// first, and the clock last.
    pub(super) fn finish(&mut self, mut write: Write) -> Write {
        let pending = mem::take(&mut self.pending);
        let mut records = pending.records;
        // What the timers did stays apart from the write's own changes
        // (never coalesced with them), closed by a clock record.
        let (queued, dropped) = self.seal(pending.staged, Vec::new(), 0, &mut records);
        write.queued += queued;
        write.dropped += dropped;
        records.push(Record::Clock(self.clock));
        write.membership_changes += pending.membership_changes;
        records.append(&mut write.records);
        let staged = mem::take(&mut write.staged);
        let hits = mem::take(&mut write.event_hits);
        let (queued, dropped) = self.seal(staged, hits, write.depth, &mut records);
        write.queued += queued;
        write.dropped += dropped;
        records.push(Record::Clock(self.clock));
        write.records = records;
        write
    }

    pub(super) fn fire(&mut self, at: DateTime, due: &[u32], write: &mut Write) {
        let bulk = due.len() > PARALLEL_DUE;
        let mut flips = Flips::default();
        // Chunks reuse one buffer: collecting a million results at once
        // spent a third of a burst growing vectors into fresh pages.
        let mut fired: Vec<Option<Fired>> = Vec::new();
        for chunk in due.chunks(FIRE_CHUNK) {
            self.refire_all(chunk, at, bulk, &mut fired);
            // Each contact's refire read only its own state, so applying
            // one chunk leaves the next chunk's answers true.
            self.apply_fired(at, fired.drain(..).flatten(), bulk, &mut flips);
        }
        self.propagate_flips(at, flips, write);
    }

    /// What [`Workspace::refire`] answers for each contact of `chunk`, in
    /// parallel when `parallel`. Reads only.
    pub(super) fn refire_all(
        &self,
        chunk: &[u32],
        at: DateTime,
        parallel: bool,
        fired: &mut Vec<Option<Fired>>,
    ) {
        if parallel {
            chunk
                .par_iter()
                .map(|no| self.refire(*no, at))
                .collect_into_vec(fired);
        } else {
            fired.clear();
            fired.extend(chunk.iter().map(|no| self.refire(*no, at)));
        }
    }

    /// Applies refired contacts (their windows' tallies, scores and next
    /// instants) and notes which segments each may now change in: per
    /// contact, or with `bulk` as one scope per segment.
    pub(super) fn apply_fired(
        &mut self,
        at: DateTime,
        fired: impl Iterator<Item = Fired>,
        bulk: bool,
        out: &mut Flips,
    ) {
        let before = at.saturating_sub(1);
        let mut flipping = Vec::new();
        let mut slots = Vec::new();
        for fire in fired {
            let no = fire.no;
            slots.clear();
            for (index, count, sum) in fire.tallies {
                if let Some(aggregate) = self.aggregates.get_mut(index) {
                    let old = (aggregate.count(no), aggregate.sum(no));
                    aggregate.set(no, count, sum);
                    flips(&self.agg_tests, index, old, (count, sum), &mut slots);
                }
            }
            if let Some(score) = fire.score {
                self.set_tracked(no, LEAD_SCORE, Some(Value::Number(score)), at, &mut slots);
            }
            for group in &self.temporal {
                let value = self.contacts.column(group.column).get_ref(no);
                group.flipping_at(value, at, &mut flipping);
                flipping.sort_unstable();
                flipping.dedup();
                for &test in &flipping {
                    let (test, readers) = &group.tests[test];
                    if test_value(value, test, before) != test_value(value, test, at) {
                        slots.extend_from_slice(readers);
                    }
                }
            }
            self.timers.schedule(no, fire.next);
            self.trim(no, at);
            if slots.is_empty() {
                continue;
            }
            if bulk {
                slots.sort_unstable();
                slots.dedup();
                for &slot in &slots {
                    out.scopes.entry(slot).or_default().insert(no);
                }
            } else {
                out.by_contact.push((no, mem::take(&mut slots)));
            }
        }
    }

    /// Re-evaluates the segments noted by [`Workspace::apply_fired`], with
    /// cause `time` at `at`.
    pub(super) fn propagate_flips(&mut self, at: DateTime, flips: Flips, write: &mut Write) {
        for (no, slots) in flips.by_contact {
            self.propagate_contact(no, slots, true, Cause::Time, at, write);
        }
        if flips.scopes.is_empty() {
            return;
        }
        let queue = flips
            .scopes
            .into_iter()
            .map(|(slot, scope)| ((self.segments.rank(slot), slot), (Some(scope), Cause::Time)))
            .collect();
        self.propagate_bulk(queue, at, write);
    }

    /// Recomputes what time can change about contact `no` at `at`, in one
    /// pass over its history: the windows some event leaves at `at` are
    /// recounted, and the earliest later exit re-arms the contact.
    pub(super) fn refire(&self, no: u32, at: DateTime) -> Option<Fired> {
        if !self.contacts.is_alive(no) {
            return None;
        }
        let events = self.events.of(no);
        let mut next = NEVER;
        let mut touched: Vec<usize> = Vec::new();
        for event in events {
            for window in self.aggregates.windows_on_type(event.kind) {
                let index = window.index;
                // Not already out, and earlier than the next exit found
                // (exits due now always are: `next` only holds later ones).
                let Some(exit) = window.exit_between(event.at, at, next) else {
                    continue;
                };
                let Some(aggregate) = self.aggregates.get(index) else {
                    continue;
                };
                if !aggregate.selects(event, &self.events) {
                    continue;
                }
                if exit == at {
                    if !touched.contains(&index) {
                        touched.push(index);
                    }
                } else {
                    next = next.min(exit);
                }
            }
        }
        let mut tallies = Vec::new();
        for index in touched {
            if let Some(aggregate) = self.aggregates.get(index) {
                let tally = aggregate.tally(events, &self.events, at);
                if tally.count != aggregate.count(no)
                    || tally.sum.to_bits() != aggregate.sum(no).to_bits()
                {
                    tallies.push((index, tally.count, tally.sum));
                }
            }
        }
        for group in &self.temporal {
            if let Some(t) = group.next_flip(self.contacts.column(group.column).get_ref(no), at) {
                next = next.min(t);
            }
        }
        let score = if self.rules.any_expiring() || self.grants.any_expiring() {
            let (score, expiry) = self.full_score(no, at);
            next = next.min(expiry);
            (score.to_bits() != self.lead_score(no).to_bits()).then_some(score)
        } else {
            None
        };
        Some(Fired {
            no,
            tallies,
            score,
            next,
        })
    }

    /// The next instant after `now` at which anything time-dependent about
    /// contact `no` can change.
    pub(super) fn next_instant(&self, no: u32, now: DateTime) -> DateTime {
        let mut next = NEVER;
        for group in &self.temporal {
            if let Some(t) = group.next_flip(self.contacts.column(group.column).get_ref(no), now) {
                next = next.min(t);
            }
        }
        let events = self.events.of(no);
        for event in events {
            for window in self.aggregates.windows_on_type(event.kind) {
                if let Some(exit) = window.exit_between(event.at, now.saturating_add(1), next)
                    && self
                        .aggregates
                        .get(window.index)
                        .is_some_and(|a| a.selects(event, &self.events))
                {
                    next = exit;
                }
            }
        }
        if self.rules.any_expiring() || self.grants.any_expiring() {
            let (_, expiry) = self.full_score(no, now);
            next = next.min(expiry);
        }
        next
    }

    /// Arms contact `no` for the relative tests on `columns`.
    pub(super) fn schedule_columns(&mut self, no: u32, columns: &[usize], now: DateTime) {
        let mut next = NEVER;
        for group in &self.temporal {
            if columns.contains(&group.column)
                && let Some(t) =
                    group.next_flip(self.contacts.column(group.column).get_ref(no), now)
            {
                next = next.min(t);
            }
        }
        self.timers.schedule(no, next);
    }

    /// Arms every contact from scratch (after a restore).
    pub(super) fn rebuild_timers(&mut self) {
        let now = self.clock;
        let next: Vec<DateTime> = (0..self.contacts.capacity())
            .into_par_iter()
            .map(|no| {
                if self.contacts.is_alive(no) {
                    self.next_instant(no, now)
                } else {
                    NEVER
                }
            })
            .collect();
        self.timers.rebuild(next);
    }

    /// Arms every contact for the relative tests `tests` (new in a segment).
    pub(super) fn schedule_tests(&mut self, tests: &[(usize, FieldTest)], now: DateTime) {
        if tests.is_empty() {
            return;
        }
        let next: Vec<(u32, DateTime)> = self
            .contacts
            .alive()
            .iter()
            .collect::<Vec<u32>>()
            .par_iter()
            .filter_map(|&no| {
                let next = tests
                    .iter()
                    .filter_map(|(column, test)| {
                        flip_instant(self.contacts.column(*column).get_ref(no), test, now)
                    })
                    .min()?;
                Some((no, next))
            })
            .collect();
        for (no, at) in next {
            self.timers.schedule(no, at);
        }
    }
}

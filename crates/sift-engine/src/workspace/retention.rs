//! Event retention (docs/storage.md "Retention"): raw events older than the
//! retention are deleted from the store, and what they gave to all-time
//! counts and to lasting rule points is kept as per-contact roll-ups, so
//! that a later start (or a new all-time segment on the same count) still
//! counts them. No live window may reach past the retention: a deleted event
//! has left every window that reads it.

use sift_lang::{Condition, Duration, DurationUnit};

use super::*;
use crate::aggregates::AggKey;
use crate::changes::EventRecord;

/// The roll-up key of the lasting points of rules without expiry.
pub const SCORE_ROLLUP: &str = "score";

/// What a chunk of deleted events gave, per roll-up key and contact:
/// (key, contact number, count, sum).
pub type Rollup = Vec<(String, u32, u32, f64)>;

/// The longest `d` can last, in days (a month 31 days, a year 366).
pub fn longest_days(d: Duration) -> i64 {
    let amount = i64::from(d.amount);
    match d.unit {
        DurationUnit::Minutes => (amount + 24 * 60 - 1) / (24 * 60),
        DurationUnit::Hours => (amount + 23) / 24,
        DurationUnit::Days => amount,
        DurationUnit::Weeks => amount * 7,
        DurationUnit::Months => amount * 31,
        DurationUnit::Years => amount * 366,
    }
}

/// The roll-up key of an all-time count or sum: its event type, `where`
/// (canonical text) and summed property.
pub fn rollup_key(key: &AggKey) -> String {
    let filter = key
        .filter
        .as_ref()
        .map_or(String::new(), |f| sift_lang::to_json(f).to_string());
    format!(
        "{}\u{1f}{}\u{1f}{}",
        key.event_type,
        filter,
        key.property.as_deref().unwrap_or("")
    )
}

impl Workspace {
    /// Sets the retention of raw events in days (`None`: kept forever).
    /// Later segment and rule writes with a longer window are refused.
    pub fn set_event_retention(&mut self, days: Option<u32>) {
        self.retention_days = days;
    }

    /// The live windows longer than the retention, described, if any: a
    /// start refuses such a retention.
    pub fn windows_past_retention(&self) -> Vec<String> {
        let Some(days) = self.retention_days else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (_, segment) in self.segments.iter() {
            if let Some(cond) = &segment.def.condition
                && let Some(d) = longest_window(cond)
                && longest_days(d) > i64::from(days)
            {
                out.push(format!(
                    "segment {:?} reads {} days",
                    segment.def.name,
                    longest_days(d)
                ));
            }
        }
        for rule in self.rules.all() {
            if let Some(d) = rule.expires_after
                && longest_days(d) > i64::from(days)
            {
                out.push(format!(
                    "scoring rule {:?} expires after up to {} days",
                    rule.id,
                    longest_days(d)
                ));
            }
        }
        out
    }

    /// Refuses a window that would reach past the retention.
    pub(super) fn check_retention(&self, window: Option<Duration>) -> Result<(), Error> {
        let (Some(days), Some(d)) = (self.retention_days, window) else {
            return Ok(());
        };
        if longest_days(d) > i64::from(days) {
            return Err(Error::Invalid(format!(
                "a window of up to {} days reaches past the event retention of {days} days: raw events older than that are deleted; use a shorter window, or raise the server setting --event-retention (SIFT_EVENT_RETENTION)",
                longest_days(d)
            )));
        }
        Ok(())
    }

    /// What `events` (about to be deleted from the store, every one past
    /// every live window) gave to the all-time counts and sums and to the
    /// lasting rule points, by roll-up key and contact. Events of deleted
    /// contacts give nothing.
    pub fn rollup(&self, events: &[(u64, EventRecord)]) -> Rollup {
        let mut scratch = self.events.scratch();
        let mut totals: std::collections::BTreeMap<(usize, u32), (u32, f64)> =
            std::collections::BTreeMap::new();
        let all_time: Vec<(usize, String)> = self
            .aggregates
            .iter()
            .filter(|(_, a)| a.window.is_none())
            .map(|(i, a)| (i, rollup_key(&a.key)))
            .collect();
        let mut points: std::collections::BTreeMap<u32, f64> = std::collections::BTreeMap::new();
        for (seq, record) in events {
            if !self.contacts.is_alive(record.no) {
                continue;
            }
            let event = scratch.intern(
                &record.event_type,
                record.at,
                &record.properties,
                *seq as u32,
            );
            for (slot, (index, _)) in all_time.iter().enumerate() {
                let Some(aggregate) = self.aggregates.get(*index) else {
                    continue;
                };
                // Filters were compiled against this log's names, which the
                // scratch copy extends without renumbering.
                if aggregate.selects(&event, &scratch) {
                    let entry = totals.entry((slot, record.no)).or_insert((0, 0.0));
                    entry.0 += 1;
                    if aggregate.property.is_some() {
                        entry.1 += aggregate.addend(&event);
                    }
                }
            }
            let lasting = self.rules.lasting_points(&event, &scratch);
            if lasting != 0.0 {
                *points.entry(record.no).or_insert(0.0) += lasting;
            }
        }
        let mut out: Rollup = totals
            .into_iter()
            .map(|((slot, no), (count, sum))| (all_time[slot].1.clone(), no, count, sum))
            .collect();
        out.extend(
            points
                .into_iter()
                .map(|(no, p)| (SCORE_ROLLUP.to_string(), no, 0, p)),
        );
        out
    }
}

/// The longest window `cond` reads.
fn longest_window(cond: &Condition) -> Option<Duration> {
    // The first of the longest, as `windows` lists them in walk order.
    windows(cond).into_iter().reduce(|longest, d| {
        if longest_days(d) > longest_days(longest) {
            d
        } else {
            longest
        }
    })
}

/// Every window `cond` reads.
pub(super) fn windows(cond: &Condition) -> Vec<Duration> {
    let mut out = Vec::new();
    cond.walk(&mut |node| {
        if let Condition::Event {
            in_last: Some(d), ..
        }
        | Condition::EventSum {
            in_last: Some(d), ..
        } = node
        {
            out.push(*d);
        }
    });
    out
}

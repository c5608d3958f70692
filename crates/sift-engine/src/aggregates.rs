//! Behavioural aggregates: for each distinct (event type, `where`, window,
//! summed property) that some segment tests, the count and sum of the
//! matching events of every contact, kept up to date as events arrive and as
//! window boundaries pass (the timer queue), never by rescanning on each event.

use foldhash::HashMap;

use rayon::prelude::*;
use sift_lang::{Condition, DateTime, Duration};

use crate::counts::Counts;
use crate::events::{EventLog, Filter, StoredEvent, number_prop};
use crate::sparse::SparseVec;
use crate::time::{CalendarSpan, NEVER, add, fixed_ms};

/// The largest magnitude Sift adds up: each event's value in a `total`, each
/// scoring rule's and workflow grant's points. A sum of such terms cannot
/// leave the finite range (it would take 10^293 of them), so totals and
/// `lead_score` stay numbers; a larger value counts as this bound.
pub const SUM_BOUND: f64 = 1e15;

/// `value` within ±[`SUM_BOUND`], so that adding it up stays finite.
pub fn summable(value: f64) -> f64 {
    value.clamp(-SUM_BOUND, SUM_BOUND)
}

/// What an aggregate counts.
#[derive(Clone, Debug, PartialEq)]
pub struct AggKey {
    pub event_type: String,
    pub filter: Option<Condition>,
    pub window: Option<Duration>,
    /// For `event_sum`.
    pub property: Option<String>,
}

impl AggKey {
    /// The key of an `event` or `event_sum` node.
    pub fn of(cond: &Condition) -> Option<AggKey> {
        match cond {
            Condition::Event {
                event_type,
                filter,
                in_last,
                ..
            } => Some(AggKey {
                event_type: event_type.clone(),
                filter: filter.as_deref().cloned(),
                window: *in_last,
                property: None,
            }),
            Condition::EventSum {
                event_type,
                property,
                filter,
                in_last,
                ..
            } => Some(AggKey {
                event_type: event_type.clone(),
                filter: filter.as_deref().cloned(),
                window: *in_last,
                property: Some(property.clone()),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub key: AggKey,
    pub kind: u32,
    pub filter: Option<Filter>,
    pub property: Option<u32>,
    pub counts: Counts,
    /// Empty for a count (no summed property).
    pub sums: SparseVec<f64>,
}

/// What a segment tests on an aggregate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggTest {
    Count(Option<sift_lang::CountTest>),
    Sum(sift_lang::CmpOp, f64),
}

impl AggTest {
    /// The test of an `event` or `event_sum` node.
    pub fn of(cond: &Condition) -> Option<AggTest> {
        match cond {
            Condition::Event { count, .. } => Some(AggTest::Count(*count)),
            Condition::EventSum { op, value, .. } => Some(AggTest::Sum(*op, *value)),
            _ => None,
        }
    }

    pub fn holds(&self, count: u32, sum: f64) -> bool {
        match self {
            AggTest::Count(test) => crate::eval::count_holds(*test, count),
            AggTest::Sum(op, value) => op.holds(sum, *value),
        }
    }
}

/// A contact's count and sum for one aggregate at one instant, and the next
/// instant one of its events leaves the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tally {
    pub count: u32,
    pub sum: f64,
    pub next_exit: DateTime,
}

impl Aggregate {
    /// A new aggregate for `key`, counting nothing yet; its names are
    /// interned so that it stays valid as new events arrive.
    pub fn empty(key: &AggKey, log: &mut EventLog) -> Aggregate {
        Aggregate {
            kind: log.types.intern(&key.event_type),
            filter: key
                .filter
                .as_ref()
                .map(|f| Filter::compile(f, &mut log.names)),
            property: key.property.as_ref().map(|p| log.names.intern(p)),
            key: key.clone(),
            counts: Counts::default(),
            sums: SparseVec::new(),
        }
    }

    /// The property names this reads of its events: its filter's and the
    /// summed one.
    pub fn read_names(&self) -> Vec<u32> {
        let mut names = Vec::new();
        if let Some(filter) = &self.filter {
            filter.names(&mut names);
        }
        names.extend(self.property);
        names
    }

    /// Adds a rolled-up count and sum (events deleted from the store).
    pub fn add(&mut self, no: u32, count: u32, sum: f64) {
        let index = self.reserve(no);
        let total = self.counts.get(index).unwrap_or(0).saturating_add(count);
        self.counts.set(index, total);
        if let Some(total) = self.sums.get(index) {
            self.sums.set(index, total + sum);
        }
    }

    /// Makes room for contact `no`. Only a sum (`event_sum`) keeps a sum
    /// per contact: a count's would be 8 bytes per contact of zeros.
    fn reserve(&mut self, no: u32) -> usize {
        let index = no as usize;
        if index >= self.counts.len() {
            self.counts.resize(index + 1);
            if self.property.is_some() {
                self.sums.resize(index + 1);
            }
        }
        index
    }

    pub fn count(&self, no: u32) -> u32 {
        self.counts.get(no as usize).unwrap_or(0)
    }

    pub fn sum(&self, no: u32) -> f64 {
        self.sums.get(no as usize).unwrap_or(0.0)
    }

    pub fn set(&mut self, no: u32, count: u32, sum: f64) {
        let index = self.reserve(no);
        self.counts.set(index, count);
        self.sums.set(index, sum);
    }

    /// Whether `event` is one this aggregate counts (ignoring the window).
    pub fn selects(&self, event: &StoredEvent, log: &EventLog) -> bool {
        event.kind == self.kind
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(event, &log.strings))
    }

    /// The instant an event at `at` leaves the window (NEVER without one):
    /// it counts at `now` while `now <= at + D`, that is while `exit > now`.
    pub fn exit(&self, at: DateTime) -> DateTime {
        self.window.map_or(NEVER, |d| add(at, d).saturating_add(1))
    }

    /// The value added to the sum by `event` (bounded: see [`SUM_BOUND`]).
    pub fn addend(&self, event: &StoredEvent) -> f64 {
        number_prop(event, self.property).map_or(0.0, summable)
    }

    /// Counts contact `no`'s history at `now`, in arrival order (so that sums
    /// add up in the same order as when events arrive one by one).
    pub fn tally(&self, events: &[StoredEvent], log: &EventLog, now: DateTime) -> Tally {
        let mut tally = Tally {
            count: 0,
            sum: 0.0,
            next_exit: NEVER,
        };
        for event in events {
            // An event is in the window until it exits (`exit > now`).
            let exit = self.exit(event.at);
            if exit <= now || !self.selects(event, log) {
                continue;
            }
            tally.count += 1;
            if self.property.is_some() {
                tally.sum += self.addend(event);
            }
            tally.next_exit = tally.next_exit.min(exit);
        }
        tally
    }
}

impl std::ops::Deref for Aggregate {
    type Target = AggKey;
    fn deref(&self) -> &AggKey {
        &self.key
    }
}

/// A windowed aggregate as timers read it: which one, and how long its
/// window is, so that finding when an event leaves it reads no aggregate.
#[derive(Clone, Copy, Debug)]
pub struct WindowOf {
    pub index: usize,
    /// Milliseconds, or months and years in calendar arithmetic.
    span: Result<i64, CalendarSpan>,
}

impl WindowOf {
    pub fn new(index: usize, duration: Duration) -> WindowOf {
        WindowOf {
            index,
            span: fixed_ms(duration).ok_or_else(|| CalendarSpan::new(duration)),
        }
    }

    /// The instant an event at `at` leaves the window (as
    /// [`Aggregate::exit`] gives it) when that lies in `from..until`. A timer
    /// asks this of every event of a contact; most calendar windows are
    /// decided by their span's bounds without the calendar sum.
    pub fn exit_between(&self, at: DateTime, from: DateTime, until: DateTime) -> Option<DateTime> {
        let exit = match &self.span {
            Ok(ms) => at.saturating_add(*ms).min(NEVER).saturating_add(1),
            Err(span) => {
                // The exit is one after the window's end.
                if span.ends_before(at, from.saturating_sub(1), false)
                    || !span.ends_before(at, until.saturating_sub(1), false)
                {
                    return None;
                }
                add(at, span.duration).saturating_add(1)
            }
        };
        (from..until).contains(&exit).then_some(exit)
    }
}

/// Aggregates by stable index; an index is freed when no segment uses it.
#[derive(Clone, Debug, Default)]
pub struct Aggregates {
    list: Vec<Option<Aggregate>>,
    by_type: HashMap<u32, Vec<usize>>,
    /// The windowed ones among `by_type`: a timer reads every event of a
    /// contact against each (a million due at once made it the largest
    /// item of the burst).
    windows_by_type: HashMap<u32, Vec<WindowOf>>,
    /// Whether a sync dropped an aggregate since [`Aggregates::take_removed`].
    removed: bool,
}

impl Aggregates {
    /// A set of aggregates computed for one evaluation (not kept up to date).
    pub fn of_list(list: Vec<Aggregate>) -> Aggregates {
        Aggregates {
            list: list.into_iter().map(Some).collect(),
            ..Aggregates::default()
        }
    }

    pub fn get(&self, index: usize) -> Option<&Aggregate> {
        self.list.get(index).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Aggregate> {
        self.list.get_mut(index).and_then(Option::as_mut)
    }

    pub fn find(&self, key: &AggKey) -> Option<usize> {
        self.list
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.key == *key))
    }

    /// Whether some aggregate was dropped since the last call.
    pub fn take_removed(&mut self) -> bool {
        std::mem::take(&mut self.removed)
    }

    pub fn on_type(&self, kind: u32) -> &[usize] {
        self.by_type.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The windowed aggregates on event type `kind`.
    pub fn windows_on_type(&self, kind: u32) -> &[WindowOf] {
        self.windows_by_type.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &Aggregate)> {
        self.list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, a)))
    }

    pub fn windowed(&self) -> impl Iterator<Item = (usize, &Aggregate)> {
        self.iter().filter(|(_, a)| a.window.is_some())
    }

    /// Installs an aggregate computed elsewhere (a checkpoint's): its key
    /// resolved against `log`, its counts and sums as given. The next
    /// [`Aggregates::sync`] indexes it by type and keeps it if still used.
    pub fn install(
        &mut self,
        key: AggKey,
        counts: Counts,
        sums: SparseVec<f64>,
        log: &mut EventLog,
    ) {
        if self.find(&key).is_some() {
            return;
        }
        let mut aggregate = Aggregate::empty(&key, log);
        aggregate.counts = counts;
        aggregate.sums = sums;
        self.list.push(Some(aggregate));
    }

    /// Makes the set of aggregates exactly `keys`: keeps those that exist,
    /// drops the rest, and computes new ones over every contact's history at
    /// `now` (in parallel). Returns the indexes of the new ones, with each
    /// contact's earliest window exit for them.
    ///
    /// An aggregate in `prepared` (counted from the store beforehand) is
    /// taken as it is; without `compute`, the others start at zero (a
    /// restore that then folds every stored event into them).
    pub fn sync(
        &mut self,
        keys: &[AggKey],
        log: &mut EventLog,
        capacity: u32,
        now: DateTime,
        prepared: &mut Vec<Aggregate>,
        compute: bool,
    ) -> Vec<(usize, Vec<DateTime>)> {
        for slot in &mut self.list {
            if slot.as_ref().is_some_and(|a| !keys.contains(&a.key)) {
                *slot = None;
                self.removed = true;
            }
        }
        let mut created = Vec::new();
        for key in keys {
            if self.find(key).is_some() {
                continue;
            }
            let (aggregate, exits) = match prepared.iter().position(|a| a.key == *key) {
                Some(at) => (prepared.swap_remove(at), Vec::new()),
                None if compute => compute_all(Aggregate::empty(key, log), log, capacity, now),
                None => (Aggregate::empty(key, log), Vec::new()),
            };
            let index = match self.list.iter().position(Option::is_none) {
                Some(free) => free,
                None => {
                    self.list.push(None);
                    self.list.len() - 1
                }
            };
            self.list[index] = Some(aggregate);
            created.push((index, exits));
        }
        self.by_type.clear();
        self.windows_by_type.clear();
        for (index, aggregate) in self.list.iter().enumerate() {
            if let Some(aggregate) = aggregate {
                self.by_type.entry(aggregate.kind).or_default().push(index);
                if let Some(window) = aggregate.window {
                    let windows = self.windows_by_type.entry(aggregate.kind).or_default();
                    windows.push(WindowOf::new(index, window));
                }
            }
        }
        created
    }
}

/// An aggregate computed once for an unsaved condition (a preview): names
/// no event has had stay unresolved instead of being interned.
pub fn transient(key: &AggKey, log: &EventLog, capacity: u32, now: DateTime) -> Option<Aggregate> {
    let kind = log.types.lookup(&key.event_type)?;
    let aggregate = Aggregate {
        key: key.clone(),
        kind,
        filter: key.filter.as_ref().map(|f| Filter::lookup(f, &log.names)),
        property: key
            .property
            .as_ref()
            .map(|p| log.names.lookup(p).unwrap_or(u32::MAX)),
        counts: Counts::default(),
        sums: SparseVec::new(),
    };
    Some(compute_all(aggregate, log, capacity, now).0)
}

const CHUNK: usize = 16_384;

fn compute_all(
    mut aggregate: Aggregate,
    log: &EventLog,
    capacity: u32,
    now: DateTime,
) -> (Aggregate, Vec<DateTime>) {
    let n = capacity as usize;
    let chunks: Vec<Vec<Tally>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let end = ((chunk + 1) * CHUNK).min(n);
            (chunk * CHUNK..end)
                .map(|no| aggregate.tally(log.of(no as u32), log, now))
                .collect()
        })
        .collect();
    let mut exits = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let summed = aggregate.property.is_some();
    let mut sums = Vec::with_capacity(if summed { n } else { 0 });
    for tally in chunks.into_iter().flatten() {
        counts.push(tally.count);
        if summed {
            sums.push(tally.sum);
        }
        exits.push(tally.next_exit);
    }
    aggregate.counts = Counts::from(counts);
    aggregate.sums = sums.into_iter().collect();
    (aggregate, exits)
}

#[cfg(test)]
mod tests {
    use sift_lang::DurationUnit;

    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn a_window_leaves_at_the_instant_the_aggregate_says() {
        let instants = [0, 1, 59 * DAY_MS + 7, -3 * DAY_MS, NEVER - 5, NEVER];
        for unit in [
            DurationUnit::Minutes,
            DurationUnit::Days,
            DurationUnit::Weeks,
            DurationUnit::Months,
            DurationUnit::Years,
        ] {
            let duration = Duration { amount: 3, unit };
            let window = WindowOf::new(0, duration);
            for at in instants {
                assert_eq!(
                    window.exit_between(at, i64::MIN, i64::MAX),
                    Some(add(at, duration).saturating_add(1)),
                    "{duration:?} at {at}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn exit_between_is_the_exit_when_it_lies_in_the_range(
            at in -4_000_000_000_000i64..4_000_000_000_000,
            from_offset in -40_000_000_000i64..40_000_000_000,
            length in 0i64..20_000_000_000,
            amount in 0u32..30,
            unit in 0usize..5,
        ) {
            let unit = [
                DurationUnit::Minutes,
                DurationUnit::Days,
                DurationUnit::Weeks,
                DurationUnit::Months,
                DurationUnit::Years,
            ][unit];
            let duration = Duration { amount, unit };
            let window = WindowOf::new(0, duration);
            let exit = add(at, duration).saturating_add(1);
            let from = exit + from_offset;
            let until = from + length;
            proptest::prop_assert_eq!(
                window.exit_between(at, from, until),
                (from..until).contains(&exit).then_some(exit)
            );
        }
    }
}

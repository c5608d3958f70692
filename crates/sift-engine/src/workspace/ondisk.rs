//! Events on disk (docs/storage.md "What memory holds"): with a history
//! source, memory keeps of each contact only the events some live window
//! can still read — those at `at` with `at + D ≥ now` for a window `D` of a
//! kept aggregate or the `expires_after` of a scoring rule — and every
//! all-time count, sum and score is kept up to date without them. What
//! memory cannot answer (a new all-time aggregate, a window longer than any
//! kept, a scoring rule over the whole history) is folded from the source,
//! one stream of every stored event in arrival order.
//!
//! Events past every window are dropped lazily: when their contact takes an
//! event, when its timer fires, and on restore; never by a scan of all
//! contacts.

use roaring::RoaringBitmap;
use sift_lang::{Condition, DateTime, Duration};

use super::retention::{SCORE_ROLLUP, rollup_key};
use super::*;
use crate::aggregates::{AggKey, Aggregate};
use crate::changes::EventRecord;
use crate::events::{KeptProps, StoredEvent};
use crate::fields::{LAST_SEEN_AT, LEAD_SCORE};
use crate::fold::Folding;
use crate::history::HistorySource;
use crate::time::add;

/// What one stream of the stored history computes.
#[derive(Default)]
pub(super) struct Pass {
    /// Aggregates counted from scratch at the pass's instant.
    pub aggs: Vec<Aggregate>,
    /// Recompute every contact's lasting points (rules without expiry).
    pub lasting: bool,
    /// Contacts with an event of one of these types are reported in
    /// [`Streamed::touched`].
    pub kinds: Vec<u32>,
    /// Reload memory's events under these windows.
    pub reload: Option<Vec<Duration>>,
    /// With `reload`: the properties to keep of them (default: those kept
    /// now).
    pub keep: Option<KeptProps>,
    /// A restore: remember every idempotency key and each contact's latest `at`.
    pub restore: bool,
}

/// What a rule write on disk streamed.
pub(super) struct Restreamed {
    pub touched: RoaringBitmap,
    pub read: u64,
    pub lasting: Vec<f64>,
}

/// What a stream found.
#[derive(Default)]
pub(super) struct Streamed {
    pub aggs: Vec<Aggregate>,
    pub lasting: Option<Vec<f64>>,
    pub touched: RoaringBitmap,
    pub seen: Vec<DateTime>,
    pub read: u64,
}

/// Whether an event at `at` can still be read at `now` by a window of
/// `horizon` (one `D` with `at + D ≥ now`: it counts while `now ≤ at + D`).
fn within(horizon: &[Duration], at: DateTime, now: DateTime) -> bool {
    horizon.iter().any(|d| add(at, *d) >= now)
}

impl Workspace {
    /// Lends the workspace a history source: from now on memory holds only
    /// recent events, and what needs older ones streams them from `source`,
    /// which must hold every event the workspace applied (the caller makes
    /// the store catch up before a write that may stream: see
    /// [`Workspace::needs_history`]). Events memory holds beyond the horizon
    /// are dropped now, and each contact's lasting points computed from them.
    pub fn set_history(&mut self, source: HistorySource) {
        let capacity = self.contacts.capacity() as usize;
        let mut lasting = vec![0.0; capacity];
        for no in self.contacts.alive().iter() {
            let mut points = 0.0;
            for event in self.events.of(no) {
                points += self.rules.lasting_points(event, &self.events);
            }
            lasting[no as usize] = points;
        }
        self.lasting = lasting.into();
        self.history = Some(source);
        // Memory holds every property of every event so far.
        self.held = KeptProps::everything();
        self.refresh_horizon();
        let now = self.clock;
        for no in 0..self.contacts.capacity() {
            self.trim(no, now);
        }
    }

    /// Whether events live in a history source rather than all in memory.
    pub fn on_disk(&self) -> bool {
        self.history.is_some()
    }

    /// Whether saving `condition` (or previewing it) would stream the
    /// stored history: it reads a count no kept aggregate holds that memory
    /// cannot answer. A server makes its store catch up before such a write.
    pub fn needs_history(&self, condition: &Condition) -> bool {
        if !self.on_disk() {
            return false;
        }
        let mut keys = Vec::new();
        segment_writes::collect_keys(condition, &mut keys);
        keys.iter()
            .any(|k| self.aggregates.find(k).is_none() && !self.in_memory(k))
    }

    /// Whether a scoring-rule write streams the stored history (on disk, it
    /// always does: points of events no longer in memory change).
    pub fn rule_needs_history(&self) -> bool {
        self.on_disk()
    }

    /// The windows memory keeps events for: an event stays while any of
    /// them can read it.
    pub fn horizon(&self) -> &[Duration] {
        &self.horizon
    }

    /// Whether memory holds every event aggregate `key` counts, with the
    /// properties it reads.
    fn in_memory(&self, key: &AggKey) -> bool {
        key.window.is_some_and(|d| self.horizon.contains(&d)) && self.holds_reads(key)
    }

    /// Whether every event memory holds of `key`'s type has the
    /// properties `key` reads. A type or name never seen is in no event.
    fn holds_reads(&self, key: &AggKey) -> bool {
        let Some(kind) = self.events.types.lookup(&key.event_type) else {
            return true;
        };
        let names: Vec<u32> = key_names(key)
            .iter()
            .filter_map(|name| self.events.names.lookup(name))
            .collect();
        self.held.covers(kind, &names)
    }

    /// The properties memory must keep: what the live windowed counts and
    /// the rules with an expiry read.
    pub(super) fn readers(&self) -> KeptProps {
        let mut kept = KeptProps::none();
        for (_, aggregate) in self.aggregates.windowed() {
            kept.add(aggregate.kind, aggregate.read_names());
        }
        for (kind, names) in self.rules.expiring_reads() {
            kept.add(kind, names);
        }
        kept
    }

    /// Recomputes the windows memory keeps events for (those of the kept
    /// aggregates and the rules' expiries) and, on disk, the properties
    /// it keeps of new events; what every event holds can only shrink
    /// here (a reload of memory is what widens it).
    pub(super) fn refresh_horizon(&mut self) {
        let mut horizon: Vec<Duration> = self
            .aggregates
            .windowed()
            .filter_map(|(_, a)| a.window)
            .chain(self.rules.expiries())
            .collect();
        horizon.sort_by_key(|d| (d.unit as u8, d.amount));
        horizon.dedup();
        self.horizon = horizon;
        if self.on_disk() {
            self.kept = self.readers();
            self.held = self.held.intersect(&self.kept);
        }
    }

    /// Drops contact `no`'s events no window reads any more at `now`.
    pub(super) fn trim(&mut self, no: u32, now: DateTime) {
        if self.history.is_none() {
            return;
        }
        let horizon = &self.horizon;
        self.events.prune(no, |at| within(horizon, at, now));
    }

    /// Contact `no`'s lasting points: what rules without expiry gave it
    /// for every event it ever had, on disk or in memory.
    pub(super) fn lasting(&self, no: u32) -> f64 {
        self.lasting.get(no as usize).copied().unwrap_or(0.0)
    }

    pub(super) fn add_lasting(&mut self, no: u32, points: f64) {
        if self.history.is_none() {
            return;
        }
        let index = no as usize;
        if index >= self.lasting.len() {
            self.lasting.resize(index + 1, 0.0);
        }
        self.lasting[index] += points;
    }

    pub(super) fn set_lasting(&mut self, no: u32, points: f64) {
        if self.history.is_none() {
            return;
        }
        let index = no as usize;
        if index >= self.lasting.len() {
            self.lasting.resize(index + 1, 0.0);
        }
        self.lasting[index] = points;
    }

    /// Streams every stored event once, folding it as `pass` asks. Changes
    /// nothing but the interned strings when the source fails; memory's
    /// events are replaced only at the end.
    pub(super) fn stream(&mut self, mut pass: Pass, now: DateTime) -> Result<Streamed, Error> {
        let Some(HistorySource(source)) = self.history.clone() else {
            return Err(Error::HistoryUnavailable(
                "this workspace keeps its events in memory".into(),
            ));
        };
        let capacity = self.contacts.capacity() as usize;
        let mut found = Streamed {
            lasting: pass.lasting.then(|| vec![0.0; capacity]),
            seen: if pass.restore {
                vec![i64::MIN; capacity]
            } else {
                Vec::new()
            },
            ..Streamed::default()
        };
        let mut kept: Vec<(u32, StoredEvent)> = Vec::new();
        // A pass that only counts new aggregates reads only their types.
        let only: Option<(Vec<String>, Vec<String>)> =
            (!pass.restore && !pass.lasting && pass.reload.is_none() && pass.kinds.is_empty())
                .then(|| (aggregate_types(&pass.aggs), aggregate_names(&pass.aggs)));
        // Timers due between the clock and `now` have yet to fire (a write
        // streams before it ticks): the events they read must stay.
        let keep_from = self.clock.min(now);
        let keep = pass.keep.take().unwrap_or_else(|| self.kept.clone());
        let Workspace {
            events,
            contacts,
            rules,
            ..
        } = self;
        // What deleted events gave comes first, as it arrived first.
        let keys: Vec<Option<String>> = pass
            .aggs
            .iter()
            .map(|a| a.window.is_none().then(|| rollup_key(&a.key)))
            .collect();
        let mut folds: Vec<Folding> = std::mem::take(&mut pass.aggs)
            .into_iter()
            .map(|a| Folding::new(a, capacity))
            .collect();
        if keys.iter().any(Option::is_some) || found.lasting.is_some() {
            let aggs = &mut folds;
            let lasting = &mut found.lasting;
            source
                .rollups(&mut |key, no, count, sum| {
                    if !contacts.is_alive(no) {
                        return;
                    }
                    if key == SCORE_ROLLUP {
                        if let Some(points) = lasting.as_mut().and_then(|l| l.get_mut(no as usize))
                        {
                            *points += sum;
                        }
                        return;
                    }
                    for (aggregate, own) in aggs.iter_mut().zip(&keys) {
                        if own.as_deref() == Some(key) {
                            aggregate.add(no, count, sum);
                        }
                    }
                })
                .map_err(Error::HistoryUnavailable)?;
        }
        if let Some((types, names)) = &only {
            let log: &EventLog = events;
            source
                .scan_columns(types, names, &mut |columns| {
                    found.read += columns.contacts.len() as u64;
                    for fold in &mut folds {
                        fold.fold_columns(columns, &log.names, &log.types, now);
                    }
                })
                .map_err(Error::HistoryUnavailable)?;
            found.aggs = folds
                .into_iter()
                .map(|f| f.finish(contacts.alive_words()))
                .collect();
            return Ok(found);
        }
        let mut visit = |seq: u64, record: &EventRecord| {
            found.read += 1;
            if pass.restore
                && let Some(id) = &record.id
            {
                events.remember(id);
            }
            let no = record.no;
            // An empty type: a deleted contact's event, or one past the
            // retention, kept only for its idempotency key.
            if !contacts.is_alive(no) || record.event_type.is_empty() {
                return;
            }
            // Arrival numbers are the stored seqs, so that histories
            // reloaded here and events pushed later merge in arrival order.
            let event = events.intern(
                &record.event_type,
                record.at,
                &record.properties,
                seq as u32,
            );
            for fold in &mut folds {
                fold.fold(no, &event, events, now);
            }
            if let Some(lasting) = &mut found.lasting
                && let Some(points) = lasting.get_mut(no as usize)
            {
                *points += rules.lasting_points(&event, events);
            }
            if pass.kinds.contains(&event.kind) {
                found.touched.insert(no);
            }
            if let Some(seen) = found.seen.get_mut(no as usize) {
                *seen = (*seen).max(event.at);
            }
            if let Some(horizon) = &pass.reload
                && within(horizon, event.at, keep_from)
            {
                let mut event = event;
                keep.strip(&mut event);
                kept.push((no, event));
            }
        };
        source.scan(&mut visit).map_err(Error::HistoryUnavailable)?;
        if pass.reload.is_some() {
            self.events.clear_histories();
            for (no, event) in kept {
                self.events.push_stored(no, event);
            }
            self.held = keep.clone();
            self.kept = keep;
        }
        found.aggs = folds
            .into_iter()
            .map(|f| f.finish(self.contacts.alive_words()))
            .collect();
        Ok(found)
    }

    /// For a preview: the counts of `condition`'s behavioural nodes that
    /// memory cannot answer, streamed from the history at `now` without
    /// changing the workspace (names and values are interned in a copy).
    pub(super) fn count_from_history(
        &self,
        condition: &Condition,
        now: DateTime,
    ) -> Result<crate::aggregates::Aggregates, Error> {
        let Some(HistorySource(source)) = self.history.clone() else {
            return Err(Error::HistoryUnavailable(
                "this workspace keeps its events in memory".into(),
            ));
        };
        let mut scratch = self.events.scratch();
        let mut keys = Vec::new();
        segment_writes::collect_keys(condition, &mut keys);
        let mut aggs: Vec<Aggregate> = Vec::new();
        for key in keys {
            if self.aggregates.find(&key).is_none()
                && !self.in_memory(&key)
                && !aggs.iter().any(|a| a.key == key)
            {
                aggs.push(Aggregate::empty(&key, &mut scratch));
            }
        }
        let contacts = &self.contacts;
        let keys: Vec<Option<String>> = aggs
            .iter()
            .map(|a| a.window.is_none().then(|| rollup_key(&a.key)))
            .collect();
        let types = aggregate_types(&aggs);
        let names = aggregate_names(&aggs);
        let capacity = contacts.capacity() as usize;
        let mut aggs: Vec<Folding> = aggs
            .into_iter()
            .map(|a| Folding::new(a, capacity))
            .collect();
        source
            .rollups(&mut |key, no, count, sum| {
                if !contacts.is_alive(no) {
                    return;
                }
                for (aggregate, own) in aggs.iter_mut().zip(&keys) {
                    if own.as_deref() == Some(key) {
                        aggregate.add(no, count, sum);
                    }
                }
            })
            .map_err(Error::HistoryUnavailable)?;
        source
            .scan_columns(&types, &names, &mut |columns| {
                for fold in &mut aggs {
                    fold.fold_columns(columns, &scratch.names, &scratch.types, now);
                }
            })
            .map_err(Error::HistoryUnavailable)?;
        let aggs = aggs
            .into_iter()
            .map(|f| f.finish(contacts.alive_words()))
            .collect();
        Ok(crate::aggregates::Aggregates::of_list(aggs))
    }

    /// Before a segment write saves `condition`: counts from the store the
    /// aggregates it needs that memory cannot answer (kept aside until the
    /// write's sync installs them), and reloads memory when it needs a
    /// window longer than those kept. Answers the events read.
    pub(super) fn prepare_history(
        &mut self,
        condition: Option<&Condition>,
        now: DateTime,
    ) -> Result<u64, Error> {
        let Some(condition) = condition else {
            return Ok(0);
        };
        if !self.needs_history(condition) {
            return Ok(0);
        }
        let now = now.max(self.clock);
        let mut keys = Vec::new();
        segment_writes::collect_keys(condition, &mut keys);
        let mut pass = Pass::default();
        let mut horizon = self.horizon.clone();
        let mut keep = self.readers();
        let mut wider = false;
        for key in keys {
            if self.aggregates.find(&key).is_some() || self.in_memory(&key) {
                continue;
            }
            match key.window {
                None => {
                    if !pass.aggs.iter().any(|a| a.key == key) {
                        pass.aggs.push(Aggregate::empty(&key, &mut self.events));
                    }
                }
                Some(d) => {
                    if !horizon.contains(&d) {
                        horizon.push(d);
                    }
                    // Before its names are interned below.
                    wider |= !self.holds_reads(&key);
                    // Memory will keep what it reads: reloaded with it.
                    let reads = Aggregate::empty(&key, &mut self.events);
                    keep.add(reads.kind, reads.read_names());
                }
            }
        }
        if horizon != self.horizon || wider {
            pass.reload = Some(horizon.clone());
            pass.keep = Some(keep);
        }
        let found = self.stream(pass, now)?;
        // Until the sync recomputes it, the horizon covers the new windows
        // so that nothing just loaded is trimmed away.
        self.horizon = horizon;
        self.prepared = found.aggs;
        Ok(found.read)
    }

    /// After a scoring-rule write on disk: every contact's lasting points
    /// from the whole stored history under the new rules, memory reloaded
    /// when a rule's expiry reaches further than the events kept. Answers
    /// the contacts with events of `kinds`, the events read and the new
    /// lasting points, which the write installs once its timers have fired
    /// under the old rules.
    pub(super) fn restream_scores(
        &mut self,
        kinds: Vec<u32>,
        now: DateTime,
    ) -> Result<Restreamed, Error> {
        let mut horizon = self.horizon.clone();
        for d in self.rules.expiries() {
            if !horizon.contains(&d) {
                horizon.push(d);
            }
        }
        // The rules are the new ones here: memory reloads when their
        // expiries read further or read properties it does not hold.
        let keep = self.readers();
        let reload = horizon != self.horizon || !self.held.covers_all(&keep);
        let pass = Pass {
            lasting: true,
            kinds,
            reload: reload.then(|| horizon.clone()),
            keep: reload.then_some(keep),
            ..Pass::default()
        };
        let found = self.stream(pass, now)?;
        self.horizon = horizon;
        Ok(Restreamed {
            touched: found.touched,
            read: found.read,
            lasting: found.lasting.unwrap_or_default(),
        })
    }

    /// Rebuilds a workspace as [`Workspace::restore_from`] does, with the
    /// events streamed once from `history` instead of held in `state`
    /// (`state.events` is ignored): each is folded into every aggregate and
    /// the lasting points, and kept in memory only while a window reads it.
    pub fn restore_streaming(
        mut state: StoredState,
        history: HistorySource,
    ) -> Result<Workspace, Error> {
        state.events = Vec::new();
        let clock = state.clock;
        let segments = std::mem::take(&mut state.segments);
        let static_members = std::mem::take(&mut state.static_members);
        let mut ws = Workspace::restore_from(state);
        ws.history = Some(history);
        let mut keys = Vec::new();
        for def in &segments {
            if def.kind == SegmentKind::Dynamic
                && let Some(cond) = &def.condition
            {
                segment_writes::collect_keys(cond, &mut keys);
            }
        }
        let mut horizon: Vec<Duration> = keys
            .iter()
            .filter_map(|k| k.window)
            .chain(ws.rules.expiries())
            .collect();
        horizon.sort_by_key(|d| (d.unit as u8, d.amount));
        horizon.dedup();
        let mut pass = Pass {
            lasting: true,
            reload: Some(horizon.clone()),
            restore: true,
            ..Pass::default()
        };
        for key in &keys {
            pass.aggs.push(Aggregate::empty(key, &mut ws.events));
        }
        let mut keep = KeptProps::none();
        for aggregate in pass.aggs.iter().filter(|a| a.window.is_some()) {
            keep.add(aggregate.kind, aggregate.read_names());
        }
        for (kind, names) in ws.rules.expiring_reads() {
            keep.add(kind, names);
        }
        pass.keep = Some(keep);
        let found = ws.stream(pass, clock)?;
        ws.horizon = horizon;
        ws.lasting = found.lasting.unwrap_or_default().into();
        ws.prepared = found.aggs;
        for no in ws.contacts.alive().iter().collect::<Vec<u32>>() {
            if let Some(&last) = found.seen.get(no as usize)
                && last > i64::MIN
            {
                ws.contacts
                    .set(no, LAST_SEEN_AT, Some(&Value::DateTime(last)));
            }
            let (score, _) = ws.full_score(no, clock);
            ws.contacts.set(no, LEAD_SCORE, Some(&Value::Number(score)));
        }
        ws.restore_segments(segments, &static_members, clock);
        ws.rebuild_timers();
        Ok(ws)
    }
}

/// The distinct event types `aggs` count.
/// The event properties `key` reads: its filter's and its summed one.
fn key_names(key: &AggKey) -> Vec<String> {
    fn walk(cond: &Condition, out: &mut Vec<String>) {
        match cond {
            Condition::All(children) | Condition::Any(children) => {
                children.iter().for_each(|c| walk(c, out))
            }
            Condition::Not(inner) => walk(inner, out),
            Condition::Field { field, .. } => out.push(field.clone()),
            _ => {}
        }
    }
    let mut names = Vec::new();
    if let Some(filter) = &key.filter {
        walk(filter, &mut names);
    }
    names.extend(key.property.clone());
    names
}

/// The event properties `aggs` read: their filters' and summed ones.
fn aggregate_names(aggs: &[Aggregate]) -> Vec<String> {
    let mut names: Vec<String> = aggs.iter().flat_map(|a| key_names(&a.key)).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn aggregate_types(aggs: &[Aggregate]) -> Vec<String> {
    let mut types: Vec<String> = aggs.iter().map(|a| a.key.event_type.clone()).collect();
    types.sort_unstable();
    types.dedup();
    types
}

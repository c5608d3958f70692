//! What the time run checks: the records every write returned (changes
//! caused by time against the oracle), the workspace after each step, the
//! next timer, restarts from an older store and restores.

use super::*;

impl Run {
    // -- the change log -------------------------------------------------------------

    /// Checks a write's change batches against the log and, for changes
    /// caused by time, against the oracle (with the model as it was before
    /// the write), then commits the write's records to the store.
    pub(crate) fn absorb(&mut self, write: &Write, kind: Kind) {
        let prev_clock = self.recorded;
        let mut last_time_at = prev_clock;
        // What timers fired before the write comes first: changes caused by
        // time and the `segment_ref` changes they set off.
        // The timers' changes end with a clock record; a write's own changes
        // (a new contact entering `not in segment ...`) may start with
        // `segment_ref` too, at the very instant a timer fired.
        let mut ticked = true;
        for record in &write.records {
            match record {
                Record::Changes(batch) => {
                    let timed = kind == Kind::Advance
                        || batch.cause == Cause::Time
                        || (ticked && batch.cause == Cause::SegmentRef);
                    ticked &= timed;
                    self.absorb_batch(batch, kind, timed, prev_clock, &mut last_time_at)
                }
                Record::Clock(at) if *at > self.now => {
                    self.fail(format!("clock record {} after now", show(*at)))
                }
                Record::Clock(_) => ticked = false,
                _ => {}
            }
        }
        self.commit(&write.records);
        // A write returns what its tick fired, up to the clock.
        self.recorded = self.ws.clock();
    }

    pub(crate) fn absorb_batch(
        &mut self,
        b: &ChangeBatch,
        kind: Kind,
        timed: bool,
        prev_clock: i64,
        last: &mut i64,
    ) {
        if b.seq_start != self.next_seq || b.contacts.is_empty() {
            self.fail(format!(
                "change batch starts at seq {} after seq {}, or is empty: {b:?}",
                b.seq_start, self.next_seq
            ));
        }
        self.next_seq = b.seq_end();
        self.stats.changes += b.len();
        let plausible = match kind {
            _ if timed => matches!(b.cause, Cause::Time | Cause::SegmentRef),
            Kind::Advance => false,
            Kind::Events => matches!(b.cause, Cause::Event | Cause::SegmentRef),
            Kind::Upsert => matches!(b.cause, Cause::ContactUpdate | Cause::SegmentRef),
            Kind::DeleteContact => b.cause == Cause::ContactDelete,
            Kind::Segment => matches!(b.cause, Cause::SegmentEdit | Cause::SegmentRef),
            Kind::Static => matches!(
                b.cause,
                Cause::StaticAdd | Cause::StaticRemove | Cause::SegmentRef
            ),
            // docs/concepts.md names no cause for a rescore; any but these would be odd.
            Kind::Rule => !matches!(
                b.cause,
                Cause::ContactDelete | Cause::StaticAdd | Cause::StaticRemove | Cause::Merge
            ),
        };
        if !plausible {
            self.fail(format!("implausible cause for a {kind:?} write: {b:?}"));
        }
        if timed {
            // Fired timers: after the previous clock, at most now, in order.
            if b.at <= prev_clock || b.at > self.now || b.at < *last {
                self.fail(format!(
                    "time change at {} outside ({}, {}] or out of order (previous at {}): {b:?}",
                    show(b.at),
                    show(prev_clock),
                    show(self.now),
                    show(*last)
                ));
            }
            *last = b.at;
            self.stats.time_changes += b.len();
            self.check_flip(b);
        } else if b.at != self.now {
            self.fail(format!("change batch of a write not at now: {b:?}"));
        }
        if let Some(lag) = &mut self.lag {
            for no in &b.contacts {
                lag.changes
                    .push((b.segment_id.clone(), b.kind, b.cause, b.at, no));
            }
        }
        if let Err(message) = self.replay.apply(b) {
            self.fail(message);
        }
    }

    /// A change recorded at instant `at` by the passing of time: the oracle
    /// must see each contact out at `at - 1` and in at `at` (or the reverse).
    pub(crate) fn check_flip(&self, b: &ChangeBatch) {
        let Some(seg) = self.model.segs.get(&b.segment_id) else {
            self.fail(format!("time change of unknown segment {b:?}"));
        };
        for no in &b.contacts {
            let cid = self.ws.contacts().id(no).to_string();
            if !self.model.contacts.contains_key(&cid) {
                self.fail(format!(
                    "time change for contact {cid:?} the model lacks: {b:?}"
                ));
            }
            let before = self.model.memberships(&cid, b.at - 1)[b.segment_id.as_str()];
            let after = self.model.memberships(&cid, b.at)[b.segment_id.as_str()];
            let expected = match b.kind {
                ChangeKind::Entered => (false, true),
                ChangeKind::Exited => (true, false),
            };
            if (before, after) != expected {
                let cond = seg.cond.as_ref().map(|c| self.text(c));
                self.fail(format!(
                    "{:?} of {cid:?} in {} at {} (cause {:?}), but the oracle has it {} at {} and {} at {}\n  condition: {cond:?}\n  contact {}",
                    b.kind,
                    b.segment_id,
                    show(b.at),
                    b.cause,
                    if before { "in" } else { "out" },
                    show(b.at - 1),
                    if after { "in" } else { "out" },
                    show(b.at),
                    self.describe(&cid)
                ));
            }
        }
    }

    // -- checks ---------------------------------------------------------------------

    pub(crate) fn check(&mut self) {
        let ws = &self.ws;
        let now = self.now;
        if ws.clock() != now {
            self.fail(format!("clock is {} after advance", show(ws.clock())));
        }
        if ws.contact_count() != self.model.contacts.len() as u64 {
            self.fail(format!(
                "engine has {} contacts, model {}",
                ws.contact_count(),
                self.model.contacts.len()
            ));
        }
        for id in &self.model.gone {
            if ws.lookup(id).is_some() {
                self.fail(format!("deleted contact {id:?} still found"));
            }
        }
        let mut expected: HashMap<&str, RoaringBitmap> = self
            .model
            .segs
            .keys()
            .map(|s| (s.as_str(), RoaringBitmap::new()))
            .collect();
        let mut no_of: HashMap<&str, u32> = HashMap::new();
        for (cid, c) in &self.model.contacts {
            let Some(no) = ws.lookup(cid) else {
                self.fail(format!("contact {cid:?} missing"));
            };
            no_of.insert(cid, no);
            let Some(view) = ws.contact(no) else {
                self.fail(format!("contact {cid:?} (#{no}) has no view"));
            };
            let props: BTreeMap<String, Value> = view.properties.iter().cloned().collect();
            let got = (
                view.created_at,
                view.updated_at,
                view.anonymous,
                view.last_seen_at,
                view.lead_score,
            );
            let want = (
                c.created_at,
                c.updated_at,
                c.anonymous,
                c.events.iter().map(|e| e.at).max(),
                self.model.lead_score(c, now),
            );
            if view.id != *cid || props != c.props || got != want {
                self.fail(format!(
                    "contact {cid:?} (#{no}) is {view:?}\n  (created, updated, anonymous, last_seen, score) {got:?}, oracle {want:?}\n  {}",
                    self.describe(cid)
                ));
            }
            for (s, m) in self.model.memberships(cid, now) {
                if m {
                    expected.get_mut(s).unwrap().insert(no);
                }
            }
        }
        if ws.segments().len() != self.model.segs.len() {
            self.fail(format!(
                "engine has {} segments, model {}",
                ws.segments().len(),
                self.model.segs.len()
            ));
        }
        for (id, mseg) in &self.model.segs {
            let Some(seg) = ws.segment(id) else {
                self.fail(format!("segment {id} missing"));
            };
            if seg.def.condition != mseg.cond || seg.def.name != mseg.name {
                self.fail(format!("segment {id} is {:?}, model {mseg:?}", seg.def));
            }
            let want = &expected[id.as_str()];
            self.stats.segment_checks += 1;
            if !want.is_empty() && want.len() < self.model.contacts.len() as u64 {
                self.stats.mixed_checks += 1;
            }
            if *seg.members.bitmap() != *want {
                let cond = mseg.cond.as_ref().map(|c| self.text(c));
                let mut diff = String::new();
                for no in (&*seg.members.bitmap() ^ want).iter().take(4) {
                    let cid = ws.contacts().id(no);
                    let _ = write!(
                        diff,
                        "  #{no} engine {}, oracle {}: {}",
                        seg.members.contains(no),
                        want.contains(no),
                        self.describe(cid)
                    );
                }
                let refs: Vec<(String, Option<String>)> = self
                    .model
                    .refs(id)
                    .iter()
                    .map(|r| {
                        (
                            r.clone(),
                            self.model.segs[r].cond.as_ref().map(|c| self.text(c)),
                        )
                    })
                    .collect();
                self.fail(format!(
                    "segment {id} membership differs from the oracle at {}\n  condition: {cond:?}\n  refers to {refs:?}\n{diff}",
                    show(now)
                ));
            }
            if let Some(cond) = &mseg.cond {
                match ws.preview(cond, now) {
                    Ok(bulk) if bulk == *seg.members.bitmap() => {}
                    other => self.fail(format!(
                        "segment {id}: preview {other:?} != members {:?}",
                        seg.members
                    )),
                }
            }
            if let Err(message) = self.replay.check(id, &seg.members.bitmap()) {
                self.fail(message);
            }
        }
        if ws.next_seq() != self.next_seq {
            self.fail(format!(
                "engine next_seq {} but the log ends at {}",
                ws.next_seq(),
                self.next_seq
            ));
        }
        self.check_timer(&self.ws);
    }

    /// The engine's next timer is after now and no later than the first
    /// instant at which the oracle sees a membership flip.
    pub(crate) fn check_timer(&self, ws: &Workspace) {
        let now = self.now;
        let timer = ws.next_timer();
        if timer.is_some_and(|t| t <= now) {
            self.fail(format!("next_timer {:?} is not after now", timer.map(show)));
        }
        let limit = timer.unwrap_or(i64::MAX);
        let mut nodes = TimeNodes::default();
        for seg in self.model.segs.values() {
            if let Some(cond) = &seg.cond {
                time_nodes(cond, &mut nodes);
            }
        }
        for (cid, c) in &self.model.contacts {
            let mut candidates: Vec<i64> = self
                .model
                .candidates(c, &nodes)
                .into_iter()
                .filter(|t| *t > now && *t < limit)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_unstable();
            candidates.dedup();
            let current = self.model.memberships(cid, now);
            for t in candidates {
                let then = self.model.memberships(cid, t);
                if then != current {
                    let flipped: Vec<&str> = current
                        .iter()
                        .filter(|(s, m)| then[*s] != **m)
                        .map(|(s, _)| *s)
                        .collect();
                    let conds: Vec<String> = flipped
                        .iter()
                        .filter_map(|s| self.model.segs[*s].cond.as_ref())
                        .map(|c| self.text(c))
                        .collect();
                    self.fail(format!(
                        "the oracle flips {cid:?} in {flipped:?} at {} but the next timer is {:?}\n  conditions: {conds:?}\n  contact {}",
                        show(t),
                        timer.map(show),
                        self.describe(cid)
                    ));
                }
            }
        }
    }

    /// A restart from the store as it was before a stretch of steps without
    /// writes: loaded at that older clock and advanced to now, it must record
    /// the very changes the live workspace recorded meanwhile.
    pub(crate) fn lag_check(&mut self) {
        let Some(lag) = self.lag.take() else {
            return;
        };
        let mut back = self.load(&lag.store, false);
        let write = back.advance(self.now);
        let mut got: Vec<(String, ChangeKind, Cause, i64, u32)> = write
            .change_batches()
            .flat_map(|b| {
                b.contacts
                    .iter()
                    .map(move |no| (b.segment_id.clone(), b.kind, b.cause, b.at, no))
            })
            .collect();
        let mut want = lag.changes;
        got.sort_by(|a, b| (a.3, &a.0, a.4).cmp(&(b.3, &b.0, b.4)));
        want.sort_by(|a, b| (a.3, &a.0, a.4).cmp(&(b.3, &b.0, b.4)));
        self.note(format!(
            "restart from {} to now: {} changes",
            show(lag.clock),
            want.len()
        ));
        if got != want {
            let shown = |v: &[(String, ChangeKind, Cause, i64, u32)]| -> Vec<String> {
                v.iter()
                    .take(12)
                    .map(|(s, k, c, at, no)| format!("{s} {k:?} {c:?} {} #{no}", show(*at)))
                    .collect()
            };
            self.fail(format!(
                "a restart from the store at {} recorded other changes than the live workspace since:\n  restarted {:?}\n  live {:?}",
                show(lag.clock),
                shown(&got),
                shown(&want)
            ));
        }
        let (live, back_digest) = (digest(&self.ws), digest(&back));
        let strip = |d: Digest| Digest {
            next_timer: None,
            ..d
        };
        let (live, back_digest) = (strip(live), strip(back_digest));
        if live != back_digest {
            self.fail(format!(
                "a restart from the store at {} differs from the live workspace (live first):\n{}",
                show(lag.clock),
                digest_diff(&live, &back_digest)
            ));
        }
        self.check_timer(&back);
        self.stats.lag_restores += 1;
        self.stats.lag_changes += got.len();
    }

    /// Commits records to the store (and, on disk, to the history the
    /// workspace streams from, as a server's writer would before a write
    /// that streams).
    pub(crate) fn commit(&mut self, records: &[Record]) {
        if let Err(e) = self.store.commit(&[records]) {
            match e {}
        }
        if let Some(shared) = &self.shared {
            let Ok(mut shared) = shared.write() else {
                self.fail("the shared store's lock is poisoned");
            };
            if let Err(e) = shared.commit(&[records]) {
                match e {}
            }
        }
    }

    /// A workspace loaded from `store`; on disk, streaming its events from
    /// the shared history when `live` (the run may continue on it), else
    /// from a copy of `store`.
    pub(crate) fn load(&self, store: &MemoryStore, live: bool) -> Workspace {
        let Some(shared) = &self.shared else {
            let Ok(ws) = store.load();
            return ws;
        };
        let history: Arc<dyn EventHistory> = if live {
            shared.clone()
        } else {
            Arc::new(RwLock::new(store.clone()))
        };
        store
            .load_streaming(history)
            .unwrap_or_else(|e| self.fail(format!("a streaming restore failed: {e}")))
    }

    pub(crate) fn restore_check(&mut self) {
        let mut restored = self.load(&self.store, true);
        let write = restored.advance(self.now);
        self.stats.restores += 1;
        if let Some(b) = write.change_batches().next() {
            self.fail(format!(
                "a workspace loaded from the store recorded changes the live one had already recorded when advanced to now: {b:?}"
            ));
        }
        let (live, back) = (digest(&self.ws), digest(&restored));
        let timers = (live.next_timer, back.next_timer);
        let strip = |d: Digest| Digest {
            next_timer: None,
            ..d
        };
        let (live, back) = (strip(live), strip(back));
        if live != back {
            self.fail(format!(
                "restored workspace differs from the live one (live first; next timers {timers:?}):\n{}",
                digest_diff(&live, &back)
            ));
        }
        self.check_timer(&restored);
        self.note(format!(
            "restore check (continuing on the restored workspace: {})",
            self.swap_next_restore
        ));
        if self.swap_next_restore {
            self.commit(&write.records);
            self.ws = restored;
        }
        self.swap_next_restore = !self.swap_next_restore;
    }
}

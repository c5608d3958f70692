//! What the plain run checks: the records every write returned, the
//! workspace against the oracle after each step, and restores.

use super::*;

impl Run {
    // -- the change log -------------------------------------------------------

    pub(crate) fn absorb(&mut self, write: &Write, kind: &Kind) {
        let mut counts = (0u64, 0u64);
        for record in &write.records {
            match record {
                Record::Field(def) => {
                    match self.log.fields.iter_mut().find(|f| f.name == def.name) {
                        Some(f) => *f = def.clone(),
                        None => self.log.fields.push(def.clone()),
                    }
                }
                Record::Contact(snap) => {
                    if self.log.deleted.contains_key(&snap.no) {
                        self.fail(format!("number {} of a deleted contact reused", snap.no));
                    }
                    self.log.contacts.insert(snap.no, snap.clone());
                }
                Record::ContactDeleted { no } => {
                    let Some(snap) = self.log.contacts.remove(no) else {
                        self.fail(format!("deleted contact #{no} was never written"));
                    };
                    self.log.deleted.insert(*no, snap.id);
                    for members in self.log.statics.values_mut() {
                        members.remove(*no);
                    }
                }
                Record::Segment(def) => {
                    if matches!(kind, Kind::CreateSegment(_)) {
                        self.log.replay.create(&def.id);
                    }
                    if def.kind == SegmentKind::Static {
                        self.log.statics.entry(def.id.clone()).or_default();
                    }
                    self.log.segments.insert(def.id.clone(), def.clone());
                }
                Record::SegmentDeleted { id } => {
                    self.log.segments.remove(id);
                    self.log.statics.remove(id);
                    self.log.replay.delete(id);
                }
                Record::StaticMembers {
                    segment_id,
                    contacts,
                    present,
                } => {
                    let members = self.log.statics.entry(segment_id.clone()).or_default();
                    if *present {
                        *members |= contacts;
                    } else {
                        *members -= contacts;
                    }
                }
                Record::Changes(batch) => self.absorb_changes(batch, kind, &mut counts),
                // A create or edit records the definition it saved, after
                // the changes it made to that segment.
                Record::SegmentRevision(rev) => {
                    let saved = self.log.segments.get(&rev.segment_id);
                    let same = saved.is_some_and(|def| {
                        def.name == rev.name
                            && def.description == rev.description
                            && def
                                .condition
                                .as_ref()
                                .map(|c| sift_lang::to_json(c).to_string())
                                == rev.condition_tree
                    });
                    let main = matches!(kind, Kind::CreateSegment(id) | Kind::EditSegment(id) if *id == rev.segment_id);
                    if !same || !main || (rev.entered, rev.exited) != counts || rev.at != self.now {
                        self.fail(format!(
                            "revision {rev:?} does not match its write (which moved {counts:?}) or the saved definition {saved:?}"
                        ));
                    }
                }
                // This run has no events, rules or time-dependent segments.
                Record::Clock(_) => {}
                other => panic!("unexpected record {other:?}"),
            }
        }
        let main = match kind {
            Kind::CreateSegment(id) | Kind::EditSegment(id) | Kind::Static { id, .. } => Some(id),
            _ => None,
        };
        if let Some(id) = main
            && counts.0 + counts.1 > 2048
            && !self.model.referrers(id).is_empty()
        {
            self.stats.wide_changes += 1;
        }
        if main.is_some() && (write.entered, write.exited) != counts {
            self.fail(format!(
                "write reports {} entered / {} exited, its changes say {counts:?}",
                write.entered, write.exited
            ));
        }
    }

    pub(crate) fn absorb_changes(&mut self, b: &ChangeBatch, kind: &Kind, counts: &mut (u64, u64)) {
        if b.seq_start != self.log.next_seq {
            self.fail(format!(
                "change batch starts at seq {} after seq {}: {b:?}",
                b.seq_start, self.log.next_seq
            ));
        }
        if b.contacts.is_empty() || b.at != self.now {
            self.fail(format!(
                "empty or mistimed change batch {b:?} (now {})",
                self.now
            ));
        }
        self.log.next_seq = b.seq_end();
        self.stats.changes += b.len();
        let names = |ws: &Workspace| -> Vec<String> {
            b.contacts
                .iter()
                .map(|no| ws.contacts().id(no).to_string())
                .collect()
        };
        let seg = b.segment_id.as_str();
        let is_ref = b.cause == Cause::SegmentRef;
        let plausible = match kind {
            Kind::Upsert(ids) => {
                matches!(b.cause, Cause::ContactUpdate | Cause::SegmentRef)
                    && names(&self.ws).iter().all(|c| ids.contains(c))
            }
            Kind::DeleteContact(no) => {
                b.cause == Cause::ContactDelete
                    && b.kind == ChangeKind::Exited
                    && b.contacts.len() == 1
                    && b.contacts.contains(*no)
            }
            Kind::CreateSegment(id) => {
                seg == id && b.cause == Cause::SegmentEdit && b.kind == ChangeKind::Entered
            }
            Kind::EditSegment(id) => {
                if seg == id {
                    b.cause == Cause::SegmentEdit
                } else {
                    is_ref
                }
            }
            Kind::Static { id, add, contacts } => {
                let own = if *add {
                    (Cause::StaticAdd, ChangeKind::Entered)
                } else {
                    (Cause::StaticRemove, ChangeKind::Exited)
                };
                b.contacts.is_subset(contacts)
                    && if seg == id {
                        (b.cause, b.kind) == own
                    } else {
                        is_ref
                    }
            }
            Kind::DeleteSegment | Kind::DeclareField => false,
        };
        // A segment_ref change is only possible in a segment that refers to one.
        let refers = self
            .model
            .segs
            .get(seg)
            .is_some_and(|s| !self.model.refs(seg).is_empty() && s.cond.is_some());
        if !plausible || (is_ref && !refers) {
            self.fail(format!(
                "implausible change {b:?} for contacts {:?}",
                names(&self.ws)
            ));
        }
        if let Kind::CreateSegment(id) | Kind::EditSegment(id) | Kind::Static { id, .. } = kind
            && seg == id
        {
            match b.kind {
                ChangeKind::Entered => counts.0 += b.len(),
                ChangeKind::Exited => counts.1 += b.len(),
            }
        }
        if let Err(message) = self.log.replay.apply(b) {
            self.fail(message);
        }
        if b.kind == ChangeKind::Entered
            && let Some(dead) = b
                .contacts
                .iter()
                .find(|no| !self.ws.contacts().is_alive(*no))
        {
            self.fail(format!("deleted contact #{dead} entered {seg}"));
        }
    }

    // -- checks ---------------------------------------------------------------

    pub(crate) fn check(&mut self) {
        // Contacts whose explanation is checked, by position among the live ones.
        let explained: Vec<usize> = (0..2).map(|_| self.rng.random_range(0..1 << 20)).collect();
        let ws = &self.ws;
        let model = &self.model;
        if ws.contact_count() != model.contacts.len() as u64 {
            self.fail(format!(
                "engine has {} contacts, model {}",
                ws.contact_count(),
                model.contacts.len()
            ));
        }
        let fields: BTreeMap<String, FieldType> = ws
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.field_type))
            .collect();
        if fields != model.types {
            self.fail(format!("schema {fields:?} != model {:?}", model.types));
        }
        for id in &model.gone {
            if ws.lookup(id).is_some() {
                self.fail(format!("deleted contact {id:?} still found"));
            }
        }
        let oracle = model.oracle();
        let mut no_of: HashMap<&str, u32> = HashMap::new();
        for (id, c) in &model.contacts {
            let Some(no) = ws.lookup(id) else {
                self.fail(format!("contact {id:?} missing"));
            };
            no_of.insert(id, no);
            let Some(view) = ws.contact(no) else {
                self.fail(format!("contact {id:?} (#{no}) has no view"));
            };
            let props: BTreeMap<String, Value> = view.properties.iter().cloned().collect();
            let system = (
                Value::DateTime(view.created_at),
                Value::DateTime(view.updated_at),
                Value::Boolean(view.anonymous),
                view.lead_score,
                view.last_seen_at,
            );
            let expected = (
                c.created_at.clone(),
                c.updated_at.clone(),
                c.anonymous.clone(),
                0.0,
                None,
            );
            if view.id != *id || props != c.props || system != expected {
                self.fail(format!(
                    "contact {id:?} (#{no}) is {view:?}, model {:?} {expected:?}",
                    c.props
                ));
            }
            let mut in_segs: Vec<&str> = view.segments.iter().map(|(s, _)| s.as_str()).collect();
            in_segs.sort_unstable();
            let mut expected: Vec<&str> = oracle
                .iter()
                .filter(|(_, m)| m.contains(id.as_str()))
                .map(|(s, _)| *s)
                .collect();
            expected.sort_unstable();
            if in_segs != expected {
                self.fail(format!(
                    "contact {id:?} view lists segments {in_segs:?}, oracle {expected:?}"
                ));
            }
        }
        if ws.segments().len() != model.segs.len() {
            self.fail(format!(
                "engine has {} segments, model {}",
                ws.segments().len(),
                model.segs.len()
            ));
        }
        let mut max_rank = 0;
        for (id, mseg) in &model.segs {
            let Some(seg) = ws.segment(id) else {
                self.fail(format!("segment {id} missing"));
            };
            if seg.def.name != mseg.name || seg.def.condition != mseg.cond {
                self.fail(format!(
                    "segment {id} is {:?} {:?}, model {:?} {:?}",
                    seg.def.name, seg.def.condition, mseg.name, mseg.cond
                ));
            }
            let expected: RoaringBitmap = oracle[id.as_str()].iter().map(|c| no_of[c]).collect();
            if *seg.members.bitmap() != expected {
                let cond = mseg.cond.as_ref().map(|c| self.text(c));
                let mut diff = String::new();
                for no in (&*seg.members.bitmap() ^ &expected).iter().take(6) {
                    let cid = ws.contacts().id(no);
                    let _ = writeln!(
                        diff,
                        "  #{no} {cid:?}: engine {}, oracle {}; properties {:?}",
                        seg.members.contains(no),
                        expected.contains(no),
                        model
                            .contacts
                            .get(cid)
                            .map(|c| (&c.props, &c.anonymous, &c.created_at))
                    );
                }
                let deps: Vec<(String, usize)> = model
                    .refs(id)
                    .iter()
                    .map(|r| (r.clone(), oracle[r.as_str()].len()))
                    .collect();
                self.fail(format!(
                    "segment {id} ({:?}) membership differs from the oracle\n  condition: {cond:?}\n  refs (oracle sizes): {deps:?}\n{diff}",
                    mseg.name
                ));
            }
            if let Some(cond) = &mseg.cond {
                match ws.preview(cond, self.now) {
                    Ok(bulk) if bulk == *seg.members.bitmap() => {}
                    Ok(bulk) => self.fail(format!(
                        "segment {id}: bulk evaluation {bulk:?} != incremental {:?}",
                        seg.members
                    )),
                    Err(e) => self.fail(format!("preview of segment {id}: {e}")),
                }
                // explain's root says the same as the membership.
                for pick in &explained {
                    let Some((cid, no)) = no_of.iter().nth(pick % no_of.len().max(1)) else {
                        break;
                    };
                    match ws.explain(*no, id, self.now) {
                        Ok(node) if node.result == expected.contains(*no) => {}
                        other => self.fail(format!(
                            "explain of segment {id} for {cid:?}: {other:?}, oracle {}",
                            expected.contains(*no)
                        )),
                    }
                }
            }
            if let Err(message) = self.log.replay.check(id, &seg.members.bitmap()) {
                self.fail(message);
            }
            max_rank = max_rank.max(self.rank(id));
        }
        if ws.next_seq() != self.log.next_seq {
            self.fail(format!(
                "engine next_seq {} but the log ends at {}",
                ws.next_seq(),
                self.log.next_seq
            ));
        }
        self.stats.max_contacts = self.stats.max_contacts.max(model.contacts.len());
        self.stats.max_segments = self.stats.max_segments.max(model.segs.len());
        self.stats.max_rank = self.stats.max_rank.max(max_rank);
    }

    /// Length of the longest reference chain from segment `id`.
    pub(crate) fn rank(&self, id: &str) -> usize {
        1 + self
            .model
            .refs(id)
            .iter()
            .map(|r| self.rank(r))
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn restore_check(&mut self) {
        let mut contacts: Vec<ContactSnapshot> = self.log.contacts.values().cloned().collect();
        contacts.shuffle(&mut self.rng);
        let mut segments: Vec<SegmentDef> = self.log.segments.values().cloned().collect();
        segments.shuffle(&mut self.rng);
        let restored = Workspace::restore(
            self.log.fields.clone(),
            contacts,
            segments,
            self.log.statics.clone(),
            self.log.next_seq,
            self.now,
        );
        self.stats.restores += 1;
        let live = &self.ws;
        let what = |ws: &Workspace| {
            let mut fields: Vec<FieldDef> = ws.fields().to_vec();
            fields.sort_by(|a, b| a.name.cmp(&b.name));
            let mut views = Vec::new();
            for no in ws.contacts().alive() {
                let mut view = ws.contact(no).unwrap();
                view.segments.sort();
                views.push(view);
            }
            (
                ws.next_seq(),
                ws.contact_count(),
                fields,
                views,
                digest(ws).segments,
            )
        };
        let (a, b) = (what(live), what(&restored));
        if a != b {
            let mut diff = String::new();
            for (x, y) in a.4.iter().zip(&b.4) {
                if x != y {
                    let _ = writeln!(diff, "  live {x:?}\n  restored {y:?}");
                }
            }
            self.fail(format!(
                "restored workspace differs from the live one (next_seq {} vs {}, contacts {} vs {}, fields equal {}, views equal {})\n{diff}",
                a.0,
                b.0,
                a.1,
                b.1,
                a.2 == b.2,
                a.3 == b.3
            ));
        }
        self.note(format!(
            "restore check (continuing on the restored workspace: {})",
            self.swap_next_restore
        ));
        if self.swap_next_restore {
            let mut restored = restored;
            restored.reserve_numbers(self.log.deleted.iter().map(|(no, id)| (*no, id.clone())));
            self.ws = restored;
        }
        self.swap_next_restore = !self.swap_next_restore;
    }
}

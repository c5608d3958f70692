//! Differential test of identify (docs/concepts.md "Identify") against an independent model.
//!
//! Random anonymous and known contacts get properties, events (some late,
//! some re-sent with their idempotency key) and static memberships; dynamic
//! segments test properties, `anonymous`, event counts, windows and sums,
//! `lead_score` (a scoring rule with expiry), `last_seen_at` and `in
//! segment`; anonymous ids are identified into known ones in random order,
//! also repeatedly, into missing contacts, with ids never seen, and with
//! every refusal; later writes go to merged ids; contacts get deleted; time
//! passes. The model merges by the rules of docs/concepts.md "Identify" itself. After every step:
//!
//! - the outcome of each identify (merged, alias only, unchanged, refused
//!   with which error) is the model's, and identifying again changes
//!   nothing: no records, no changes;
//! - every segment's membership equals that of a workspace built from
//!   scratch from the model (no merge ever happened there): its contacts
//!   upserted, its events ingested, its static members added; and every
//!   contact's properties, `anonymous`, `lead_score` and `last_seen_at`
//!   equal that workspace's;
//! - replaying the change log from seq 1 gives the current membership, and
//!   every change an identify recorded has cause `merge`;
//! - a workspace loaded from the records (MemoryStore) equals the live one.
//!
//! Knobs: `SIFT_MERGE_SEEDS` (default 6), `SIFT_MERGE_STEPS` (default 250).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use sift_engine::{
    Cause, ChangeKind, ContactInput, EventInput, MemoryStore, RawValue, Record, Store, Workspace,
};

mod merge_model;
use merge_model::{MContact, Model, Outcome, env_number, error_kind, setup};

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const KNOWN: usize = 8;
const ANONYMOUS: usize = 16;

struct Run {
    rng: StdRng,
    ws: Workspace,
    store: MemoryStore,
    model: Model,
    now: i64,
    seq_event: u64,
    sent: Vec<EventInput>,
    log: Vec<String>,
    merges: u64,
}

fn known_id(k: usize) -> String {
    format!("k{k}")
}

fn anonymous_id(k: usize) -> String {
    format!("anon_{k}")
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut run = Run {
            rng: StdRng::seed_from_u64(seed),
            ws: Workspace::new(),
            store: MemoryStore::default(),
            model: Model::default(),
            now: T0,
            seq_event: 0,
            sent: Vec::new(),
            log: Vec::new(),
            merges: 0,
        };
        let now = run.now;
        let write = setup(&mut run.ws, now);
        run.commit(&write);
        run
    }

    fn commit(&mut self, records: &[Record]) {
        let Ok(()) = self.store.commit(&[records]);
    }

    fn fail(&self, message: String) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(25).collect();
        panic!("{message}\nlast steps (newest first):\n{tail:#?}");
    }

    fn any_id(&mut self) -> String {
        if self.rng.random_bool(0.4) {
            known_id(self.rng.random_range(0..KNOWN))
        } else {
            anonymous_id(self.rng.random_range(0..ANONYMOUS))
        }
    }

    fn step(&mut self) {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..25 => self.event(),
            25..40 => self.upsert(),
            40..50 => self.statics(),
            50..80 => self.identify(),
            80..84 => self.delete(),
            _ => self.advance(),
        }
    }

    fn event(&mut self) {
        let id = self.any_id();
        let anonymous = id.starts_with("anon_");
        // Re-sending an accepted event must change nothing, even addressed
        // to an id merged since.
        if !self.sent.is_empty() && self.rng.random_bool(0.1) {
            let resent = self.sent.choose(&mut self.rng).cloned();
            if let Some(item) = resent {
                self.log.push(format!("resend {:?}", item.id));
                let write = self.ingest(vec![item]);
                if write.accepted != 0 {
                    self.fail("a re-sent event was applied again".into());
                }
                return;
            }
        }
        let kind = *["product_view", "purchase", "page_visit"]
            .choose(&mut self.rng)
            .unwrap_or(&"page_visit");
        let at = self.now - self.rng.random_range(0..12) * DAY;
        let amount = (kind == "purchase").then(|| f64::from(self.rng.random_range(1..8) * 20));
        self.seq_event += 1;
        let item = EventInput {
            id: Some(format!("e{}", self.seq_event)),
            contact_id: id.clone(),
            event_type: kind.to_string(),
            at: Some(at),
            properties: amount
                .map(|a| vec![("amount".to_string(), RawValue::Number(a))])
                .unwrap_or_default(),
            properties_json: "{}".into(),
            anonymous: anonymous.then_some(true),
        };
        self.log
            .push(format!("event {id} {kind} at -{}d", (self.now - at) / DAY));
        self.sent.push(item.clone());
        self.ingest(vec![item]);
        let target = self.model.resolve(&id).unwrap_or_else(|| id.clone());
        let contact = self
            .model
            .contacts
            .entry(target)
            .or_insert_with(|| MContact {
                anonymous,
                ..MContact::default()
            });
        contact.events.push((kind.to_string(), at, amount));
    }

    fn ingest(&mut self, items: Vec<EventInput>) -> sift_engine::Write {
        self.now += 1_000;
        match self.ws.ingest(items, self.now) {
            Ok(write) => {
                self.commit(&write.records);
                write
            }
            Err(e) => self.fail(format!("event refused: {e}")),
        }
    }

    fn upsert(&mut self) {
        let id = self.any_id();
        let mut properties = Vec::new();
        if self.rng.random_bool(0.6) {
            let country = ["ES", "FR", "PT"].choose(&mut self.rng).unwrap_or(&"ES");
            properties.push(("country".to_string(), RawValue::String(country.to_string())));
        }
        if self.rng.random_bool(0.4) {
            let name = if self.rng.random_bool(0.8) {
                RawValue::String(format!("name of {id}"))
            } else {
                RawValue::Null
            };
            properties.push(("first_name".to_string(), name));
        }
        let is_new = self.model.resolve(&id).is_none();
        let anonymous = (is_new && id.starts_with("anon_")).then_some(true);
        self.log
            .push(format!("upsert {id} {properties:?} {anonymous:?}"));
        self.now += 1_000;
        let input = ContactInput {
            id: id.clone(),
            properties: properties.clone(),
            anonymous,
        };
        match self.ws.upsert_contacts(&[input], self.now) {
            Ok(write) => self.commit(&write.records),
            Err(e) => self.fail(format!("upsert refused: {e}")),
        }
        let target = self.model.resolve(&id).unwrap_or_else(|| id.clone());
        let contact = self.model.contacts.entry(target).or_default();
        if let Some(a) = anonymous {
            contact.anonymous = a;
        }
        for (name, value) in properties {
            if value == RawValue::Null {
                contact.properties.remove(&name);
            } else {
                contact.properties.insert(name, value);
            }
        }
    }

    fn statics(&mut self) {
        let id = self.any_id();
        let Some(target) = self.model.resolve(&id) else {
            return;
        };
        let add = self.rng.random_bool(0.7);
        self.log.push(format!(
            "static {} {id}",
            if add { "add" } else { "remove" }
        ));
        self.now += 1_000;
        match self.ws.set_static_members("vip", &[id], add, self.now) {
            Ok(write) => self.commit(&write.records),
            Err(e) => self.fail(format!("static write refused: {e}")),
        }
        if let Some(contact) = self.model.contacts.get_mut(&target) {
            contact.statics = add;
        }
    }

    fn delete(&mut self) {
        let id = self.any_id();
        let Some(target) = self.model.resolve(&id) else {
            return;
        };
        self.log.push(format!("delete {id} (= {target})"));
        self.now += 1_000;
        match self.ws.delete_contact(&id, self.now) {
            Ok(write) => self.commit(&write.records),
            Err(e) => self.fail(format!("delete refused: {e}")),
        }
        self.model.delete(&target);
    }

    fn advance(&mut self) {
        self.now += self.rng.random_range(1..36) * 3_600_000;
        self.log
            .push(format!("advance to +{}h", (self.now - T0) / 3_600_000));
        let write = self.ws.advance(self.now);
        self.commit(&write.records);
    }

    fn identify(&mut self) {
        let a = if self.rng.random_bool(0.85) {
            anonymous_id(self.rng.random_range(0..ANONYMOUS + 4))
        } else {
            self.any_id()
        };
        let k = if self.rng.random_bool(0.85) {
            known_id(self.rng.random_range(0..KNOWN + 2))
        } else {
            self.any_id()
        };
        let expected = self.model.expected(&a, &k);
        self.log
            .push(format!("identify {a} -> {k} (expect {expected:?})"));
        self.now += 1_000;
        let seq_before = self.ws.next_seq();
        let got = match self.ws.identify(&a, &k, self.now) {
            Ok(write) => {
                let outcome = if write.merged {
                    Outcome::Merged
                } else if write.records.is_empty() {
                    Outcome::Unchanged
                } else {
                    Outcome::AliasOnly
                };
                self.commit(&write.records);
                outcome
            }
            Err(e) => Outcome::Refused(error_kind(&e)),
        };
        if got != expected {
            self.fail(format!(
                "identify {a} -> {k}: got {got:?}, expected {expected:?}"
            ));
        }
        if matches!(got, Outcome::Refused(_) | Outcome::Unchanged)
            && self.ws.next_seq() != seq_before
        {
            self.fail(format!("identify {a} -> {k} ({got:?}) recorded changes"));
        }
        if matches!(got, Outcome::Merged | Outcome::AliasOnly) {
            // Every change the identify itself recorded is a merge's.
            for batch in self
                .store
                .changes()
                .iter()
                .filter(|b| b.seq_start >= seq_before)
            {
                if batch.cause != Cause::Merge && batch.cause != Cause::Time {
                    self.fail(format!("identify recorded cause {:?}", batch.cause));
                }
            }
            self.model.identify(&a, &k, got == Outcome::Merged);
            self.merges += 1;
            self.now += 1_000;
            match self.ws.identify(&a, &k, self.now) {
                Ok(write)
                    if write.records.is_empty()
                        && write.membership_changes == 0
                        && !write.merged => {}
                Ok(write) => self.fail(format!(
                    "identify {a} -> {k} again wrote {} records",
                    write.records.len()
                )),
                Err(e) => self.fail(format!("identify {a} -> {k} again refused: {e}")),
            }
        }
    }

    /// Membership by segment id, as contact ids.
    fn memberships(ws: &Workspace) -> BTreeMap<String, BTreeSet<String>> {
        ws.segments()
            .iter()
            .map(|(_, s)| {
                let ids = s
                    .members
                    .bitmap()
                    .iter()
                    .map(|no| ws.contacts().id(no).to_string())
                    .collect();
                (s.def.id.clone(), ids)
            })
            .collect()
    }

    /// (properties, anonymous, lead score, last seen) by contact id.
    fn contact_data(ws: &Workspace) -> BTreeMap<String, String> {
        ws.contacts()
            .alive()
            .iter()
            .filter_map(|no| ws.contact(no))
            .map(|v| {
                let data = format!(
                    "{:?} anonymous={} score={} seen={:?}",
                    v.properties, v.anonymous, v.lead_score, v.last_seen_at
                );
                (v.id, data)
            })
            .collect()
    }

    /// A workspace built from the model alone: no merge ever happened in it.
    fn scratch_workspace(&self) -> Workspace {
        let mut ws = Workspace::new();
        setup(&mut ws, T0);
        for (id, contact) in &self.model.contacts {
            let input = ContactInput {
                id: id.clone(),
                properties: contact
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                anonymous: Some(contact.anonymous),
            };
            let Ok(_) = ws.upsert_contacts(&[input], self.now) else {
                self.fail(format!("oracle upsert of {id} refused"));
            };
            let events: Vec<EventInput> = contact
                .events
                .iter()
                .map(|(kind, at, amount)| EventInput {
                    contact_id: id.clone(),
                    event_type: kind.clone(),
                    at: Some(*at),
                    properties: amount
                        .map(|a| vec![("amount".to_string(), RawValue::Number(a))])
                        .unwrap_or_default(),
                    properties_json: "{}".into(),
                    ..EventInput::default()
                })
                .collect();
            if !events.is_empty() && ws.ingest(events, self.now).is_err() {
                self.fail(format!("oracle events of {id} refused"));
            }
        }
        let statics: Vec<String> = self
            .model
            .contacts
            .iter()
            .filter(|(_, c)| c.statics)
            .map(|(id, _)| id.clone())
            .collect();
        if ws
            .set_static_members("vip", &statics, true, self.now)
            .is_err()
        {
            self.fail("oracle static add refused".into());
        }
        ws
    }

    fn check(&mut self) {
        let oracle = self.scratch_workspace();
        let (live, expected) = (Run::memberships(&self.ws), Run::memberships(&oracle));
        if live != expected {
            self.fail(format!(
                "membership differs from scratch:\nlive {live:#?}\nscratch {expected:#?}"
            ));
        }
        let (live, expected) = (Run::contact_data(&self.ws), Run::contact_data(&oracle));
        if live != expected {
            self.fail(format!(
                "contacts differ from scratch:\nlive {live:#?}\nscratch {expected:#?}"
            ));
        }
        // Replaying the log from seq 1 gives the current membership.
        let mut replayed: HashMap<String, RoaringBitmap> = HashMap::new();
        let mut next = sift_engine::FIRST_SEQ;
        for batch in self.store.changes() {
            if batch.seq_start != next {
                self.fail(format!("change log gap at seq {next}"));
            }
            next = batch.seq_end();
            let members = replayed.entry(batch.segment_id.clone()).or_default();
            match batch.kind {
                ChangeKind::Entered => *members |= &batch.contacts,
                ChangeKind::Exited => *members -= &batch.contacts,
            }
        }
        for (_, segment) in self.ws.segments().iter() {
            let got = replayed.remove(&segment.def.id).unwrap_or_default();
            if got != *segment.members.bitmap() {
                self.fail(format!("replaying the log of {} differs", segment.def.id));
            }
        }
    }

    fn restore_check(&mut self) {
        let Ok(mut restored) = self.store.load();
        let write = restored.advance(self.now);
        if write.change_batches().next().is_some() {
            self.fail("a restored workspace recorded changes again".into());
        }
        if Run::memberships(&restored) != Run::memberships(&self.ws)
            || Run::contact_data(&restored) != Run::contact_data(&self.ws)
            || restored.aliases() != self.ws.aliases()
        {
            self.fail("the workspace loaded from the store differs from the live one".into());
        }
    }
}

#[test]
fn merges_keep_membership_equal_to_a_workspace_that_never_merged() {
    let seeds = env_number("SIFT_MERGE_SEEDS", 6);
    let steps = env_number("SIFT_MERGE_STEPS", 250);
    let mut merges = 0;
    for seed in 0..seeds {
        let mut run = Run::new(seed);
        for step in 0..steps {
            run.step();
            run.check();
            if step % 50 == 49 {
                run.restore_check();
            }
        }
        run.restore_check();
        merges += run.merges;
    }
    assert!(merges > seeds * 5, "too few merges happened: {merges}");
}

#[test]
fn identify_flips_anonymous_for_conditions_on_it() {
    let mut ws = Workspace::new();
    setup(&mut ws, T0);
    let event = EventInput {
        contact_id: "anon_0".into(),
        event_type: "page_visit".into(),
        properties_json: "{}".into(),
        anonymous: Some(true),
        ..EventInput::default()
    };
    let Ok(_) = ws.ingest(vec![event], T0) else {
        panic!("event refused");
    };
    let anonymous = |ws: &Workspace| ws.segment("anonymous").map(|s| s.members.len());
    assert_eq!(anonymous(&ws), Some(1));
    let Ok(write) = ws.identify("anon_0", "k0", T0 + 1) else {
        panic!("identify refused");
    };
    assert!(write.merged);
    assert_eq!(anonymous(&ws), Some(0));
    let k0 = ws.lookup("anon_0").and_then(|no| ws.contact(no));
    assert_eq!(
        k0.map(|c| (c.id, c.anonymous)),
        Some(("k0".to_string(), false))
    );
    // anon_0 leaves Anonymous and Seen lately; k0 enters Seen lately with
    // the visit it inherited.
    let mut changes: Vec<(String, ChangeKind, Cause)> = write
        .change_batches()
        .map(|b| (b.segment_id.clone(), b.kind, b.cause))
        .collect();
    changes.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        changes,
        vec![
            ("anonymous".to_string(), ChangeKind::Exited, Cause::Merge),
            ("seen_lately".to_string(), ChangeKind::Entered, Cause::Merge),
            ("seen_lately".to_string(), ChangeKind::Exited, Cause::Merge),
        ]
    );
}

//! The segment registry: definitions, member bitmaps, and the dependency index
//! (field → segments reading it, segment → segments referring to it, and a
//! topological rank so that a segment is always evaluated after the segments
//! it refers to).

use foldhash::HashMap;

use std::borrow::Cow;

use roaring::RoaringBitmap;
use sift_lang::Condition;

use crate::aggregates::Aggregates;
use crate::changes::{SegmentDef, SegmentKind};
use crate::eval::{Check, RowPlan, SegmentLookup};
use crate::fields::Fields;
use crate::members::Members;
use crate::memberships::Memberships;

#[derive(Clone, Debug)]
pub struct Segment {
    pub def: SegmentDef,
    pub members: Members,
    /// The condition compiled for one-contact evaluation (None: static).
    pub plan: Option<RowPlan>,
    /// Whether the condition refers to other segments.
    pub refers: bool,
}

impl Segment {
    pub fn new(
        def: SegmentDef,
        members: RoaringBitmap,
        fields: &Fields,
        aggregates: &Aggregates,
    ) -> Segment {
        let plan = def
            .condition
            .as_ref()
            .map(|c| RowPlan::compile(c, fields, aggregates));
        let refers = def
            .condition
            .as_ref()
            .is_some_and(|c| !c.segment_refs().is_empty());
        Segment {
            def,
            members: Members::new(members),
            plan,
            refers,
        }
    }
}

/// Slot numbers are stable while a segment exists.
pub type Slot = usize;

#[derive(Clone, Debug, Default)]
pub struct Segments {
    slots: Vec<Option<Segment>>,
    by_id: HashMap<String, Slot>,
    by_name: HashMap<String, Slot>,
    by_field: HashMap<String, Vec<Slot>>,
    /// Per field, each distinct test some dynamic segment makes on it
    /// (ignoring case or not), with the segments making it.
    tests_by_field: HashMap<String, Vec<(Check, Vec<Slot>)>>,
    dependents: HashMap<String, Vec<Slot>>,
    /// The same by the referenced segment's slot.
    dependents_by_slot: Vec<Vec<Slot>>,
    /// Topological rank by slot: a segment ranks above every segment it refers to.
    rank: Vec<u32>,
    /// Every slot in the order segments are listed to people: by name
    /// without case, then id. A contact's segment list is read in this
    /// order, so it needs no sort (nor a lower-cased copy per comparison).
    by_name_order: Vec<Slot>,
    /// The same membership as the bitmaps, by contact.
    memberships: Memberships,
    /// Changes whenever an id or name may have (every reindex), and is
    /// never the same in two engines of one process: whoever renders
    /// segment names once (an answer's segment list) knows when to again.
    names_version: u64,
}

/// Where [`Segments::names_version`] values come from.
static NAMES_VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

impl SegmentLookup for Segments {
    fn members(&self, segment_id: &str) -> Option<Cow<'_, RoaringBitmap>> {
        self.get(segment_id).map(|s| s.members.bitmap())
    }

    fn is_member(&self, segment_id: &str, no: u32) -> bool {
        self.slot(segment_id)
            .is_some_and(|slot| self.memberships.contains(no, slot))
    }
}

impl Segments {
    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.by_id.get(id).copied()
    }

    pub fn get(&self, id: &str) -> Option<&Segment> {
        self.slot(id).and_then(|s| self.at(s))
    }

    pub fn at(&self, slot: Slot) -> Option<&Segment> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Segment> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    pub fn by_name(&self, name: &str) -> Option<&Segment> {
        self.by_name.get(&name_key(name)).and_then(|s| self.at(*s))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Segment)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.as_ref().map(|s| (slot, s)))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// See the field: equal versions mean equal ids and names by slot.
    pub fn names_version(&self) -> u64 {
        self.names_version
    }

    /// The slots of the segments contact `no` is in, by name without case,
    /// then id.
    pub fn slots_of_contact(&self, no: u32) -> impl Iterator<Item = Slot> {
        self.by_name_order
            .iter()
            .copied()
            .filter(move |&slot| self.memberships.contains(no, slot))
    }

    /// Live segments by name without case, then id.
    pub fn in_name_order(&self) -> impl Iterator<Item = &Segment> {
        self.by_name_order.iter().filter_map(|&slot| self.at(slot))
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn rank(&self, slot: Slot) -> u32 {
        self.rank.get(slot).copied().unwrap_or(0)
    }

    /// Dynamic segments whose condition reads `field`.
    pub fn reading_field(&self, field: &str) -> &[Slot] {
        self.by_field.get(field).map_or(&[], Vec::as_slice)
    }

    /// The distinct tests dynamic segments make on `field`, each with its segments.
    pub fn tests_on(&self, field: &str) -> &[(Check, Vec<Slot>)] {
        self.tests_by_field.get(field).map_or(&[], Vec::as_slice)
    }

    /// Segments whose condition refers to segment `id`.
    pub fn dependents(&self, id: &str) -> &[Slot] {
        self.dependents.get(id).map_or(&[], Vec::as_slice)
    }

    /// Segments whose condition refers to the segment in `slot`.
    pub fn dependents_of(&self, slot: Slot) -> &[Slot] {
        self.dependents_by_slot.get(slot).map_or(&[], Vec::as_slice)
    }

    /// A copy for a checkpoint, taken while writes wait: everything but the
    /// memberships by contact, which are derived (122 MiB over a million
    /// contacts with 1,000 segments) and which a checkpoint does not store.
    pub fn copy_for_checkpoint(&self) -> Segments {
        Segments {
            slots: self.slots.clone(),
            by_id: self.by_id.clone(),
            by_name: self.by_name.clone(),
            by_field: self.by_field.clone(),
            tests_by_field: self.tests_by_field.clone(),
            dependents: self.dependents.clone(),
            dependents_by_slot: self.dependents_by_slot.clone(),
            rank: self.rank.clone(),
            by_name_order: self.by_name_order.clone(),
            memberships: Memberships::default(),
            names_version: self.names_version,
        }
    }

    pub fn insert(&mut self, segment: Segment) -> Slot {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.memberships
            .set_all(&segment.members.bitmap(), slot, true);
        self.slots[slot] = Some(segment);
        self.reindex();
        slot
    }

    /// Makes contact `no` a member of the segment in `slot`, or not.
    pub fn set_member(&mut self, slot: Slot, no: u32, member: bool) {
        let was = self.memberships.contains(no, slot);
        if was == member {
            return;
        }
        if let Some(segment) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            segment.members.set(no, member, was);
            self.memberships.set(no, slot, member);
        }
    }

    /// Adds `entered` to the members of the segment in `slot` and removes
    /// `exited`.
    pub fn change_members(&mut self, slot: Slot, entered: &RoaringBitmap, exited: &RoaringBitmap) {
        if let Some(segment) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            segment.members.change(entered, exited);
            self.memberships.set_all(entered, slot, true);
            self.memberships.set_all(exited, slot, false);
        }
    }

    /// Replaces the members of the segment in `slot`.
    pub fn replace_members(&mut self, slot: Slot, members: RoaringBitmap) {
        if let Some(segment) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            let (exited, entered) = {
                let old = segment.members.bitmap();
                (&*old - &members, &members - &*old)
            };
            segment.members.replace(members);
            self.memberships.set_all(&exited, slot, false);
            self.memberships.set_all(&entered, slot, true);
        }
    }

    /// Whether contact `no` is a member of the segment in `slot`: one word
    /// read, where the member bitmap costs a search in a cold container.
    pub fn is_member(&self, slot: Slot, no: u32) -> bool {
        self.memberships.contains(no, slot)
    }

    /// The segments contact `no` is in, by name without case, then id.
    pub fn of_contact(&self, no: u32) -> impl Iterator<Item = &Segment> {
        self.slots_of_contact(no).filter_map(|slot| self.at(slot))
    }

    /// Replaces the definition of the segment in `slot` (members unchanged).
    pub fn redefine(
        &mut self,
        slot: Slot,
        def: SegmentDef,
        fields: &Fields,
        aggregates: &Aggregates,
    ) {
        if let Some(segment) = self.at_mut(slot) {
            segment.plan = def
                .condition
                .as_ref()
                .map(|c| RowPlan::compile(c, fields, aggregates));
            segment.refers = def
                .condition
                .as_ref()
                .is_some_and(|c| !c.segment_refs().is_empty());
            segment.def = def;
        }
        self.reindex();
    }

    /// Recompiles every plan (after the set of aggregates changed).
    pub fn recompile(&mut self, fields: &Fields, aggregates: &Aggregates) {
        for segment in self.slots.iter_mut().flatten() {
            segment.plan = segment
                .def
                .condition
                .as_ref()
                .map(|c| RowPlan::compile(c, fields, aggregates));
        }
    }

    /// Every distinct field test of dynamic segments: (field, test, readers).
    pub fn all_tests(&self) -> impl Iterator<Item = (&str, &Check, &[Slot])> {
        self.tests_by_field.iter().flat_map(|(field, tests)| {
            tests
                .iter()
                .map(move |(test, readers)| (field.as_str(), test, readers.as_slice()))
        })
    }

    pub fn remove(&mut self, slot: Slot) -> Option<Segment> {
        let removed = self.slots.get_mut(slot).and_then(Option::take);
        if let Some(segment) = &removed {
            self.memberships
                .set_all(&segment.members.bitmap(), slot, false);
        }
        self.reindex();
        removed
    }

    /// Whether making segment `id` refer to `targets` would close a cycle.
    /// Returns the cycle's path of ids when it would.
    pub fn cycle_through(&self, id: &str, targets: &[&str]) -> Option<Vec<String>> {
        for target in targets {
            let mut path = vec![id.to_string()];
            if self.reaches(target, id, &mut path, 0) {
                return Some(path);
            }
        }
        None
    }

    fn reaches(&self, from: &str, goal: &str, path: &mut Vec<String>, depth: usize) -> bool {
        path.push(from.to_string());
        if from == goal {
            return true;
        }
        if depth < self.slots.len() + 1
            && let Some(segment) = self.get(from)
            && let Some(cond) = &segment.def.condition
        {
            for next in cond.segment_refs() {
                if self.reaches(next, goal, path, depth + 1) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }

    /// Rebuilds names, the dependency index and ranks. Cheap next to an
    /// evaluation: it is linear in the number of segments.
    fn reindex(&mut self) {
        self.names_version = NAMES_VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.by_id.clear();
        self.by_name.clear();
        self.by_field.clear();
        self.tests_by_field.clear();
        self.dependents.clear();
        for (slot, segment) in self.slots.iter().enumerate() {
            let Some(segment) = segment else { continue };
            self.by_id.insert(segment.def.id.clone(), slot);
            self.by_name.insert(name_key(&segment.def.name), slot);
            if segment.def.kind != SegmentKind::Dynamic {
                continue;
            }
            if let Some(cond) = &segment.def.condition {
                for field in cond.fields() {
                    self.by_field
                        .entry(field.to_string())
                        .or_default()
                        .push(slot);
                }
                for target in cond.segment_refs() {
                    self.dependents
                        .entry(target.to_string())
                        .or_default()
                        .push(slot);
                }
                let tests_by_field = &mut self.tests_by_field;
                for_each_field_test(cond, &mut |field, check| {
                    let tests = tests_by_field.entry(field.to_string()).or_default();
                    match tests.iter_mut().find(|(t, _)| *t == check) {
                        Some((_, readers)) => {
                            if readers.last() != Some(&slot) {
                                readers.push(slot)
                            }
                        }
                        None => tests.push((check, vec![slot])),
                    }
                });
            }
        }
        self.dependents_by_slot = (0..self.slots.len())
            .map(|slot| match self.at(slot) {
                Some(segment) => self.dependents(&segment.def.id).to_vec(),
                None => Vec::new(),
            })
            .collect();
        self.rank = vec![0; self.slots.len()];
        for slot in 0..self.slots.len() {
            self.compute_rank(slot, 0);
        }
        let mut order: Vec<(String, Slot)> = self
            .iter()
            .map(|(slot, s)| (name_key(&s.def.name), slot))
            .collect();
        order.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let id = |slot: Slot| self.at(slot).map(|s| s.def.id.as_str());
                id(a.1).cmp(&id(b.1))
            })
        });
        self.by_name_order = order.into_iter().map(|(_, slot)| slot).collect();
    }

    /// Rank = 1 + the highest rank among referenced segments (0 without refs).
    fn compute_rank(&mut self, slot: Slot, depth: usize) -> u32 {
        if self.rank[slot] > 0 || depth > self.slots.len() {
            return self.rank[slot];
        }
        let refs: Vec<Slot> = match self.at(slot).and_then(|s| s.def.condition.as_ref()) {
            Some(cond) => cond
                .segment_refs()
                .iter()
                .filter_map(|id| self.slot(id))
                .collect(),
            None => Vec::new(),
        };
        let rank = 1 + refs
            .into_iter()
            .map(|r| self.compute_rank(r, depth + 1))
            .max()
            .unwrap_or(0);
        self.rank[slot] = rank;
        rank
    }
}

/// Calls `visit` for each contact-field test of `cond` (not those inside
/// event filters, which test event properties), ready to run.
fn for_each_field_test(cond: &Condition, visit: &mut dyn FnMut(&str, Check)) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| for_each_field_test(c, visit))
        }
        Condition::Not(inner) => for_each_field_test(inner, visit),
        Condition::Field {
            field,
            test,
            ignore_case,
        } => visit(field, Check::new(test, *ignore_case)),
        _ => {}
    }
}

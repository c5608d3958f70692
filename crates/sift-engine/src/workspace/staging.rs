//! Changes staged during a write and turned into [`ChangeBatch`]es when it
//! completes. A write that moves many contacts (a batch of events, timers
//! firing together) would otherwise make one batch, one allocation and one
//! stored row per change; staged changes of one segment with the same kind,
//! cause and instant become one batch, as long as no contact changes twice
//! in that segment within the write (then the order of its changes matters
//! and every change keeps its own batch, in order).

use foldhash::{HashMap, HashSet};

use roaring::RoaringBitmap;
use sift_lang::DateTime;

use crate::changes::{Cause, ChangeBatch, ChangeKind};

#[derive(Clone, Debug)]
enum Who {
    One(u32),
    Many(RoaringBitmap),
}

#[derive(Clone, Debug)]
struct Entry {
    segment: u32,
    kind: ChangeKind,
    cause: Cause,
    at: DateTime,
    who: Who,
}

#[derive(Clone, Debug, Default)]
pub struct Staged {
    ids: Vec<String>,
    by_id: HashMap<String, u32>,
    /// Index in `ids` by segment slot (`u32::MAX`: not yet), so that the
    /// common path neither hashes nor copies the id.
    by_slot: Vec<u32>,
    entries: Vec<Entry>,
}

impl Staged {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn intern(&mut self, segment_id: &str) -> u32 {
        if let Some(&n) = self.by_id.get(segment_id) {
            return n;
        }
        let n = self.ids.len() as u32;
        self.ids.push(segment_id.to_string());
        self.by_id.insert(segment_id.to_string(), n);
        n
    }

    pub fn one(
        &mut self,
        slot: usize,
        segment_id: &str,
        kind: ChangeKind,
        cause: Cause,
        at: DateTime,
        no: u32,
    ) {
        let segment = match self.by_slot.get(slot) {
            Some(&n) if n != u32::MAX => n,
            _ => {
                let n = self.intern(segment_id);
                if slot >= self.by_slot.len() {
                    self.by_slot.resize(slot + 1, u32::MAX);
                }
                self.by_slot[slot] = n;
                n
            }
        };
        self.entries.push(Entry {
            segment,
            kind,
            cause,
            at,
            who: Who::One(no),
        });
    }

    pub fn many(
        &mut self,
        segment_id: &str,
        kind: ChangeKind,
        cause: Cause,
        at: DateTime,
        contacts: RoaringBitmap,
    ) {
        let segment = self.intern(segment_id);
        let who = match contacts.len() {
            1 => match contacts.min() {
                Some(no) => Who::One(no),
                None => return,
            },
            _ => Who::Many(contacts),
        };
        self.entries.push(Entry {
            segment,
            kind,
            cause,
            at,
            who,
        });
    }

    /// Whether every (segment, contact) pair changes at most once.
    fn each_once(&self) -> bool {
        let mut seen: HashSet<(u32, u32)> = HashSet::default();
        let mut bulk: HashMap<u32, Vec<&RoaringBitmap>> = HashMap::default();
        for entry in &self.entries {
            match &entry.who {
                Who::One(no) => {
                    if !seen.insert((entry.segment, *no)) {
                        return false;
                    }
                }
                Who::Many(bitmap) => bulk.entry(entry.segment).or_default().push(bitmap),
            }
        }
        if bulk.values().any(|maps| maps.len() > 1) {
            return false;
        }
        !seen.iter().any(|(segment, no)| {
            bulk.get(segment)
                .is_some_and(|maps| maps.iter().any(|m| m.contains(*no)))
        })
    }

    /// The batches, numbered from `next_seq` (advanced past them).
    pub fn into_batches(self, next_seq: &mut u64) -> Vec<ChangeBatch> {
        let coalesce = self.each_once();
        let mut groups: Vec<(u32, ChangeKind, Cause, DateTime, RoaringBitmap)> = Vec::new();
        let mut open: HashMap<(u32, ChangeKind, Cause, DateTime), usize> = HashMap::default();
        for entry in self.entries {
            let key = (entry.segment, entry.kind, entry.cause, entry.at);
            match entry.who {
                Who::One(no) if coalesce => match open.get(&key) {
                    Some(&i) => {
                        groups[i].4.insert(no);
                    }
                    None => {
                        open.insert(key, groups.len());
                        groups.push((key.0, key.1, key.2, key.3, RoaringBitmap::from_iter([no])));
                    }
                },
                Who::One(no) => {
                    groups.push((key.0, key.1, key.2, key.3, RoaringBitmap::from_iter([no])))
                }
                Who::Many(bitmap) => groups.push((key.0, key.1, key.2, key.3, bitmap)),
            }
        }
        groups
            .into_iter()
            .map(|(segment, kind, cause, at, contacts)| {
                let batch = ChangeBatch {
                    seq_start: *next_seq,
                    segment_id: self.ids[segment as usize].clone(),
                    kind,
                    cause,
                    at,
                    contacts,
                };
                *next_seq = batch.seq_end();
                batch
            })
            .collect()
    }
}

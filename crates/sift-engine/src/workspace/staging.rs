//! Changes staged during a write and turned into [`ChangeBatch`]es when it
//! completes. A write that moves many contacts (a batch of events, timers
//! firing together) would otherwise make one batch, one allocation and one
//! stored row per change; staged changes of one segment with the same kind,
//! cause and instant become one batch, as long as no contact changes twice
//! in that segment within the write (then the order of its changes matters
//! and every change keeps its own batch, in order).

use foldhash::HashMap;

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
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(self.entries.len());
        let mut bulk: HashMap<u32, Vec<&RoaringBitmap>> = HashMap::default();
        for entry in &self.entries {
            match &entry.who {
                Who::One(no) => pairs.push((entry.segment, *no)),
                Who::Many(bitmap) => bulk.entry(entry.segment).or_default().push(bitmap),
            }
        }
        pairs.sort_unstable();
        if pairs.windows(2).any(|w| w[0] == w[1]) || bulk.values().any(|maps| maps.len() > 1) {
            return false;
        }
        bulk.is_empty()
            || !pairs.iter().any(|(segment, no)| {
                bulk.get(segment)
                    .is_some_and(|maps| maps.iter().any(|m| m.contains(*no)))
            })
    }

    /// The batches, numbered from `next_seq` (advanced past them), in the
    /// order each first occurs.
    pub fn into_batches(self, next_seq: &mut u64) -> Vec<ChangeBatch> {
        type Key = (u32, ChangeKind, Cause, DateTime);
        let coalesce = self.each_once();
        // Each batch: its key and either a group of single changes (by
        // group number) or a bulk change's bitmap.
        let mut out: Vec<(Key, Result<u32, RoaringBitmap>)> = Vec::new();
        let mut groups: HashMap<Key, u32> = HashMap::default();
        let mut members: Vec<(u32, u32)> = Vec::with_capacity(self.entries.len());
        let mut n_groups = 0u32;
        for entry in self.entries {
            let key = (entry.segment, entry.kind, entry.cause, entry.at);
            match entry.who {
                Who::One(no) => {
                    let group = match groups.get(&key) {
                        Some(&group) if coalesce => group,
                        _ => {
                            let group = n_groups;
                            n_groups += 1;
                            groups.insert(key, group);
                            out.push((key, Ok(group)));
                            group
                        }
                    };
                    members.push((group, no));
                }
                Who::Many(bitmap) => out.push((key, Err(bitmap))),
            }
        }
        // Sorted, each group's contacts build their bitmap in one pass.
        members.sort_unstable();
        let mut bitmaps: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); n_groups as usize];
        for run in members.chunk_by(|a, b| a.0 == b.0) {
            let contacts = RoaringBitmap::from_sorted_iter(run.iter().map(|(_, no)| *no));
            bitmaps[run[0].0 as usize] = contacts.unwrap_or_default();
        }
        out.into_iter()
            .map(|((segment, kind, cause, at), who)| {
                let contacts = match who {
                    Ok(group) => std::mem::take(&mut bitmaps[group as usize]),
                    Err(bitmap) => bitmap,
                };
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

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
    /// Index in `ids` by id, for bulk changes, which come by id. Single
    /// changes (the common path) come by slot and leave it alone until a
    /// bulk change needs it: `ids[indexed..]` are not in it yet.
    by_id: HashMap<String, u32>,
    indexed: usize,
    /// Index in `ids` by segment slot (`u32::MAX`: not yet), so that the
    /// common path neither hashes nor copies the id.
    by_slot: Vec<u32>,
    entries: Vec<Entry>,
    /// Whether some segment has more than one entry (or a bulk one): then
    /// entries may coalesce, else each entry is its own batch.
    shared: bool,
}

impl Staged {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn intern(&mut self, segment_id: &str) -> u32 {
        for (n, id) in self.ids.iter().enumerate().skip(self.indexed) {
            self.by_id.insert(id.clone(), n as u32);
        }
        self.indexed = self.ids.len();
        if let Some(&n) = self.by_id.get(segment_id) {
            self.shared = true;
            return n;
        }
        let n = self.ids.len() as u32;
        self.ids.push(segment_id.to_string());
        self.by_id.insert(segment_id.to_string(), n);
        self.indexed = self.ids.len();
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
            Some(&n) if n != u32::MAX => {
                self.shared = true;
                n
            }
            _ => {
                // Until a bulk change, every id here came by slot, so a slot
                // not seen yet is an id not seen yet.
                let n = if self.by_id.is_empty() {
                    self.ids.push(segment_id.to_string());
                    self.ids.len() as u32 - 1
                } else {
                    self.intern(segment_id)
                };
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
        self.shared = true;
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
    pub fn into_batches(mut self, next_seq: &mut u64) -> Vec<ChangeBatch> {
        if !self.shared {
            // One change per segment (a single contact's write): nothing to
            // group, and each id moves into its batch.
            return self
                .entries
                .into_iter()
                .map(|entry| {
                    let contacts = match entry.who {
                        Who::One(no) => {
                            let mut contacts = RoaringBitmap::new();
                            contacts.insert(no);
                            contacts
                        }
                        Who::Many(contacts) => contacts,
                    };
                    let batch = ChangeBatch {
                        seq_start: *next_seq,
                        segment_id: std::mem::take(&mut self.ids[entry.segment as usize]),
                        kind: entry.kind,
                        cause: entry.cause,
                        at: entry.at,
                        contacts,
                    };
                    *next_seq = batch.seq_end();
                    batch
                })
                .collect();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batches: &[ChangeBatch]) -> Vec<(u64, &str, Vec<u32>)> {
        batches
            .iter()
            .map(|b| {
                (
                    b.seq_start,
                    b.segment_id.as_str(),
                    b.contacts.iter().collect(),
                )
            })
            .collect()
    }

    #[test]
    fn one_change_per_segment_makes_one_batch_each_in_order() {
        let mut staged = Staged::default();
        staged.one(7, "b", ChangeKind::Entered, Cause::ContactUpdate, 5, 3);
        staged.one(2, "a", ChangeKind::Exited, Cause::ContactUpdate, 5, 3);
        let mut seq = 10;
        let batches = staged.into_batches(&mut seq);
        assert_eq!(
            shape(&batches),
            vec![(10, "b", vec![3]), (11, "a", vec![3])]
        );
        assert_eq!(batches[1].kind, ChangeKind::Exited);
        assert_eq!(seq, 12);
    }

    #[test]
    fn changes_of_one_segment_coalesce_and_a_bulk_change_finds_the_slot_s_id() {
        let mut staged = Staged::default();
        staged.one(7, "b", ChangeKind::Entered, Cause::ContactUpdate, 5, 9);
        staged.one(2, "a", ChangeKind::Entered, Cause::ContactUpdate, 5, 1);
        staged.one(7, "b", ChangeKind::Entered, Cause::ContactUpdate, 5, 4);
        let mut seq = 1;
        let batches = staged.into_batches(&mut seq);
        assert_eq!(
            shape(&batches),
            vec![(1, "b", vec![4, 9]), (3, "a", vec![1])]
        );

        // The bulk change names "b", which came by slot: the same contact
        // entering twice in "b" keeps both changes apart, in order.
        let mut staged = Staged::default();
        staged.one(7, "b", ChangeKind::Entered, Cause::ContactUpdate, 5, 9);
        let bulk: RoaringBitmap = [9u32, 10].into_iter().collect();
        staged.many("b", ChangeKind::Entered, Cause::ContactUpdate, 5, bulk);
        let batches = staged.into_batches(&mut seq);
        assert_eq!(
            shape(&batches),
            vec![(4, "b", vec![9]), (5, "b", vec![9, 10])]
        );
    }
}

//! Which segments each contact is in, read by contact.
//!
//! The member bitmaps answer "who is in this segment"; a written contact's
//! answer asks the other way round, "which segments is it in". Asking each
//! of 1,000 bitmaps cost a cache miss or more each (each bitmap's
//! container for the contact sits elsewhere in memory): it was the largest
//! item of a durable single write's profile (29% of the server's CPU).
//!
//! Here the same bits are laid out by blocks of 64 contacts: for each
//! block, one word per segment slot, the word's bit `no % 64` set while
//! contact `no` is a member. A contact's segments are then one contiguous
//! run of words (8 KB with 1,000 slots, read in sequence), and a whole
//! segment's members are set one word per 64 contacts, so creating a
//! segment over a million contacts touches 15,625 words rather than a row
//! per member. The price is memory: one bit per contact and slot (128
//! bytes per contact with 1,000 segments, 122 MiB over a million
//! contacts), and the words are derived: rebuilt from the bitmaps on load,
//! never stored.

use roaring::RoaringBitmap;

use crate::segments::Slot;

/// Members from which a whole segment's words are set on every core.
const PARALLEL_FROM: u64 = 65_536;
/// Blocks of 64 contacts one task sets.
const BLOCKS_PER_TASK: usize = 1_024;

#[derive(Clone, Debug, Default)]
pub struct Memberships {
    words: Vec<u64>,
    /// Slots per block: words per block of 64 contacts.
    stride: usize,
}

impl Memberships {
    pub fn contains(&self, no: u32, slot: Slot) -> bool {
        slot < self.stride
            && self
                .words
                .get((no / 64) as usize * self.stride + slot)
                .is_some_and(|w| w & (1 << (no % 64)) != 0)
    }

    pub fn set(&mut self, no: u32, slot: Slot, member: bool) {
        if !member && !self.contains(no, slot) {
            return;
        }
        self.make_room(no, slot);
        let word = &mut self.words[(no / 64) as usize * self.stride + slot];
        if member {
            *word |= 1 << (no % 64);
        } else {
            *word &= !(1 << (no % 64));
        }
    }

    pub fn set_all(&mut self, contacts: &RoaringBitmap, slot: Slot, member: bool) {
        let Some(last) = contacts.max() else {
            return;
        };
        if !member && (slot >= self.stride || self.words.is_empty()) {
            return;
        }
        self.make_room(last, slot);
        let stride = self.stride;
        let set = |words: &mut [u64], first_block: usize, members: roaring::bitmap::Iter<'_>| {
            for no in members {
                let w = &mut words[((no / 64) as usize - first_block) * stride + slot];
                if member {
                    *w |= 1 << (no % 64);
                } else {
                    *w &= !(1 << (no % 64));
                }
            }
        };
        if contacts.len() < PARALLEL_FROM {
            set(&mut self.words, 0, contacts.iter());
            return;
        }
        // A new segment over many contacts: ranges of blocks on every core.
        use rayon::prelude::*;
        self.words
            .par_chunks_mut(stride * BLOCKS_PER_TASK)
            .enumerate()
            .for_each(|(task, words)| {
                let first_block = task * BLOCKS_PER_TASK;
                let from = (first_block * 64).min(u32::MAX as usize) as u32;
                let last = ((first_block + BLOCKS_PER_TASK) * 64 - 1).min(u32::MAX as usize) as u32;
                set(words, first_block, contacts.range(from..=last));
            });
    }

    /// Grows the words to hold contact `no` and slot `slot`. A wider block
    /// takes half as many slots again, in steps of 64, so that creating
    /// 1,000 segments one by one re-lays the words out 7 times.
    fn make_room(&mut self, no: u32, slot: Slot) {
        if slot >= self.stride {
            let stride = (slot + 1 + slot / 2).div_ceil(64) * 64;
            let blocks = self.words.len().checked_div(self.stride).unwrap_or(0);
            let mut words = vec![0u64; blocks * stride];
            if self.stride > 0 {
                for (old, new) in self
                    .words
                    .chunks_exact(self.stride)
                    .zip(words.chunks_exact_mut(stride))
                {
                    new[..old.len()].copy_from_slice(old);
                }
            }
            self.words = words;
            self.stride = stride;
        }
        let len = (no / 64 + 1) as usize * self.stride;
        if self.words.len() < len {
            self.words.resize(len, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_sets_and_clears_as_slots_and_contacts_grow() {
        let mut m = Memberships::default();
        assert!(!m.contains(5, 3));
        m.set(5, 3, true);
        m.set(0, 0, true);
        m.set_all(&[1u32, 5, 9].into_iter().collect(), 200, true);
        assert!(m.contains(5, 3) && m.contains(0, 0) && m.contains(9, 200));
        assert!(m.contains(5, 200) && !m.contains(4, 200));
        m.set(5, 3, false);
        m.set_all(&[5u32, 1_000].into_iter().collect(), 200, false);
        assert!(!m.contains(5, 3) && !m.contains(5, 200) && m.contains(9, 200));
        assert!(!m.contains(1_000, 200) && !m.contains(70_000, 1));
        m.set(70_000, 1_000, true);
        assert!(m.contains(70_000, 1_000) && m.contains(9, 200) && m.contains(0, 0));
    }

    #[test]
    fn a_large_set_on_every_core_sets_the_same_bits() {
        let many: RoaringBitmap = (0..400_000u32).filter(|n| n % 3 != 0).collect();
        let mut m = Memberships::default();
        m.set(399_999, 2, true);
        m.set_all(&many, 1, true);
        for no in [
            0u32, 1, 2, 65_535, 65_536, 65_537, 131_071, 399_998, 399_999,
        ] {
            assert_eq!(m.contains(no, 1), no % 3 != 0, "{no}");
        }
        assert!(m.contains(399_999, 2));
        m.set_all(&many, 1, false);
        assert!((0..400_000).all(|no| !m.contains(no, 1)));
        assert!(m.contains(399_999, 2));
    }
}

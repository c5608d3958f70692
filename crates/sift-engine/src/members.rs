//! A segment's members: a bitmap brought up to date in batches.
//!
//! A single-contact write moves a contact in or out of ~50 of 1,000
//! segments, each in a member bitmap of its own. Inserting into a roaring
//! bitmap finds the contact's container and shifts the array container's
//! tail (2 KB on average with a few thousand members per 65,536 contacts);
//! with 1,000 segments those containers are cold, and the inserts were a
//! quarter of a mixed write's time. Here a change is first appended to a
//! short list of flips, one word written, and the flips are folded into the
//! bitmap together once [`FLIPS_KEPT`] have gathered: one pass over each
//! touched container for hundreds of changes.
//!
//! Every read stays exact: the size is counted as flips come, a membership
//! test looks through the flips too, and a reader that wants the whole set
//! gets the bitmap when no flip waits, or a copy with the flips applied.

use std::borrow::Cow;
use std::sync::Arc;

use roaring::RoaringBitmap;

/// Flips gathered before they are folded into the bitmap: a membership
/// test scans at most this many words (1 KB). Debug builds fold after a
/// few, so that the differential tests see folds as often as waiting flips.
const FLIPS_KEPT: usize = if cfg!(debug_assertions) { 5 } else { 256 };

#[derive(Clone, Debug, Default)]
pub struct Members {
    /// Shared copy-on-write with a checkpoint copy: the copy takes a
    /// reference, and the first fold after it copies this one bitmap.
    bitmap: Arc<RoaringBitmap>,
    /// Contacts whose membership flipped since `bitmap`, in order; a
    /// contact listed twice flipped back.
    flips: Vec<u32>,
    len: u64,
}

impl Members {
    pub fn new(bitmap: RoaringBitmap) -> Members {
        Members {
            len: bitmap.len(),
            bitmap: Arc::new(bitmap),
            flips: Vec::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, no: u32) -> bool {
        let flipped = self.flips.iter().filter(|&&f| f == no).count() % 2 == 1;
        self.bitmap.contains(no) != flipped
    }

    /// The members as one bitmap: the bitmap itself when no flip waits, or
    /// a copy with the flips applied.
    pub fn bitmap(&self) -> Cow<'_, RoaringBitmap> {
        if self.flips.is_empty() {
            return Cow::Borrowed(&self.bitmap);
        }
        let mut members = (*self.bitmap).clone();
        members ^= self.net_flips();
        Cow::Owned(members)
    }

    /// The members as a shared bitmap (a reference when no flip waits).
    pub fn shared(&self) -> Arc<RoaringBitmap> {
        match self.bitmap() {
            Cow::Borrowed(_) => Arc::clone(&self.bitmap),
            Cow::Owned(members) => Arc::new(members),
        }
    }

    /// How many members `other` also holds, without a copy of the members.
    pub fn intersection_len(&self, other: &RoaringBitmap) -> u64 {
        let mut n = self.bitmap.intersection_len(other);
        for no in self.net_flips().iter().filter(|no| other.contains(*no)) {
            if self.bitmap.contains(no) {
                n -= 1;
            } else {
                n += 1;
            }
        }
        n
    }

    /// Records that `no`, a member or not as `was` says, now is or is not.
    pub(crate) fn set(&mut self, no: u32, member: bool, was: bool) {
        if member == was {
            return;
        }
        self.flips.push(no);
        if member {
            self.len += 1;
        } else {
            self.len -= 1;
        }
        if self.flips.len() >= FLIPS_KEPT {
            self.fold();
        }
    }

    /// Adds `entered` and removes `exited`.
    pub(crate) fn change(&mut self, entered: &RoaringBitmap, exited: &RoaringBitmap) {
        self.fold();
        let members = Arc::make_mut(&mut self.bitmap);
        *members |= entered;
        *members -= exited;
        self.len = members.len();
    }

    pub(crate) fn replace(&mut self, members: RoaringBitmap) {
        *self = Members::new(members);
    }

    /// The contacts that flipped an odd number of times.
    fn net_flips(&self) -> RoaringBitmap {
        let mut flips = self.flips.clone();
        flips.sort_unstable();
        let odd = flips
            .chunk_by(|a, b| a == b)
            .filter(|run| run.len() % 2 == 1)
            .map(|run| run[0]);
        RoaringBitmap::from_sorted_iter(odd).unwrap_or_default()
    }

    fn fold(&mut self) {
        if self.flips.is_empty() {
            return;
        }
        let flips = self.net_flips();
        *Arc::make_mut(&mut self.bitmap) ^= flips;
        self.flips.clear();
    }
}

impl PartialEq for Members {
    fn eq(&self, other: &Members) -> bool {
        self.len == other.len && self.bitmap() == other.bitmap()
    }
}

impl PartialEq<RoaringBitmap> for Members {
    fn eq(&self, other: &RoaringBitmap) -> bool {
        self.len == other.len() && *self.bitmap() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_sees_the_flips_before_and_after_they_are_folded() {
        let anonymous: RoaringBitmap = (0..1_000u32).filter(|n| n % 2 == 0).collect();
        let mut members = Members::new((0..100u32).collect());
        let mut expected: RoaringBitmap = (0..100u32).collect();
        // Enough flips for several folds, some contacts flipping back.
        for i in 0..(3 * FLIPS_KEPT as u32 + 17) {
            let no = (i * 7_919) % 1_000;
            let member = i % 3 != 0;
            members.set(no, member, expected.contains(no));
            if member {
                expected.insert(no);
            } else {
                expected.remove(no);
            }
            if i % 50 == 0 || i as usize % FLIPS_KEPT == FLIPS_KEPT - 1 {
                assert_eq!(members.len(), expected.len(), "after {i}");
                assert_eq!(*members.bitmap(), expected, "after {i}");
                assert_eq!(*members.shared(), expected, "after {i}");
                assert!((0..1_000).all(|no| members.contains(no) == expected.contains(no)));
                assert_eq!(
                    members.intersection_len(&anonymous),
                    expected.intersection_len(&anonymous)
                );
            }
        }
        let entered: RoaringBitmap = (2_000..2_010u32).collect();
        let exited: RoaringBitmap = (0..1_000u32).filter(|n| n % 5 == 0).collect();
        members.set(5_000, true, false);
        members.change(&entered, &exited);
        expected.insert(5_000);
        expected |= &entered;
        expected -= &exited;
        assert_eq!(members, expected);
        assert_eq!(members.len(), expected.len());
    }

    #[test]
    fn a_set_to_the_present_state_changes_nothing() {
        let mut members = Members::new([1u32, 2].into_iter().collect());
        members.set(1, true, true);
        members.set(3, false, false);
        assert_eq!(members.len(), 2);
        assert!(members.flips.is_empty());
    }
}

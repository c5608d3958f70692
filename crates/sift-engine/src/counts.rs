//! An aggregate's per-contact event counts, in the narrowest width that
//! holds the largest of them.
//!
//! Every live behavioural node keeps a count per contact, so with 30 live
//! segments counts are most of the memory that grows with the history. A
//! windowed count is almost always small: one byte per contact holds it
//! until some contact reaches 256 events, when the whole vector is widened
//! once (to two bytes, then four). Widening never narrows back. Most
//! windowed counts are zero, so the counts are a [`SparseVec`].

use crate::sparse::SparseVec;

#[derive(Clone, Debug)]
pub enum Counts {
    U8(SparseVec<u8>),
    U16(SparseVec<u16>),
    U32(SparseVec<u32>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::U8(SparseVec::new())
    }
}

impl Counts {
    pub fn len(&self) -> usize {
        match self {
            Counts::U8(v) => v.len(),
            Counts::U16(v) => v.len(),
            Counts::U32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> Option<u32> {
        match self {
            Counts::U8(v) => v.get(index).map(u32::from),
            Counts::U16(v) => v.get(index).map(u32::from),
            Counts::U32(v) => v.get(index),
        }
    }

    /// Sets entry `index`, which must be below [`Counts::len`], widening
    /// the vector first when `count` does not fit.
    pub fn set(&mut self, index: usize, count: u32) {
        self.widen_for(count);
        match self {
            Counts::U8(v) => v.set(index, count as u8),
            Counts::U16(v) => v.set(index, count as u16),
            Counts::U32(v) => v.set(index, count),
        }
    }

    pub fn resize(&mut self, len: usize) {
        match self {
            Counts::U8(v) => v.resize(len),
            Counts::U16(v) => v.resize(len),
            Counts::U32(v) => v.resize(len),
        }
    }

    fn widen_for(&mut self, count: u32) {
        let widened = match self {
            Counts::U8(v) if count > u32::from(u8::MAX) => {
                if count > u32::from(u16::MAX) {
                    Counts::U32(v.iter().map(u32::from).collect())
                } else {
                    Counts::U16(v.iter().map(u16::from).collect())
                }
            }
            Counts::U16(v) if count > u32::from(u16::MAX) => {
                Counts::U32(v.iter().map(u32::from).collect())
            }
            _ => return,
        };
        *self = widened;
    }

    /// Bytes per count: 1, 2 or 4.
    pub fn width(&self) -> usize {
        match self {
            Counts::U8(_) => 1,
            Counts::U16(_) => 2,
            Counts::U32(_) => 4,
        }
    }

    /// The contacts with a count above zero, with it, in order.
    pub fn nonzero(&self) -> Box<dyn Iterator<Item = (usize, u32)> + '_> {
        match self {
            Counts::U8(v) => Box::new(v.nonzero().map(|(i, c)| (i, u32::from(c)))),
            Counts::U16(v) => Box::new(v.nonzero().map(|(i, c)| (i, u32::from(c)))),
            Counts::U32(v) => Box::new(v.nonzero()),
        }
    }

    /// The counts as little-endian integers of [`Counts::width`] bytes.
    pub fn le_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Counts::U8(v) => out.extend(v.iter()),
            Counts::U16(v) => v
                .iter()
                .for_each(|c| out.extend_from_slice(&c.to_le_bytes())),
            Counts::U32(v) => v
                .iter()
                .for_each(|c| out.extend_from_slice(&c.to_le_bytes())),
        }
    }

    /// Counts read back from [`Counts::le_bytes`] (`None`: not a width).
    pub fn from_le_bytes(width: usize, bytes: &[u8]) -> Option<Counts> {
        match width {
            1 => Some(Counts::U8(bytes.iter().copied().collect())),
            2 => Some(Counts::U16(
                bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            )),
            4 => Some(Counts::U32(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )),
            _ => None,
        }
    }

    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            Counts::U8(v) => v.iter().map(u32::from).collect(),
            Counts::U16(v) => v.iter().map(u32::from).collect(),
            Counts::U32(v) => v.to_vec(),
        }
    }

    /// Words `start..end` (64 contacts each) of the contacts whose count
    /// passes `test`; contacts past the end count 0.
    pub fn words(&self, start: usize, end: usize, test: impl Fn(u32) -> bool) -> Vec<u64> {
        match self {
            Counts::U8(v) => v.words(start, end, |c| test(u32::from(c))),
            Counts::U16(v) => v.words(start, end, |c| test(u32::from(c))),
            Counts::U32(v) => v.words(start, end, test),
        }
    }
}

/// Equal when they hold the same counts, whatever their widths.
impl PartialEq for Counts {
    fn eq(&self, other: &Counts) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.get(i) == other.get(i))
    }
}

impl From<Vec<u32>> for Counts {
    /// In the narrowest width that holds the largest count.
    fn from(counts: Vec<u32>) -> Self {
        let largest = counts.iter().copied().max().unwrap_or(0);
        if largest <= u32::from(u8::MAX) {
            Counts::U8(counts.into_iter().map(|c| c as u8).collect())
        } else if largest <= u32::from(u16::MAX) {
            Counts::U16(counts.into_iter().map(|c| c as u16).collect())
        } else {
            Counts::U32(counts.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_widen_when_one_does_not_fit_and_keep_every_other() {
        let mut counts = Counts::from(vec![3, 0, 255]);
        assert!(matches!(counts, Counts::U8(_)));
        counts.resize(5);
        counts.set(4, 256);
        assert!(matches!(counts, Counts::U16(_)));
        counts.set(1, 70_000);
        assert!(matches!(counts, Counts::U32(_)));
        assert_eq!(counts.to_vec(), vec![3, 70_000, 255, 0, 256]);
        assert_eq!(counts.get(5), None);
        let words = counts.words(0, 1, |c| c >= 255);
        assert_eq!(words, vec![0b10110]);
        assert!(matches!(Counts::from(vec![1, 300]), Counts::U16(_)));
        assert!(matches!(Counts::from(vec![1, 70_000]), Counts::U32(_)));
    }
}

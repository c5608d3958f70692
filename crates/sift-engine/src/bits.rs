//! A plain growable bitset over contact numbers, used for column presence and
//! booleans, and as the word-at-a-time working form of bulk evaluation. Its
//! words are paged copy-on-write ([`PagedVec`]) so that a checkpoint copy of
//! a column costs a reference per page.

use crate::paged::PagedVec;

#[derive(Clone, Debug, Default)]
pub struct Bits {
    words: PagedVec<u64>,
}

impl Bits {
    pub fn get(&self, index: u32) -> bool {
        let word = (index / 64) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w >> (index % 64) & 1 == 1)
    }

    pub fn set(&mut self, index: u32, value: bool) {
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            if !value {
                return;
            }
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << (index % 64);
        if value {
            self.words[word] |= mask;
        } else {
            self.words[word] &= !mask;
        }
    }

    /// The bits of `set` (ascending), in one pass.
    pub fn from_sorted(set: impl IntoIterator<Item = u32>) -> Bits {
        let mut words: Vec<u64> = Vec::new();
        for index in set {
            let word = (index / 64) as usize;
            if word >= words.len() {
                words.resize(word + 1, 0);
            }
            words[word] |= 1u64 << (index % 64);
        }
        Bits {
            words: PagedVec::from(words),
        }
    }

    /// Word `index`, zero beyond the end.
    pub fn word(&self, index: usize) -> u64 {
        self.words.get(index).copied().unwrap_or(0)
    }

    /// Words held (64 contacts each).
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Every word, in order.
    pub fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().copied()
    }

    pub fn heap_bytes(&self) -> usize {
        self.words.heap_bytes()
    }

    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

//! A plain growable bitset over contact numbers, used for column presence and
//! booleans, and as the word-at-a-time working form of bulk evaluation.

#[derive(Clone, Debug, Default)]
pub struct Bits {
    words: Vec<u64>,
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

    /// Word `index`, zero beyond the end.
    pub fn word(&self, index: usize) -> u64 {
        self.words.get(index).copied().unwrap_or(0)
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

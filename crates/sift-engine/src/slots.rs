//! The per-contact values of one column, kept in proportion to the contacts
//! that hold one.
//!
//! A column starts sparse (an ordered map from contact number to value), so a
//! field a handful of contacts carry costs a handful of entries however many
//! contacts the workspace has. Once its holders are a large enough share of
//! the numbers it spans it is promoted to the dense form (a presence bitset
//! and a vector indexed by contact number), which bulk evaluation scans 64
//! contacts per word exactly as before. A dense column that would have to grow
//! far past its holders (one value written at a high contact number) turns
//! sparse again instead, so no single write makes a column cost
//! contacts × value size.

use std::collections::BTreeMap;
use std::fmt::Debug;

use crate::bits::Bits;
use crate::paged::PagedVec;

/// Below this many holders a column stays sparse whatever it spans: at most
/// a few tens of KiB, and a restore (contacts in number order) does not
/// promote a column on its first few contacts.
const SPARSE_MIN: usize = 1024;
/// A sparse column is promoted once its holders are at least 1/PROMOTE of
/// the numbers it spans; a map entry costs about two to three times a dense
/// slot, so the dense form is then at most a few times the sparse one.
const PROMOTE: usize = 8;
/// A dense column that would grow to span more than DEMOTE times its holders
/// turns sparse. Twice PROMOTE, so a column does not flip back and forth.
const DEMOTE: usize = 16;

/// The dense form's value storage, indexed by contact number.
pub trait DenseStore: Default + Clone + Debug {
    type Item: Clone + Debug;
    /// The value of `no`, which the caller knows is present.
    fn at(&self, no: u32) -> Option<&Self::Item>;
    fn put(&mut self, no: u32, item: Self::Item);
    /// Takes the value out of slot `no` (the slot keeps a default).
    fn take(&mut self, no: u32) -> Option<Self::Item>;
    /// Numbers the storage currently reaches.
    fn span(&self) -> usize;
    /// Words `start..end` of the contacts in `present` whose value passes `test`.
    fn scan(
        &self,
        present: &Bits,
        start: usize,
        end: usize,
        test: impl Fn(&Self::Item) -> bool,
    ) -> Vec<u64>;
    fn heap_bytes(&self) -> usize;
    /// Storage spanning `span` numbers holding `entries` (ascending).
    fn build(_span: usize, entries: Vec<(u32, Self::Item)>) -> Self {
        let mut store = Self::default();
        for (no, item) in entries.into_iter().rev() {
            store.put(no, item);
        }
        store
    }
}

impl<T: Clone + Default + Debug> DenseStore for PagedVec<T> {
    type Item = T;

    fn at(&self, no: u32) -> Option<&T> {
        self.get(no as usize)
    }

    fn put(&mut self, no: u32, item: T) {
        let index = no as usize;
        if index >= self.len() {
            self.resize(index + 1, T::default());
        }
        self[index] = item;
    }

    fn take(&mut self, no: u32) -> Option<T> {
        self.get_mut(no as usize).map(std::mem::take)
    }

    fn span(&self) -> usize {
        self.len()
    }

    fn scan(
        &self,
        present: &Bits,
        start: usize,
        end: usize,
        test: impl Fn(&T) -> bool,
    ) -> Vec<u64> {
        let mut out = vec![0u64; end - start];
        for (slot, w) in out.iter_mut().zip(start..end) {
            let mask = present.word(w);
            if mask == 0 {
                continue;
            }
            let mut word = 0u64;
            for (bit, value) in self.run(w * 64, 64).iter().enumerate() {
                word |= u64::from(test(value)) << bit;
            }
            *slot = word & mask;
        }
        out
    }

    fn heap_bytes(&self) -> usize {
        PagedVec::heap_bytes(self)
    }

    fn build(span: usize, entries: Vec<(u32, T)>) -> Self {
        PagedVec::from_entries(
            span,
            T::default(),
            entries.into_iter().map(|(no, item)| (no as usize, item)),
        )
    }
}

impl DenseStore for Bits {
    type Item = bool;

    fn at(&self, no: u32) -> Option<&bool> {
        Some(if self.get(no) { &true } else { &false })
    }

    fn put(&mut self, no: u32, item: bool) {
        self.set(no, item);
    }

    fn take(&mut self, no: u32) -> Option<bool> {
        let was = self.get(no);
        self.set(no, false);
        Some(was)
    }

    fn span(&self) -> usize {
        self.word_count() * 64
    }

    /// A boolean test is decided for `true` and `false` once, then applied a
    /// word at a time.
    fn scan(
        &self,
        present: &Bits,
        start: usize,
        end: usize,
        test: impl Fn(&bool) -> bool,
    ) -> Vec<u64> {
        let on_true = if test(&true) { u64::MAX } else { 0 };
        let on_false = if test(&false) { u64::MAX } else { 0 };
        (start..end)
            .map(|w| {
                let value = self.word(w);
                present.word(w) & ((value & on_true) | (!value & on_false))
            })
            .collect()
    }

    fn heap_bytes(&self) -> usize {
        Bits::heap_bytes(self)
    }
}

#[derive(Clone, Debug)]
pub enum Slots<D: DenseStore> {
    Sparse(BTreeMap<u32, D::Item>),
    Dense {
        present: Bits,
        values: D,
        holders: usize,
    },
}

impl<D: DenseStore> Default for Slots<D> {
    fn default() -> Self {
        Slots::Sparse(BTreeMap::new())
    }
}

impl<D: DenseStore> Slots<D> {
    /// Contacts holding a value.
    pub fn holders(&self) -> usize {
        match self {
            Slots::Sparse(map) => map.len(),
            Slots::Dense { holders, .. } => *holders,
        }
    }

    pub fn is_dense(&self) -> bool {
        matches!(self, Slots::Dense { .. })
    }

    pub fn contains(&self, no: u32) -> bool {
        match self {
            Slots::Sparse(map) => map.contains_key(&no),
            Slots::Dense { present, .. } => present.get(no),
        }
    }

    pub fn get(&self, no: u32) -> Option<&D::Item> {
        match self {
            Slots::Sparse(map) => map.get(&no),
            Slots::Dense {
                present, values, ..
            } => {
                if present.get(no) {
                    values.at(no)
                } else {
                    None
                }
            }
        }
    }

    /// Sets or clears `no`'s value; returns the value it held.
    pub fn set(&mut self, no: u32, item: Option<D::Item>) -> Option<D::Item> {
        if let (Slots::Dense { holders, .. }, Some(_)) = (&*self, &item) {
            let index = no as usize;
            let grows = index >= self.dense_span() && !self.contains(no);
            if grows && (holders + 1) * DEMOTE < index + 1 {
                self.demote();
            }
        }
        match self {
            Slots::Sparse(map) => {
                let inserts = item.is_some();
                let old = match item {
                    Some(item) => map.insert(no, item),
                    None => map.remove(&no),
                };
                if inserts && old.is_none() && map.len() >= SPARSE_MIN {
                    let span = map.last_key_value().map_or(0, |(k, _)| *k as usize + 1);
                    if map.len() * PROMOTE >= span {
                        self.promote();
                    }
                }
                old
            }
            Slots::Dense {
                present,
                values,
                holders,
            } => {
                let old = if present.get(no) {
                    values.take(no)
                } else {
                    None
                };
                match item {
                    Some(item) => {
                        values.put(no, item);
                        present.set(no, true);
                        if old.is_none() {
                            *holders += 1;
                        }
                    }
                    None => {
                        present.set(no, false);
                        if old.is_some() {
                            *holders -= 1;
                        }
                    }
                }
                old
            }
        }
    }

    /// The slots holding `entries`, in the form setting them one by one
    /// would reach, built in one pass (a start's columns). Numbers must
    /// ascend; entries that do not are set one by one.
    pub fn from_sorted(entries: Vec<(u32, D::Item)>) -> Slots<D> {
        if !entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            let mut slots = Slots::default();
            for (no, item) in entries {
                slots.set(no, Some(item));
            }
            return slots;
        }
        let holders = entries.len();
        let span = entries.last().map_or(0, |(no, _)| *no as usize + 1);
        if holders >= SPARSE_MIN && holders * PROMOTE >= span {
            Slots::Dense {
                present: Bits::from_sorted(entries.iter().map(|(no, _)| *no)),
                values: D::build(span, entries),
                holders,
            }
        } else {
            Slots::Sparse(entries.into_iter().collect())
        }
    }

    fn dense_span(&self) -> usize {
        match self {
            Slots::Sparse(_) => 0,
            Slots::Dense { values, .. } => values.span(),
        }
    }

    fn promote(&mut self) {
        let Slots::Sparse(map) = std::mem::take(self) else {
            return;
        };
        let mut present = Bits::default();
        let mut values = D::default();
        let holders = map.len();
        // Highest number first, so each storage grows once.
        for (no, item) in map.into_iter().rev() {
            values.put(no, item);
            present.set(no, true);
        }
        *self = Slots::Dense {
            present,
            values,
            holders,
        };
    }

    fn demote(&mut self) {
        let Slots::Dense {
            present,
            mut values,
            ..
        } = std::mem::take(self)
        else {
            return;
        };
        let mut map = BTreeMap::new();
        for (w, word) in present.words().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let no = (w * 64) as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                if let Some(item) = values.take(no) {
                    map.insert(no, item);
                }
            }
        }
        *self = Slots::Sparse(map);
    }

    /// Words `start..end` (64 contacts each) of the contacts holding a value.
    pub fn present_words(&self, start: usize, end: usize) -> Vec<u64> {
        match self {
            Slots::Dense { present, .. } => (start..end).map(|w| present.word(w)).collect(),
            Slots::Sparse(_) => self.sparse_words(start, end, |_| true),
        }
    }

    /// Words `start..end` of the contacts whose value passes `test`.
    pub fn words_where(
        &self,
        start: usize,
        end: usize,
        test: impl Fn(&D::Item) -> bool,
    ) -> Vec<u64> {
        match self {
            Slots::Dense {
                present, values, ..
            } => values.scan(present, start, end, test),
            Slots::Sparse(_) => self.sparse_words(start, end, test),
        }
    }

    fn sparse_words(&self, start: usize, end: usize, test: impl Fn(&D::Item) -> bool) -> Vec<u64> {
        let mut out = vec![0u64; end - start];
        let Slots::Sparse(map) = self else {
            return out;
        };
        let low = (start * 64).min(u32::MAX as usize) as u32;
        let high = (end * 64).min(u32::MAX as usize) as u32;
        for (no, item) in map.range(low..high) {
            if test(item) {
                let offset = (no - low) as usize;
                out[offset / 64] |= 1 << (offset % 64);
            }
        }
        out
    }

    /// Bytes this column's values take on the heap; for the sparse form an
    /// upper estimate (B-tree nodes of eleven entries, at least half full).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Slots::Sparse(map) => {
                let entry = size_of::<u32>() + size_of::<D::Item>();
                map.len().div_ceil(5) * (11 * entry + 16)
            }
            Slots::Dense {
                present, values, ..
            } => present.heap_bytes() + values.heap_bytes(),
        }
    }
}

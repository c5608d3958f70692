//! Per-contact numbers that are zero for most contacts, in pages that hold
//! either every slot or only the non-zero ones, whichever is smaller.
//!
//! A windowed count or sum is zero for every contact with no matching
//! event in its window: a 7-day purchase total is non-zero for a few
//! percent of contacts. Kept dense, every aggregate costs its width for
//! every contact; kept sparse, a page costs its non-zero entries (their
//! offset and value). Each page picks its form as entries come and go, so
//! a dense stretch of contacts stays as compact and as fast as a vector.
//! Pages are shared copy-on-write like [`crate::paged::PagedVec`]'s, for
//! the same reason: a checkpoint's copy is one reference per page.

use std::sync::Arc;

const PAGE_BITS: u32 = 12;
const PAGE: usize = 1 << PAGE_BITS;
const MASK: usize = PAGE - 1;

#[derive(Clone, Debug)]
enum Page<T> {
    /// Every slot of the page (slots past the vector's length hold zero).
    Dense { values: Vec<T>, nonzero: usize },
    /// The non-zero slots, by offset in the page, ascending.
    Sparse { offsets: Vec<u16>, values: Vec<T> },
}

impl<T: Copy + Default + PartialEq> Page<T> {
    fn get(&self, offset: usize) -> T {
        match self {
            Page::Dense { values, .. } => values[offset],
            Page::Sparse { offsets, values } => match offsets.binary_search(&(offset as u16)) {
                Ok(at) => values[at],
                Err(_) => T::default(),
            },
        }
    }

    fn set(&mut self, offset: usize, value: T) {
        let zero = T::default();
        match self {
            Page::Dense { values, nonzero } => {
                let old = std::mem::replace(&mut values[offset], value);
                match (old == zero, value == zero) {
                    (true, false) => *nonzero += 1,
                    (false, true) => *nonzero -= 1,
                    _ => {}
                }
            }
            Page::Sparse { offsets, values } => {
                match (offsets.binary_search(&(offset as u16)), value == zero) {
                    (Ok(at), false) => values[at] = value,
                    (Ok(at), true) => {
                        offsets.remove(at);
                        values.remove(at);
                    }
                    (Err(at), false) => {
                        offsets.insert(at, offset as u16);
                        values.insert(at, value);
                    }
                    (Err(_), true) => {}
                }
            }
        }
        self.reshape();
    }

    /// Switches form when the other would be smaller: dense above the
    /// break-even count of entries, sparse again below half of it (so that
    /// one contact going back and forth does not convert the page each
    /// time).
    fn reshape(&mut self) {
        let entry = size_of::<u16>() + size_of::<T>();
        let dense = PAGE * size_of::<T>();
        match self {
            Page::Sparse { offsets, values } if offsets.len() * entry > dense => {
                let mut all = vec![T::default(); PAGE];
                for (offset, value) in offsets.iter().zip(values.iter()) {
                    all[usize::from(*offset)] = *value;
                }
                let nonzero = offsets.len();
                *self = Page::Dense {
                    values: all,
                    nonzero,
                };
            }
            Page::Dense { values, nonzero } if *nonzero * entry * 2 < dense => {
                *self = Page::sparse_from(values);
            }
            _ => {}
        }
    }

    fn sparse_from(slots: &[T]) -> Page<T> {
        let zero = T::default();
        let (offsets, values) = slots
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != zero)
            .map(|(offset, v)| (offset as u16, *v))
            .unzip();
        Page::Sparse { offsets, values }
    }

    /// A page holding `slots` (at most a page of them), in its smaller form.
    fn from_slots(slots: &[T]) -> Page<T> {
        let zero = T::default();
        let nonzero = slots.iter().filter(|v| **v != zero).count();
        if nonzero * (size_of::<u16>() + size_of::<T>()) > PAGE * size_of::<T>() {
            let mut values = slots.to_vec();
            values.resize(PAGE, zero);
            Page::Dense { values, nonzero }
        } else {
            Page::sparse_from(slots)
        }
    }

    /// Clears the slots from `offset` on.
    fn truncate(&mut self, offset: usize) {
        let zero = T::default();
        match self {
            Page::Dense { values, nonzero } => {
                for v in &mut values[offset..] {
                    if *v != zero {
                        *nonzero -= 1;
                    }
                    *v = zero;
                }
            }
            Page::Sparse { offsets, values } => {
                let keep = offsets.partition_point(|o| usize::from(*o) < offset);
                offsets.truncate(keep);
                values.truncate(keep);
            }
        }
        self.reshape();
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Page::Dense { values, .. } => values.capacity() * size_of::<T>(),
            Page::Sparse { offsets, values } => {
                offsets.capacity() * size_of::<u16>() + values.capacity() * size_of::<T>()
            }
        }
    }
}

/// A vector of `T` where most entries are `T::default()` (zero).
#[derive(Clone, Debug)]
pub struct SparseVec<T> {
    /// `None`: a page of zeros, holding nothing.
    pages: Vec<Option<Arc<Page<T>>>>,
    len: usize,
}

impl<T> Default for SparseVec<T> {
    fn default() -> Self {
        SparseVec {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy + Default + PartialEq> SparseVec<T> {
    pub fn new() -> Self {
        SparseVec::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        Some(match &self.pages[index >> PAGE_BITS] {
            Some(page) => page.get(index & MASK),
            None => T::default(),
        })
    }

    /// Sets entry `index` (ignored past [`SparseVec::len`]), its page
    /// copied first if a checkpoint copy shares it.
    pub fn set(&mut self, index: usize, value: T) {
        if index >= self.len {
            return;
        }
        let slot = &mut self.pages[index >> PAGE_BITS];
        match slot {
            Some(page) => Arc::make_mut(page).set(index & MASK, value),
            None if value == T::default() => {}
            None => {
                let mut page = Page::Sparse {
                    offsets: Vec::new(),
                    values: Vec::new(),
                };
                page.set(index & MASK, value);
                *slot = Some(Arc::new(page));
            }
        }
    }

    /// Grows with zeros or shrinks to `len` entries.
    pub fn resize(&mut self, len: usize) {
        if len < self.len {
            self.pages.truncate(len.div_ceil(PAGE));
            let offset = len & MASK;
            if offset != 0
                && let Some(Some(page)) = self.pages.last_mut()
            {
                Arc::make_mut(page).truncate(offset);
            }
        } else {
            self.pages.resize(len.div_ceil(PAGE), None);
        }
        self.len = len;
    }

    /// Every entry, zeros included, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            vec: self,
            index: 0,
            cursor: 0,
        }
    }

    /// The non-zero entries with their indexes, in order.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, T)> + '_ {
        let zero = T::default();
        self.pages
            .iter()
            .enumerate()
            .filter_map(|(p, page)| Some((p * PAGE, page.as_deref()?)))
            .flat_map(
                move |(base, page)| -> Box<dyn Iterator<Item = (usize, T)> + '_> {
                    match page {
                        Page::Dense { values, .. } => Box::new(
                            values
                                .iter()
                                .enumerate()
                                .filter(move |(_, v)| **v != zero)
                                .map(move |(offset, v)| (base + offset, *v)),
                        ),
                        Page::Sparse { offsets, values } => Box::new(
                            offsets
                                .iter()
                                .zip(values.iter())
                                .map(move |(offset, v)| (base + usize::from(*offset), *v)),
                        ),
                    }
                },
            )
    }

    /// Words `start..end` (64 entries each) of the entries that pass
    /// `test`; entries past the end read as zero.
    pub fn words(&self, start: usize, end: usize, test: impl Fn(T) -> bool) -> Vec<u64> {
        let zero_passes = test(T::default());
        let mut out = vec![if zero_passes { u64::MAX } else { 0 }; end.saturating_sub(start)];
        for (slot, w) in out.iter_mut().zip(start..end) {
            let first = w * 64;
            let page = self
                .pages
                .get(first >> PAGE_BITS)
                .and_then(|p| p.as_deref());
            match page {
                None => {}
                Some(Page::Dense { values, .. }) => {
                    let offset = first & MASK;
                    let mut word = 0u64;
                    for (bit, value) in values[offset..offset + 64].iter().enumerate() {
                        word |= u64::from(test(*value)) << bit;
                    }
                    *slot = word;
                }
                Some(Page::Sparse { offsets, values }) => {
                    let offset = first & MASK;
                    let from = offsets.partition_point(|o| usize::from(*o) < offset);
                    for (o, value) in offsets[from..].iter().zip(&values[from..]) {
                        let bit = usize::from(*o) - offset;
                        if bit >= 64 {
                            break;
                        }
                        if test(*value) {
                            *slot |= 1 << bit;
                        } else {
                            *slot &= !(1 << bit);
                        }
                    }
                }
            }
        }
        out
    }

    /// Heap bytes held (pages shared with a copy counted in full).
    pub fn heap_bytes(&self) -> usize {
        self.pages.capacity() * size_of::<Option<Arc<Page<T>>>>()
            + self
                .pages
                .iter()
                .flatten()
                .map(|page| size_of::<Page<T>>() + page.heap_bytes())
                .sum::<usize>()
    }

    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }
}

impl<T: Copy + Default + PartialEq> FromIterator<T> for SparseVec<T> {
    /// A page at a time, each in its smaller form.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let zero = T::default();
        let mut out = SparseVec::new();
        let mut buffer = Vec::with_capacity(PAGE);
        let mut iter = iter.into_iter();
        loop {
            buffer.clear();
            buffer.extend(iter.by_ref().take(PAGE));
            if buffer.is_empty() {
                break;
            }
            out.len += buffer.len();
            out.pages.push(if buffer.iter().all(|v| *v == zero) {
                None
            } else {
                Some(Arc::new(Page::from_slots(&buffer)))
            });
        }
        out
    }
}

/// Equal when they hold the same entries, whatever their pages' forms.
impl<T: Copy + Default + PartialEq> PartialEq for SparseVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// [`SparseVec::iter`]: a slot at a time without searching the pages.
pub struct Iter<'a, T> {
    vec: &'a SparseVec<T>,
    index: usize,
    /// The next entry to look at in the current page when it is sparse.
    cursor: usize,
}

impl<T: Copy + Default + PartialEq> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.index >= self.vec.len {
            return None;
        }
        let offset = self.index & MASK;
        if offset == 0 {
            self.cursor = 0;
        }
        let value = match self.vec.pages[self.index >> PAGE_BITS].as_deref() {
            None => T::default(),
            Some(Page::Dense { values, .. }) => values[offset],
            Some(Page::Sparse { offsets, values }) => {
                if offsets
                    .get(self.cursor)
                    .is_some_and(|o| usize::from(*o) == offset)
                {
                    self.cursor += 1;
                    values[self.cursor - 1]
                } else {
                    T::default()
                }
            }
        };
        self.index += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.vec.len - self.index;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random sets, clears and resizes against a plain vector, through
    /// both page forms and back.
    #[test]
    fn sparse_vectors_hold_what_a_plain_vector_holds() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut plain: Vec<u8> = vec![0; 3 * PAGE + 100];
        let mut sparse: SparseVec<u8> = plain.iter().copied().collect();
        for round in 0..60_000 {
            let len = plain.len();
            match next() % 100 {
                0 => {
                    let new_len = (next() as usize) % (4 * PAGE);
                    plain.resize(new_len, 0);
                    sparse.resize(new_len);
                }
                r => {
                    if len == 0 {
                        continue;
                    }
                    // Dense runs in the first page, scattered entries elsewhere.
                    let index = if r < 50 {
                        (next() as usize) % len.min(PAGE)
                    } else {
                        (next() as usize) % len
                    };
                    let value = if round % 3 == 0 {
                        0
                    } else {
                        (next() % 4) as u8
                    };
                    plain[index] = value;
                    sparse.set(index, value);
                }
            }
            if round % 997 == 0 {
                assert_eq!(sparse.to_vec(), plain);
                let copy = sparse.clone();
                assert!(copy == sparse);
            }
        }
        assert_eq!(sparse.to_vec(), plain);
        assert_eq!(sparse.get(plain.len()), None);
        let nonzero: Vec<(usize, u8)> = plain
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(i, v)| (i, *v))
            .collect();
        assert_eq!(sparse.nonzero().collect::<Vec<_>>(), nonzero);
        let words = plain.len().div_ceil(64) + 2;
        for test in [|v: u8| v >= 2, |v: u8| v == 0] {
            let expected: Vec<u64> = (0..words)
                .map(|w| {
                    (0..64).fold(0u64, |word, bit| {
                        let value = plain.get(w * 64 + bit).copied().unwrap_or(0);
                        word | (u64::from(test(value)) << bit)
                    })
                })
                .collect();
            assert_eq!(sparse.words(0, words, test), expected);
        }
    }

    #[test]
    fn a_page_is_dense_only_while_that_is_smaller() {
        let mut sums: SparseVec<f64> = SparseVec::new();
        sums.resize(PAGE);
        for i in 0..PAGE {
            sums.set(i, 1.5);
        }
        assert!(sums.heap_bytes() < PAGE * 8 + 200);
        for i in 0..PAGE - 10 {
            sums.set(i, 0.0);
        }
        assert!(sums.heap_bytes() < PAGE * 8);
        assert_eq!(sums.nonzero().count(), 10);
    }
}

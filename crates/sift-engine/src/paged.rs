//! A vector in fixed-size pages shared copy-on-write, for the per-contact
//! state a checkpoint copies.
//!
//! A checkpoint copies the workspace under the write lock. With plain
//! vectors that copy is proportional to the state (120 ms at a million
//! contacts), and every write waits for it. Cloning a [`PagedVec`] clones
//! one reference per page instead, a few thousand at ten million
//! contacts; the first write to a page after the copy pays for copying
//! that page alone, so the cost is spread over the writes that follow and
//! bounded by the pages they touch.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Entries per page (a page grows like a vector up to it, so a small
/// vector stays small). Small enough that copying a page of event histories
/// (one allocation per entry) stays well under a millisecond, large enough
/// that a copy of ten million entries is a few thousand references.
const PAGE_BITS: u32 = 12;
const PAGE: usize = 1 << PAGE_BITS;
const MASK: usize = PAGE - 1;

#[derive(Clone, Debug)]
pub struct PagedVec<T> {
    pages: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for PagedVec<T> {
    fn default() -> Self {
        PagedVec {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> PagedVec<T> {
    pub fn new() -> Self {
        PagedVec::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        Some(&self.pages[index >> PAGE_BITS][index & MASK])
    }

    /// The entry, its page copied first if a checkpoint copy shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        Some(&mut Arc::make_mut(&mut self.pages[index >> PAGE_BITS])[index & MASK])
    }

    pub fn push(&mut self, value: T) {
        if self.len & MASK == 0 {
            self.pages.push(Arc::default());
        }
        let last = self.pages.len() - 1;
        Arc::make_mut(&mut self.pages[last]).push(value);
        self.len += 1;
    }

    pub fn resize(&mut self, len: usize, value: T) {
        if len <= self.len {
            self.truncate(len);
            return;
        }
        while self.len < len {
            if self.len & MASK == 0 {
                self.pages.push(Arc::default());
            }
            let last = self.pages.len() - 1;
            let page = Arc::make_mut(&mut self.pages[last]);
            let fill = (len - self.len).min(PAGE - page.len());
            page.resize(page.len() + fill, value.clone());
            self.len += fill;
        }
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let pages = len.div_ceil(PAGE);
        self.pages.truncate(pages);
        if let Some(last) = self.pages.last_mut() {
            Arc::make_mut(last).truncate(len - (pages - 1) * PAGE);
        }
        self.len = len;
    }

    pub fn clear(&mut self) {
        self.pages.clear();
        self.len = 0;
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.pages.iter().flat_map(|page| page.iter())
    }

    /// Every entry mutably: every page is copied first that a checkpoint
    /// copy shares.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.pages
            .iter_mut()
            .flat_map(|page| Arc::make_mut(page).iter_mut())
    }

    /// The entries as consecutive slices of at most a page each, for scans
    /// that want plain slices.
    pub fn pages(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.pages.iter().map(|page| page.as_slice())
    }

    /// `len` entries of `fill` but for `entries` (indexes ascending, below
    /// `len`; others are ignored), built a page at a time: how a start fills
    /// a column without a sharing check per value.
    pub fn from_entries(
        len: usize,
        fill: T,
        entries: impl IntoIterator<Item = (usize, T)>,
    ) -> Self {
        let mut pages = Vec::with_capacity(len.div_ceil(PAGE));
        let mut entries = entries.into_iter().peekable();
        for start in (0..len).step_by(PAGE) {
            let end = (start + PAGE).min(len);
            let mut page = vec![fill.clone(); end - start];
            while let Some((index, value)) = entries.next_if(|(index, _)| *index < end) {
                if let Some(slot) = index.checked_sub(start).and_then(|i| page.get_mut(i)) {
                    *slot = value;
                }
            }
            pages.push(Arc::new(page));
        }
        PagedVec { pages, len }
    }

    /// Entries from `start` on, at most `max` of them and none past the end
    /// of `start`'s page (64 consecutive entries from a multiple of 64 are
    /// always on one page): a plain slice for word-at-a-time scans.
    pub fn run(&self, start: usize, max: usize) -> &[T] {
        if start >= self.len {
            return &[];
        }
        let page = &self.pages[start >> PAGE_BITS];
        let offset = start & MASK;
        &page[offset..page.len().min(offset + max)]
    }

    /// Entries `start..end`, gathered (a copy when the range spans pages).
    pub fn slice_to_vec(&self, start: usize, end: usize) -> Vec<T> {
        (start..end.min(self.len))
            .map(|i| self[i].clone())
            .collect()
    }

    /// Heap bytes held (pages shared with a copy counted in full).
    pub fn heap_bytes(&self) -> usize {
        self.pages.capacity() * size_of::<Arc<Vec<T>>>()
            + self
                .pages
                .iter()
                .map(|page| page.capacity() * size_of::<T>())
                .sum::<usize>()
    }

    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    /// Takes the entries out, cloning only the pages a copy still shares.
    pub fn into_vec(self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for page in self.pages {
            match Arc::try_unwrap(page) {
                Ok(page) => out.extend(page),
                Err(shared) => out.extend(shared.iter().cloned()),
            }
        }
        out
    }
}

impl<T: Clone> From<Vec<T>> for PagedVec<T> {
    fn from(values: Vec<T>) -> Self {
        let len = values.len();
        let mut pages = Vec::with_capacity(len.div_ceil(PAGE));
        let mut rest = values.into_iter();
        loop {
            let page: Vec<T> = rest.by_ref().take(PAGE).collect();
            if page.is_empty() {
                break;
            }
            pages.push(Arc::new(page));
        }
        PagedVec { pages, len }
    }
}

impl<T: Clone> FromIterator<T> for PagedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = PagedVec::new();
        out.extend(iter);
        out
    }
}

impl<T: Clone> Extend<T> for PagedVec<T> {
    /// A page at a time, so that a bulk load does not check sharing per
    /// entry.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        while iter.peek().is_some() {
            if self.len & MASK == 0 {
                self.pages.push(Arc::default());
            }
            let Some(last) = self.pages.last_mut() else {
                return;
            };
            let page = Arc::make_mut(last);
            let before = page.len();
            page.extend(iter.by_ref().take(PAGE - before));
            self.len += page.len() - before;
        }
    }
}

impl<T: Clone> Index<usize> for PagedVec<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        assert!(index < self.len, "index {index} past {}", self.len);
        &self.pages[index >> PAGE_BITS][index & MASK]
    }
}

impl<T: Clone> IndexMut<usize> for PagedVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        assert!(index < self.len, "index {index} past {}", self.len);
        &mut Arc::make_mut(&mut self.pages[index >> PAGE_BITS])[index & MASK]
    }
}

impl<T: Clone + PartialEq> PartialEq for PagedVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_its_values_while_the_original_changes() {
        let mut original: PagedVec<u32> = (0..10_000).collect();
        let copy = original.clone();
        original[5] = 99;
        original[9_000] += 1;
        original.push(7);
        original.resize(20_000, 3);
        assert_eq!(copy.len(), 10_000);
        assert_eq!(copy[5], 5);
        assert_eq!(copy[9_000], 9_000);
        assert_eq!(original[5], 99);
        assert_eq!(original[9_000], 9_001);
        assert_eq!(original[10_000], 7);
        assert_eq!(original[19_999], 3);
        assert_eq!(original.len(), 20_000);
        assert_eq!(copy.into_vec(), (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn it_behaves_as_a_vector_across_page_edges() {
        for len in [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 5] {
            let plain: Vec<usize> = (0..len).collect();
            let mut paged = PagedVec::from(plain.clone());
            assert_eq!(paged.len(), len);
            assert_eq!(paged.to_vec(), plain);
            assert_eq!(paged.iter().next_back(), plain.last());
            for cut in [0, len / 2, len] {
                let mut shorter = paged.clone();
                shorter.truncate(cut);
                assert_eq!(shorter.to_vec(), plain[..cut].to_vec());
                shorter.resize(len, 0);
                assert_eq!(shorter.len(), len);
            }
            paged.iter_mut().for_each(|v| *v *= 2);
            assert_eq!(
                paged.to_vec(),
                plain.iter().map(|v| v * 2).collect::<Vec<_>>()
            );
            assert_eq!(paged.get(len), None);
        }
    }
}

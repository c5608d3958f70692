//! An index from strings to their numbers in the list that holds them,
//! keeping only the numbers.
//!
//! A `HashMap<Arc<str>, u32>` slot is 24 bytes (the key's pointer and
//! length, then the number): at ten million contact ids, or as many
//! distinct e-mails, its table is ~400 MB that a start zeroes and fills.
//! Here a slot is the number alone (4 bytes) and a probe compares through
//! the list, which the owner holds anyway: a fifth of the memory, and each
//! string hashed once when it is added.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::paged::PagedVec;

#[derive(Clone, Debug, Default)]
pub struct StrIndex {
    table: HashTable<u32>,
    state: RandomState,
}

fn text(strings: &PagedVec<Arc<str>>, number: u32) -> &str {
    strings.get(number as usize).map_or("", |s| s)
}

impl StrIndex {
    fn hash(&self, text: &str) -> u64 {
        self.state.hash_one(text)
    }

    /// The number of `wanted` among those indexed (`strings` resolves them).
    pub fn get(&self, wanted: &str, strings: &PagedVec<Arc<str>>) -> Option<u32> {
        self.table
            .find(self.hash(wanted), |&n| text(strings, n) == wanted)
            .copied()
    }

    /// The number of `wanted` if indexed; otherwise `next` is indexed for
    /// it (the caller then makes `strings[next]` hold it) and `Err(next)`.
    pub fn get_or_insert(
        &mut self,
        wanted: &str,
        next: u32,
        strings: &PagedVec<Arc<str>>,
    ) -> Result<u32, u32> {
        let hash = self.hash(wanted);
        let state = &self.state;
        match self.table.entry(
            hash,
            |&n| text(strings, n) == wanted,
            |&n| state.hash_one(text(strings, n)),
        ) {
            Entry::Occupied(found) => Ok(*found.get()),
            Entry::Vacant(slot) => {
                slot.insert(next);
                Err(next)
            }
        }
    }

    /// Indexes `number`, whose string `strings[number]` is not indexed yet.
    pub fn insert(&mut self, number: u32, strings: &PagedVec<Arc<str>>) {
        let hash = self.hash(text(strings, number));
        let state = &self.state;
        self.table
            .insert_unique(hash, number, |&n| state.hash_one(text(strings, n)));
    }

    /// Stops indexing `number` (its string must still be `strings[number]`).
    pub fn remove(&mut self, number: u32, strings: &PagedVec<Arc<str>>) {
        let hash = self.hash(text(strings, number));
        if let Ok(found) = self.table.find_entry(hash, |&n| n == number) {
            found.remove();
        }
    }

    /// Room for `additional` more without growing the table.
    pub fn reserve(&mut self, additional: usize, strings: &PagedVec<Arc<str>>) {
        let state = &self.state;
        self.table
            .reserve(additional, |&n| state.hash_one(text(strings, n)));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_by_their_strings_through_growth_and_removal() {
        let mut strings: PagedVec<Arc<str>> = PagedVec::new();
        let mut index = StrIndex::default();
        for i in 0..20_000u32 {
            let s = format!("contact-{}", i % 15_000);
            match index.get_or_insert(&s, strings.len() as u32, &strings) {
                Ok(found) => assert_eq!(found, i % 15_000),
                Err(new) => {
                    assert_eq!(new, i);
                    strings.push(Arc::from(s.as_str()));
                }
            }
        }
        assert_eq!(index.len(), 15_000);
        assert_eq!(index.get("contact-14999", &strings), Some(14_999));
        assert_eq!(index.get("contact-15000", &strings), None);
        index.remove(7, &strings);
        assert_eq!(index.get("contact-7", &strings), None);
        assert_eq!(index.get("contact-8", &strings), Some(8));
        index.insert(7, &strings);
        assert_eq!(index.get("contact-7", &strings), Some(7));
    }
}

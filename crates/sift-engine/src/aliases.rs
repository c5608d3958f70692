//! Ids that name another contact: an anonymous id identified into a known
//! contact (docs/concepts.md "Identify") keeps naming it, so a cookie id's later writes and
//! events land on the contact it was merged into.
//!
//! An alias never equals a live contact's id: merging erases the anonymous
//! contact before its id becomes an alias, and a write to an alias goes to
//! its target instead of creating a contact.

use foldhash::HashMap;

#[derive(Clone, Debug, Default)]
pub struct Aliases {
    target: HashMap<Box<str>, u32>,
    /// The aliases of each target, so that erasing or merging a contact
    /// touches only its own aliases.
    by_target: HashMap<u32, Vec<Box<str>>>,
}

impl Aliases {
    pub fn get(&self, id: &str) -> Option<u32> {
        self.target.get(id).copied()
    }

    /// The aliases naming contact `no`, sorted.
    pub fn of(&self, no: u32) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_target
            .get(&no)
            .map(|ids| ids.iter().map(|id| id.to_string()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn insert(&mut self, id: &str, no: u32) {
        if let Some(old) = self.target.insert(Box::from(id), no)
            && let Some(ids) = self.by_target.get_mut(&old)
        {
            ids.retain(|a| &**a != id);
        }
        self.by_target.entry(no).or_default().push(Box::from(id));
    }

    /// Points every alias of `from` at `into` (`from` was merged into it).
    pub fn retarget(&mut self, from: u32, into: u32) {
        let Some(ids) = self.by_target.remove(&from) else {
            return;
        };
        for id in &ids {
            self.target.insert(id.clone(), into);
        }
        self.by_target.entry(into).or_default().extend(ids);
    }

    /// Forgets every alias of contact `no` (it was erased).
    pub fn forget(&mut self, no: u32) {
        for id in self.by_target.remove(&no).unwrap_or_default() {
            self.target.remove(&id);
        }
    }

    /// Every (alias, target), sorted by alias, for comparisons in tests.
    pub fn all(&self) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = self
            .target
            .iter()
            .map(|(id, no)| (id.to_string(), *no))
            .collect();
        all.sort();
        all
    }
}

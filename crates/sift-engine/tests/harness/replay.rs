//! The change log replayed: each segment's membership rebuilt from its
//! entered and exited changes alone, which must equal the engine's
//! membership after every step.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use sift_engine::{ChangeBatch, ChangeKind};

#[derive(Default)]
pub struct Replay {
    members: HashMap<String, RoaringBitmap>,
}

impl Replay {
    /// A segment was created: it starts with no members.
    pub fn create(&mut self, id: &str) {
        self.members.insert(id.to_string(), RoaringBitmap::new());
    }

    pub fn delete(&mut self, id: &str) {
        self.members.remove(id);
    }

    /// Applies one batch; an error when it names an unknown segment, or
    /// enters a member or exits a non-member.
    pub fn apply(&mut self, b: &ChangeBatch) -> Result<(), String> {
        let Some(members) = self.members.get_mut(&b.segment_id) else {
            return Err(format!("change for unknown segment {b:?}"));
        };
        let bad = match b.kind {
            ChangeKind::Entered => {
                let bad = &b.contacts & &*members;
                *members |= &b.contacts;
                bad
            }
            ChangeKind::Exited => {
                let bad = &b.contacts - &*members;
                *members -= &b.contacts;
                bad
            }
        };
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{b:?}: contacts {bad:?} entered while members or exited while not"
            ))
        }
    }

    /// An error unless replaying segment `id` gives exactly `members`.
    pub fn check(&self, id: &str, members: &RoaringBitmap) -> Result<(), String> {
        match self.members.get(id) {
            Some(replayed) if replayed == members => Ok(()),
            other => Err(format!(
                "segment {id}: change log replays to {other:?}, members are {members:?}"
            )),
        }
    }
}

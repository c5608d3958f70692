//! Each segment's `{"id": …, "name": …}` as JSON, rendered once per name
//! change rather than in every answer that lists a contact's segments.
//!
//! A contact in 200 of 1,000 segments gets a `PUT` answer of ~15 KB, most
//! of it those pairs; escaping each id and name again on every write was
//! 9% of the server's CPU in the durable single-write benchmark. The
//! engine's names version (`Segments::names_version`) says when the
//! rendered pairs are out of date.

use std::sync::{Arc, RwLock};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sift_engine::Workspace;

/// The rendered pairs of one workspace, by segment slot.
#[derive(Default)]
pub struct SegmentRefs {
    rendered: RwLock<Arc<Rendered>>,
}

#[derive(Default)]
struct Rendered {
    version: u64,
    by_slot: Vec<Option<Box<RawValue>>>,
}

impl SegmentRefs {
    /// Contact `no`'s segment list, ready to serialise while `engine` is read.
    pub fn of<'e>(&self, engine: &'e Workspace, no: u32) -> SegmentsOf<'e> {
        SegmentsOf {
            engine,
            no,
            rendered: self.rendered(engine),
        }
    }

    fn rendered(&self, engine: &Workspace) -> Arc<Rendered> {
        let version = engine.segments().names_version();
        // A poisoned lock only means a renderer panicked; the value in it
        // is whole either way, and it is checked against the version.
        let current = match self.rendered.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        if current.version == version {
            return current;
        }
        let fresh = Arc::new(render(engine, version));
        let mut guard = match self.rendered.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::clone(&fresh);
        fresh
    }
}

#[derive(Serialize)]
struct Named<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Rendered(&'a RawValue),
    Named(Named<'a>),
}

fn render(engine: &Workspace, version: u64) -> Rendered {
    let mut by_slot = Vec::new();
    for (slot, segment) in engine.segments().iter() {
        if by_slot.len() <= slot {
            by_slot.resize_with(slot + 1, || None);
        }
        let named = Named {
            id: &segment.def.id,
            name: &segment.def.name,
        };
        // Two strings always serialise; were it to fail, the answer would
        // write the pair out itself (`Item::Named`).
        by_slot[slot] = serde_json::value::to_raw_value(&named).ok();
    }
    Rendered { version, by_slot }
}

/// The segments of one contact, by name, as `[{"id", "name"}, …]`.
pub struct SegmentsOf<'e> {
    engine: &'e Workspace,
    no: u32,
    rendered: Arc<Rendered>,
}

impl Serialize for SegmentsOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let segments = self.engine.segments();
        serializer.collect_seq(segments.slots_of_contact(self.no).filter_map(|slot| {
            match self.rendered.by_slot.get(slot).and_then(Option::as_deref) {
                Some(raw) => Some(Item::Rendered(raw)),
                None => segments.at(slot).map(|segment| {
                    Item::Named(Named {
                        id: &segment.def.id,
                        name: &segment.def.name,
                    })
                }),
            }
        }))
    }
}

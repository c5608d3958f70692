//! What each durable commit wrote, published on the workspace service's
//! `Signals::written` for followers that must know which contacts changed
//! without scanning (the Facebook sync, `facebook/task.rs`).

use sift_engine::Record;

/// What one durable commit wrote, for followers that need to know which
/// contacts changed (Facebook sync, `facebook/task.rs`) without scanning.
#[derive(Debug, Default)]
pub struct Written {
    /// Contacts whose data was written or that were deleted.
    pub contacts: roaring::RoaringBitmap,
    /// Membership changes by segment (entries and exits together).
    pub changes: Vec<(String, roaring::RoaringBitmap)>,
    pub segments_deleted: Vec<String>,
}

impl Written {
    pub(crate) fn of(records: &[Record]) -> Written {
        let mut written = Written::default();
        for record in records {
            match record {
                Record::Contact(snapshot) => {
                    written.contacts.insert(snapshot.no);
                }
                Record::ContactDeleted { no } => {
                    written.contacts.insert(*no);
                }
                // Identify erases the anonymous contact and changes the known one.
                Record::Merge { from, into, .. } => {
                    written.contacts.extend(from.iter().copied());
                    written.contacts.insert(*into);
                }
                Record::Changes(batch) => {
                    match written
                        .changes
                        .iter_mut()
                        .find(|(s, _)| *s == batch.segment_id)
                    {
                        Some((_, contacts)) => *contacts |= &batch.contacts,
                        None => written
                            .changes
                            .push((batch.segment_id.clone(), batch.contacts.clone())),
                    }
                }
                Record::SegmentDeleted { id } => written.segments_deleted.push(id.clone()),
                _ => {}
            }
        }
        written
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.changes.is_empty() && self.segments_deleted.is_empty()
    }
}

/// Commits a `written` receiver may fall behind by before it must compare
/// everything (it is told it lagged).
pub(crate) const WRITTEN_CAPACITY: usize = 4096;

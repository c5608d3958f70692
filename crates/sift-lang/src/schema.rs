//! What the checker needs to know about a workspace: its fields and segments.

use crate::FieldType;

/// Deepest nesting of `all`/`any`/`not`/event filters a condition may have.
pub const MAX_DEPTH: usize = 32;
/// Most nodes a condition may have (event filters included).
pub const MAX_NODES: usize = 1000;

/// The workspace as seen by the checker. Implemented by the engine; tests use
/// small hand-written schemas.
pub trait Schema {
    /// The type of a contact field (built-in, system or declared), if it exists.
    fn field_type(&self, name: &str) -> Option<FieldType>;
    /// The id of the segment with this name (names compare without case).
    fn segment_id(&self, name: &str) -> Option<String>;
    /// The name of the segment with this id, for printing.
    fn segment_name(&self, id: &str) -> Option<String>;
    /// Every contact field's name, for "did you mean" on an unknown one.
    /// Only called when a condition is rejected; none by default.
    fn field_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Every segment's name, for "did you mean" on an unknown one; none by
    /// default.
    fn segment_names(&self) -> Vec<String> {
        Vec::new()
    }
}

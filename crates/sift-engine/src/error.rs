//! Why the engine refused a write. Every variant but
//! [`Error::HistoryUnavailable`] is a client error: the engine does no IO
//! itself, and only the event history a caller lends it can fail.

use sift_lang::{ConditionError, FieldType};

use crate::changes::SegmentKind;
use crate::workflows::WorkflowStatus;

/// Something that refers to a segment (docs/concepts.md "usages").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub kind: UsageKind,
    pub id: String,
    pub name: String,
    pub role: UsageRole,
    /// A workflow's status (every status counts as a usage).
    pub status: Option<WorkflowStatus>,
}

/// What refers to the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    /// A segment whose condition refers to it.
    Segment,
    Workflow,
}

impl UsageKind {
    /// The name clients see (`type` of a usage).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Segment => "segment",
            UsageKind::Workflow => "workflow",
        }
    }
}

/// Where the segment is referred to: a segment's `condition`; a workflow's
/// `trigger`, `filter`, an action's target or its `test_segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageRole {
    Condition,
    Trigger,
    Filter,
    ActionTarget,
    TestSegment,
}

impl UsageRole {
    /// The name clients see (`role` of a usage).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageRole::Condition => "condition",
            UsageRole::Trigger => "trigger",
            UsageRole::Filter => "filter",
            UsageRole::ActionTarget => "action_target",
            UsageRole::TestSegment => "test_segment",
        }
    }
}

/// Why a write or a read was refused. Deliberately not `non_exhaustive`:
/// the server maps every variant to an HTTP answer in one exhaustive match
/// (`sift-server/src/error.rs`), so a new variant cannot silently become a
/// generic 422.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("contact id {0:?} is invalid: it must be 1 to 128 bytes without control characters")]
    InvalidContactId(String),
    #[error("field name {0:?} is invalid: it must match [a-z][a-z0-9_]{{0,63}}")]
    InvalidFieldName(String),
    #[error("field {0:?} is kept by Sift and cannot be written")]
    ReadOnlyField(String),
    #[error("field {field:?} expects {} value, got {given}", article(*expected))]
    TypeMismatch {
        field: String,
        expected: FieldType,
        given: String,
    },
    #[error(
        "field {field:?} takes dates and datetimes from 0001-01-01 to 9999-12-31 (UTC); {given} is outside that range"
    )]
    DateOutOfRange { field: String, given: String },
    #[error("{} of the {total} items are invalid", failures.len())]
    BatchInvalid {
        total: usize,
        failures: Vec<(usize, Error)>,
    },
    #[error("field {field:?} is a {} field holding data; it cannot become {}", current.name(), requested.name())]
    FieldTypeConflict {
        field: String,
        current: FieldType,
        requested: FieldType,
    },
    /// A write would take the workspace past its number of custom fields.
    #[error(
        "field {field:?} would be custom field number {} of this workspace, past its limit of {limit}; write an existing field instead, or raise the limit with the server setting --max-fields (SIFT_MAX_FIELDS)",
        limit + 1
    )]
    TooManyFields { field: String, limit: usize },
    /// One write would create more new fields than allowed at once.
    #[error(
        "this write creates more than {limit} new fields (field {field:?} is number {}); create them over several writes, or raise the limit with the server setting --max-new-fields (SIFT_MAX_NEW_FIELDS)",
        limit + 1
    )]
    TooManyNewFields { field: String, limit: usize },
    #[error("{0}")]
    InvalidCondition(ConditionError),
    #[error("segment reference cycle: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },
    #[error("a segment named {0:?} already exists")]
    NameTaken(String),
    #[error("a workflow named {0:?} already exists")]
    WorkflowNameTaken(String),
    /// A workflow that cannot be saved; `path` names the part at fault
    /// (`trigger.segment`, `actions[1].value`).
    #[error("{path}: {message}")]
    InvalidWorkflow { path: String, message: String },
    #[error("segment {id:?} is in use by {} and cannot be deleted", usages.len())]
    InUse { id: String, usages: Vec<Usage> },
    #[error("segment {id:?} is {}: {reason}", kind.as_str())]
    WrongKind {
        id: String,
        kind: SegmentKind,
        reason: &'static str,
    },
    #[error(
        "event at {at} is more than 5 minutes ahead of the server's clock ({now}); send the time it happened"
    )]
    EventInFuture { at: String, now: String },
    #[error("unknown contacts: {}", .0.join(", "))]
    UnknownContacts(Vec<String>),
    /// A condition the engine cannot keep exact yet.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    /// Identify was asked to merge a known contact (docs/concepts.md "Identify" merges only
    /// anonymous ones, so two customers are never fused by mistake).
    #[error(
        "contact {id:?} is a known contact (anonymous: false) and cannot be merged into {into:?}; only anonymous contacts are identified. Mark it anonymous first if it really is a device or cookie id"
    )]
    KnownContact { id: String, into: String },
    /// The anonymous id was already merged into another contact.
    #[error(
        "{id:?} was already identified as contact {merged_into:?} and cannot also become {into:?}; delete {merged_into:?} first to free the id"
    )]
    AlreadyMerged {
        id: String,
        merged_into: String,
        into: String,
    },
    /// The stored event history could not be read while a write needed it
    /// (a new all-time aggregate, a scoring rule): nothing was changed.
    /// The one variant that is not the client's fault.
    #[error("the stored event history could not be read: {0}")]
    HistoryUnavailable(String),
}

fn article(field_type: FieldType) -> String {
    match field_type {
        FieldType::String => "a string".into(),
        FieldType::Number => "a number".into(),
        FieldType::Boolean => "a boolean (true or false)".into(),
        FieldType::Date => "a date (YYYY-MM-DD)".into(),
        FieldType::DateTime => "a datetime (RFC 3339, e.g. 2026-01-31T09:30:00Z)".into(),
        FieldType::StringList => "a list of strings".into(),
    }
}

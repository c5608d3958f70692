//! The checked condition tree: what a dynamic segment's `condition` means once
//! every field, operator and value has been resolved against the workspace.
//!
//! Values are already typed here (a date field's value is a [`Date`], not the
//! text `"1965-01-01"`), so evaluators never re-parse. Segment references hold
//! the segment's id; names appear only in the text form.

/// Days since 1970-01-01 (proleptic Gregorian, UTC).
pub type Date = i32;
/// Milliseconds since 1970-01-01T00:00:00Z.
pub type DateTime = i64;

/// The type of a contact field (docs/concepts.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Date,
    DateTime,
    StringList,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::StringList => "string_list",
        }
    }

    pub fn from_name(name: &str) -> Option<FieldType> {
        Some(match name {
            "string" => FieldType::String,
            "number" => FieldType::Number,
            "boolean" => FieldType::Boolean,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "string_list" => FieldType::StringList,
            _ => return None,
        })
    }
}

/// A calendar-aware duration: `30d`, `6mo`, `18y` (docs/conditions.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: DurationUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

/// A comparison used by field predicates, event counts and event sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
        }
    }
}

/// A single typed value. For a contact field, its variant matches the field's
/// type (`Number` for number fields, `Date` for date fields...). For an event
/// property (no schema) it is whatever the literal was, except that a string
/// holding a valid `YYYY-MM-DD` date or RFC 3339 datetime is read as a `Date`
/// or `DateTime` (JSON can only write dates as strings; both forms agree).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    String(String),
    Number(f64),
    Boolean(bool),
    Date(Date),
    DateTime(DateTime),
}

/// What a field predicate tests.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldTest {
    /// eq ne lt lte gt gte
    Compare(CmpOp, Scalar),
    /// string_list: has the element; string: has the substring.
    Contains(String),
    NotContains(String),
    StartsWith(String),
    EndsWith(String),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    /// Both bounds inclusive.
    Between(Scalar, Scalar),
    IsSet,
    IsNotSet,
    /// date/datetime within [now - d, now]
    InLast(Duration),
    /// value < now - d
    BeforeAgo(Duration),
    /// value > now - d
    AfterAgo(Duration),
}

impl FieldTest {
    /// Whether `ignoring case` may be added to this test: `=`, `!=`,
    /// `contains`, `not contains`, `starts with`, `ends with`, `in` and
    /// `not in` whose values are all strings.
    pub fn can_ignore_case(&self) -> bool {
        let all_strings = |values: &[Scalar]| values.iter().all(|v| matches!(v, Scalar::String(_)));
        match self {
            FieldTest::Compare(CmpOp::Eq | CmpOp::Ne, Scalar::String(_)) => true,
            FieldTest::Contains(_)
            | FieldTest::NotContains(_)
            | FieldTest::StartsWith(_)
            | FieldTest::EndsWith(_) => true,
            FieldTest::In(values) | FieldTest::NotIn(values) => all_strings(values),
            _ => false,
        }
    }

    /// The same test with every string operand case-folded by [`fold_case`]:
    /// what an evaluator compares folded values with.
    pub fn fold_case(&self) -> FieldTest {
        let fold = |text: &str| fold_case(text).into_owned();
        let fold_scalar = |value: &Scalar| match value {
            Scalar::String(text) => Scalar::String(fold(text)),
            other => other.clone(),
        };
        match self {
            FieldTest::Compare(op, value) => FieldTest::Compare(*op, fold_scalar(value)),
            FieldTest::Contains(text) => FieldTest::Contains(fold(text)),
            FieldTest::NotContains(text) => FieldTest::NotContains(fold(text)),
            FieldTest::StartsWith(text) => FieldTest::StartsWith(fold(text)),
            FieldTest::EndsWith(text) => FieldTest::EndsWith(fold(text)),
            FieldTest::In(values) => FieldTest::In(values.iter().map(fold_scalar).collect()),
            FieldTest::NotIn(values) => FieldTest::NotIn(values.iter().map(fold_scalar).collect()),
            other => other.clone(),
        }
    }
}

/// The case folding of `ignoring case`: Unicode lowercase mapping of the
/// whole string (Rust's `str::to_lowercase`: full mappings, so "ẞ" becomes
/// "ß" and "İ" becomes "i̇", and a final capital sigma becomes "ς"). No other
/// normalization is done: accents, composed and decomposed forms and "ß"
/// versus "ss" stay distinct. Borrows when the text has nothing to change
/// (ASCII without capitals), so the common case allocates nothing.
pub fn fold_case(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}

/// `count: {op, value}` of an event condition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountTest {
    pub op: CmpOp,
    pub value: u64,
}

/// A checked condition (docs/conditions.md, JSON tree).
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field {
        field: String,
        test: FieldTest,
        /// Strings compare after [`fold_case`] of both sides (`ignoring case`
        /// in the text, `"ignore_case": true` in the tree). Only set on the
        /// string tests [`FieldTest::can_ignore_case`] allows.
        ignore_case: bool,
    },
    /// The contact performed events of `event_type` matching `filter`,
    /// a number of times satisfying `count` (None means at least once),
    /// counting only events in the last `in_last` (None: all time).
    Event {
        event_type: String,
        filter: Option<Box<Condition>>,
        count: Option<CountTest>,
        in_last: Option<Duration>,
    },
    EventSum {
        event_type: String,
        property: String,
        filter: Option<Box<Condition>>,
        op: CmpOp,
        value: f64,
        in_last: Option<Duration>,
    },
    /// Holds the referenced segment's id.
    InSegment(String),
}

impl Condition {
    /// Calls `visit` on this node and every descendant, parents first. Event
    /// `filter`s are visited too; their `Field` nodes name event properties.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Condition)) {
        visit(self);
        match self {
            Condition::All(children) | Condition::Any(children) => {
                children.iter().for_each(|child| child.walk(visit))
            }
            Condition::Not(inner) => inner.walk(visit),
            Condition::Event { filter, .. } | Condition::EventSum { filter, .. } => {
                if let Some(filter) = filter {
                    filter.walk(visit)
                }
            }
            Condition::Field { .. } | Condition::InSegment(_) => {}
        }
    }

    /// Contact fields read by this condition (not event properties).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_contact_level(&mut |node| {
            if let Condition::Field { field, .. } = node {
                out.push(field.as_str())
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Ids of the segments this condition refers to.
    pub fn segment_refs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_contact_level(&mut |node| {
            if let Condition::InSegment(id) = node {
                out.push(id.as_str())
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Event types read by this condition.
    pub fn event_types(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_contact_level(&mut |node| match node {
            Condition::Event { event_type, .. } | Condition::EventSum { event_type, .. } => {
                out.push(event_type.as_str())
            }
            _ => {}
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Nodes on the longest path from this node down to a leaf, event filters
    /// included (a single predicate is 1). Checked trees have at most
    /// [`crate::MAX_DEPTH`].
    pub fn depth(&self) -> usize {
        let below = match self {
            Condition::All(children) | Condition::Any(children) => {
                children.iter().map(Condition::depth).max().unwrap_or(0)
            }
            Condition::Not(inner) => inner.depth(),
            Condition::Event { filter, .. } | Condition::EventSum { filter, .. } => {
                filter.as_ref().map_or(0, |filter| filter.depth())
            }
            Condition::Field { .. } | Condition::InSegment(_) => 0,
        };
        below + 1
    }

    /// Number of nodes, event filters included.
    pub fn node_count(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }

    /// Visits nodes that are evaluated against the contact, skipping event filters.
    fn collect_contact_level<'a>(&'a self, visit: &mut dyn FnMut(&'a Condition)) {
        visit(self);
        match self {
            Condition::All(children) | Condition::Any(children) => children
                .iter()
                .for_each(|child| child.collect_contact_level(visit)),
            Condition::Not(inner) => inner.collect_contact_level(visit),
            _ => {}
        }
    }
}

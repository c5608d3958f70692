//! Why a condition was rejected, and where.

use std::fmt;

/// 1-based line and column (in characters) of a fault in the text form, with
/// the 0-based byte offset it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
}

impl Position {
    /// The position of byte `offset` in `text`.
    pub fn at(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() as u32 + 1;
        Position {
            line,
            column,
            offset,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The kind of fault; stable for clients and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A field that the workspace does not have.
    UnknownField,
    /// An operator the field's type lacks.
    UnsupportedOperator,
    /// A value of the wrong type, or not a valid date, number, duration...
    InvalidValue,
    /// A segment name or id that does not exist.
    UnknownSegment,
    /// Nesting deeper than [`crate::MAX_DEPTH`] or more than [`crate::MAX_NODES`] nodes.
    TooComplex,
    /// The JSON tree has the wrong shape.
    InvalidTree,
}

/// A rejected condition: a sentence saying what was expected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    pub kind: ErrorKind,
    /// What was expected, without the position (e.g. `expected a value after "="`).
    pub message: String,
    /// Set for the text form.
    pub position: Option<Position>,
    /// Set for the JSON tree form: a JSON pointer to the faulty node (e.g. `/all/1/value`).
    pub path: Option<String>,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(pos) = self.position {
            write!(f, " at {}:{}", pos.line, pos.column)?;
        }
        if let Some(path) = &self.path {
            write!(f, " at {path}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConditionError {}

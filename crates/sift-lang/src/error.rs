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
    /// What to write instead, shown after the position (e.g. `did you mean
    /// "country"?`).
    /// (Boxed strings keep the error small: it travels in every `Result`.)
    pub hint: Option<Box<str>>,
    /// For an unknown field or segment: the known name closest to the one
    /// written, when one is close enough to be a likely typo.
    pub did_you_mean: Option<Box<str>>,
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
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConditionError {}

/// The name of `candidates` closest to `written` when it is likely a typo of
/// it: edit distance (Levenshtein, by characters, ignoring case) of at most
/// a third of the written name's length, rounded up, and never more than 3.
/// Ties go to the first candidate in order. An exact match ignoring case is
/// the best answer (`Country` for `country`).
pub fn closest_name<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let written: Vec<char> = written.to_lowercase().chars().collect();
    let limit = written.len().div_ceil(3).min(3);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let lowered: Vec<char> = candidate.to_lowercase().chars().collect();
        // Lengths alone bound the distance from below: skip hopeless ones cheaply.
        if lowered.len().abs_diff(written.len()) > limit {
            continue;
        }
        let distance = edit_distance(&written, &lowered);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, name)| name)
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest_name;

    #[test]
    fn closest_names() {
        let names = ["country", "city", "email", "lead_score", "Tier"];
        assert_eq!(closest_name("contry", names), Some("country"));
        assert_eq!(closest_name("COUNTRY", names), Some("country"));
        assert_eq!(closest_name("tier", names), Some("Tier"));
        assert_eq!(closest_name("emial", names), Some("email"));
        assert_eq!(closest_name("leadscore", names), Some("lead_score"));
        // Too far from everything: no guess.
        assert_eq!(closest_name("category", names), None);
        assert_eq!(closest_name("x", names), None);
        assert_eq!(closest_name("", names), None);
        assert_eq!(closest_name("cty", ["city", "country"]), Some("city"));
    }
}

//! Warnings on a checked condition: parts that are valid but almost surely
//! not what the person meant, because they can never (or always) hold. They
//! are advice shown before saving, never a reason to refuse a condition.

use crate::dates::MS_PER_DAY;
use crate::{CmpOp, Condition, FieldTest, FieldType, Scalar, Schema, to_text};

/// One warning: a sentence, and a JSON pointer into the condition's tree (as
/// [`crate::to_json`] writes it; `""` is the whole condition) to the node it
/// is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub path: String,
}

/// The warnings of `cond`, parents before children:
/// - a `between` whose first bound is above its second (never true);
/// - `in []` (never true) and `not in []` (always true);
/// - an `all` whose predicates on one field leave no value possible, such
///   as `lead_score > 10 and lead_score < 5` or `country = "ES" and country
///   = "FR"` (numbers, dates, datetimes and strings compared as the engine
///   does; tests ignoring case and relative dates are not considered).
///
/// Event filters are looked into too, their properties taken one by one.
pub fn warnings(cond: &Condition) -> Vec<Warning> {
    let mut out = Vec::new();
    walk(cond, "", &mut out);
    out
}

fn walk(cond: &Condition, path: &str, out: &mut Vec<Warning>) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            let key = if matches!(cond, Condition::All(_)) {
                "all"
            } else {
                "any"
            };
            if key == "all" {
                empty_ranges(children, path, out);
            }
            for (idx, child) in children.iter().enumerate() {
                walk(child, &format!("{path}/{key}/{idx}"), out);
            }
        }
        Condition::Not(inner) => walk(inner, &format!("{path}/not"), out),
        Condition::Field { test, .. } => field_warning(cond, test, path, out),
        Condition::Event { filter, .. } | Condition::EventSum { filter, .. } => {
            if let Some(filter) = filter {
                walk(filter, &format!("{path}/where"), out);
            }
        }
        Condition::InSegment(_) => {}
    }
}

fn field_warning(cond: &Condition, test: &FieldTest, path: &str, out: &mut Vec<Warning>) {
    let message = match test {
        FieldTest::Between(low, high) => match (Point::of(low), Point::of(high)) {
            (Some(low_point), Some(high_point)) if low_point.above(&high_point) => format!(
                "{} is never true: its first bound is above its second (write between {} and {})",
                predicate_text(cond),
                crate::scalar_text(high),
                crate::scalar_text(low)
            ),
            _ => return,
        },
        FieldTest::In(values) if values.is_empty() => {
            format!("{} is never true: the list is empty", predicate_text(cond))
        }
        FieldTest::NotIn(values) if values.is_empty() => {
            format!("{} is always true: the list is empty", predicate_text(cond))
        }
        _ => return,
    };
    out.push(Warning {
        message,
        path: path.to_string(),
    });
}

/// A value on one of the orders the engine compares by.
#[derive(Clone, Debug, PartialEq)]
enum Point {
    Number(f64),
    /// Dates and datetimes, as milliseconds (a date is its midnight UTC).
    Instant(i64),
    Text(String),
}

impl Point {
    fn of(value: &Scalar) -> Option<Point> {
        Some(match value {
            Scalar::Number(n) => Point::Number(*n),
            Scalar::Date(days) => Point::Instant(i64::from(*days) * MS_PER_DAY),
            Scalar::DateTime(ms) => Point::Instant(*ms),
            Scalar::String(text) => Point::Text(text.clone()),
            Scalar::Boolean(_) => return None,
        })
    }

    fn same_kind(&self, other: &Point) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Strictly greater; points of different kinds are never ordered.
    fn above(&self, other: &Point) -> bool {
        match (self, other) {
            (Point::Number(a), Point::Number(b)) => a > b,
            (Point::Instant(a), Point::Instant(b)) => a > b,
            (Point::Text(a), Point::Text(b)) => a > b,
            _ => false,
        }
    }
}

/// One side of the values a predicate allows: the point, whether the point
/// itself is excluded, and the predicate's index among the `all`'s children.
#[derive(Clone, Debug)]
struct Bound {
    point: Point,
    strict: bool,
    child: usize,
}

/// A bound's point and whether the point itself is excluded.
type Side = Option<(Point, bool)>;

/// The lower and upper bounds a field predicate puts on its field's value.
fn bounds(test: &FieldTest) -> Option<(Side, Side)> {
    Some(match test {
        FieldTest::Compare(op, value) => {
            let point = Point::of(value)?;
            match op {
                CmpOp::Eq => (Some((point.clone(), false)), Some((point, false))),
                CmpOp::Gt => (Some((point, true)), None),
                CmpOp::Gte => (Some((point, false)), None),
                CmpOp::Lt => (None, Some((point, true))),
                CmpOp::Lte => (None, Some((point, false))),
                CmpOp::Ne => return None,
            }
        }
        FieldTest::Between(low, high) => {
            let (low, high) = (Point::of(low)?, Point::of(high)?);
            // A reversed between is reported on its own.
            if !low.same_kind(&high) || low.above(&high) {
                return None;
            }
            (Some((low, false)), Some((high, false)))
        }
        // The smallest and largest listed value bound any value that passes.
        FieldTest::In(values) => {
            let points: Vec<Point> = values.iter().map(Point::of).collect::<Option<_>>()?;
            let first = points.first()?;
            if !points.iter().all(|p| p.same_kind(first)) {
                return None;
            }
            let mut low = first.clone();
            let mut high = first.clone();
            for point in &points {
                if low.above(point) {
                    low = point.clone();
                }
                if point.above(&high) {
                    high = point.clone();
                }
            }
            (Some((low, false)), Some((high, false)))
        }
        _ => return None,
    })
}

/// Warns about each field of an `all` whose predicates leave no value.
fn empty_ranges(children: &[Condition], path: &str, out: &mut Vec<Warning>) {
    // (field, lowest bound, highest bound), in order of first appearance.
    type Range = (String, Option<Bound>, Option<Bound>);
    let mut ranges: Vec<Range> = Vec::new();
    for (child, cond) in children.iter().enumerate() {
        let Condition::Field {
            field,
            test,
            ignore_case: false,
        } = cond
        else {
            continue;
        };
        let Some((low, high)) = bounds(test) else {
            continue;
        };
        let kind = low.as_ref().or(high.as_ref()).map(|(p, _)| p.clone());
        let Some(kind) = kind else { continue };
        // One range per field and kind of value (an event property may be
        // compared with numbers in one place and strings in another).
        let found = ranges.iter().position(|(name, l, h)| {
            name == field
                && l.as_ref()
                    .or(h.as_ref())
                    .is_some_and(|b| b.point.same_kind(&kind))
        });
        let index = match found {
            Some(index) => index,
            None => {
                ranges.push((field.clone(), None, None));
                ranges.len() - 1
            }
        };
        let (_, lowest, highest) = &mut ranges[index];
        if let Some((point, strict)) = low {
            let tighter = match lowest {
                None => true,
                Some(b) => point.above(&b.point) || (point == b.point && strict && !b.strict),
            };
            if tighter {
                *lowest = Some(Bound {
                    point,
                    strict,
                    child,
                });
            }
        }
        if let Some((point, strict)) = high {
            let tighter = match highest {
                None => true,
                Some(b) => b.point.above(&point) || (point == b.point && strict && !b.strict),
            };
            if tighter {
                *highest = Some(Bound {
                    point,
                    strict,
                    child,
                });
            }
        }
    }
    for (_, lowest, highest) in ranges {
        let (Some(low), Some(high)) = (lowest, highest) else {
            continue;
        };
        let empty = low.point.above(&high.point)
            || (low.point == high.point && (low.strict || high.strict));
        if empty && low.child != high.child {
            let (first, second) = (low.child.min(high.child), low.child.max(high.child));
            out.push(Warning {
                message: format!(
                    "{} and {} can't both be true, so this part matches nobody",
                    predicate_text(&children[first]),
                    predicate_text(&children[second])
                ),
                path: path.to_string(),
            });
        }
    }
}

/// A field predicate's canonical text; field predicates name no segment,
/// so no schema is needed.
fn predicate_text(cond: &Condition) -> String {
    struct NoSchema;
    impl Schema for NoSchema {
        fn field_type(&self, _: &str) -> Option<FieldType> {
            None
        }
        fn segment_id(&self, _: &str) -> Option<String> {
            None
        }
        fn segment_name(&self, _: &str) -> Option<String> {
            None
        }
    }
    to_text(cond, &NoSchema)
}

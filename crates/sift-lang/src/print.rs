//! The canonical text form of a checked condition.
//!
//! Canonical means: lower-case keywords, single spaces, no parentheses beyond
//! what precedence needs, strings always double-quoted, dates unquoted.
//! Printing a tree that [`crate::parse_text`] produced and parsing it again
//! gives the same tree, and printing that again gives the same text.

use std::fmt::Write as _;

use crate::check::{Op, cmp_symbol};
use crate::dates::{format_date, format_datetime};
use crate::{CmpOp, Condition, CountTest, Duration, DurationUnit, FieldTest, Scalar, Schema};

/// The canonical text of `cond`; segment ids are shown by name via `schema`.
///
/// Trees from [`crate::parse_text`] and [`crate::from_json`] always print as
/// text that parses back. Hand-built trees may not: an empty `all`/`any`
/// nested inside another node prints as nothing, and an `Any([])` root prints
/// as "" (which parses as everyone). Printing recurses once per level, which
/// the checkers bound by [`crate::MAX_DEPTH`].
pub fn to_text(cond: &Condition, schema: &dyn Schema) -> String {
    let mut out = String::new();
    write_condition(&mut out, cond, schema);
    out
}

/// `50`, `2.5`, `-3`: integral values without a fraction. Other values use
/// Rust's shortest representation that parses back to the same `f64`, with
/// an exponent (`1e300`, `2.5e-9`) when plain digits would be very long.
pub fn format_number(n: f64) -> String {
    // 2^63: below it an integral f64 converts to i64 exactly.
    const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() < I64_BOUND {
        format!("{}", n as i64)
    } else if n.is_finite() && (n.abs() >= 1e21 || n.abs() < 1e-6) {
        format!("{n:e}")
    } else {
        format!("{n}")
    }
}

/// A double-quoted string with `"` and `\` escaped.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Words that start a predicate or are literals: a name spelled like one of
/// them is quoted so that it reads as a name.
const RESERVED: [&str; 9] = [
    "not",
    "performed",
    "total",
    "in",
    "and",
    "or",
    "where",
    "true",
    "false",
];

/// A field, property or event type: bare when it is a plain word, else quoted.
pub(crate) fn name_text(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let reserved = RESERVED.iter().any(|word| word.eq_ignore_ascii_case(name));
    if plain && !reserved {
        name.to_string()
    } else {
        quote(name)
    }
}

/// A group with one child means that child; descending through such wrappers
/// tells what actually gets printed, hence whether parentheses are needed.
fn unwrap_single(cond: &Condition) -> &Condition {
    let mut cond = cond;
    while let Condition::All(children) | Condition::Any(children) = cond {
        match children.as_slice() {
            [only] => cond = only,
            _ => break,
        }
    }
    cond
}

fn is_multi_group(cond: &Condition) -> bool {
    matches!(unwrap_single(cond), Condition::All(c) | Condition::Any(c) if c.len() >= 2)
}

fn is_multi_any(cond: &Condition) -> bool {
    matches!(unwrap_single(cond), Condition::Any(c) if c.len() >= 2)
}

/// Prints `cond` where the grammar wants a `unary` (after `not` or `where`).
fn write_unary(out: &mut String, cond: &Condition, schema: &dyn Schema) {
    if is_multi_group(cond) {
        out.push('(');
        write_condition(out, cond, schema);
        out.push(')');
    } else {
        write_condition(out, cond, schema);
    }
}

fn write_condition(out: &mut String, cond: &Condition, schema: &dyn Schema) {
    match unwrap_single(cond) {
        Condition::All(children) => {
            for (idx, child) in children.iter().enumerate() {
                if idx > 0 {
                    out.push_str(" and ");
                }
                // `and` binds tighter than `or`: an `or` group inside needs parentheses.
                if is_multi_any(child) {
                    out.push('(');
                    write_condition(out, child, schema);
                    out.push(')');
                } else {
                    write_condition(out, child, schema);
                }
            }
        }
        Condition::Any(children) => {
            for (idx, child) in children.iter().enumerate() {
                if idx > 0 {
                    out.push_str(" or ");
                }
                write_condition(out, child, schema);
            }
        }
        Condition::Not(inner) => {
            out.push_str("not ");
            write_unary(out, inner, schema);
        }
        Condition::Field {
            field,
            test,
            ignore_case,
        } => {
            out.push_str(&name_text(field));
            out.push(' ');
            write_test(out, test);
            if *ignore_case {
                out.push_str(" ignoring case");
            }
        }
        Condition::Event {
            event_type,
            filter,
            count,
            in_last,
        } => {
            out.push_str("performed ");
            out.push_str(&name_text(event_type));
            write_filter(out, filter.as_deref(), schema);
            if let Some(count) = count {
                out.push(' ');
                write_count(out, *count);
            }
            write_in_last(out, *in_last);
        }
        Condition::EventSum {
            event_type,
            property,
            filter,
            op,
            value,
            in_last,
        } => {
            let _ = write!(
                out,
                "total {}.{}",
                name_text(event_type),
                name_text(property)
            );
            write_filter(out, filter.as_deref(), schema);
            let _ = write!(out, " {} {}", cmp_symbol(*op), format_number(*value));
            write_in_last(out, *in_last);
        }
        Condition::InSegment(id) => {
            let name = schema.segment_name(id).unwrap_or_else(|| id.clone());
            out.push_str("in segment ");
            out.push_str(&quote(&name));
        }
    }
}

fn write_filter(out: &mut String, filter: Option<&Condition>, schema: &dyn Schema) {
    if let Some(filter) = filter {
        out.push_str(" where ");
        write_unary(out, filter, schema);
    }
}

fn write_in_last(out: &mut String, in_last: Option<Duration>) {
    if let Some(duration) = in_last {
        out.push_str(" in last ");
        out.push_str(&duration_text(duration));
    }
}

fn write_count(out: &mut String, count: CountTest) {
    let words = match count.op {
        CmpOp::Gte => "at least",
        CmpOp::Lte => "at most",
        CmpOp::Eq => "exactly",
        CmpOp::Ne => "not exactly",
        CmpOp::Gt => "more than",
        CmpOp::Lt => "fewer than",
    };
    let times = if count.value == 1 { "time" } else { "times" };
    let _ = write!(out, "{words} {} {times}", count.value);
}

/// `7 days`, `1 day`, `90 minutes`.
pub fn duration_text(duration: Duration) -> String {
    let unit = match duration.unit {
        DurationUnit::Minutes => "minute",
        DurationUnit::Hours => "hour",
        DurationUnit::Days => "day",
        DurationUnit::Weeks => "week",
        DurationUnit::Months => "month",
        DurationUnit::Years => "year",
    };
    let plural = if duration.amount == 1 { "" } else { "s" };
    format!("{} {unit}{plural}", duration.amount)
}

pub fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::String(text) => quote(text),
        Scalar::Number(number) => format_number(*number),
        Scalar::Boolean(flag) => flag.to_string(),
        Scalar::Date(days) => format_date(*days),
        Scalar::DateTime(ms) => format_datetime(*ms),
    }
}

fn write_test(out: &mut String, test: &FieldTest) {
    let op = Op::of(test).text_name();
    let _ = match test {
        FieldTest::Compare(_, value) => write!(out, "{op} {}", scalar_text(value)),
        FieldTest::Contains(text)
        | FieldTest::NotContains(text)
        | FieldTest::StartsWith(text)
        | FieldTest::EndsWith(text) => write!(out, "{op} {}", quote(text)),
        FieldTest::In(values) | FieldTest::NotIn(values) => {
            let items: Vec<String> = values.iter().map(scalar_text).collect();
            write!(out, "{op} [{}]", items.join(", "))
        }
        FieldTest::Between(low, high) => {
            write!(
                out,
                "between {} and {}",
                scalar_text(low),
                scalar_text(high)
            )
        }
        FieldTest::IsSet | FieldTest::IsNotSet | FieldTest::InLast(_) => out.write_str(op),
        FieldTest::BeforeAgo(_) | FieldTest::AfterAgo(_) => out.write_str(op),
    };
    match test {
        FieldTest::InLast(duration) => {
            let _ = write!(out, " {}", duration_text(*duration));
        }
        FieldTest::BeforeAgo(duration) | FieldTest::AfterAgo(duration) => {
            let _ = write!(out, " {} ago", duration_text(*duration));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(format_number(50.0), "50");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1e300), "1e300");
        assert_eq!(format_number(-2.5e-9), "-2.5e-9");
        assert_eq!(format_number(5e-324), "5e-324");
        assert_eq!(format_number(0.001), "0.001");
        assert_eq!(format_number(1e20), "100000000000000000000");
    }

    #[test]
    fn names_and_strings() {
        assert_eq!(name_text("country"), "country");
        assert_eq!(name_text("page-view"), "page-view");
        assert_eq!(name_text("total"), "\"total\"");
        assert_eq!(name_text("Not"), "\"Not\"");
        assert_eq!(name_text("has space"), "\"has space\"");
        assert_eq!(quote("O\"Neil \\"), "\"O\\\"Neil \\\\\"");
    }
}

//! The JSON tree form of docs/conditions.md: reading it (checked against the schema, every
//! fault located by a JSON pointer) and writing it back.
//!
//! Shapes are strict: unknown keys and wrong types are errors naming what was
//! expected, so a typo in a client's tree is never silently ignored. The one
//! leniency is that an optional key (`where`, `count`, `in_last`) may be `null`.

mod read;

use serde_json::{Map, Value, json};

use crate::check::{Op, cmp_json_name};
use crate::dates::{format_date, format_datetime};
use crate::{Condition, ConditionError, Duration, DurationUnit, FieldTest, Scalar, Schema};

/// Reads a JSON condition tree and checks it against `schema`.
///
/// `{"all": []}` is accepted only as the whole condition (everyone), and
/// `{"any": []}` nowhere: the text form has no way to write either elsewhere.
pub fn from_json(value: &Value, schema: &dyn Schema) -> Result<Condition, ConditionError> {
    read::read(value, schema)
}

/// Writes the JSON tree of `cond`.
pub fn to_json(cond: &Condition) -> Value {
    match cond {
        Condition::All(children) => {
            json!({"all": children.iter().map(to_json).collect::<Vec<_>>()})
        }
        Condition::Any(children) => {
            json!({"any": children.iter().map(to_json).collect::<Vec<_>>()})
        }
        Condition::Not(inner) => json!({"not": to_json(inner)}),
        Condition::Field {
            field,
            test,
            ignore_case,
        } => {
            let mut out = Map::new();
            out.insert("field".into(), json!(field));
            out.insert("op".into(), json!(Op::of(test).json_name()));
            if let Some(value) = test_value(test) {
                out.insert("value".into(), value);
            }
            // Absent means false, so trees without it stay as they were.
            if *ignore_case {
                out.insert("ignore_case".into(), json!(true));
            }
            Value::Object(out)
        }
        Condition::Event {
            event_type,
            filter,
            count,
            in_last,
        } => {
            let mut out = Map::new();
            out.insert("event".into(), json!(event_type));
            if let Some(filter) = filter {
                out.insert("where".into(), to_json(filter));
            }
            if let Some(count) = count {
                out.insert(
                    "count".into(),
                    json!({"op": cmp_json_name(count.op), "value": count.value}),
                );
            }
            if let Some(duration) = in_last {
                out.insert("in_last".into(), json!(duration_to_json(*duration)));
            }
            Value::Object(out)
        }
        Condition::EventSum {
            event_type,
            property,
            filter,
            op,
            value,
            in_last,
        } => {
            let mut out = Map::new();
            out.insert("event_sum".into(), json!(event_type));
            out.insert("property".into(), json!(property));
            if let Some(filter) = filter {
                out.insert("where".into(), to_json(filter));
            }
            out.insert("op".into(), json!(cmp_json_name(*op)));
            out.insert("value".into(), number_to_json(*value));
            if let Some(duration) = in_last {
                out.insert("in_last".into(), json!(duration_to_json(*duration)));
            }
            Value::Object(out)
        }
        Condition::InSegment(id) => json!({"in_segment": id}),
    }
}

/// `"30d"`, `"12h"`, `"6mo"`, `"18y"`, `"90m"`, `"2w"`.
pub fn duration_from_json(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (amount, unit) = s.split_at(digits);
    let unit = match unit {
        "m" => DurationUnit::Minutes,
        "h" => DurationUnit::Hours,
        "d" => DurationUnit::Days,
        "w" => DurationUnit::Weeks,
        "mo" => DurationUnit::Months,
        "y" => DurationUnit::Years,
        _ => return None,
    };
    let amount = amount.parse().ok()?;
    Some(Duration { amount, unit })
}

/// The JSON form of a duration, as read by [`duration_from_json`].
pub fn duration_to_json(d: Duration) -> String {
    let unit = match d.unit {
        DurationUnit::Minutes => "m",
        DurationUnit::Hours => "h",
        DurationUnit::Days => "d",
        DurationUnit::Weeks => "w",
        DurationUnit::Months => "mo",
        DurationUnit::Years => "y",
    };
    format!("{}{unit}", d.amount)
}

/// Integral numbers that fit an i64 are written as JSON integers (`50`, not
/// `50.0`), so trees compare equal to what clients and the vectors write.
fn number_to_json(n: f64) -> Value {
    const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() < I64_BOUND {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn scalar_to_json(value: &Scalar) -> Value {
    match value {
        Scalar::String(text) => json!(text),
        Scalar::Number(number) => number_to_json(*number),
        Scalar::Boolean(flag) => json!(flag),
        Scalar::Date(days) => json!(format_date(*days)),
        Scalar::DateTime(ms) => json!(format_datetime(*ms)),
    }
}

fn test_value(test: &FieldTest) -> Option<Value> {
    Some(match test {
        FieldTest::Compare(_, value) => scalar_to_json(value),
        FieldTest::Contains(text)
        | FieldTest::NotContains(text)
        | FieldTest::StartsWith(text)
        | FieldTest::EndsWith(text) => json!(text),
        FieldTest::In(values) | FieldTest::NotIn(values) => {
            Value::Array(values.iter().map(scalar_to_json).collect())
        }
        FieldTest::Between(low, high) => json!([scalar_to_json(low), scalar_to_json(high)]),
        FieldTest::IsSet | FieldTest::IsNotSet => return None,
        FieldTest::InLast(duration)
        | FieldTest::BeforeAgo(duration)
        | FieldTest::AfterAgo(duration) => {
            json!(duration_to_json(*duration))
        }
    })
}

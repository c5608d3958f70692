//! Property values: what clients send ([`RawValue`]), what the engine keeps
//! ([`Value`]), and the date/time conversions between text and numbers.

use sift_lang::{Date, DateTime, FieldType};

/// A property value as a client sent it, before it is checked against the
/// field's type. The server maps JSON onto this; the engine never sees JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValue {
    /// Removes the property.
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    StringList(Vec<String>),
    /// Something no field can hold (an object, a list of numbers...), described
    /// for the error message.
    Unsupported(&'static str),
}

impl RawValue {
    /// What was given, for error messages: `"abc" (a string)`.
    pub fn describe(&self) -> String {
        match self {
            RawValue::Null => "null".to_string(),
            RawValue::Bool(b) => format!("{b} (a boolean)"),
            RawValue::Number(n) => format!("{} (a number)", sift_lang::format_number(*n)),
            RawValue::String(s) => format!("{s:?} (a string)"),
            RawValue::StringList(_) => "a list of strings".to_string(),
            RawValue::Unsupported(what) => (*what).to_string(),
        }
    }

    /// The field type a first write infers (docs/concepts.md): dates are never inferred.
    pub fn inferred_type(&self) -> Option<FieldType> {
        match self {
            RawValue::Bool(_) => Some(FieldType::Boolean),
            RawValue::Number(_) => Some(FieldType::Number),
            RawValue::String(_) => Some(FieldType::String),
            RawValue::StringList(_) => Some(FieldType::StringList),
            RawValue::Null | RawValue::Unsupported(_) => None,
        }
    }
}

/// A value that the field's type cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// A stored, typed property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Number(f64),
    Boolean(bool),
    Date(Date),
    DateTime(DateTime),
    StringList(Vec<String>),
}

impl Value {
    /// Checks `raw` against `field_type`. `None` for a null (removal).
    pub fn typed(raw: &RawValue, field_type: FieldType) -> Result<Option<Value>, WrongType> {
        Ok(Some(match (field_type, raw) {
            (_, RawValue::Null) => return Ok(None),
            (FieldType::String, RawValue::String(s)) => Value::String(s.clone()),
            (FieldType::Number, RawValue::Number(n)) if n.is_finite() => Value::Number(*n),
            (FieldType::Boolean, RawValue::Bool(b)) => Value::Boolean(*b),
            (FieldType::Date, RawValue::String(s)) => Value::Date(parse_date(s).ok_or(WrongType)?),
            (FieldType::DateTime, RawValue::String(s)) => {
                Value::DateTime(parse_datetime(s).ok_or(WrongType)?)
            }
            (FieldType::StringList, RawValue::StringList(items)) => {
                let mut items = items.clone();
                items.sort_unstable();
                items.dedup();
                Value::StringList(items)
            }
            _ => return Err(WrongType),
        }))
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Value::String(_) => FieldType::String,
            Value::Number(_) => FieldType::Number,
            Value::Boolean(_) => FieldType::Boolean,
            Value::Date(_) => FieldType::Date,
            Value::DateTime(_) => FieldType::DateTime,
            Value::StringList(_) => FieldType::StringList,
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, if it is a real calendar
/// date in the accepted range ([`sift_lang::DATE_RANGE`]): the condition
/// language's parser, so that properties and conditions agree.
pub fn parse_date(text: &str) -> Option<Date> {
    sift_lang::parse_date(text)
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (any offset) in the
/// accepted range.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    sift_lang::parse_datetime(text)
}

pub fn format_date(days: Date) -> String {
    sift_lang::format_date(days)
}

pub fn format_datetime(ms: DateTime) -> String {
    sift_lang::format_datetime(ms)
}

/// Whether `raw` is a real date or datetime for `field_type` that lies
/// outside the accepted range (so the refusal can say so, not "wrong type").
pub fn out_of_range(raw: &RawValue, field_type: FieldType) -> bool {
    let out = Err(sift_lang::DateError::OutOfRange);
    match (field_type, raw) {
        (FieldType::Date, RawValue::String(s)) => sift_lang::date_in_range(s).map(drop) == out,
        (FieldType::DateTime, RawValue::String(s)) => {
            sift_lang::datetime_in_range(s).map(drop) == out
        }
        _ => false,
    }
}

/// Howard Hinnant's `days_from_civil`: exact for the proleptic Gregorian calendar.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Date {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

pub fn civil_from_days(days: Date) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for text in [
            "1970-01-01",
            "1965-01-01",
            "2000-02-29",
            "2024-12-31",
            "1900-03-01",
        ] {
            let days = parse_date(text).unwrap();
            assert_eq!(format_date(days), text);
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1965-13-01"), None);
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-2-1"), None);
    }

    #[test]
    fn datetimes_are_utc_milliseconds() {
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(format_datetime(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
    }
}

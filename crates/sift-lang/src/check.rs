//! Typing shared by the text and JSON forms: which operators each field type
//! has, and how a written literal becomes a typed [`Scalar`]. Keeping it in one
//! place is what makes both forms accept and reject exactly the same trees.

use crate::dates::{
    DATE_RANGE, DateError, MS_PER_DAY, date_in_range, datetime_in_range, format_date,
    format_datetime, parse_date, parse_datetime,
};
use crate::print::{format_number, quote};
use crate::{CmpOp, FieldTest, FieldType, Scalar};

/// A value as written, before it is typed against a field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    String(String),
    Number(f64),
    Boolean(bool),
    /// Only the text form has unquoted date and datetime literals; JSON writes
    /// them as strings.
    Date(crate::Date),
    DateTime(crate::DateTime),
}

impl Literal {
    /// The literal as the user wrote it, for "got ..." in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Literal::String(text) => quote(text),
            Literal::Number(number) => format_number(*number),
            Literal::Boolean(flag) => flag.to_string(),
            Literal::Date(days) => format_date(*days),
            Literal::DateTime(ms) => format_datetime(*ms),
        }
    }
}

/// The operator of a field predicate, before its operand is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Cmp(CmpOp),
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    Between,
    IsSet,
    IsNotSet,
    InLast,
    BeforeAgo,
    AfterAgo,
}

/// Every operator, in the order messages list them.
const ALL_OPS: [Op; 18] = [
    Op::Cmp(CmpOp::Eq),
    Op::Cmp(CmpOp::Ne),
    Op::Cmp(CmpOp::Lt),
    Op::Cmp(CmpOp::Lte),
    Op::Cmp(CmpOp::Gt),
    Op::Cmp(CmpOp::Gte),
    Op::Contains,
    Op::NotContains,
    Op::StartsWith,
    Op::EndsWith,
    Op::In,
    Op::NotIn,
    Op::Between,
    Op::IsSet,
    Op::IsNotSet,
    Op::InLast,
    Op::BeforeAgo,
    Op::AfterAgo,
];

impl Op {
    /// The operator of an existing test (the inverse of building one).
    pub(crate) fn of(test: &FieldTest) -> Op {
        match test {
            FieldTest::Compare(op, _) => Op::Cmp(*op),
            FieldTest::Contains(_) => Op::Contains,
            FieldTest::NotContains(_) => Op::NotContains,
            FieldTest::StartsWith(_) => Op::StartsWith,
            FieldTest::EndsWith(_) => Op::EndsWith,
            FieldTest::In(_) => Op::In,
            FieldTest::NotIn(_) => Op::NotIn,
            FieldTest::Between(..) => Op::Between,
            FieldTest::IsSet => Op::IsSet,
            FieldTest::IsNotSet => Op::IsNotSet,
            FieldTest::InLast(_) => Op::InLast,
            FieldTest::BeforeAgo(_) => Op::BeforeAgo,
            FieldTest::AfterAgo(_) => Op::AfterAgo,
        }
    }

    /// The `op` of the JSON tree.
    pub(crate) fn json_name(self) -> &'static str {
        match self {
            Op::Cmp(op) => cmp_json_name(op),
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Between => "between",
            Op::IsSet => "is_set",
            Op::IsNotSet => "is_not_set",
            Op::InLast => "in_last",
            Op::BeforeAgo => "before_ago",
            Op::AfterAgo => "after_ago",
        }
    }

    pub(crate) fn from_json_name(name: &str) -> Option<Op> {
        ALL_OPS.into_iter().find(|op| op.json_name() == name)
    }

    /// The operator's words in the text form (`before` stands for `before D ago`).
    pub(crate) fn text_name(self) -> &'static str {
        match self {
            Op::Cmp(op) => cmp_symbol(op),
            Op::Contains => "contains",
            Op::NotContains => "not contains",
            Op::StartsWith => "starts with",
            Op::EndsWith => "ends with",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Between => "between",
            Op::IsSet => "is set",
            Op::IsNotSet => "is not set",
            Op::InLast => "in last",
            Op::BeforeAgo => "before",
            Op::AfterAgo => "after",
        }
    }
}

pub(crate) fn cmp_symbol(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
    }
}

pub(crate) fn cmp_json_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Lt => "lt",
        CmpOp::Lte => "lte",
        CmpOp::Gt => "gt",
        CmpOp::Gte => "gte",
    }
}

pub(crate) fn cmp_from_json_name(name: &str) -> Option<CmpOp> {
    [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Lte,
        CmpOp::Gt,
        CmpOp::Gte,
    ]
    .into_iter()
    .find(|op| cmp_json_name(*op) == name)
}

/// Whether a contact field of type `ty` has operator `op` (docs/conditions.md).
pub(crate) fn supports(ty: FieldType, op: Op) -> bool {
    let is_cmp = matches!(op, Op::Cmp(_));
    let is_set = matches!(op, Op::IsSet | Op::IsNotSet);
    let is_list = matches!(op, Op::In | Op::NotIn);
    match ty {
        FieldType::String => !matches!(op, Op::InLast | Op::BeforeAgo | Op::AfterAgo),
        FieldType::Number => is_cmp || is_set || is_list || op == Op::Between,
        FieldType::Boolean => {
            matches!(op, Op::Cmp(CmpOp::Eq) | Op::Cmp(CmpOp::Ne)) || is_set || is_list
        }
        FieldType::Date | FieldType::DateTime => !matches!(
            op,
            Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith
        ),
        FieldType::StringList => is_set || matches!(op, Op::Contains | Op::NotContains),
    }
}

/// `a boolean field has no operator "contains" (it has =, !=, ...)`, naming the
/// operators in the form's own spelling (`json` selects the JSON names).
pub(crate) fn unsupported_message(ty: FieldType, op: Op, json: bool) -> String {
    let name = |op: Op| if json { op.json_name() } else { op.text_name() };
    let available: Vec<&str> = ALL_OPS
        .into_iter()
        .filter(|candidate| supports(ty, *candidate))
        .map(name)
        .collect();
    format!(
        "a {} field has no operator \"{}\" (it has {})",
        ty.name(),
        name(op),
        available.join(", ")
    )
}

/// The fault for a name the workspace lacks (`what`: "field" or "segment"),
/// with "did you mean" when one of `known` is close to it.
pub(crate) fn unknown_name(
    what: &str,
    written: &str,
    known: &[String],
) -> (String, Option<String>) {
    let message = format!("unknown {what} {}", quote(written));
    let guess = crate::closest_name(written, known.iter().map(String::as_str)).map(str::to_string);
    (message, guess)
}

/// The hint shown for a "did you mean" guess.
pub(crate) fn did_you_mean_hint(guess: &str) -> String {
    format!("did you mean {}?", quote(guess))
}

/// Why `ignoring case` can't go on `test`, if it can't: it applies only to
/// the string tests of [`FieldTest::can_ignore_case`]. `json` picks the
/// form's spelling.
pub(crate) fn ignore_case_error(test: &FieldTest, json: bool) -> Option<String> {
    if test.can_ignore_case() {
        return None;
    }
    let (what, ops) = match json {
        true => (
            "\"ignore_case\"",
            "eq, ne, contains, not_contains, starts_with, ends_with, in or not_in",
        ),
        false => (
            "\"ignoring case\"",
            "=, !=, contains, not contains, starts with, ends with, in or not in",
        ),
    };
    let values: &[Scalar] = match test {
        FieldTest::Compare(CmpOp::Eq | CmpOp::Ne, value) => std::slice::from_ref(value),
        FieldTest::In(values) | FieldTest::NotIn(values) => values,
        _ => {
            let op = Op::of(test);
            let op = if json { op.json_name() } else { op.text_name() };
            return Some(format!("{what} goes only with {ops}, not with \"{op}\""));
        }
    };
    let other = values
        .iter()
        .find(|value| !matches!(value, Scalar::String(_)))?;
    let kind = match other {
        Scalar::Number(_) => "a number",
        Scalar::Boolean(_) => "a boolean",
        Scalar::Date(_) => "a date",
        Scalar::DateTime(_) => "a datetime",
        Scalar::String(_) => "a string",
    };
    Some(format!(
        "{what} compares strings, and {} is {kind}",
        crate::scalar_text(other)
    ))
}

/// What a predicate's name refers to: a typed contact field, or a property of
/// an event inside `where` (untyped: the workspace has no schema for events).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Field { name: &'a str, ty: FieldType },
    Property,
}

/// Types a literal for `target`. The error is the whole message.
///
/// For event properties the literal keeps its own type, except that a string
/// that is a valid date or datetime becomes one: JSON has no date literal, so
/// this is the only reading under which text and JSON give the same tree.
pub(crate) fn scalar(target: Target<'_>, literal: Literal) -> Result<Scalar, String> {
    let Target::Field { name, ty } = target else {
        return Ok(match literal {
            Literal::String(text) => match (parse_datetime(&text), parse_date(&text)) {
                (Some(ms), _) => Scalar::DateTime(ms),
                (None, Some(days)) => Scalar::Date(days),
                (None, None) => Scalar::String(text),
            },
            Literal::Number(number) => Scalar::Number(number),
            Literal::Boolean(flag) => Scalar::Boolean(flag),
            Literal::Date(days) => Scalar::Date(days),
            Literal::DateTime(ms) => Scalar::DateTime(ms),
        });
    };
    let typed = match (ty, &literal) {
        (FieldType::String | FieldType::StringList, Literal::String(text)) => {
            Some(Scalar::String(text.clone()))
        }
        (FieldType::Number, Literal::Number(number)) => Some(Scalar::Number(*number)),
        (FieldType::Boolean, Literal::Boolean(flag)) => Some(Scalar::Boolean(*flag)),
        (FieldType::Date, Literal::Date(days)) => Some(Scalar::Date(*days)),
        (FieldType::Date, Literal::String(text)) => parse_date(text).map(Scalar::Date),
        (FieldType::DateTime, Literal::DateTime(ms)) => Some(Scalar::DateTime(*ms)),
        (FieldType::DateTime, Literal::Date(days)) => {
            Some(Scalar::DateTime(i64::from(*days) * MS_PER_DAY))
        }
        (FieldType::DateTime, Literal::String(text)) => parse_datetime(text)
            .or_else(|| parse_date(text).map(|days| i64::from(days) * MS_PER_DAY))
            .map(Scalar::DateTime),
        _ => None,
    };
    typed.ok_or_else(|| {
        if let (FieldType::Date | FieldType::DateTime, Literal::String(text)) = (ty, &literal)
            && (date_in_range(text) == Err(DateError::OutOfRange)
                || datetime_in_range(text) == Err(DateError::OutOfRange))
        {
            return format!(
                "\"{text}\" is outside the dates and datetimes Sift accepts ({DATE_RANGE}, in UTC) for {} field \"{name}\"",
                ty.name()
            );
        }
        format!(
            "expected {} for {} field \"{name}\", got {}",
            expected_for(ty),
            ty.name(),
            literal.describe()
        )
    })
}

fn expected_for(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String | FieldType::StringList => "a string",
        FieldType::Number => "a number",
        FieldType::Boolean => "true or false",
        FieldType::Date => "a date (YYYY-MM-DD)",
        FieldType::DateTime => "a datetime (RFC 3339, like 2024-05-01T10:00:00Z) or a date",
    }
}

/// The operand of `contains`, `starts with`...: always a string.
pub(crate) fn text_operand(target: Target<'_>, op: Op, literal: Literal) -> Result<String, String> {
    match (target, literal) {
        (_, Literal::String(text)) => Ok(text),
        (Target::Field { name, ty }, other) => Err(format!(
            "expected a string for {} field \"{name}\", got {}",
            ty.name(),
            other.describe()
        )),
        (Target::Property, other) => Err(format!(
            "expected a string after \"{}\", got {}",
            op.text_name(),
            other.describe()
        )),
    }
}

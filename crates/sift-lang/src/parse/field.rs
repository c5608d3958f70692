//! Field predicates: `name operator operand`, typed against the schema for
//! contact fields and untyped for event properties inside `where`.

use winnow::stream::Stream as _;

use winnow::error::ErrMode;

use crate::check::{
    Literal, Op, Target, did_you_mean_hint, ignore_case_error, scalar, supports, text_operand,
    unknown_name, unsupported_message,
};
use crate::lex::{
    Fault, Input, PResult, at_end, comparison, describe_next, duration, eat_keyword,
    expect_keyword, fail, here, list, literal, name, peek_word, skip_ws, syntax, word,
};
use crate::{Condition, ErrorKind, FieldTest};

use super::{Parsed, Scope};

/// field = name operator operand ( "ignoring" "case" )?
pub(super) fn field(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
    let Some((start, field_name)) = name(input)? else {
        return Ok(None);
    };
    let target = match scope {
        Scope::Event => Target::Property,
        Scope::Contact => match input.state.schema.field_type(&field_name) {
            Some(ty) => Target::Field {
                name: &field_name,
                ty,
            },
            None => {
                let known = input.state.schema.field_names();
                let (message, guess) = unknown_name("field", &field_name, &known);
                let mut fault = Fault::new(start, ErrorKind::UnknownField, message);
                fault.hint = guess.as_deref().map(did_you_mean_hint);
                fault.did_you_mean = guess;
                return Err(ErrMode::Cut(fault));
            }
        },
    };
    let (op_at, op) = operator(input, &field_name)?;
    if let Target::Field { ty, .. } = target
        && !supports(ty, op)
    {
        let message = unsupported_message(ty, op, false);
        return fail(op_at, ErrorKind::UnsupportedOperator, message);
    }
    let test = operand(input, target, op)?;
    let ignore_case = match eat_keyword(input, "ignoring")? {
        None => false,
        Some(at) => {
            expect_keyword(input, "case", "\"ignoring\" (as in: ignoring case)")?;
            if let Some(message) = ignore_case_error(&test, false) {
                return fail(at, ErrorKind::InvalidValue, message);
            }
            true
        }
    };
    let cond = Condition::Field {
        field: field_name.clone(),
        test,
        ignore_case,
    };
    Ok(Some(Parsed::leaf(cond, start)))
}

const OPERATORS: &str = "=, !=, <, <=, >, >=, contains, not contains, starts with, ends with, \
                         in, not in, between, is set, is not set, in last, before or after";

/// operator = cmp | "contains" | "not" "contains" | "starts" "with" | "ends" "with"
///          | "in" | "not" "in" | "between" | "is" "set" | "is" "not" "set"
///          | "in" "last" | "before" | "after"
fn operator(input: &mut Input<'_>, field_name: &str) -> PResult<(usize, Op)> {
    if let Some((at, op)) = comparison(input)? {
        return Ok((at, Op::Cmp(op)));
    }
    let Some((at, first)) = word(input)? else {
        let got = describe_next(input)?;
        let field_name = crate::print::quote(field_name);
        return syntax(
            here(input),
            format!("expected an operator after {field_name}, got {got}"),
        );
    };
    let op = match first.to_ascii_lowercase().as_str() {
        "contains" => Op::Contains,
        "between" => Op::Between,
        "before" => Op::BeforeAgo,
        "after" => Op::AfterAgo,
        "starts" => {
            expect_keyword(input, "with", "\"starts\"")?;
            Op::StartsWith
        }
        "ends" => {
            expect_keyword(input, "with", "\"ends\"")?;
            Op::EndsWith
        }
        "not" => match peek_word(input)?.as_deref() {
            Some("contains") => Op::NotContains,
            Some("in") => Op::NotIn,
            _ => {
                let got = describe_next(input)?;
                return syntax(
                    here(input),
                    format!("expected \"contains\" or \"in\" after \"not\", got {got}"),
                );
            }
        },
        "is" => match peek_word(input)?.as_deref() {
            Some("set") => Op::IsSet,
            Some("not") => {
                word(input)?;
                expect_keyword(input, "set", "\"is not\"")?;
                return Ok((at, Op::IsNotSet));
            }
            _ => {
                let got = describe_next(input)?;
                return syntax(
                    here(input),
                    format!("expected \"set\" or \"not set\" after \"is\", got {got}"),
                );
            }
        },
        "in" => {
            if eat_keyword(input, "last")?.is_some() {
                return Ok((at, Op::InLast));
            }
            skip_ws(input)?;
            if input.peek_token() != Some('[') {
                let got = describe_next(input)?;
                return syntax(
                    here(input),
                    format!(
                        "expected a list like [\"a\", \"b\"] or \"last\" after \"in\", got {got}"
                    ),
                );
            }
            Op::In
        }
        _ => {
            return syntax(
                at,
                format!("unknown operator \"{first}\" (expected {OPERATORS})"),
            );
        }
    };
    // The two-word operators above only peeked at their second word.
    if matches!(op, Op::NotContains | Op::NotIn | Op::IsSet) {
        word(input)?;
    }
    Ok((at, op))
}

/// operand = literal (after cmp, contains, starts with, ends with)
///         | list (after in, not in) | literal "and" literal (after between)
///         | duration (after in last) | duration "ago" (after before, after)
///         | nothing (after is set, is not set)
fn operand(input: &mut Input<'_>, target: Target<'_>, op: Op) -> PResult<FieldTest> {
    let op_name = op.text_name();
    Ok(match op {
        Op::Cmp(cmp) => FieldTest::Compare(cmp, typed(input, target, op_name)?),
        Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith => {
            let (at, value) = required_literal(input, op_name)?;
            let text = text_operand(target, op, value)
                .or_else(|message| fail(at, ErrorKind::InvalidValue, message))?;
            match op {
                Op::Contains => FieldTest::Contains(text),
                Op::NotContains => FieldTest::NotContains(text),
                Op::StartsWith => FieldTest::StartsWith(text),
                _ => FieldTest::EndsWith(text),
            }
        }
        Op::In | Op::NotIn => {
            let mut values = Vec::new();
            for (at, item) in list(input)? {
                let value = scalar(target, item)
                    .or_else(|message| fail(at, ErrorKind::InvalidValue, message))?;
                values.push(value);
            }
            match op {
                Op::In => FieldTest::In(values),
                _ => FieldTest::NotIn(values),
            }
        }
        Op::Between => {
            let low = typed(input, target, "between")?;
            expect_keyword(input, "and", "the lower bound (as in: between 2 and 5)")?;
            let high = typed(input, target, "and")?;
            FieldTest::Between(low, high)
        }
        Op::IsSet => FieldTest::IsSet,
        Op::IsNotSet => FieldTest::IsNotSet,
        Op::InLast => FieldTest::InLast(duration(input, "\"in last\"")?),
        Op::BeforeAgo | Op::AfterAgo => {
            let amount = duration(input, &format!("\"{op_name}\""))?;
            expect_keyword(input, "ago", "the duration")?;
            match op {
                Op::BeforeAgo => FieldTest::BeforeAgo(amount),
                _ => FieldTest::AfterAgo(amount),
            }
        }
    })
}

/// A literal that must come after `after`, typed for `target`.
fn typed(input: &mut Input<'_>, target: Target<'_>, after: &str) -> PResult<crate::Scalar> {
    let (at, value) = required_literal(input, after)?;
    scalar(target, value).or_else(|message| fail(at, ErrorKind::InvalidValue, message))
}

fn required_literal(input: &mut Input<'_>, after: &str) -> PResult<(usize, Literal)> {
    if let Some(found) = literal(input)? {
        return Ok(found);
    }
    let offset = here(input);
    if at_end(input)? {
        return syntax(offset, format!("expected a value after \"{after}\""));
    }
    let got = describe_next(input)?;
    let hint = match word(input)? {
        Some(_) => " (text values go in double quotes)",
        None => "",
    };
    syntax(
        offset,
        format!("expected a value after \"{after}\", got {got}{hint}"),
    )
}

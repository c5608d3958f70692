//! The tokens of the text form, as winnow parsers: whitespace, words and
//! keywords, names, strings, literals, lists and durations.
//!
//! Conventions every function here follows, so that error positions land where
//! docs/conditions.md's vectors put them:
//! - each token parser skips the whitespace before its token first, so a fault
//!   is reported at the token, not at the space before it;
//! - a parser that finds no token of its kind returns `Ok(None)` (having
//!   consumed at most whitespace), and the caller turns that into a message
//!   saying what it expected there;
//! - a token that starts but is malformed (an unterminated string, an invalid
//!   date) is an [`ErrMode::Cut`] error carrying its own message and offset.

use std::fmt;

use winnow::LocatingSlice;
use winnow::ascii::multispace0;
use winnow::combinator::alt;
use winnow::error::{ErrMode, ParserError};
use winnow::prelude::*;
use winnow::stream::{Location, Stateful};
use winnow::token::{take_till, take_while};

use crate::check::Literal;
use crate::dates::{DATE_RANGE, DateError, date_in_range, datetime_in_range, has_date_shape};
use crate::{CmpOp, Duration, DurationUnit, ErrorKind, Schema};

/// The parser's input: the text with byte offsets, plus the schema and the
/// current nesting (checked while parsing, so deep input can't overflow the stack).
pub(crate) type Input<'t> = Stateful<LocatingSlice<&'t str>, State<'t>>;

pub(crate) struct State<'t> {
    pub(crate) schema: &'t dyn Schema,
    /// Open `(`, `not` and `where` around the current position.
    pub(crate) nesting: usize,
}

// winnow wants a `Debug` state for its traces; the schema has nothing useful to show.
impl fmt::Debug for State<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "State {{ nesting: {} }}", self.nesting)
    }
}

/// A fault at a byte offset of the text, with the sentence to show.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) offset: usize,
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    /// See [`crate::ConditionError::hint`].
    pub(crate) hint: Option<String>,
    pub(crate) did_you_mean: Option<String>,
}

impl Fault {
    pub(crate) fn new(offset: usize, kind: ErrorKind, message: impl Into<String>) -> Fault {
        Fault {
            offset,
            kind,
            message: message.into(),
            hint: None,
            did_you_mean: None,
        }
    }
}

impl<'t> ParserError<Input<'t>> for Fault {
    type Inner = Self;

    // Only winnow's own primitives build errors this way, and only inside
    // `alt`/`opt`-like places that discard them; the message is a fallback.
    fn from_input(input: &Input<'t>) -> Self {
        Fault::new(
            input.current_token_start(),
            ErrorKind::Syntax,
            "unexpected input",
        )
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

pub(crate) type PResult<T> = Result<T, ErrMode<Fault>>;

/// A hard error: stops the parse and is reported as is.
pub(crate) fn fail<T>(offset: usize, kind: ErrorKind, message: impl Into<String>) -> PResult<T> {
    Err(ErrMode::Cut(Fault::new(offset, kind, message)))
}

/// A grammar error.
pub(crate) fn syntax<T>(offset: usize, message: impl Into<String>) -> PResult<T> {
    fail(offset, ErrorKind::Syntax, message)
}

pub(crate) fn here(input: &Input<'_>) -> usize {
    input.current_token_start()
}

/// ws = ( " " | "\t" | "\r" | "\n" )*
pub(crate) fn skip_ws(input: &mut Input<'_>) -> PResult<()> {
    multispace0.void().parse_next(input)
}

/// Skips whitespace and tells whether the text ends here.
pub(crate) fn at_end(input: &mut Input<'_>) -> PResult<bool> {
    skip_ws(input)?;
    Ok(input.is_empty())
}

/// Skips whitespace and consumes `symbol` if it comes next.
pub(crate) fn eat_char(input: &mut Input<'_>, symbol: char) -> PResult<Option<usize>> {
    skip_ws(input)?;
    let start = here(input);
    if input.peek_token() == Some(symbol) {
        input.next_token();
        return Ok(Some(start));
    }
    Ok(None)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// word = [A-Za-z_] [A-Za-z0-9_-]*
pub(crate) fn word<'t>(input: &mut Input<'t>) -> PResult<Option<(usize, &'t str)>> {
    skip_ws(input)?;
    let start = here(input);
    match input.peek_token() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Ok(None),
    }
    let text = take_while(1.., is_word_char).parse_next(input)?;
    Ok(Some((start, text)))
}

/// The next word, lower-cased, without consuming it (keywords are case-insensitive).
pub(crate) fn peek_word(input: &mut Input<'_>) -> PResult<Option<String>> {
    skip_ws(input)?;
    let checkpoint = input.checkpoint();
    let found = word(input)?.map(|(_, text)| text.to_ascii_lowercase());
    input.reset(&checkpoint);
    Ok(found)
}

/// Consumes keyword `keyword` (any case, a whole word) if it comes next.
pub(crate) fn eat_keyword(input: &mut Input<'_>, keyword: &str) -> PResult<Option<usize>> {
    skip_ws(input)?;
    let checkpoint = input.checkpoint();
    match word(input)? {
        Some((start, text)) if text.eq_ignore_ascii_case(keyword) => Ok(Some(start)),
        _ => {
            input.reset(&checkpoint);
            Ok(None)
        }
    }
}

/// Requires keyword `keyword` next; `context` says after what, for the message.
pub(crate) fn expect_keyword(
    input: &mut Input<'_>,
    keyword: &str,
    context: &str,
) -> PResult<usize> {
    match eat_keyword(input, keyword)? {
        Some(start) => Ok(start),
        None => {
            let got = describe_next(input)?;
            syntax(
                here(input),
                format!("expected \"{keyword}\" after {context}, got {got}"),
            )
        }
    }
}

/// What comes next, for "got ..." in messages: the end, the next word, or
/// the next few characters (a string shows as written, already quoted).
pub(crate) fn describe_next(input: &mut Input<'_>) -> PResult<String> {
    skip_ws(input)?;
    let rest: &str = input;
    let Some(first) = rest.chars().next() else {
        return Ok("the end of the condition".to_string());
    };
    let token: String = if is_word_char(first) {
        rest.chars()
            .take_while(|c| is_word_char(*c))
            .take(30)
            .collect()
    } else {
        rest.chars()
            .take_while(|c| !c.is_whitespace())
            .take(12)
            .collect()
    };
    Ok(match first {
        '"' => token,
        _ => crate::print::quote(&token),
    })
}

/// string = '"' ( any character but '"' and '\' | '\"' | '\\' )* '"'
pub(crate) fn string(input: &mut Input<'_>) -> PResult<Option<(usize, String)>> {
    skip_ws(input)?;
    let start = here(input);
    if input.peek_token() != Some('"') {
        return Ok(None);
    }
    input.next_token();
    let mut text = String::new();
    loop {
        let chunk: &str = take_till(0.., ['"', '\\']).parse_next(input)?;
        text.push_str(chunk);
        let escape_at = here(input);
        match input.next_token() {
            Some('"') => return Ok(Some((start, text))),
            Some(_) => match input.next_token() {
                Some(escaped @ ('"' | '\\')) => text.push(escaped),
                Some(other) => {
                    return syntax(
                        escape_at,
                        format!(
                            "unknown escape \"\\{other}\" in a string (only \\\" and \\\\ are allowed)"
                        ),
                    );
                }
                None => return syntax(start, "unterminated string (a closing \" is missing)"),
            },
            None => return syntax(start, "unterminated string (a closing \" is missing)"),
        }
    }
}

/// name = word | string          (a field, property or event type)
///
/// A name that is a keyword (`not`, `in`...) or is not a plain word is written
/// as a string.
pub(crate) fn name(input: &mut Input<'_>) -> PResult<Option<(usize, String)>> {
    if let Some((start, text)) = word(input)? {
        return Ok(Some((start, text.to_string())));
    }
    match string(input)? {
        Some((start, text)) if text.is_empty() => syntax(start, "a name can't be empty"),
        found => Ok(found),
    }
}

/// The characters a number, date or datetime literal is made of; taken as one
/// token so that `1965-13-01` is reported as a bad date, not as `1965` then junk.
fn numeric_token<'t>(input: &mut Input<'t>) -> PResult<Option<(usize, &'t str)>> {
    skip_ws(input)?;
    let start = here(input);
    let rest: &str = input;
    let mut chars = rest.chars();
    let starts_number = match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('-') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    if !starts_number {
        return Ok(None);
    }
    let text = take_while(1.., |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '+' | '-')
    })
    .parse_next(input)?;
    Ok(Some((start, text)))
}

/// number = "-"? digit+ ( "." digit+ )? ( ("e" | "E") ("+" | "-")? digit+ )?
fn is_number(text: &str) -> bool {
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => all_digits(int) && all_digits(frac),
        None => all_digits(mantissa),
    };
    let exponent_ok =
        exponent.is_none_or(|exp| all_digits(exp.strip_prefix(['+', '-']).unwrap_or(exp)));
    mantissa_ok && exponent_ok
}

/// literal = string | number | date | datetime | "true" | "false"
/// date = digit{4} "-" digit{2} "-" digit{2}
/// datetime = date "T" time ( "Z" | offset )        (RFC 3339)
pub(crate) fn literal(input: &mut Input<'_>) -> PResult<Option<(usize, Literal)>> {
    if let Some((start, text)) = string(input)? {
        return Ok(Some((start, Literal::String(text))));
    }
    for (keyword, flag) in [("true", true), ("false", false)] {
        if let Some(start) = eat_keyword(input, keyword)? {
            return Ok(Some((start, Literal::Boolean(flag))));
        }
    }
    let Some((start, text)) = numeric_token(input)? else {
        return Ok(None);
    };
    let invalid = ErrorKind::InvalidValue;
    if has_date_shape(text) && text.len() == 10 {
        return match date_in_range(text) {
            Ok(days) => Ok(Some((start, Literal::Date(days)))),
            Err(DateError::OutOfRange) => fail(
                start,
                invalid,
                format!("\"{text}\" is outside the dates Sift accepts ({DATE_RANGE})"),
            ),
            Err(DateError::Invalid) => fail(
                start,
                invalid,
                format!("\"{text}\" is not a valid date (expected YYYY-MM-DD)"),
            ),
        };
    }
    if has_date_shape(text) {
        return match datetime_in_range(text) {
            Ok(ms) => Ok(Some((start, Literal::DateTime(ms)))),
            Err(DateError::OutOfRange) => fail(
                start,
                invalid,
                format!("\"{text}\" is outside the datetimes Sift accepts ({DATE_RANGE}, in UTC)"),
            ),
            Err(DateError::Invalid) => fail(
                start,
                invalid,
                format!(
                    "\"{text}\" is not a valid datetime (expected RFC 3339, like 2024-05-01T10:00:00Z)"
                ),
            ),
        };
    }
    if !is_number(text) {
        return fail(start, invalid, format!("\"{text}\" is not a valid number"));
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(Some((start, Literal::Number(number)))),
        _ => fail(start, invalid, format!("the number {text} is too large")),
    }
}

/// A whole number (a count or a duration's amount); `context` names what it is for.
pub(crate) fn whole_number<T: std::str::FromStr>(
    input: &mut Input<'_>,
    context: &str,
) -> PResult<Option<(usize, T)>> {
    let Some((start, text)) = numeric_token(input)? else {
        return Ok(None);
    };
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return fail(
            start,
            ErrorKind::InvalidValue,
            format!("expected a whole number {context}, got {text}"),
        );
    }
    match text.parse::<T>() {
        Ok(number) => Ok(Some((start, number))),
        Err(_) => fail(
            start,
            ErrorKind::InvalidValue,
            format!("the number {text} is too large"),
        ),
    }
}

/// list = "[" ( literal ( "," literal )* )? "]"
pub(crate) fn list(input: &mut Input<'_>) -> PResult<Vec<(usize, Literal)>> {
    let Some(_) = eat_char(input, '[')? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a list like [\"a\", \"b\"], got {got}"),
        );
    };
    let mut items = Vec::new();
    if eat_char(input, ']')?.is_some() {
        return Ok(items);
    }
    loop {
        match literal(input)? {
            Some(item) => items.push(item),
            None => return syntax(here(input), "expected a value in the list"),
        }
        if eat_char(input, ',')?.is_some() {
            continue;
        }
        if eat_char(input, ']')?.is_some() {
            return Ok(items);
        }
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected \",\" or \"]\" in the list, got {got}"),
        );
    }
}

/// cmp = "<=" | ">=" | "!=" | "<" | ">" | "="
pub(crate) fn comparison(input: &mut Input<'_>) -> PResult<Option<(usize, CmpOp)>> {
    skip_ws(input)?;
    let start = here(input);
    let found = alt((
        "<=".value(CmpOp::Lte),
        ">=".value(CmpOp::Gte),
        "!=".value(CmpOp::Ne),
        "<".value(CmpOp::Lt),
        ">".value(CmpOp::Gt),
        "=".value(CmpOp::Eq),
    ))
    .parse_next(input);
    match found {
        Ok(op) => Ok(Some((start, op))),
        Err(ErrMode::Backtrack(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

const UNITS: &str = "minutes, hours, days, weeks, months or years";

/// duration = digit+ unit
/// unit = "minute" "s"? | "hour" "s"? | "day" "s"? | "week" "s"? | "month" "s"? | "year" "s"?
pub(crate) fn duration(input: &mut Input<'_>, context: &str) -> PResult<Duration> {
    let Some((_, amount)) = whole_number::<u32>(input, context)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a duration like \"7 days\" after {context}, got {got}"),
        );
    };
    let Some((start, unit)) = word(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a duration unit ({UNITS}), got {got}"),
        );
    };
    let unit = match unit.to_ascii_lowercase().as_str() {
        "minute" | "minutes" => DurationUnit::Minutes,
        "hour" | "hours" => DurationUnit::Hours,
        "day" | "days" => DurationUnit::Days,
        "week" | "weeks" => DurationUnit::Weeks,
        "month" | "months" => DurationUnit::Months,
        "year" | "years" => DurationUnit::Years,
        _ => {
            return fail(
                start,
                ErrorKind::InvalidValue,
                format!("unknown duration unit \"{unit}\" (use {UNITS})"),
            );
        }
    };
    Ok(Duration { amount, unit })
}

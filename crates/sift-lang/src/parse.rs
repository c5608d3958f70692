//! The text form's grammar (see the BNF in the crate docs), parsed with winnow
//! and checked against the [`Schema`] in the same pass, so every fault is
//! reported at the byte where it is.
//!
//! Each function's `///` starts with the rule it parses. Limits are enforced
//! while parsing rather than afterwards: the nesting of `(`, `not` and
//! `where` is capped before recursing (so 100,000 `(` cannot overflow the
//! stack), and each node built checks the depth and node count of its subtree.

use winnow::LocatingSlice;
use winnow::error::ErrMode;
use winnow::stream::{Stateful, Stream as _};

use crate::check::{Literal, Op, Target, scalar, supports, text_operand, unsupported_message};
use crate::lex::{
    Input, PResult, State, at_end, comparison, describe_next, duration, eat_char, eat_keyword,
    expect_keyword, fail, here, list, literal, name, peek_word, skip_ws, syntax, whole_number,
    word,
};
use crate::{
    CmpOp, Condition, ConditionError, CountTest, ErrorKind, FieldTest, MAX_DEPTH, MAX_NODES,
    Position, Schema,
};

/// Parses the text form of a condition and checks it against `schema`.
///
/// Empty (or blank) text is the condition that holds for everyone, `All([])`.
pub fn parse_text(text: &str, schema: &dyn Schema) -> Result<Condition, ConditionError> {
    let mut input = Stateful {
        input: LocatingSlice::new(text),
        state: State { schema, nesting: 0 },
    };
    condition(&mut input).map_err(|err| {
        let fault = match err {
            ErrMode::Backtrack(fault) | ErrMode::Cut(fault) => fault,
            // Only partial streams are incomplete; ours is the whole text.
            ErrMode::Incomplete(_) => crate::lex::Fault {
                offset: text.len(),
                kind: ErrorKind::Syntax,
                message: "unexpected end of the condition".to_string(),
            },
        };
        ConditionError {
            kind: fault.kind,
            message: fault.message,
            position: Some(Position::at(text, fault.offset)),
            path: None,
        }
    })
}

/// Whose names a predicate uses: the contact's fields, or (inside `where`)
/// the event's properties.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Contact,
    Event,
}

/// A parsed subtree with what the limits need: where it starts, its depth
/// (nodes on the longest root-to-leaf path) and its node count.
struct Parsed {
    cond: Condition,
    start: usize,
    depth: usize,
    nodes: usize,
}

impl Parsed {
    fn leaf(cond: Condition, start: usize) -> Parsed {
        Parsed {
            cond,
            start,
            depth: 1,
            nodes: 1,
        }
    }

    /// A node over children of `depth` and `nodes`, checked against the limits.
    fn node(cond: Condition, start: usize, depth: usize, nodes: usize) -> PResult<Parsed> {
        if depth + 1 > MAX_DEPTH {
            return too_deep(start);
        }
        if nodes + 1 > MAX_NODES {
            return too_many(start);
        }
        Ok(Parsed {
            cond,
            start,
            depth: depth + 1,
            nodes: nodes + 1,
        })
    }
}

fn too_deep<T>(offset: usize) -> PResult<T> {
    fail(
        offset,
        ErrorKind::TooComplex,
        format!("the condition is nested too deeply (at most {MAX_DEPTH} levels)"),
    )
}

fn too_many<T>(offset: usize) -> PResult<T> {
    fail(
        offset,
        ErrorKind::TooComplex,
        format!("the condition is too large (at most {MAX_NODES} nodes)"),
    )
}

/// Runs `parse` one nesting level deeper; `offset` is the `(`, `not` or `where`.
fn nested<T>(
    input: &mut Input<'_>,
    offset: usize,
    parse: impl FnOnce(&mut Input<'_>) -> PResult<T>,
) -> PResult<T> {
    if input.state.nesting >= MAX_DEPTH {
        return too_deep(offset);
    }
    input.state.nesting += 1;
    let result = parse(input);
    input.state.nesting -= 1;
    result
}

/// condition = ws ( or ws )? EOF
fn condition(input: &mut Input<'_>) -> PResult<Condition> {
    if at_end(input)? {
        return Ok(Condition::All(Vec::new()));
    }
    let Some(parsed) = or_expr(input, Scope::Contact)? else {
        let got = describe_next(input)?;
        return syntax(here(input), format!("expected a condition, got {got}"));
    };
    if !at_end(input)? {
        let got = describe_next(input)?;
        let offset = here(input);
        return syntax(
            offset,
            format!("expected \"and\", \"or\" or the end of the condition, got {got}"),
        );
    }
    Ok(parsed.cond)
}

/// Children of one `and` or `or` chain, flattened as they come: a
/// parenthesized group of the same kind is spliced in, because the canonical
/// text prints `(a and b) and c` as `a and b and c` and both must give one tree.
struct Chain {
    is_all: bool,
    start: usize,
    children: Vec<Condition>,
    depth: usize,
    nodes: usize,
}

impl Chain {
    fn new(is_all: bool, first: &Parsed) -> Chain {
        Chain {
            is_all,
            start: first.start,
            children: Vec::new(),
            depth: 0,
            nodes: 0,
        }
    }

    fn push(&mut self, item: Parsed) -> PResult<()> {
        match item.cond {
            Condition::All(inner) if self.is_all => {
                self.splice(inner, item.depth - 1, item.nodes - 1)
            }
            Condition::Any(inner) if !self.is_all => {
                self.splice(inner, item.depth - 1, item.nodes - 1)
            }
            cond => self.splice(vec![cond], item.depth, item.nodes),
        }
        // Counted while the chain grows, so a flat chain of 100,000
        // predicates stops at the 1,001st instead of being built first.
        if self.nodes + 1 > MAX_NODES {
            return too_many(item.start);
        }
        Ok(())
    }

    fn splice(&mut self, children: Vec<Condition>, depth: usize, nodes: usize) {
        self.children.extend(children);
        self.depth = self.depth.max(depth);
        self.nodes += nodes;
    }

    fn finish(self, single: Option<Parsed>) -> PResult<Parsed> {
        if let Some(single) = single {
            return Ok(single);
        }
        let cond = if self.is_all {
            Condition::All(self.children)
        } else {
            Condition::Any(self.children)
        };
        Parsed::node(cond, self.start, self.depth, self.nodes)
    }
}

/// or = and ( "or" and )*
fn or_expr(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
    let Some(first) = and_expr(input, scope)? else {
        return Ok(None);
    };
    chain(input, first, "or", |input| and_expr(input, scope)).map(Some)
}

/// and = unary ( "and" unary )*
fn and_expr(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
    let Some(first) = unary(input, scope)? else {
        return Ok(None);
    };
    chain(input, first, "and", |input| unary(input, scope)).map(Some)
}

/// Shared loop of `and` and `or`: `first ( keyword operand )*`.
fn chain(
    input: &mut Input<'_>,
    first: Parsed,
    keyword: &str,
    mut operand: impl FnMut(&mut Input<'_>) -> PResult<Option<Parsed>>,
) -> PResult<Parsed> {
    if eat_keyword(input, keyword)?.is_none() {
        return Ok(first);
    }
    let mut chain = Chain::new(keyword == "and", &first);
    chain.push(first)?;
    loop {
        let Some(next) = operand(input)? else {
            let got = describe_next(input)?;
            return syntax(
                here(input),
                format!("expected a condition after \"{keyword}\", got {got}"),
            );
        };
        chain.push(next)?;
        if eat_keyword(input, keyword)?.is_none() {
            return chain.finish(None);
        }
    }
}

/// unary = "not" unary | "(" or ")" | predicate
fn unary(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
    skip_ws(input)?;
    let start = here(input);
    if eat_keyword(input, "not")?.is_some() {
        let inner = nested(input, start, |input| unary(input, scope))?;
        let Some(inner) = inner else {
            let got = describe_next(input)?;
            return syntax(
                here(input),
                format!("expected a condition after \"not\", got {got}"),
            );
        };
        let cond = Condition::Not(Box::new(inner.cond));
        return Parsed::node(cond, start, inner.depth, inner.nodes).map(Some);
    }
    if eat_char(input, '(')?.is_some() {
        let inner = nested(input, start, |input| or_expr(input, scope))?;
        let Some(inner) = inner else {
            let got = describe_next(input)?;
            return syntax(
                here(input),
                format!("expected a condition after \"(\", got {got}"),
            );
        };
        if eat_char(input, ')')?.is_none() {
            skip_ws(input)?;
            let message = match input.is_empty() {
                true => "expected a closing parenthesis".to_string(),
                false => format!(
                    "expected a closing parenthesis, got {}",
                    describe_next(input)?
                ),
            };
            return syntax(here(input), message);
        }
        return Ok(Some(inner));
    }
    predicate(input, scope)
}

/// predicate = event | event_sum | segment | field
fn predicate(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
    skip_ws(input)?;
    let start = here(input);
    let keyword = peek_word(input)?;
    if let Some(keyword @ ("performed" | "total" | "in")) = keyword.as_deref() {
        if scope == Scope::Event {
            return syntax(
                start,
                format!(
                    "\"{keyword}\" can't be used in an event filter, which tests the event's \
                     properties (quote a property named {keyword})"
                ),
            );
        }
        word(input)?;
        return match keyword {
            "performed" => event(input, start),
            "total" => event_sum(input, start),
            _ => segment(input, start),
        }
        .map(Some);
    }
    field(input, scope)
}

/// segment = "in" "segment" string
fn segment(input: &mut Input<'_>, start: usize) -> PResult<Parsed> {
    expect_keyword(input, "segment", "\"in\" (as in: in segment \"Name\")")?;
    let Some((name_at, segment_name)) = crate::lex::string(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected the segment's name in double quotes after \"in segment\", got {got}"),
        );
    };
    match input.state.schema.segment_id(&segment_name) {
        Some(id) => Ok(Parsed::leaf(Condition::InSegment(id), start)),
        None => fail(
            name_at,
            ErrorKind::UnknownSegment,
            format!("unknown segment \"{segment_name}\""),
        ),
    }
}

/// event = "performed" name where? count? ( "in" "last" duration )?
fn event(input: &mut Input<'_>, start: usize) -> PResult<Parsed> {
    let Some((_, event_type)) = name(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected an event type after \"performed\", got {got}"),
        );
    };
    let filter = where_clause(input)?;
    let count = count(input)?;
    let in_last = in_last(input)?;
    let (depth, nodes) = filter.as_ref().map_or((0, 0), |f| (f.depth, f.nodes));
    let cond = Condition::Event {
        event_type,
        filter: filter.map(|f| Box::new(f.cond)),
        count,
        in_last,
    };
    Parsed::node(cond, start, depth, nodes)
}

/// event_sum = "total" name "." name where? cmp number ( "in" "last" duration )?
fn event_sum(input: &mut Input<'_>, start: usize) -> PResult<Parsed> {
    let Some((_, event_type)) = name(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!(
                "expected an event type after \"total\" (as in: total purchase.amount), got {got}"
            ),
        );
    };
    if eat_char(input, '.')?.is_none() {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!(
                "expected \".\" and a property after the event type (as in: total purchase.amount), got {got}"
            ),
        );
    }
    let Some((_, property)) = name(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a property name after \".\", got {got}"),
        );
    };
    let filter = where_clause(input)?;
    let Some((_, op)) = comparison(input)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!(
                "expected a comparison (=, !=, <, <=, >, >=) after \"total {event_type}.{property}\", got {got}"
            ),
        );
    };
    let value = match literal(input)? {
        Some((_, Literal::Number(value))) => value,
        Some((at, other)) => {
            return fail(
                at,
                ErrorKind::InvalidValue,
                format!(
                    "expected a number to compare the total with, got {}",
                    other.describe()
                ),
            );
        }
        None => {
            let got = describe_next(input)?;
            return syntax(
                here(input),
                format!("expected a number after the comparison, got {got}"),
            );
        }
    };
    let in_last = in_last(input)?;
    let (depth, nodes) = filter.as_ref().map_or((0, 0), |f| (f.depth, f.nodes));
    let cond = Condition::EventSum {
        event_type,
        property,
        filter: filter.map(|f| Box::new(f.cond)),
        op,
        value,
        in_last,
    };
    Parsed::node(cond, start, depth, nodes)
}

/// where = "where" unary        (names inside are the event's properties)
fn where_clause(input: &mut Input<'_>) -> PResult<Option<Parsed>> {
    let Some(at) = eat_keyword(input, "where")? else {
        return Ok(None);
    };
    match nested(input, at, |input| unary(input, Scope::Event))? {
        Some(filter) => Ok(Some(filter)),
        None => {
            let got = describe_next(input)?;
            syntax(
                here(input),
                format!(
                    "expected a condition on the event's properties after \"where\", got {got}"
                ),
            )
        }
    }
}

/// count = ( "at" "least" | "at" "most" | "exactly" | "not" "exactly"
///         | "more" "than" | "fewer" "than" ) digit+ ( "time" | "times" )
fn count(input: &mut Input<'_>) -> PResult<Option<CountTest>> {
    let checkpoint = input.checkpoint();
    let Some(first) = peek_word(input)? else {
        return Ok(None);
    };
    let (op, words) = match first.as_str() {
        "at" => {
            word(input)?;
            if eat_keyword(input, "least")?.is_some() {
                (CmpOp::Gte, "at least")
            } else {
                expect_keyword(input, "most", "\"at\" (as in: at least 2 times)")?;
                (CmpOp::Lte, "at most")
            }
        }
        "exactly" => (CmpOp::Eq, "exactly"),
        "more" => (CmpOp::Gt, "more than"),
        "fewer" => (CmpOp::Lt, "fewer than"),
        "not" => {
            word(input)?;
            if peek_word(input)?.as_deref() != Some("exactly") {
                // Not a count: leave the `not` to whoever comes next.
                input.reset(&checkpoint);
                return Ok(None);
            }
            (CmpOp::Ne, "not exactly")
        }
        _ => return Ok(None),
    };
    if matches!(first.as_str(), "exactly" | "not") {
        word(input)?;
    }
    if matches!(first.as_str(), "more" | "fewer") {
        word(input)?;
        expect_keyword(input, "than", &format!("\"{first}\""))?;
    }
    let context = format!("after \"{words}\"");
    let Some((_, value)) = whole_number::<u64>(input, &context)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a count {context}, got {got}"),
        );
    };
    if eat_keyword(input, "times")?.is_none() {
        expect_keyword(input, "time", "the count (as in: at least 2 times)")
            .map_err(|err| err.map(|fault| times_fault(fault, value)))?;
    }
    Ok(Some(CountTest { op, value }))
}

/// Says "times" rather than "time" in the message when the count isn't 1.
fn times_fault(mut fault: crate::lex::Fault, value: u64) -> crate::lex::Fault {
    if value != 1 {
        fault.message = fault.message.replacen("\"time\"", "\"times\"", 1);
    }
    fault
}

/// in_last = "in" "last" duration
fn in_last(input: &mut Input<'_>) -> PResult<Option<crate::Duration>> {
    if eat_keyword(input, "in")?.is_none() {
        return Ok(None);
    }
    expect_keyword(input, "last", "\"in\" (as in: in last 30 days)")?;
    duration(input, "\"in last\"").map(Some)
}

/// field = name operator operand
fn field(input: &mut Input<'_>, scope: Scope) -> PResult<Option<Parsed>> {
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
                return fail(
                    start,
                    ErrorKind::UnknownField,
                    format!("unknown field \"{field_name}\""),
                );
            }
        },
    };
    let (op_at, op) = operator(input, &field_name)?;
    if let Target::Field { ty, .. } = target {
        if !supports(ty, op) {
            return fail(
                op_at,
                ErrorKind::UnsupportedOperator,
                unsupported_message(ty, op, false),
            );
        }
    }
    let test = operand(input, target, op)?;
    let cond = Condition::Field {
        field: field_name.clone(),
        test,
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

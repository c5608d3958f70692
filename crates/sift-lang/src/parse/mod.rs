//! The text form's grammar (see the BNF in the crate docs), parsed with winnow
//! and checked against the [`Schema`] in the same pass, so every fault is
//! reported at the byte where it is.
//!
//! Each function's `///` starts with the rule it parses. Limits are enforced
//! while parsing rather than afterwards: the nesting of `(`, `not` and
//! `where` is capped before recursing (so 100,000 `(` cannot overflow the
//! stack), and each node built checks the depth and node count of its subtree.

mod field;
mod where_hint;

use where_hint::{TrailingWhere, where_hint};

use winnow::LocatingSlice;
use winnow::error::ErrMode;
use winnow::stream::{Stateful, Stream as _};

use crate::check::Literal;
use crate::check::{did_you_mean_hint, unknown_name};
use crate::lex::{
    Fault, Input, PResult, State, at_end, comparison, describe_next, duration, eat_char,
    eat_keyword, expect_keyword, fail, here, literal, name, peek_word, skip_ws, syntax,
    whole_number, word,
};
use crate::{
    CmpOp, Condition, ConditionError, CountTest, ErrorKind, MAX_DEPTH, MAX_NODES, Position, Schema,
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
            ErrMode::Incomplete(_) => crate::lex::Fault::new(
                text.len(),
                ErrorKind::Syntax,
                "unexpected end of the condition",
            ),
        };
        ConditionError {
            kind: fault.kind,
            message: fault.message,
            position: Some(Position::at(text, fault.offset)),
            path: None,
            hint: fault.hint.map(String::into_boxed_str),
            did_you_mean: fault.did_you_mean.map(String::into_boxed_str),
        }
    })
}

/// Whose names a predicate uses: the contact's fields, or (inside `where`)
/// the event's properties.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Contact,
    Event,
}

/// A parsed subtree with what the limits need: where it starts, its depth
/// (nodes on the longest root-to-leaf path) and its node count.
pub(super) struct Parsed {
    cond: Condition,
    start: usize,
    depth: usize,
    nodes: usize,
    /// Set when the subtree ends with an event whose `where` is not
    /// parenthesized: an `and` or `or` right after it continues the outer
    /// condition, which a person may not expect (see [`where_hint`]).
    trailing_where: Option<TrailingWhere>,
}

impl Parsed {
    pub(super) fn leaf(cond: Condition, start: usize) -> Parsed {
        Parsed {
            cond,
            start,
            depth: 1,
            nodes: 1,
            trailing_where: None,
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
            trailing_where: None,
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
    /// That of the last item pushed.
    trailing_where: Option<TrailingWhere>,
}

impl Chain {
    fn new(is_all: bool, first: &Parsed) -> Chain {
        Chain {
            is_all,
            start: first.start,
            children: Vec::new(),
            depth: 0,
            nodes: 0,
            trailing_where: None,
        }
    }

    fn push(&mut self, item: Parsed) -> PResult<()> {
        self.trailing_where = item.trailing_where;
        match item.cond {
            // The group's own node goes away; its children move up one level.
            Condition::All(inner) if self.is_all => self.splice(
                inner,
                item.depth.saturating_sub(1),
                item.nodes.saturating_sub(1),
            ),
            Condition::Any(inner) if !self.is_all => self.splice(
                inner,
                item.depth.saturating_sub(1),
                item.nodes.saturating_sub(1),
            ),
            cond => self.splice(vec![cond], item.depth, item.nodes),
        }
        // Counted while the chain grows (children plus the group's own node),
        // so a flat chain of 100,000 predicates stops as soon as it is too
        // large instead of being built first.
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

    fn finish(self) -> PResult<Parsed> {
        let cond = if self.is_all {
            Condition::All(self.children)
        } else {
            Condition::Any(self.children)
        };
        let mut parsed = Parsed::node(cond, self.start, self.depth, self.nodes)?;
        parsed.trailing_where = self.trailing_where;
        Ok(parsed)
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
        let trailing = chain.trailing_where.take();
        skip_ws(input)?;
        let operand_start = here(input);
        let checkpoint = input.checkpoint();
        let next = match (operand(input), trailing) {
            (Err(ErrMode::Cut(fault)), Some(trailing))
                if fault.kind == ErrorKind::UnknownField && fault.offset == operand_start =>
            {
                input.reset(&checkpoint);
                return Err(ErrMode::Cut(where_hint(input, fault, &trailing, keyword)));
            }
            (next, _) => next?,
        };
        let Some(next) = next else {
            let got = describe_next(input)?;
            return syntax(
                here(input),
                format!("expected a condition after \"{keyword}\", got {got}"),
            );
        };
        chain.push(next)?;
        if eat_keyword(input, keyword)?.is_none() {
            return chain.finish();
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
        let mut parsed = Parsed::node(cond, start, inner.depth, inner.nodes)?;
        // `not` binds to the event alone, so what follows is still outside its `where`.
        parsed.trailing_where = inner.trailing_where;
        return Ok(Some(parsed));
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
        // The person closed the group: what follows is outside on purpose.
        let mut inner = inner;
        inner.trailing_where = None;
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
    field::field(input, scope)
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
        None => {
            let known = input.state.schema.segment_names();
            let (message, guess) = unknown_name("segment", &segment_name, &known);
            let mut fault = Fault::new(name_at, ErrorKind::UnknownSegment, message);
            fault.hint = guess.as_deref().map(did_you_mean_hint);
            fault.did_you_mean = guess;
            Err(ErrMode::Cut(fault))
        }
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
    let (depth, nodes) = filter.as_ref().map_or((0, 0), |(f, _)| (f.depth, f.nodes));
    let trailing_where = match &filter {
        Some((filter, false)) if count.is_none() && in_last.is_none() => Some(TrailingWhere {
            event_type: event_type.clone(),
            filter: filter.cond.clone(),
        }),
        _ => None,
    };
    let cond = Condition::Event {
        event_type,
        filter: filter.map(|(f, _)| Box::new(f.cond)),
        count,
        in_last,
    };
    let mut parsed = Parsed::node(cond, start, depth, nodes)?;
    parsed.trailing_where = trailing_where;
    Ok(parsed)
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
    let filter = where_clause(input)?.map(|(filter, _)| filter);
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
///
/// Also tells whether the filter was written in parentheses.
fn where_clause(input: &mut Input<'_>) -> PResult<Option<(Parsed, bool)>> {
    let Some(at) = eat_keyword(input, "where")? else {
        return Ok(None);
    };
    skip_ws(input)?;
    let parenthesized = input.peek_token() == Some('(');
    match nested(input, at, |input| unary(input, Scope::Event))? {
        Some(filter) => Ok(Some((filter, parenthesized))),
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

/// The phrases of a count, as (first word, second word or "", comparison).
const COUNT_PHRASES: [(&str, &str, CmpOp); 6] = [
    ("at", "least", CmpOp::Gte),
    ("at", "most", CmpOp::Lte),
    ("exactly", "", CmpOp::Eq),
    ("not", "exactly", CmpOp::Ne),
    ("more", "than", CmpOp::Gt),
    ("fewer", "than", CmpOp::Lt),
];

/// count = ( "at" "least" | "at" "most" | "exactly" | "not" "exactly"
///         | "more" "than" | "fewer" "than" ) digit+ ( "time" | "times" )
fn count(input: &mut Input<'_>) -> PResult<Option<CountTest>> {
    let Some(first) = peek_word(input)? else {
        return Ok(None);
    };
    let phrases: Vec<(&str, CmpOp)> = COUNT_PHRASES
        .iter()
        .filter(|(word, _, _)| *word == first)
        .map(|(_, second, op)| (*second, *op))
        .collect();
    if phrases.is_empty() {
        return Ok(None);
    }
    word(input)?;
    let mut found = None;
    for (second, op) in &phrases {
        if second.is_empty() || eat_keyword(input, second)?.is_some() {
            found = Some((*second, *op));
            break;
        }
    }
    // Only `and`, `or` or `)` may follow an event, so a phrase's first word
    // without its second is an error, not something to leave for later.
    let Some((second, op)) = found else {
        let expected: Vec<String> = phrases
            .iter()
            .map(|(second, _)| format!("\"{second}\""))
            .collect();
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!(
                "expected {} after \"{first}\", got {got}",
                expected.join(" or ")
            ),
        );
    };
    let words = match second {
        "" => first,
        _ => format!("{first} {second}"),
    };
    let context = format!("after \"{words}\"");
    let Some((_, value)) = whole_number::<u64>(input, &context)? else {
        let got = describe_next(input)?;
        return syntax(
            here(input),
            format!("expected a count {context}, got {got}"),
        );
    };
    if eat_keyword(input, "times")?.is_none() && eat_keyword(input, "time")?.is_none() {
        let got = describe_next(input)?;
        let times = if value == 1 { "time" } else { "times" };
        return syntax(
            here(input),
            format!("expected \"{times}\" after the count (as in: at least 2 times), got {got}"),
        );
    }
    Ok(Some(CountTest { op, value }))
}

/// in_last = "in" "last" duration
fn in_last(input: &mut Input<'_>) -> PResult<Option<crate::Duration>> {
    if eat_keyword(input, "in")?.is_none() {
        return Ok(None);
    }
    expect_keyword(input, "last", "\"in\" (as in: in last 30 days)")?;
    duration(input, "\"in last\"").map(Some)
}

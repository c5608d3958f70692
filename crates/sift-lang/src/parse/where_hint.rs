//! The hint for a name after an event's unparenthesized `where`: the
//! grammar keeps such a `where` to one predicate, so a property written after
//! `and`/`or` is read as a contact field, and the error says how to write it.

use crate::Condition;
use crate::lex::{Fault, Input};

use super::{Scope, unary};

/// The event type and filter of an unparenthesized `where` that ends a subtree.
#[derive(Clone)]
pub(super) struct TrailingWhere {
    pub(super) event_type: String,
    pub(super) filter: Condition,
}

/// `fault` (an unknown field right after `and`/`or` that follows an event's
/// unparenthesized `where`) with a hint: the grammar keeps a `where` to one
/// predicate unless parenthesized, so `where amount > 50 and category =
/// "shoes"` tests a contact field `category`. The hint shows the filter with
/// the predicate moved inside, read again as an event property from `input`
/// (reset to where the predicate starts).
pub(super) fn where_hint(
    input: &mut Input<'_>,
    mut fault: Fault,
    trailing: &TrailingWhere,
    keyword: &str,
) -> Fault {
    let schema = input.state.schema;
    let filter_text = crate::to_text(&trailing.filter, schema);
    let inside = match unary(input, Scope::Event) {
        Ok(Some(predicate)) => {
            let both = vec![trailing.filter.clone(), predicate.cond];
            let both = match keyword {
                "and" => Condition::All(both),
                _ => Condition::Any(both),
            };
            crate::to_text(&both, schema)
        }
        // The rest is not a property test either; show the shape alone.
        _ => format!("{filter_text} {keyword} ..."),
    };
    let event = crate::print::name_text(&trailing.event_type);
    let where_hint = format!(
        "if it is a property of the {event} event, put the whole where in parentheses: where ({inside})"
    );
    fault.hint = Some(match fault.hint.take() {
        Some(did_you_mean) => format!("{did_you_mean} Or, {where_hint}"),
        None => where_hint,
    });
    fault
}

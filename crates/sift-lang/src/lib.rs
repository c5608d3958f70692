//! Sift's condition language (docs/conditions.md): the text form marketers type, the JSON
//! tree clients send, checking both against a workspace [`Schema`], and printing
//! the canonical text back.
//!
//! This crate knows nothing of contacts, storage or HTTP.
//!
//! ```
//! use sift_lang::{FieldType, Schema, parse_text, to_json, to_text};
//!
//! struct Workspace;
//!
//! impl Schema for Workspace {
//!     fn field_type(&self, name: &str) -> Option<FieldType> {
//!         match name {
//!             "country" => Some(FieldType::String),
//!             "lead_score" => Some(FieldType::Number),
//!             _ => None,
//!         }
//!     }
//!     fn segment_id(&self, _name: &str) -> Option<String> {
//!         None
//!     }
//!     fn segment_name(&self, _id: &str) -> Option<String> {
//!         None
//!     }
//! }
//!
//! let cond = parse_text("country = \"ES\" AND lead_score >= 50.0", &Workspace)?;
//! assert_eq!(to_text(&cond, &Workspace), "country = \"ES\" and lead_score >= 50");
//! assert_eq!(
//!     to_json(&cond),
//!     serde_json::json!({"all": [
//!         {"field": "country", "op": "eq", "value": "ES"},
//!         {"field": "lead_score", "op": "gte", "value": 50},
//!     ]})
//! );
//!
//! let err = parse_text("country = ", &Workspace).unwrap_err();
//! assert_eq!(err.to_string(), "expected a value after \"=\" at 1:11");
//! # Ok::<(), sift_lang::ConditionError>(())
//! ```
//!
//! Grammar of the text form, in BNF. Keywords (every quoted word) are
//! case-insensitive; whitespace (spaces, tabs, newlines) may separate any two
//! tokens; `and` binds tighter than `or`. Each rule is also the `///` of the
//! function in `parse/` or `lex.rs` that parses it.
//!
//! ```text
//! condition   = ws ( or ws )? EOF                  empty text: everyone
//! or          = and ( "or" and )*
//! and         = unary ( "and" unary )*
//! unary       = "not" unary | "(" or ")" | predicate
//! predicate   = event | event_sum | segment | field
//!
//! segment     = "in" "segment" string              the segment's name
//! event       = "performed" name where? count? in_last?
//! event_sum   = "total" name "." name where? cmp number in_last?
//! where       = "where" unary                      names inside are event properties
//! count       = ( "at" "least" | "at" "most" | "exactly" | "not" "exactly"
//!               | "more" "than" | "fewer" "than" ) digit+ ( "time" | "times" )
//! in_last     = "in" "last" duration
//!
//! field       = name operator operand ( "ignoring" "case" )?
//! operator    = cmp | "contains" | "not" "contains" | "starts" "with" | "ends" "with"
//!             | "in" | "not" "in" | "between" | "is" "set" | "is" "not" "set"
//!             | "in" "last" | "before" | "after"
//! operand     = literal                            after cmp, contains, starts/ends with
//!             | list                               after in, not in
//!             | literal "and" literal              after between (this "and" is not a conjunction)
//!             | duration                           after in last
//!             | duration "ago"                     after before, after
//!             |                                    after is set, is not set
//! cmp         = "=" | "!=" | "<" | "<=" | ">" | ">="
//! list        = "[" ( literal ( "," literal )* )? "]"
//! duration    = digit+ unit
//! unit        = "minute" "s"? | "hour" "s"? | "day" "s"? | "week" "s"? | "month" "s"? | "year" "s"?
//!
//! name        = word | string                      a field, property or event type
//! word        = [A-Za-z_] [A-Za-z0-9_-]*
//! literal     = string | number | date | datetime | "true" | "false"
//! string      = '"' ( any character but '"' and '\' | '\"' | '\\' )* '"'
//! number      = "-"? digit+ ( "." digit+ )? ( ( "e" | "E" ) ( "+" | "-" )? digit+ )?
//! date        = digit digit digit digit "-" digit digit "-" digit digit
//! datetime    = date "T" time ( "Z" | offset )     RFC 3339; offsets are converted to UTC
//! ```
//!
//! Decisions beyond docs/conditions.md:
//! - At the start of a predicate, `not`, `performed`, `total` and `in` are
//!   keywords; a field or property with such a name is written quoted
//!   (`"total" > 5`). Any name may be quoted; the canonical text quotes only
//!   names that need it.
//! - A quoted string is accepted where a date or datetime field wants one
//!   (`birth_date > "1965-01-01"`); a date against a datetime field means
//!   midnight UTC.
//! - Inside `where`, names are event properties and are not checked against
//!   the schema; values keep the literal's own type, and a string that is a
//!   valid date or datetime is taken as one (JSON can only write dates as
//!   strings, and both forms must give the same tree).
//! - An event filter (`where`) holds only `not`, groups and property
//!   predicates: no events, sums or segment references.
//! - `in []` (an empty list) is allowed and holds for nobody; [`warnings`]
//!   points it out, with other parts that can never hold.
//! - `ignoring case` goes only on `=`, `!=`, `contains`, `not contains`,
//!   `starts with`, `ends with`, `in` and `not in` whose values are strings
//!   (for an event property, a string that is not read as a date); both
//!   sides are compared after [`fold_case`]. In the tree it is
//!   `"ignore_case": true` on the predicate.
//! - A `where` without parentheses takes one predicate, so in `performed
//!   purchase where amount > 50 and category = "shoes"` the `category` is a
//!   contact field. When that name is not a contact field, the error's
//!   [`ConditionError::hint`] shows the parenthesized `where` to write.
//! - An unknown field or segment name gets the closest known one as
//!   [`ConditionError::did_you_mean`] (see [`closest_name`]).
//! - Depth counts nodes on the longest root-to-leaf path (a predicate alone is
//!   1), event filters included; see [`Condition::depth`].
//! - Limits ([`MAX_DEPTH`], [`MAX_NODES`]) are enforced while parsing; the
//!   nesting of `(`, `not` and `where` is capped at [`MAX_DEPTH`] too, so
//!   hostile input cannot overflow the stack.

mod ast;
mod check;
mod dates;
mod error;
mod json;
mod lex;
mod parse;
mod print;
mod schema;
mod warnings;

pub use ast::*;
pub use dates::{
    DATE_RANGE, DateError, MAX_DATE, MAX_DATETIME, MIN_DATE, MIN_DATETIME, date_in_range,
    datetime_in_range, format_date, format_datetime, parse_date, parse_datetime,
};
pub use error::{ConditionError, ErrorKind, Position, closest_name};
pub use json::{duration_from_json, duration_to_json, from_json, to_json};
pub use parse::parse_text;
pub use print::{duration_text, format_number, scalar_text, to_text};
pub use schema::{MAX_DEPTH, MAX_NODES, Schema};
pub use warnings::{Warning, warnings};

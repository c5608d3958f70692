//! A condition in words, for the segment page: field labels instead of
//! names, operators as phrases, one line per condition.

use maud::{Markup, html};
use sift_engine::Workspace;
use sift_lang::{CmpOp, Condition, FieldTest, Scalar, duration_text, scalar_text};

use super::layout::url_part;

pub fn describe(condition: &Condition, engine: &Workspace) -> Markup {
    match condition {
        Condition::All(children) if children.is_empty() => {
            html! { p { "Every contact." } }
        }
        Condition::All(children) => html! {
            p { "Contacts that meet " strong { "all" } " of these:" }
            ul.words { @for child in children { li { (node(child, engine)) } } }
        },
        other => {
            html! { p { "Contacts that meet this condition:" } ul.words { li { (node(other, engine)) } } }
        }
    }
}

/// One condition in words (a group lists its children).
pub fn node(condition: &Condition, engine: &Workspace) -> Markup {
    match condition {
        Condition::All(children) => html! {
            "all of these:"
            ul.words { @for child in children { li { (node(child, engine)) } } }
        },
        Condition::Any(children) => html! {
            "at least " strong { "one" } " of these:"
            ul.words { @for child in children { li { (node(child, engine)) } } }
        },
        Condition::Not(inner) => html! { strong { "not" } " — " (node(inner, engine)) },
        Condition::Field {
            field,
            test,
            ignore_case,
        } => {
            let label = engine
                .field(field)
                .map(|f| f.label.clone())
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| field.clone());
            let case = if *ignore_case { " (ignoring case)" } else { "" };
            html! { span.field { (label) } " " (test_words(test)) (case) }
        }
        Condition::Event {
            event_type,
            filter,
            count,
            in_last,
        } => {
            let times = match count {
                None => "at least once".to_string(),
                Some(c) => format!(
                    "{} {} {}",
                    cmp_words(c.op),
                    c.value,
                    if c.value == 1 { "time" } else { "times" }
                ),
            };
            html! {
                "performed " span.field { (event_type) }
                @if let Some(filter) = filter { " where " code { (sift_lang::to_text(filter, &engine.schema())) } }
                " " (times)
                @if let Some(d) = in_last { " in the last " (duration_text(*d)) }
            }
        }
        Condition::EventSum {
            event_type,
            property,
            filter,
            op,
            value,
            in_last,
        } => html! {
            "total " span.field { (property) } " of " span.field { (event_type) } " events"
            @if let Some(filter) = filter { " where " code { (sift_lang::to_text(filter, &engine.schema())) } }
            " is " (cmp_words(*op)) " " (sift_lang::format_number(*value))
            @if let Some(d) = in_last { " in the last " (duration_text(*d)) }
        },
        Condition::InSegment(id) => {
            let name = engine
                .segment(id)
                .map_or(id.as_str(), |s| s.def.name.as_str());
            html! { "is in segment " a href={ "/ui/segments/" (url_part(id)) } { (name) } }
        }
    }
}

fn cmp_words(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "exactly",
        CmpOp::Ne => "other than",
        CmpOp::Lt => "less than",
        CmpOp::Lte => "at most",
        CmpOp::Gt => "more than",
        CmpOp::Gte => "at least",
    }
}

fn list(values: &[Scalar]) -> String {
    values
        .iter()
        .map(scalar_text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn test_words(test: &FieldTest) -> String {
    match test {
        FieldTest::Compare(op, value) => {
            let dated = matches!(value, Scalar::Date(_) | Scalar::DateTime(_));
            let words = match (op, dated) {
                (CmpOp::Eq, _) => "is",
                (CmpOp::Ne, _) => "is not",
                (CmpOp::Lt, true) => "is before",
                (CmpOp::Lte, true) => "is on or before",
                (CmpOp::Gt, true) => "is after",
                (CmpOp::Gte, true) => "is on or after",
                (CmpOp::Lt, false) => "is less than",
                (CmpOp::Lte, false) => "is at most",
                (CmpOp::Gt, false) => "is more than",
                (CmpOp::Gte, false) => "is at least",
            };
            format!("{words} {}", scalar_text(value))
        }
        FieldTest::Contains(text) => {
            format!("contains {}", scalar_text(&Scalar::String(text.clone())))
        }
        FieldTest::NotContains(text) => {
            format!(
                "does not contain {}",
                scalar_text(&Scalar::String(text.clone()))
            )
        }
        FieldTest::StartsWith(text) => {
            format!("starts with {}", scalar_text(&Scalar::String(text.clone())))
        }
        FieldTest::EndsWith(text) => {
            format!("ends with {}", scalar_text(&Scalar::String(text.clone())))
        }
        FieldTest::In(values) => format!("is one of {}", list(values)),
        FieldTest::NotIn(values) => format!("is none of {}", list(values)),
        FieldTest::Between(low, high) => {
            format!("is between {} and {}", scalar_text(low), scalar_text(high))
        }
        FieldTest::IsSet => "is set".to_string(),
        FieldTest::IsNotSet => "is not set".to_string(),
        FieldTest::InLast(d) => format!("is within the last {}", duration_text(*d)),
        FieldTest::BeforeAgo(d) => format!("is more than {} ago", duration_text(*d)),
        FieldTest::AfterAgo(d) => format!("is less than {} ago", duration_text(*d)),
    }
}

//! Faults in the text form: each case pins the position, kind and message, in
//! the one-line shape `line:column Kind: message` (the vectors pin positions;
//! these pin the sentences too). Also the limits on depth and size.

use sift_lang::{ErrorKind, MAX_DEPTH, MAX_NODES, parse_text};

use crate::schema::TestSchema;

/// Parses `text` and compares its error, rendered as `line:column Kind: message`.
fn check(text: &str, expected: &str) {
    let err = parse_text(text, &TestSchema::new()).expect_err(text);
    let position = err.position.expect("text errors have a position");
    let actual = format!(
        "{}:{} {:?}: {}",
        position.line, position.column, err.kind, err.message
    );
    assert_eq!(actual, expected, "for {text:?}");
}

#[test]
fn vectors_messages() {
    check("country = ", r#"1:11 Syntax: expected a value after "=""#);
    check(
        "newsletter = true and",
        r#"1:22 Syntax: expected a condition after "and", got the end of the condition"#,
    );
    check(
        "(country = \"ES\"",
        "1:16 Syntax: expected a closing parenthesis",
    );
    check(
        "newsletter contains \"x\"",
        r#"1:12 UnsupportedOperator: a boolean field has no operator "contains" (it has =, !=, in, not in, is set, is not set)"#,
    );
    check(
        "birth_date > \"banana\"",
        r#"1:14 InvalidValue: expected a date (YYYY-MM-DD) for date field "birth_date", got "banana""#,
    );
    check(
        "country = \"ES",
        r#"1:11 Syntax: unterminated string (a closing " is missing)"#,
    );
    check(
        "last_seen_at in last 7 fortnights",
        r#"1:24 InvalidValue: unknown duration unit "fortnights" (use minutes, hours, days, weeks, months or years)"#,
    );
    check(
        "in segment \"No such segment\"",
        r#"1:12 UnknownSegment: unknown segment "No such segment""#,
    );
    check(
        "no_such_field = 1",
        r#"1:1 UnknownField: unknown field "no_such_field""#,
    );
    check(
        "newsletter = true\nand birth_date >= 1965-13-01",
        r#"2:19 InvalidValue: "1965-13-01" is not a valid date (expected YYYY-MM-DD)"#,
    );
    check(
        "performed purchase at least times",
        r#"1:29 Syntax: expected a count after "at least", got "times""#,
    );
    check(
        "country in [\"ES\", ]",
        "1:19 Syntax: expected a value in the list",
    );
}

#[test]
fn values() {
    check(
        "country = foo",
        r#"1:11 Syntax: expected a value after "=", got "foo" (text values go in double quotes)"#,
    );
    check(
        "lead_score >= \"high\"",
        r#"1:15 InvalidValue: expected a number for number field "lead_score", got "high""#,
    );
    check(
        "country = \"a\\qb\"",
        r#"1:13 Syntax: unknown escape "\q" in a string (only \" and \\ are allowed)"#,
    );
    check(
        "signup_at > 2024-05-01T25:00:00Z",
        r#"1:13 InvalidValue: "2024-05-01T25:00:00Z" is not a valid datetime (expected RFC 3339, like 2024-05-01T10:00:00Z)"#,
    );
    check(
        "orders > 12abc",
        r#"1:10 InvalidValue: "12abc" is not a valid number"#,
    );
    check(
        "country in [\"ES\" \"FR\"]",
        r#"1:18 Syntax: expected "," or "]" in the list, got "FR"]"#,
    );
    check(
        "country in [\"ES\", 3]",
        r#"1:19 InvalidValue: expected a string for string field "country", got 3"#,
    );
    check(
        "orders between 2 5",
        r#"1:18 Syntax: expected "and" after the lower bound (as in: between 2 and 5), got "5""#,
    );
    check(
        "total purchase.amount >= \"x\"",
        r#"1:26 InvalidValue: expected a number to compare the total with, got "x""#,
    );
}

#[test]
fn operators() {
    check(
        "interests = \"shoes\"",
        r#"1:11 UnsupportedOperator: a string_list field has no operator "=" (it has contains, not contains, is set, is not set)"#,
    );
    check(
        "interests contain \"shoes\"",
        r#"1:11 Syntax: unknown operator "contain" (expected =, !=, <, <=, >, >=, contains, not contains, starts with, ends with, in, not in, between, is set, is not set, in last, before or after)"#,
    );
    check(
        "email",
        r#"1:6 Syntax: expected an operator after "email", got the end of the condition"#,
    );
    check(
        "email is",
        r#"1:9 Syntax: expected "set" or "not set" after "is", got the end of the condition"#,
    );
    check(
        "birth_date before 18 years",
        r#"1:27 Syntax: expected "ago" after the duration, got the end of the condition"#,
    );
    check(
        "last_seen_at in last days",
        r#"1:22 Syntax: expected a duration like "7 days" after "in last", got "days""#,
    );
}

#[test]
fn structure() {
    check(
        "email is set email is set",
        r#"1:14 Syntax: expected "and", "or" or the end of the condition, got "email""#,
    );
    check(
        "email is set\n  and\n  nope = 1",
        r#"3:3 UnknownField: unknown field "nope""#,
    );
    check(")", r#"1:1 Syntax: expected a condition, got ")""#);
    check(
        "not",
        r#"1:4 Syntax: expected a condition after "not", got the end of the condition"#,
    );
    check(
        "performed purchase at least 2",
        r#"1:30 Syntax: expected "times" after the count (as in: at least 2 times), got the end of the condition"#,
    );
    check(
        "performed purchase at lest 2 times",
        r#"1:23 Syntax: expected "least" or "most" after "at", got "lest""#,
    );
    check(
        "performed purchase at least 1",
        r#"1:30 Syntax: expected "time" after the count (as in: at least 2 times), got the end of the condition"#,
    );
    check(
        "performed purchase at least 2.5 times",
        "1:29 InvalidValue: expected a whole number after \"at least\", got 2.5",
    );
    check(
        "performed purchase where performed login",
        r#"1:26 Syntax: "performed" can't be used in an event filter, which tests the event's properties (quote a property named performed)"#,
    );
    check(
        "total > 5",
        r#"1:7 Syntax: expected an event type after "total" (as in: total purchase.amount), got ">""#,
    );
    check(
        "performed purchase where",
        r#"1:25 Syntax: expected a condition on the event's properties after "where", got the end of the condition"#,
    );
}

fn too_complex(text: &str) -> (u32, u32) {
    let err = parse_text(text, &TestSchema::new()).expect_err("too complex");
    assert_eq!(err.kind, ErrorKind::TooComplex, "{err}");
    let position = err.position.unwrap();
    (position.line, position.column)
}

#[test]
fn nesting_is_capped_while_parsing() {
    // 100,000 open parentheses or `not`s: an error, not a stack overflow.
    assert_eq!(too_complex(&"(".repeat(100_000)), (1, 33));
    assert_eq!(too_complex(&"not ".repeat(100_000)), (1, 129));
    // `not (` opens two levels: the 33rd opening is the 17th `not`.
    assert_eq!(too_complex(&"not (".repeat(50_000)), (1, 81));
}

#[test]
fn depth_limit() {
    // MAX_DEPTH levels are fine: 31 `not`s over a predicate.
    let deepest = format!("{}email is set", "not ".repeat(MAX_DEPTH - 1));
    assert!(parse_text(&deepest, &TestSchema::new()).is_ok());
    // One more level is reported at the outermost node, which is too deep.
    let too_deep = format!("{}email is set", "not ".repeat(MAX_DEPTH));
    assert_eq!(too_complex(&too_deep), (1, 1));
    // Alternating `and`/`or` groups add one tree level per parenthesis, so a
    // tree can be too deep while the nesting of parentheses is under the cap.
    let nest = |wraps: usize| {
        let mut text = "email is set or email is set".to_string();
        for level in 0..wraps {
            let joiner = if level % 2 == 0 { "and" } else { "or" };
            text = format!("email is set {joiner} ({text})");
        }
        text
    };
    let ok = parse_text(&nest(MAX_DEPTH - 2), &TestSchema::new()).unwrap();
    assert_eq!(ok.depth(), MAX_DEPTH);
    assert_eq!(too_complex(&nest(MAX_DEPTH - 1)), (1, 1));
}

#[test]
fn size_limit() {
    let predicate = "email is set or ";
    let at_limit = format!("{}email is set", predicate.repeat(MAX_NODES - 2));
    assert!(parse_text(&at_limit, &TestSchema::new()).is_ok());
    // 1,000 predicates plus their `or` node: the 1,000th is reported.
    let over = format!("{}email is set", predicate.repeat(MAX_NODES - 1));
    let column = (MAX_NODES - 1) * predicate.len() + 1;
    assert_eq!(too_complex(&over), (1, column as u32));
    // A huge flat input stops early rather than building everything first.
    let huge = format!("{}email is set", predicate.repeat(200_000));
    assert_eq!(too_complex(&huge).1, column as u32);
}

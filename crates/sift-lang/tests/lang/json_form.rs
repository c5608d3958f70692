//! The JSON tree form: shapes it accepts and rejects, and where its errors point.

use serde_json::{Value, json};
use sift_lang::{
    Condition, Duration, DurationUnit, ErrorKind, MAX_DEPTH, MAX_NODES, duration_from_json,
    duration_to_json, from_json, parse_text, to_json,
};

use crate::schema::TestSchema;

/// Reads `tree` and compares its error, rendered as `path Kind: message`.
fn check(tree: Value, expected: &str) {
    let err = from_json(&tree, &TestSchema::new()).expect_err("invalid tree");
    assert_eq!(err.position, None);
    let actual = format!("{} {:?}: {}", err.path.unwrap(), err.kind, err.message);
    assert_eq!(actual, expected, "for {tree}");
}

#[test]
fn errors_point_at_the_fault() {
    check(
        json!({"all": [{"field": "nope", "op": "eq", "value": 1}]}),
        r#"/all/0/field UnknownField: unknown field "nope""#,
    );
    check(
        json!({"field": "country", "op": "eq", "value": 5}),
        r#"/value InvalidValue: expected a string for string field "country", got 5"#,
    );
    check(
        json!({"field": "country", "op": "in", "value": ["ES", 3]}),
        r#"/value/1 InvalidValue: expected a string for string field "country", got 3"#,
    );
    check(
        json!({"field": "country", "op": "eq", "value": "ES", "valeu": 1}),
        r#"/valeu InvalidTree: unknown key "valeu" in a "field" condition (it takes field, op, value, ignore_case)"#,
    );
    check(
        json!({"field": "newsletter", "op": "contains", "value": "x"}),
        r#"/op UnsupportedOperator: a boolean field has no operator "contains" (it has eq, ne, in, not_in, is_set, is_not_set)"#,
    );
    check(
        json!({"field": "email", "op": "like", "value": "x"}),
        "/op InvalidTree: unknown op \"like\" (expected eq, ne, lt, lte, gt, gte, contains, not_contains, starts_with, ends_with, in, not_in, between, is_set, is_not_set, in_last, before_ago or after_ago)",
    );
    check(
        json!({"field": "email", "op": "is_set", "value": true}),
        r#"/value InvalidTree: "is_set" takes no value"#,
    );
    check(
        json!({"field": "email", "op": "eq"}),
        r#" InvalidTree: "eq" needs a "value""#,
    );
    check(
        json!({"field": "orders", "op": "between", "value": [1]}),
        r#"/value InvalidTree: "between" takes [low, high], got an array"#,
    );
    check(
        json!({"field": "birth_date", "op": "in_last", "value": "7 days"}),
        r#"/value InvalidValue: expected a duration like "30d" (units m, h, d, w, mo, y), got "7 days""#,
    );
    check(
        json!({"in_segment": "segment:nope"}),
        r#"/in_segment UnknownSegment: unknown segment "segment:nope""#,
    );
    check(
        json!({"event": "purchase", "where": {"in_segment": "segment:VIP customers"}}),
        r#"/where InvalidTree: an event filter tests the event's properties: "in_segment" can't be used in "where""#,
    );
    check(
        json!({"event": "purchase", "count": {"op": "gte", "value": -1}}),
        "/count/value InvalidValue: expected a whole number of times, got -1",
    );
    check(
        json!({"event": "purchase", "count": {"op": "most", "value": 1}}),
        r#"/count/op InvalidTree: unknown op "most" (expected eq, ne, lt, lte, gt or gte)"#,
    );
    check(
        json!({"event": ""}),
        "/event InvalidTree: expected an event type (a non-empty string), got \"\"",
    );
    check(
        json!({"event_sum": "purchase", "property": "amount", "op": "gte", "value": "10"}),
        r#"/value InvalidValue: expected a number, got "10""#,
    );
    check(
        json!({"all": [{"field": "email", "op": "is_set"}], "any": []}),
        r#" InvalidTree: a condition has exactly one of "all", "any", "not", "field", "event", "event_sum" or "in_segment"; this one has "all" and "any""#,
    );
    check(
        json!([1]),
        r#" InvalidTree: expected a condition object with one of "all", "any", "not", "field", "event", "event_sum" or "in_segment", got an array"#,
    );
    check(
        json!({"any": []}),
        r#"/any InvalidTree: "any" needs at least one condition"#,
    );
    check(
        json!({"not": {"all": []}}),
        r#"/not/all InvalidTree: an empty "all" is only allowed as the whole condition"#,
    );
    check(
        json!({"field": "a/b~c", "op": "eq", "value": 1, "x/y": 1}),
        r#"/x~1y InvalidTree: unknown key "x/y" in a "field" condition (it takes field, op, value, ignore_case)"#,
    );
}

#[test]
fn shapes() {
    let schema = TestSchema::new();
    assert_eq!(
        from_json(&json!({"all": []}), &schema),
        Ok(Condition::All(vec![]))
    );
    // Optional keys may be null.
    let with_nulls = json!({"event": "purchase", "where": null, "count": null, "in_last": null});
    assert_eq!(
        from_json(&with_nulls, &schema),
        parse_text("performed purchase", &schema)
    );
    // Dates may be written as JSON strings for date and datetime fields.
    let tree = json!({"field": "signup_at", "op": "gte", "value": "2024-05-01"});
    let cond = from_json(&tree, &schema).unwrap();
    assert_eq!(
        to_json(&cond),
        json!({"field": "signup_at", "op": "gte", "value": "2024-05-01T00:00:00Z"})
    );
}

#[test]
fn numbers_are_integers_when_integral() {
    let schema = TestSchema::new();
    let cond = parse_text(
        "lead_score >= 50 and orders < 2.5 and signup_at > 2024-05-01T10:00:00.123Z",
        &schema,
    )
    .unwrap();
    assert_eq!(
        to_json(&cond),
        json!({"all": [
            {"field": "lead_score", "op": "gte", "value": 50},
            {"field": "orders", "op": "lt", "value": 2.5},
            {"field": "signup_at", "op": "gt", "value": "2024-05-01T10:00:00.123Z"},
        ]})
    );
    assert!(!to_json(&cond).to_string().contains("50.0"));
}

#[test]
fn durations() {
    for (text, amount, unit) in [
        ("30d", 30, DurationUnit::Days),
        ("12h", 12, DurationUnit::Hours),
        ("6mo", 6, DurationUnit::Months),
        ("18y", 18, DurationUnit::Years),
        ("90m", 90, DurationUnit::Minutes),
        ("2w", 2, DurationUnit::Weeks),
    ] {
        let duration = Duration { amount, unit };
        assert_eq!(duration_from_json(text), Some(duration));
        assert_eq!(duration_to_json(duration), text);
    }
    for bad in [
        "",
        "d",
        "7",
        "7 d",
        "-1d",
        "7D",
        "7days",
        "99999999999d",
        "1.5h",
    ] {
        assert_eq!(duration_from_json(bad), None, "{bad:?}");
    }
}

#[test]
fn limits() {
    let schema = TestSchema::new();
    let leaf = json!({"field": "email", "op": "is_set"});
    let mut deep = leaf.clone();
    for _ in 0..MAX_DEPTH - 1 {
        deep = json!({"not": deep});
    }
    assert_eq!(from_json(&deep, &schema).unwrap().depth(), MAX_DEPTH);
    let err = from_json(&json!({"not": deep}), &schema).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooComplex);
    assert_eq!(err.path.unwrap(), "/not".repeat(MAX_DEPTH));

    // Much deeper than the limit: rejected without recursing all the way.
    let mut very_deep = leaf.clone();
    for _ in 0..2000 {
        very_deep = json!({"not": very_deep});
    }
    assert_eq!(
        from_json(&very_deep, &schema).unwrap_err().kind,
        ErrorKind::TooComplex
    );

    let wide = |n: usize| json!({"any": vec![leaf.clone(); n]});
    assert_eq!(
        from_json(&wide(MAX_NODES - 1), &schema)
            .unwrap()
            .node_count(),
        MAX_NODES
    );
    let err = from_json(&wide(MAX_NODES), &schema).unwrap_err();
    assert_eq!(
        (err.kind, err.path.unwrap()),
        (ErrorKind::TooComplex, format!("/any/{}", MAX_NODES - 1))
    );
}
